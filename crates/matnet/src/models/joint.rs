//! The joint model of the seed report's §5: one network that recognises and
//! generates digits, bringing together convolution, recurrence, attention
//! (eq. 6-7) and the adversarial game (eq. 8-10).
//!
//! Three parts, each a handful of matrix products:
//!
//! - **Discriminator and recogniser** `D`: a convolutional stem turns the
//!   image into a `C×R×W` feature map (`R = rows/4`, `W = cols/4`); its rows
//!   are read as a sequence `X [N, R, C·W]` (row `r` is every channel at
//!   every column of that row). An LSTM reads the rows top to bottom
//!   (`h_T [N, H]`), and multi-head self-attention mixes them
//!   (`softmax(Q·Kᵀ/√d_k)·V`, eq. 7, on `Q, K, V = T·W^Q, T·W^K, T·W^V` of
//!   the projected rows `T = X·W_inᵀ + P`). Both readings are pooled and
//!   concatenated, `f = [h_T ⧺ mean_r(T + Attn(T))]`, pass one shared layer
//!   `u = LeakyReLU(f·W_fᵀ + b_f)`, and two heads: the real/fake logit
//!   `s = u·w_advᵀ + b_adv` (`D(x) = σ(s)`) and the class scores
//!   `k = u·W_clsᵀ + b_cls`. The class head is the recogniser.
//! - **Generator** `G`: class-conditional transposed convolutions (the
//!   DCGAN generator, eq. 11-12), `x̃ = G([z ⧺ e(c)])`.
//! - **Reconstruction module** `E`: what `D` judges fake (`s < 0`) goes back
//!   to the generator's input through an MLP,
//!   `[ẑ ⧺ ĉ] = LeakyReLU(x̃·W₁ᵀ + b₁)·W₂ᵀ + b₂` (noise `ẑ [N, z]`, class
//!   scores `ĉ [N, classes]`), and `G` re-renders `x̂ = G(ẑ, c)`. The loss
//!   `‖x̂ − x̃‖²/P + CE(ĉ, c)` trains `G` and `E` together; `x̃` and the
//!   choice of samples are constants of this loss, so no gradient of it
//!   reaches `D` (tested by finite differences).
//!
//! [`JointTrainer`](super::JointTrainer) plays the game: eq. 8 for `D` plus
//! AC-GAN's class losses (real images against their labels, generated ones
//! against the class asked for), the non-saturating eq. 9 for `G` plus the
//! class loss of its samples and the reconstruction loss.
//!
//! With `twin`, `D` has a third head, `t = u·W_twinᵀ + b_twin`, that learns
//! the class asked of each generated sample while the class head learns
//! real images only (TAC-GAN, Gong et al. 2019).
//!
//! `rnn`, `attention` and `reconstruction` in [`JointConfig`] switch parts
//! off for the ablation; without both readers `D` pools the projected rows
//! `mean_r(T)` alone.

use serde::{Deserialize, Serialize};

use crate::nn::loss::{cross_entropy, mse_loss};
use crate::nn::{
    Conv2d, LeakyRelu, LearnedPositionalEncoding, Linear, Module, MultiheadAttention, Recurrent,
    RecurrentKind, RnnConfig, Sequential, prefixed,
};
use crate::ops::conv::Conv2dParams;
use crate::{Error, Result, Rng, Tensor};

use super::dcgan::{self, Unflatten};
use super::{Arch, GanConfig, Generator, ModelConfig};

/// Everything needed to rebuild a [`Joint`] model from a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JointConfig {
    /// Size of the noise vector `z`.
    pub z_dim: usize,
    /// Image height (a multiple of 4).
    pub rows: usize,
    /// Image width (a multiple of 4).
    pub cols: usize,
    /// Number of classes.
    pub classes: usize,
    /// Dataset the model was trained on.
    pub dataset: String,
    /// Channels of the stem's two 4×4 stride-2 convolutions.
    pub stem: [usize; 2],
    /// Whether an LSTM reads the feature-map rows.
    pub rnn: bool,
    /// The LSTM's hidden size `H`.
    pub rnn_hidden: usize,
    /// Whether multi-head self-attention mixes the rows.
    pub attention: bool,
    /// Width `E` the rows are projected to (the attention's model width).
    pub attn_dim: usize,
    /// Attention heads (divide `attn_dim`).
    pub heads: usize,
    /// Generator width: `2·g_width` then `g_width` channels.
    pub g_width: usize,
    /// Whether the reconstruction module is built and trained.
    pub reconstruction: bool,
    /// Hidden width of the reconstruction encoder.
    pub encoder_hidden: usize,
    /// Whether `D` has a twin class head that learns the classes of
    /// generated samples (TAC-GAN; see [`JointTrainer`](super::JointTrainer)).
    /// Checkpoints saved before it have none.
    #[serde(default)]
    pub twin: bool,
}

