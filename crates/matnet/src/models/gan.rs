//! Generative adversarial networks (the seed report's §4): a generator
//! `x = G(z; θ)` and a discriminator `D(x; φ)`, the probability that `x` is
//! real, trained against each other.
//!
//! The discriminator maximises eq. 8,
//! `E_x[log D(x)] + E_z[log(1 − D(G(z)))]`, i.e. minimises
//! [`discriminator_loss`]; the generator minimises eq. 9,
//! `E_z[log(1 − D(G(z)))]` ([`GLoss::Minimax`]), or the non-saturating
//! `−E_z[log D(G(z))]` ([`GLoss::NonSaturating`]), which has the same fixed
//! point but a strong gradient while D still rejects every sample.
//!
//! D returns a logit `s` with `D(x) = σ(s)`, so every loss is a
//! binary cross-entropy on logits, stable for any `s`:
//! `log D = −softplus(−s)`, `log(1 − D) = −softplus(s)`.
//!
//! # Conditional models
//! With `conditional`, a label `y` enters both players as a learned
//! embedding concatenated to their input: `G([z, e_G(y)])` and
//! `D([x, e_D(y)])`, where `e_D(y)` has one value per pixel, so the conv
//! discriminator sees it as a second image channel. We chose concatenation
//! (Mirza & Osindero's cGAN) over a projection discriminator (Miyato &
//! Koyama): with ten classes both reach the label easily, concatenation is
//! the same code for the MLP and the conv networks, and it lets D's first
//! layer compare every pixel with the class, which is what makes a sample
//! asked for a 7 look like a 7. Projection's advantage (a single inner
//! product instead of input channels) matters for hundreds of classes.

use serde::{Deserialize, Serialize};

use crate::nn::loss::binary_cross_entropy_with_logits;
use crate::nn::{Embedding, LeakyRelu, Linear, Module, Relu, Sequential, Tanh, prefixed};
use crate::optim::{Adam, Optimizer};
use crate::train::Player;
use crate::{Error, Result, Rng, Tensor};

use super::Arch;
use super::dcgan;

/// Noise size of every GAN the CLI trains (the DCGAN paper's 100).
pub const Z_DIM: usize = 100;

/// Everything needed to rebuild a GAN from a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GanConfig {
    /// [`Arch::Gan`] (MLP players) or [`Arch::Dcgan`] (convolutional players).
    pub arch: Arch,
    /// Whether both players read a class label.
    pub conditional: bool,
    /// Size of the noise vector `z`.
    pub z_dim: usize,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// Number of classes (the labels a conditional model takes).
    pub classes: usize,
    /// Dataset the model was trained on.
    pub dataset: String,
}

impl GanConfig {
    /// The architecture on 28×28 MNIST digits with `z` of [`Z_DIM`].
    pub fn for_mnist(arch: Arch, conditional: bool) -> GanConfig {
        GanConfig {
            arch,
            conditional,
            z_dim: Z_DIM,
            rows: 28,
            cols: 28,
            classes: 10,
            dataset: "mnist".into(),
        }
    }

    /// `n` noise vectors `z ~ N(0, I)`, `[n, z_dim]` (the seed's `P_seed(z)`).
    pub fn noise(&self, n: usize, rng: &mut Rng) -> Tensor {
        Tensor::randn([n, self.z_dim], 0.0, 1.0, rng)
    }
}

/// Input of either player: its own input, with the label's embedding
/// concatenated along the feature dimension in a conditional model.
struct Conditioned {
    body: Sequential,
    label: Option<Embedding>,
    role: &'static str,
}

impl Conditioned {
    fn forward(&self, x: &Tensor, labels: Option<&Tensor>) -> Tensor {
        match (&self.label, labels) {
            (None, None) => self.body.forward(x),
            (Some(e), Some(y)) => self
                .body
                .forward(&Tensor::cat(&[x.clone(), e.forward(y)], 1)),
            (None, Some(_)) => panic!("{}: labels given to an unconditional model", self.role),
            (Some(_), None) => panic!("{}: a conditional model needs labels", self.role),
        }
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = self.body.named_parameters();
        if let Some(e) = &self.label {
            p.extend(prefixed("label", e.named_parameters()));
        }
        p
    }
}

