//! The configurations stored in checkpoints: enough to rebuild a model
//! before its weights are loaded.

use serde::{Deserialize, Serialize};

use super::{GanConfig, JointConfig};
use crate::data::Normalize;
use crate::{Error, Result};

/// The image classifiers (`matnet train --model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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
    /// GAN of MLP players (generates digits; see `models::Gan`).
    Gan,
    /// DCGAN: transposed-convolution generator, strided-convolution discriminator.
    Dcgan,
    /// The joint model (seed report §5): a conv stem read by an LSTM and
    /// self-attention, real/fake and class heads, a conditional generator
    /// and a reconstruction module (see `models::Joint`).
    Joint,
}

impl Arch {
    /// Every architecture, classifiers first, in the order of the CLI's list.
    pub const ALL: [Arch; 10] = [
        Arch::SeedMlp,
        Arch::Mlp,
        Arch::Lenet,
        Arch::Cnn,
        Arch::Rnn,
        Arch::Lstm,
        Arch::Gru,
        Arch::Vit,
        Arch::Gan,
        Arch::Dcgan,
    ];

    /// The name used on the command line, in run directories and in checkpoints.
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
            Arch::Gan => "gan",
            Arch::Dcgan => "dcgan",
            Arch::Joint => "joint",
        }
    }

    /// Whether this is a generative adversarial network rather than a classifier.
    pub fn is_gan(self) -> bool {
        matches!(self, Arch::Gan | Arch::Dcgan)
    }
}

/// Everything needed to rebuild an image classifier from a checkpoint.
///
/// Its JSON (`{"arch":"lenet","rows":28,...}`) is the format checkpoints
/// have carried since the first `matnet train`; it has no `task` field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Architecture.
    pub arch: Arch,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// Number of classes.
    pub classes: usize,
    /// Hidden layer sizes (mlp, seed-mlp: widths; rnn/lstm/gru: one per
    /// stacked layer; ignored by the conv nets and the vit).
    pub hidden: Vec<usize>,
    /// Dropout probability after each hidden layer (mlp) or in the encoder (vit).
    pub dropout: f32,
    /// Dataset the model was trained on (for class names and normalisation).
    pub dataset: String,
    /// Input normalisation: "unit" (x/255) or "standard" (MNIST mean/std).
    pub normalize: String,
}

impl ModelConfig {
    /// The architecture on 28×28 MNIST digits with its default hidden sizes
    /// (the one place they are set) and no dropout.
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
                Arch::Lenet | Arch::Cnn | Arch::Vit | Arch::Gan | Arch::Dcgan | Arch::Joint => {
                    Vec::new()
                }
            },
            dropout: 0.0,
            dataset: "mnist".into(),
            normalize: normalize_name(Normalize::Unit).into(),
        }
    }

    /// The input normalisation named by [`ModelConfig::normalize`].
    pub fn normalization(&self) -> Result<Normalize> {
        match self.normalize.as_str() {
            "unit" => Ok(Normalize::Unit),
            "standard" => Ok(Normalize::Standard),
            other => Err(Error::Invalid(format!(
                "unknown normalisation {other:?} in the model configuration"
            ))),
        }
    }
}

/// The name [`ModelConfig::normalize`] stores for `n`.
pub fn normalize_name(n: Normalize) -> &'static str {
    match n {
        Normalize::Unit => "unit",
        Normalize::Standard => "standard",
    }
}

/// The causal transformer of the reverse task (`matnet train --task reverse`).
///
/// Checkpoints written before issue 9 stored only
/// `{"task":"reverse","seq_len":L,"seed":S}`; the widths they used are the
/// defaults here, so that JSON still parses (the seed is not part of the
/// architecture and is ignored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReverserConfig {
    /// Digits per sequence `L`; the model reads up to `2L` tokens.
    pub seq_len: usize,
    /// Model width `E`.
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// Attention heads.
    #[serde(default = "default_heads")]
    pub heads: usize,
    /// Transformer layers.
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// Width of each layer's feed-forward block.
    #[serde(default = "default_ff")]
    pub dim_feedforward: usize,
}

fn default_dim() -> usize {
    64
}
fn default_heads() -> usize {
    4
}
fn default_depth() -> usize {
    2
}
fn default_ff() -> usize {
    4 * default_dim()
}

impl ReverserConfig {
    /// The task's model for sequences of `seq_len` digits: width 64, 4 heads,
    /// 2 layers, feed-forward width 256.
    pub fn new(seq_len: usize) -> ReverserConfig {
        ReverserConfig {
            seq_len,
            dim: default_dim(),
            heads: default_heads(),
            depth: default_depth(),
            dim_feedforward: default_ff(),
        }
    }
}

/// The `task` value that marks a reverse-task configuration.
const REVERSE_TASK: &str = "reverse";
/// The `task` value that marks a GAN configuration.
const GAN_TASK: &str = "gan";
/// The `task` value that marks a joint-model configuration.
const JOINT_TASK: &str = "joint";

/// Any model configuration a checkpoint can hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Config {
    /// An image classifier ([`super::Classifier`]).
    Classifier(ModelConfig),
    /// The reverse-task transformer ([`super::Reverser`]).
    Reverser(ReverserConfig),
    /// A generative adversarial network ([`super::Gan`]).
    Gan(GanConfig),
    /// The joint recognise-and-generate model ([`super::Joint`]).
    Joint(JointConfig),
}

impl Config {
    /// The JSON stored under [`crate::io::CONFIG_KEY`]: a classifier's
    /// fields as they always were, a reverser's fields with `"task":"reverse"`.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Tagged<'a, C> {
            task: &'static str,
            #[serde(flatten)]
            config: &'a C,
        }
        match self {
            Config::Classifier(c) => serde_json::to_string(c),
            Config::Reverser(c) => serde_json::to_string(&Tagged {
                task: REVERSE_TASK,
                config: c,
            }),
            Config::Gan(c) => serde_json::to_string(&Tagged {
                task: GAN_TASK,
                config: c,
            }),
            Config::Joint(c) => serde_json::to_string(&Tagged {
                task: JOINT_TASK,
                config: c,
            }),
        }
        .expect("a model configuration serialises")
    }

    /// Parses the JSON a checkpoint stores, in every format matnet has
    /// written (see [`ReverserConfig`] for the old reverse-task one).
    pub fn from_json(s: &str) -> Result<Config> {
        let invalid = |e: serde_json::Error| {
            Error::Invalid(format!("the model configuration is not valid: {e}"))
        };
        let value: serde_json::Value = serde_json::from_str(s).map_err(invalid)?;
        match value.get("task") {
            None => serde_json::from_value(value)
                .map(Config::Classifier)
                .map_err(invalid),
            Some(t) if t == REVERSE_TASK => serde_json::from_value(value)
                .map(Config::Reverser)
                .map_err(invalid),
            Some(t) if t == GAN_TASK => serde_json::from_value(value)
                .map(Config::Gan)
                .map_err(invalid),
            Some(t) if t == JOINT_TASK => serde_json::from_value(value)
                .map(Config::Joint)
                .map_err(invalid),
            Some(t) => Err(Error::Invalid(format!(
                "the model configuration names an unknown task {t}"
            ))),
        }
    }
}