impl JointConfig {
    /// The full model on 28×28 MNIST: stem 32 and 64 channels, LSTM of 128,
    /// attention width 64 with 4 heads, DCGAN's generator widths, encoder 256,
    /// `z` of [`super::Z_DIM`].
    pub fn for_mnist() -> JointConfig {
        JointConfig {
            z_dim: super::Z_DIM,
            rows: 28,
            cols: 28,
            classes: 10,
            dataset: "mnist".into(),
            stem: [32, 64],
            rnn: true,
            rnn_hidden: 128,
            attention: true,
            attn_dim: 64,
            heads: 4,
            g_width: 64,
            reconstruction: true,
            encoder_hidden: 256,
            twin: false,
        }
    }

    /// The configuration the generator's users read (`matnet generate`): a
    /// conditional model of this noise size and image shape.
    pub fn gan_config(&self) -> GanConfig {
        GanConfig {
            arch: Arch::Joint,
            conditional: true,
            z_dim: self.z_dim,
            rows: self.rows,
            cols: self.cols,
            classes: self.classes,
            dataset: self.dataset.clone(),
        }
    }

    /// The configuration of the class head seen as an image classifier
    /// (`matnet eval`, `predict`): images in `[0, 1]`.
    pub fn classifier_config(&self) -> ModelConfig {
        ModelConfig {
            arch: Arch::Joint,
            rows: self.rows,
            cols: self.cols,
            classes: self.classes,
            hidden: Vec::new(),
            dropout: 0.0,
            dataset: self.dataset.clone(),
            normalize: "unit".into(),
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        let sizes = [
            self.z_dim,
            self.classes,
            self.stem[0],
            self.stem[1],
            self.rnn_hidden,
            self.attn_dim,
            self.heads,
            self.g_width,
            self.encoder_hidden,
        ];
        if sizes.contains(&0) {
            return Err(Error::Invalid(format!(
                "the joint model needs every size to be at least 1, got {self:?}"
            )));
        }
        if self.rows == 0
            || self.cols == 0
            || !self.rows.is_multiple_of(4)
            || !self.cols.is_multiple_of(4)
        {
            return Err(Error::Invalid(format!(
                "the joint model pools and upsamples by 4; {}×{} images do not divide",
                self.rows, self.cols
            )));
        }
        if !self.attn_dim.is_multiple_of(self.heads) {
            return Err(Error::Invalid(format!(
                "{} heads do not divide the attention width {}",
                self.heads, self.attn_dim
            )));
        }
        Ok(())
    }
}

/// The discriminator and recogniser: conv stem, row readers, two heads.
///
/// # Shapes
/// images `[N, rows·cols]` in `[-1, 1]` `->` map `[N, C, R, W]` `->` rows
/// `[N, R, C·W]` `->` pooled `[N, F]` (`F = H·rnn + E`) `->` real/fake
/// logits `[N]` and class scores `[N, classes]`.
pub struct JointDiscriminator {
    /// `[N, rows·cols] -> [N, C, R, W]`: two 4×4 convolutions of stride 2
    /// (padding 1, each halving the sides), each followed by LeakyReLU(0.2).
    pub stem: Sequential,
    /// The LSTM over the rows (batch first), if any.
    pub rnn: Option<Box<dyn Recurrent>>,
    /// Row projection `W_in [E, C·W]`: the attention's tokens.
    pub proj: Linear,
    /// Learned row positions `P [R, E]`, added to the tokens.
    pub pos: LearnedPositionalEncoding,
    /// Self-attention over the rows, if any.
    pub attn: Option<MultiheadAttention>,
    /// Shared layer `W_f [F, F]` before the heads.
    pub fc: Linear,
    /// Real/fake head `w_adv [1, F]`.
    pub adv: Linear,
    /// Class head `W_cls [classes, F]`.
    pub cls: Linear,
    /// Twin class head `W_twin [classes, F]`, if any: it learns the class
    /// asked of each generated sample, never of real images.
    pub twin: Option<Linear>,
}

impl JointDiscriminator {
    fn new(c: &JointConfig, rng: &mut Rng) -> JointDiscriminator {
        // Strided convolutions rather than 3×3 convolutions and max-pools:
        // measured on one core, the pools and activations of a 32×28×28 map
        // took a third of a recogniser step, more than its products.
        let half = Conv2dParams {
            stride: (2, 2),
            padding: (1, 1),
            ..Conv2dParams::default()
        };
        let [c1, c2] = c.stem;
        let stem = Sequential::new()
            .append(Unflatten([1, c.rows, c.cols]))
            .append(Conv2d::new(1, c1, (4, 4), half, rng))
            .append(LeakyRelu(0.2))
            .append(Conv2d::new(c1, c2, (4, 4), half, rng))
            .append(LeakyRelu(0.2));
        let (r, w) = (c.rows / 4, c.cols / 4);
        let row = c2 * w;
        let rnn = c.rnn.then(|| {
            let cfg = RnnConfig {
                batch_first: true,
                ..Default::default()
            };
            RecurrentKind::Lstm.build(row, c.rnn_hidden, cfg, rng)
        });
        let features = c.attn_dim + if c.rnn { c.rnn_hidden } else { 0 };
        JointDiscriminator {
            stem,
            rnn,
            proj: Linear::new(row, c.attn_dim, rng),
            pos: LearnedPositionalEncoding::new(r, c.attn_dim, rng),
            attn: c
                .attention
                .then(|| MultiheadAttention::new(c.attn_dim, c.heads, rng)),
            fc: Linear::new(features, features, rng),
            adv: Linear::new(features, 1, rng),
            cls: Linear::new(features, c.classes, rng),
            // Drawn last, and only when asked for: a model without it gets
            // the same initial weights as before the option existed.
            twin: c.twin.then(|| Linear::new(features, c.classes, rng)),
        }
    }