/// The generator `G(z; θ)`, with a label in a conditional model.
///
/// # Shapes
/// `z [N, z_dim]` (and labels `[N]`) `->` images `[N, rows·cols]` in `[-1, 1]`.
pub struct Generator(Conditioned);

impl Generator {
    /// Images for noise `z` and, in a conditional model, class ids `labels`.
    /// Panics when labels are given to an unconditional model or missing in
    /// a conditional one.
    pub fn generate(&self, z: &Tensor, labels: Option<&Tensor>) -> Tensor {
        self.0.forward(z, labels)
    }

    /// A conditional generator around `body`, whose input is `z` with a
    /// learned `classes`-wide label embedding concatenated (as in a
    /// conditional [`Gan`]).
    pub(super) fn conditional(body: Sequential, classes: usize, rng: &mut Rng) -> Generator {
        Generator(Conditioned {
            body,
            label: Some(Embedding::new(classes, classes, rng)),
            role: "Generator",
        })
    }
}

/// The discriminator: a logit `s` with `D(x; φ) = σ(s)`.
///
/// # Shapes
/// images `[N, rows·cols]` (and labels `[N]`) `->` logits `[N]`.
pub struct Discriminator(Conditioned);

impl Discriminator {
    /// Real-vs-fake logits for images `x` (and labels, as [`Generator::generate`]).
    pub fn logits(&self, x: &Tensor, labels: Option<&Tensor>) -> Tensor {
        let s = self.0.forward(x, labels);
        let n = s.dims()[0];
        s.reshape([n])
    }
}

macro_rules! player_module {
    ($ty:ty, $call:ident) => {
        impl Module for $ty {
            /// The unconditional call; a conditional model panics (it needs labels).
            fn forward(&self, x: &Tensor) -> Tensor {
                self.$call(x, None)
            }

            fn named_parameters(&self) -> Vec<(String, Tensor)> {
                self.0.named_parameters()
            }

            fn named_buffers(&self) -> Vec<(String, Tensor)> {
                self.0.body.named_buffers()
            }

            fn set_training(&mut self, training: bool) {
                self.0.body.set_training(training);
            }

            fn for_each_rng(&self, f: &mut dyn FnMut(&mut Rng)) {
                self.0.body.for_each_rng(f);
            }

            fn describe(&self) -> String {
                let label = if self.0.label.is_some() {
                    "label ⧺ "
                } else {
                    ""
                };
                format!("{label}{}", self.0.body.describe())
            }
        }
    };
}

player_module!(Generator, generate);
player_module!(Discriminator, logits);

/// A GAN: both players and the configuration they were built from. Its
/// `state_dict` names the players' tensors `generator.*` and
/// `discriminator.*`, so one checkpoint holds both.
pub struct Gan {
    /// What it was built from (saved in its checkpoints).
    pub config: GanConfig,
    /// `G(z; θ)`.
    pub generator: Generator,
    /// `D(x; φ)`.
    pub discriminator: Discriminator,
}

impl Gan {
    /// A freshly initialised GAN, weights drawn from `Rng::new(seed)`.
    /// Errors name an architecture that is not a GAN or sizes it cannot take.
    pub fn new(config: GanConfig, seed: u64) -> Result<Gan> {
        let rng = &mut Rng::new(seed);
        if config.z_dim == 0 || config.classes == 0 {
            return Err(Error::Invalid(format!(
                "a GAN needs z_dim and classes of at least 1, got {} and {}",
                config.z_dim, config.classes
            )));
        }
        let pixels = config.rows * config.cols;
        let cond = config.conditional;
        // G's label embedding has the width of a one-hot code; D's one value per pixel.
        let g_label = cond.then_some(config.classes);
        let g_in = config.z_dim + g_label.unwrap_or(0);
        let channels = if cond { 2 } else { 1 };
        let (g, d) = match config.arch {
            Arch::Gan => (
                mlp_generator(g_in, pixels, rng),
                mlp_discriminator(channels * pixels, rng),
            ),
            Arch::Dcgan => {
                if config.rows != 28 || config.cols != 28 {
                    return Err(Error::Invalid(format!(
                        "dcgan upsamples 7×7 to 28×28; {}×{} images do not fit",
                        config.rows, config.cols
                    )));
                }
                (
                    dcgan::generator(g_in, rng),
                    dcgan::discriminator(channels, rng),
                )
            }
            other => {
                return Err(Error::Invalid(format!(
                    "{} is a classifier, not a GAN (gan or dcgan)",
                    other.name()
                )));
            }
        };
        let generator = Generator(Conditioned {
            body: g,
            label: g_label.map(|w| Embedding::new(config.classes, w, rng)),
            role: "Generator",
        });
        let discriminator = Discriminator(Conditioned {
            body: d,
            label: cond.then(|| Embedding::new(config.classes, pixels, rng)),
            role: "Discriminator",
        });
        Ok(Gan {
            config,
            generator,
            discriminator,
        })
    }

