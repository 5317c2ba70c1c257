//! The model zoo: each architecture is a configuration (saved in the
//! checkpoint) plus a constructor built from library layers.

use anyhow::{Context, bail};
use matnet::nn::{
    Conv2d, Dropout, Flatten, Init, Linear, MaxPool2d, Module, Relu, Sequential, prefixed,
};
use matnet::ops::conv::Conv2dParams;
use matnet::{Rng, Tensor};
use serde::{Deserialize, Serialize};

use crate::seq_models::{CellKind, RowReader, Vit, VitConfig};

/// The architectures `--model` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// The source documents' network as written: samples as columns,
    /// Dense(784→10), ReLU, Dense(10→10), Softmax, U(±0.5) initialisation.
    SeedMlp,
    /// A multi-layer perceptron with ReLU and dropout (hidden sizes configurable).
    Mlp,
    /// LeNet-5: conv 1→6 5×5 pad 2, max-pool, conv 6→16 5×5, max-pool, 400-120-84-10.
    Lenet,
    /// conv 32 3×3, conv 64 3×3, max-pool, dropout, dense 128, dropout, dense 10.
    Cnn,
    /// Elman RNN (eq. 4) reading the digit as 28 rows of 28 pixels.
    Rnn,
    /// LSTM reading the digit as 28 rows of 28 pixels.
    Lstm,
    /// GRU reading the digit as 28 rows of 28 pixels.
    Gru,
    /// Vision transformer: 7×7 patches, width 64, 2 pre-norm layers, 4 heads.
    Vit,
}

impl Arch {
    /// The name used on the command line and in run directories.
    pub fn name(self) -> &'static str {
        match self {
            Arch::SeedMlp => "seed-mlp",
            Arch::Mlp => "mlp",
            Arch::Lenet => "lenet",
            Arch::Cnn => "cnn",
            Arch::Rnn => "rnn",
            Arch::Lstm => "lstm",
            Arch::Gru => "gru",
            Arch::Vit => "vit",
        }
    }
}

/// Everything needed to rebuild a model from a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Architecture.
    pub arch: Arch,
    /// Image height and width.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// Number of classes.
    pub classes: usize,
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// Dropout probability after each hidden layer.
    pub dropout: f32,
    /// Dataset the model was trained on (for class names and normalisation).
    pub dataset: String,
    /// Input normalisation: "unit" (x/255) or "standard" (MNIST mean/std).
    pub normalize: String,
}

impl ModelConfig {
    /// The architecture on 28×28 MNIST digits with its default hidden sizes
    /// (the one place they are set; `train` takes them from here) and no
    /// dropout.
    pub fn for_mnist(arch: Arch) -> ModelConfig {
        ModelConfig {
            arch,
            rows: 28,
            cols: 28,
            classes: 10,
            hidden: match arch {
                Arch::SeedMlp => vec![10],
                Arch::Mlp => vec![512, 256],
                Arch::Rnn | Arch::Lstm | Arch::Gru => vec![128],
                Arch::Lenet | Arch::Cnn | Arch::Vit => Vec::new(),
            },
            dropout: 0.0,
            dataset: "mnist".into(),
            normalize: "unit".into(),
        }
    }

    /// The configuration as the JSON stored in checkpoints.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("config serialises")
    }

    /// Parses the configuration stored in a checkpoint.
    pub fn from_json(s: &str) -> anyhow::Result<ModelConfig> {
        serde_json::from_str(s).context("the checkpoint's model configuration is not valid")
    }
}

/// A model ready to run: its configuration and its network.
pub struct Model {
    pub config: ModelConfig,
    pub net: Net,
}

/// A network: a stack of library layers, or the seed report's column
/// convention MLP. An enum rather than a `Box<dyn Module>` so that tools
/// such as `inspect` can walk the layers of a stack.
pub enum Net {
    /// Layers applied in order (mlp, lenet, cnn).
    Layers(Sequential),
    /// The seed report's network (seed-mlp).
    SeedMlp(SeedMlp),
    /// A recurrent network over image rows (rnn, lstm, gru).
    Rows(RowReader),
    /// A vision transformer (vit).
    Vit(Vit),
}