    /// The stem's feature map read as a sequence of rows.
    ///
    /// # Shapes
    /// `[N, rows·cols] -> [N, C, R, W] -> [N, R, C·W]`.
    pub fn rows_of(&self, x: &Tensor) -> Tensor {
        let m = self.stem.forward(x);
        let d = m.dims().to_vec();
        m.permute(&[0, 2, 1, 3]).reshape([d[0], d[2], d[1] * d[3]])
    }

    /// The shared features `u = LeakyReLU([h_T ⧺ mean_r(T + Attn(T))]·W_fᵀ + b_f)`.
    ///
    /// # Shapes
    /// `[N, rows·cols] -> [N, F]`.
    pub fn features(&self, x: &Tensor) -> Tensor {
        let seq = self.rows_of(x);
        let tokens = self.pos.forward(&self.proj.forward(&seq));
        let mixed = match &self.attn {
            Some(a) => tokens.add(&a.forward(&tokens)),
            None => tokens,
        };
        let mut parts = Vec::new();
        if let Some(rnn) = &self.rnn {
            let h = rnn.forward_seq(&seq, None).1.h; // [1, N, H]
            parts.push(h.reshape([h.dims()[1], h.dims()[2]]));
        }
        parts.push(mixed.mean(&[1], false));
        let f = if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Tensor::cat(&parts, 1)
        };
        self.fc.forward(&f).leaky_relu(0.2)
    }

    /// Real/fake logits `s` (`D(x) = σ(s)`) and class scores.
    ///
    /// # Shapes
    /// `[N, rows·cols]` in `[-1, 1]` `->` (`[N]`, `[N, classes]`).
    pub fn forward_both(&self, x: &Tensor) -> (Tensor, Tensor) {
        let (s, k, _) = self.forward_heads(x);
        (s, k)
    }

    /// [`JointDiscriminator::forward_both`] and the twin head's class
    /// scores `[N, classes]`, if there is a twin head.
    pub fn forward_heads(&self, x: &Tensor) -> (Tensor, Tensor, Option<Tensor>) {
        let u = self.features(x);
        let s = self.adv.forward(&u);
        let twin = self.twin.as_ref().map(|t| t.forward(&u));
        (s.reshape([s.dims()[0]]), self.cls.forward(&u), twin)
    }
}