    /// `n` noise vectors `z ~ N(0, I)`, `[n, z_dim]` (the seed's `P_seed(z)`).
    pub fn noise(&self, n: usize, rng: &mut Rng) -> Tensor {
        self.config.noise(n, rng)
    }
}

impl Module for Gan {
    /// The generator on `z` (unconditional models only).
    fn forward(&self, z: &Tensor) -> Tensor {
        self.generator.forward(z)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("generator", self.generator.named_parameters());
        p.extend(prefixed(
            "discriminator",
            self.discriminator.named_parameters(),
        ));
        p
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("generator", self.generator.named_buffers());
        p.extend(prefixed(
            "discriminator",
            self.discriminator.named_buffers(),
        ));
        p
    }

    fn set_training(&mut self, training: bool) {
        self.generator.set_training(training);
        self.discriminator.set_training(training);
    }

    fn for_each_rng(&self, f: &mut dyn FnMut(&mut Rng)) {
        self.generator.for_each_rng(f);
        self.discriminator.for_each_rng(f);
    }

    fn describe(&self) -> String {
        format!(
            "G: {} | D: {}",
            self.generator.describe(),
            self.discriminator.describe()
        )
    }
}

/// G: `z → 256 → 512 → 1024 → rows·cols`, ReLU between, tanh out.
fn mlp_generator(z_in: usize, pixels: usize, rng: &mut Rng) -> Sequential {
    Sequential::new()
        .append(Linear::new(z_in, 256, rng))
        .append(Relu)
        .append(Linear::new(256, 512, rng))
        .append(Relu)
        .append(Linear::new(512, 1024, rng))
        .append(Relu)
        .append(Linear::new(1024, pixels, rng))
        .append(Tanh)
}

/// D: `input → 512 → 256 → 1`, LeakyReLU(0.2) between, a logit out.
fn mlp_discriminator(d_in: usize, rng: &mut Rng) -> Sequential {
    Sequential::new()
        .append(Linear::new(d_in, 512, rng))
        .append(LeakyRelu(0.2))
        .append(Linear::new(512, 256, rng))
        .append(LeakyRelu(0.2))
        .append(Linear::new(256, 1, rng))
}

/// What the generator minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum GLoss {
    /// Eq. 9 as written: `E_z[log(1 − D(G(z)))]`. Its gradient vanishes
    /// while D rejects the samples confidently, i.e. early in training.
    Minimax,
    /// `−E_z[log D(G(z))]`: same fixed point, strong gradient early.
    NonSaturating,
}

/// The discriminator's loss: minus eq. 8,
/// `−(E_x[log D(x)] + E_z[log(1 − D(G(z)))])`, as
/// `BCE(s_real, t) + BCE(s_fake, 0)` on logits. `real_target` is 1, or less
/// for one-sided label smoothing (e.g. 0.9; fake targets stay 0).
///
/// # Shapes
/// logits `[N]`, `[M]` -> scalar.
pub fn discriminator_loss(real_logits: &Tensor, fake_logits: &Tensor, real_target: f32) -> Tensor {
    let real = binary_cross_entropy_with_logits(
        real_logits,
        &Tensor::full(real_logits.shape().clone(), real_target),
    );
    let fake =
        binary_cross_entropy_with_logits(fake_logits, &Tensor::zeros(fake_logits.shape().clone()));
    real.add(&fake)
}

/// The generator's loss on D's logits for its samples: eq. 9,
/// `E[log(1 − σ(s))] = −BCE(s, 0)`, or the non-saturating `BCE(s, 1)`.
///
/// # Shapes
/// logits `[N]` -> scalar.
pub fn generator_loss(fake_logits: &Tensor, kind: GLoss) -> Tensor {
    let shape = fake_logits.shape().clone();
    match kind {
        GLoss::Minimax => {
            binary_cross_entropy_with_logits(fake_logits, &Tensor::zeros(shape)).neg()
        }
        GLoss::NonSaturating => binary_cross_entropy_with_logits(fake_logits, &Tensor::ones(shape)),
    }
}