impl Net {
    /// The layer stack, unless this is the seed-mlp.
    pub fn layers(&self) -> Option<&Sequential> {
        match self {
            Net::Layers(seq) => Some(seq),
            _ => None,
        }
    }

    fn module(&self) -> &dyn Module {
        match self {
            Net::Layers(seq) => seq,
            Net::SeedMlp(m) => m,
            Net::Rows(m) => m,
            Net::Vit(m) => m,
        }
    }
}

impl Module for Net {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.module().forward(x)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.module().named_parameters()
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        self.module().named_buffers()
    }

    fn set_training(&mut self, training: bool) {
        match self {
            Net::Layers(seq) => seq.set_training(training),
            Net::SeedMlp(m) => m.set_training(training),
            Net::Rows(m) => m.set_training(training),
            Net::Vit(m) => m.set_training(training),
        }
    }

    fn describe(&self) -> String {
        self.module().describe()
    }
}

impl Model {
    /// A freshly initialised model.
    pub fn new(config: ModelConfig, seed: u64) -> anyhow::Result<Model> {
        let mut rng = Rng::new(seed);
        let d_in = config.rows * config.cols;
        let net = match config.arch {
            Arch::SeedMlp => {
                if config.hidden.len() != 1 {
                    bail!(
                        "seed-mlp has exactly one hidden layer, got {:?}",
                        config.hidden
                    );
                }
                let u = Init::Uniform(-0.5, 0.5);
                Net::SeedMlp(SeedMlp {
                    l1: Linear::with_init(d_in, config.hidden[0], u, u, &mut rng),
                    l2: Linear::with_init(config.hidden[0], config.classes, u, u, &mut rng),
                })
            }
            Arch::Mlp => {
                let mut seq = Sequential::new();
                let mut d = d_in;
                for (i, &h) in config.hidden.iter().enumerate() {
                    seq = seq
                        .append(Linear::with_init(
                            d,
                            h,
                            Init::KaimingUniform,
                            Init::Zeros,
                            &mut rng,
                        ))
                        .append(Relu);
                    if config.dropout > 0.0 {
                        seq = seq.append(Dropout::new(
                            config.dropout,
                            seed.wrapping_add(1000 + i as u64),
                        ));
                    }
                    d = h;
                }
                Net::Layers(seq.append(Linear::new(d, config.classes, &mut rng)))
            }
            Arch::Lenet => {
                let pad2 = Conv2dParams {
                    padding: (2, 2),
                    ..Default::default()
                };
                let pool = || MaxPool2d {
                    kernel: (2, 2),
                    stride: (2, 2),
                };
                let side = |s: usize| (s / 2 - 4) / 2; // after pool, 5×5 conv, pool
                let flat = 16 * side(config.rows) * side(config.cols);
                Net::Layers(
                    Sequential::new()
                        .append(ToImage {
                            rows: config.rows,
                            cols: config.cols,
                        })
                        .append(Conv2d::new(1, 6, (5, 5), pad2, &mut rng))
                        .append(Relu)
                        .append(pool())
                        .append(Conv2d::new(
                            6,
                            16,
                            (5, 5),
                            Conv2dParams::default(),
                            &mut rng,
                        ))
                        .append(Relu)
                        .append(pool())
                        .append(Flatten)
                        .append(Linear::new(flat, 120, &mut rng))
                        .append(Relu)
                        .append(Linear::new(120, 84, &mut rng))
                        .append(Relu)
                        .append(Linear::new(84, config.classes, &mut rng)),
                )
            }
            Arch::Cnn => {
                let flat = 64 * ((config.rows - 4) / 2) * ((config.cols - 4) / 2);
                let p = Conv2dParams::default();
                Net::Layers(
                    Sequential::new()
                        .append(ToImage {
                            rows: config.rows,
                            cols: config.cols,
                        })
                        .append(Conv2d::new(1, 32, (3, 3), p, &mut rng))
                        .append(Relu)
                        .append(Conv2d::new(32, 64, (3, 3), p, &mut rng))
                        .append(Relu)
                        .append(MaxPool2d {
                            kernel: (2, 2),
                            stride: (2, 2),
                        })
                        .append(Dropout::new(0.25, seed.wrapping_add(2000)))
                        .append(Flatten)
                        .append(Linear::new(flat, 128, &mut rng))
                        .append(Relu)
                        .append(Dropout::new(0.5, seed.wrapping_add(2001)))
                        .append(Linear::new(128, config.classes, &mut rng)),
                )
            }
            Arch::Rnn | Arch::Lstm | Arch::Gru => {
                let kind = match config.arch {
                    Arch::Rnn => CellKind::Rnn,
                    Arch::Lstm => CellKind::Lstm,
                    _ => CellKind::Gru,
                };
                let h = config.hidden.first().copied().unwrap_or(128);
                if h == 0 || config.hidden.iter().any(|&x| x != h) {
                    bail!(
                        "{} takes equal hidden sizes, one per stacked layer, got {:?}",
                        config.arch.name(),
                        config.hidden
                    );
                }
                let layers = config.hidden.len().max(1);
                Net::Rows(RowReader::new(
                    kind,
                    (config.rows, config.cols),
                    h,
                    layers,
                    config.classes,
                    &mut rng,
                ))
            }
            Arch::Vit => {
                let c = VitConfig {
                    patch: 7,
                    dim: 64,
                    depth: 2,
                    heads: 4,
                    dropout: config.dropout,
                };
                if !config.rows.is_multiple_of(c.patch) || !config.cols.is_multiple_of(c.patch) {
                    bail!(
                        "vit cuts images into {p}×{p} patches; {}×{} images do not divide",
                        config.rows,
                        config.cols,
                        p = c.patch
                    );
                }
                Net::Vit(Vit::new(
                    (config.rows, config.cols),
                    &c,
                    config.classes,
                    &mut rng,
                ))
            }
        };
        Ok(Model { config, net })
    }