impl Module for JointDiscriminator {
    /// The class scores of `[-1, 1]` images.
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_both(x).1
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("stem", self.stem.named_parameters());
        if let Some(rnn) = &self.rnn {
            p.extend(prefixed("rnn", rnn.named_parameters()));
        }
        p.extend(prefixed("proj", self.proj.named_parameters()));
        p.extend(prefixed("pos", self.pos.named_parameters()));
        if let Some(a) = &self.attn {
            p.extend(prefixed("attn", a.named_parameters()));
        }
        p.extend(prefixed("fc", self.fc.named_parameters()));
        p.extend(prefixed("adv", self.adv.named_parameters()));
        p.extend(prefixed("cls", self.cls.named_parameters()));
        if let Some(t) = &self.twin {
            p.extend(prefixed("twin", t.named_parameters()));
        }
        p
    }

    fn describe(&self) -> String {
        let mut readers = Vec::new();
        if let Some(rnn) = &self.rnn {
            readers.push(rnn.describe());
        }
        readers.push(match &self.attn {
            Some(a) => format!("{} -> T + {}", self.proj.describe(), a.describe()),
            None => self.proj.describe(),
        });
        let twin = self
            .twin
            .as_ref()
            .map_or(String::new(), |t| format!(" (+ twin {})", t.describe()));
        format!(
            "{} -> rows [{}] -> {} -> heads {} and {}{twin}",
            self.stem.describe(),
            readers.join(" ⧺ "),
            self.fc.describe(),
            self.adv.describe(),
            self.cls.describe()
        )
    }
}

/// The reconstruction module's encoder: a generated image back to the
/// generator's input.
///
/// # Shapes
/// `x̃ [N, P] -> [N, hidden] -> [ẑ ⧺ ĉ] [N, z + classes]`.
pub struct Encoder {
    /// `W₁ [hidden, P]`.
    pub hidden: Linear,
    /// `W₂ [z + classes, hidden]`.
    pub out: Linear,
    z_dim: usize,
}

impl Encoder {
    /// `(ẑ [N, z], ĉ [N, classes])` for images `x̃` in `[-1, 1]`.
    pub fn encode(&self, x: &Tensor) -> (Tensor, Tensor) {
        let y = self.out.forward(&self.hidden.forward(x).leaky_relu(0.2));
        let all = y.dims()[1];
        (
            y.narrow(1, 0, self.z_dim),
            y.narrow(1, self.z_dim, all - self.z_dim),
        )
    }
}

impl Module for Encoder {
    /// `[ẑ ⧺ ĉ]`.
    fn forward(&self, x: &Tensor) -> Tensor {
        self.out.forward(&self.hidden.forward(x).leaky_relu(0.2))
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("hidden", self.hidden.named_parameters());
        p.extend(prefixed("out", self.out.named_parameters()));
        p
    }

    fn describe(&self) -> String {
        format!(
            "{}, LeakyReLU, {}",
            self.hidden.describe(),
            self.out.describe()
        )
    }
}

/// What the reconstruction module measured on one generated batch.
pub struct Reconstruction {
    /// `‖x̂ − x̃‖²/P + CE(ĉ, c)`, a mean over the samples judged fake
    /// (recorded for backward into `G` and `E`).
    pub loss: Tensor,
    /// Samples that went through the module (judged fake by `D`).
    pub samples: usize,
}

/// The joint recognise-and-generate model (see the [module docs](self)).
/// Its `state_dict` names its tensors `discriminator.*`, `generator.*` and
/// `encoder.*`.
///
/// # Shapes
/// As a [`Module`]: images `[N, rows·cols]` in `[0, 1]` `->` class scores
/// `[N, classes]` (the class head on `2x − 1`).
pub struct Joint {
    /// What it was built from (saved in its checkpoints).
    pub config: JointConfig,
    /// `D`: discriminator and recogniser.
    pub discriminator: JointDiscriminator,
    /// `G`: the class-conditional generator.
    pub generator: Generator,
    /// `E`: the reconstruction module's encoder, if built.
    pub encoder: Option<Encoder>,
}