/// How the two players are trained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GanTraining {
    /// What the generator minimises.
    pub g_loss: GLoss,
    /// Target of real images in D's loss: 1, or e.g. 0.9 for one-sided
    /// label smoothing.
    pub real_target: f32,
    /// Discriminator learning rate.
    pub lr_d: f32,
    /// Generator learning rate.
    pub lr_g: f32,
}

impl Default for GanTraining {
    /// Non-saturating G loss, no smoothing, both rates 2·10⁻⁴ (DCGAN's).
    fn default() -> Self {
        GanTraining {
            g_loss: GLoss::NonSaturating,
            real_target: 1.0,
            lr_d: 2e-4,
            lr_g: 2e-4,
        }
    }
}

/// What one discriminator step measured, and the fake batch it scored
/// (still attached to G's graph, for a generator step on it).
pub struct DStep {
    /// D's loss (minus eq. 8).
    pub loss: f32,
    /// Mean `D(x)` over the real batch.
    pub d_real: f32,
    /// Mean `D(G(z))` over the fake batch.
    pub d_fake: f32,
    /// `G(z)` `[N, rows·cols]`, recorded for backward.
    pub fake: Tensor,
    /// The labels the fake batch was generated for (conditional models).
    pub labels: Option<Tensor>,
}

/// Both players of a [`Gan`] as [`Player`]s, each with its own Adam
/// (β₁ = 0.5, β₂ = 0.999, DCGAN's) and learning rate.
pub struct GanTrainer {
    /// The discriminator's parameters and optimizer.
    pub d: Player,
    /// The generator's parameters and optimizer.
    pub g: Player,
    /// The settings it was built with.
    pub settings: GanTraining,
}

impl GanTrainer {
    /// Players for `gan`'s generator and discriminator.
    pub fn new(gan: &Gan, settings: GanTraining) -> GanTrainer {
        let adam = |lr: f32| {
            move |p| -> Box<dyn Optimizer> { Box::new(Adam::new(p, lr).betas(0.5, 0.999)) }
        };
        GanTrainer {
            d: Player::new(gan.discriminator.parameters(), adam(settings.lr_d)),
            g: Player::new(gan.generator.parameters(), adam(settings.lr_g)),
            settings,
        }
    }

    /// One discriminator step: `G(z)` for fresh noise (and the real batch's
    /// labels), then D's parameters move to raise eq. 8 on `real` against
    /// the detached fakes. Errors when the loss is not finite.
    ///
    /// # Shapes
    /// real `[N, rows·cols]` in `[-1, 1]`, labels `[N]`.
    pub fn d_step(
        &mut self,
        gan: &Gan,
        real: &Tensor,
        labels: &Tensor,
        rng: &mut Rng,
    ) -> Result<DStep> {
        let n = real.dims()[0];
        let labels = gan.config.conditional.then(|| labels.clone());
        let fake = gan.generator.generate(&gan.noise(n, rng), labels.as_ref());
        let d = &gan.discriminator;
        let real_logits = d.logits(real, labels.as_ref());
        let fake_logits = d.logits(&fake.detach(), labels.as_ref());
        let loss = discriminator_loss(&real_logits, &fake_logits, self.settings.real_target);
        let mean_prob = |s: &Tensor| s.sigmoid().mean_all().item();
        let (d_real, d_fake) = (mean_prob(&real_logits), mean_prob(&fake_logits));
        let loss = self.d.step(&loss)?;
        Ok(DStep {
            loss,
            d_real,
            d_fake,
            fake,
            labels,
        })
    }

    /// One generator step on the fakes of a discriminator step: the loss
    /// flows back through D (its gradients are computed and discarded) into
    /// G, and only G's parameters move. Returns G's loss.
    pub fn g_step(&mut self, gan: &Gan, d_step: &DStep) -> Result<f32> {
        let logits = gan
            .discriminator
            .logits(&d_step.fake, d_step.labels.as_ref());
        self.g.step(&generator_loss(&logits, self.settings.g_loss))
    }
}