    /// Class scores `[N, classes]` for images `[N, rows·cols]`.
    pub fn logits(&self, x: &Tensor) -> Tensor {
        self.net.forward(x)
    }
}

/// The seed report's network, samples as columns:
/// `Z₁ = W₁·X + b₁`, `A₁ = ReLU(Z₁)`, `Z₂ = W₂·A₁ + b₂`, softmax over each column.
/// `X` is `[784, N]`: the transpose of the `[N, 784]` batch, taken as a view.
/// Weights keep PyTorch's `[D_out, D_in]` layout, which is exactly the
/// column-convention `W` of the report.
pub struct SeedMlp {
    l1: Linear,
    l2: Linear,
}

impl Module for SeedMlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        let cols = x.t(); // [784, N], no copy
        let b1 = self
            .l1
            .bias
            .as_ref()
            .expect("seed-mlp has biases")
            .unsqueeze(1);
        let b2 = self
            .l2
            .bias
            .as_ref()
            .expect("seed-mlp has biases")
            .unsqueeze(1);
        let a1 = self.l1.weight.matmul(&cols).add(&b1).relu(); // [10, N]
        let z2 = self.l2.weight.matmul(&a1).add(&b2); // [10, N]
        z2.t() // logits as rows [N, 10]; softmax is applied in the loss
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed(0, self.l1.named_parameters());
        p.extend(prefixed(2, self.l2.named_parameters()));
        p
    }

    fn describe(&self) -> String {
        format!(
            "SeedMlp[columns: W1 {:?}, ReLU, W2 {:?}, Softmax]",
            self.l1.weight.dims(),
            self.l2.weight.dims()
        )
    }
}

/// `[N, rows·cols] -> [N, 1, rows, cols]`: flat MNIST rows as one-channel images.
struct ToImage {
    rows: usize,
    cols: usize,
}

impl Module for ToImage {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.reshape([x.dims()[0], 1, self.rows, self.cols])
    }

    fn describe(&self) -> String {
        format!("ToImage(1×{}×{})", self.rows, self.cols)
    }
}