impl Joint {
    /// A freshly initialised model, weights drawn from `Rng::new(seed)`.
    /// Errors name sizes the model cannot take.
    pub fn new(config: JointConfig, seed: u64) -> Result<Joint> {
        config.check()?;
        let rng = &mut Rng::new(seed);
        let discriminator = JointDiscriminator::new(&config, rng);
        let body = dcgan::generator_sized(
            config.z_dim + config.classes,
            config.g_width,
            (config.rows / 4, config.cols / 4),
            rng,
        );
        let generator = Generator::conditional(body, config.classes, rng);
        let pixels = config.rows * config.cols;
        let encoder = config.reconstruction.then(|| Encoder {
            hidden: Linear::new(pixels, config.encoder_hidden, rng),
            out: Linear::new(config.encoder_hidden, config.z_dim + config.classes, rng),
            z_dim: config.z_dim,
        });
        Ok(Joint {
            config,
            discriminator,
            generator,
            encoder,
        })
    }

    /// `n` noise vectors `z ~ N(0, I)`, `[n, z_dim]`.
    pub fn noise(&self, n: usize, rng: &mut Rng) -> Tensor {
        Tensor::randn([n, self.config.z_dim], 0.0, 1.0, rng)
    }

    /// `G(z, c)`: images `[N, rows·cols]` in `[-1, 1]` for noise `[N, z]`
    /// and class ids `[N]`.
    pub fn generate(&self, z: &Tensor, labels: &Tensor) -> Tensor {
        self.generator.generate(z, Some(labels))
    }

    /// The reconstruction module on generated images `fake` `[N, P]` (made
    /// from class ids `labels` `[N]`), given `D`'s real/fake logits on them
    /// `[N]`: the samples `D` judges fake (`s < 0`) are encoded to `(ẑ, ĉ)`,
    /// re-rendered as `x̂ = G(ẑ, c)`, and scored by
    /// `‖x̂ − x̃‖²/P + CE(ĉ, c)`. `None` without an encoder or when `D`
    /// judges every sample real.
    ///
    /// `fake` and `fake_logits` enter as constants (detached), so the loss
    /// reaches the generator only through the re-rendering and never
    /// reaches `D`.
    pub fn reconstruction(
        &self,
        fake: &Tensor,
        labels: &Tensor,
        fake_logits: &Tensor,
    ) -> Option<Reconstruction> {
        let encoder = self.encoder.as_ref()?;
        let judged: Vec<f32> = (fake_logits.to_vec().iter().enumerate())
            .filter(|(_, s)| **s < 0.0)
            .map(|(i, _)| i as f32)
            .collect();
        if judged.is_empty() {
            return None;
        }
        let samples = judged.len();
        let index = Tensor::from_vec(judged, [samples]);
        let target = fake.detach().index_select(0, &index);
        let c = labels.detach().index_select(0, &index);
        let (z_hat, c_hat) = encoder.encode(&target);
        let rendered = self.generate(&z_hat, &c);
        let loss = mse_loss(&rendered, &target).add(&cross_entropy(&c_hat, &c));
        Some(Reconstruction { loss, samples })
    }

    fn parts(&self) -> [(&str, Option<&dyn Module>); 3] {
        [
            ("discriminator", Some(&self.discriminator as &dyn Module)),
            ("generator", Some(&self.generator as &dyn Module)),
            ("encoder", self.encoder.as_ref().map(|e| e as &dyn Module)),
        ]
    }
}

impl Module for Joint {
    /// The recogniser: class scores for `[0, 1]` images.
    fn forward(&self, x: &Tensor) -> Tensor {
        self.discriminator.forward(&x.affine(2.0, -1.0))
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        (self.parts().into_iter())
            .filter_map(|(name, m)| m.map(|m| prefixed(name, m.named_parameters())))
            .flatten()
            .collect()
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        (self.parts().into_iter())
            .filter_map(|(name, m)| m.map(|m| prefixed(name, m.named_buffers())))
            .flatten()
            .collect()
    }

    fn set_training(&mut self, training: bool) {
        self.discriminator.set_training(training);
        self.generator.set_training(training);
    }

    fn describe(&self) -> String {
        let e = match &self.encoder {
            Some(e) => format!(" | E: {}", e.describe()),
            None => String::new(),
        };
        format!(
            "Joint[D: {} | G: {}{e}]",
            self.discriminator.describe(),
            self.generator.describe()
        )
    }
}
