//! Ready-made models: every architecture `matnet train` trains, as library
//! types (torchvision's `models`, candle-transformers' `models`), and
//! [`load`], which rebuilds any of them from any checkpoint matnet writes.
//!
//! A checkpoint holds the model's `state_dict` and its configuration as JSON
//! under [`crate::io::CONFIG_KEY`] ([`Config::to_json`]); [`load`] reads the
//! configuration, builds the model, then loads the weights, checking every
//! name and shape.
//!
//! ```
//! use std::collections::BTreeMap;
//! use matnet::models::{self, Arch, Classifier, Model, ModelConfig};
//! use matnet::{Module, Rng, Tensor};
//!
//! # fn main() -> matnet::Result<()> {
//! let lenet = Classifier::new(ModelConfig::for_mnist(Arch::Lenet), 0)?;
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("lenet.safetensors");
//! lenet.save(&path, BTreeMap::new())?;
//!
//! let x = Tensor::rand_uniform([2, 784], 0.0, 1.0, &mut Rng::new(1));
//! let Model::Classifier(back) = models::load(&path)? else { unreachable!() };
//! assert_eq!(back.config.arch, Arch::Lenet);
//! assert_eq!(back.logits(&x).to_vec(), lenet.logits(&x).to_vec());
//! # Ok(())
//! # }
//! ```

mod config;
mod conv;
mod dcgan;
mod gan;
mod joint;
mod joint_train;
mod mlp;
mod recurrent;
mod reverser;
mod size;
mod vit;

use std::collections::BTreeMap;
use std::path::Path;

pub use config::{Arch, Config, ModelConfig, ReverserConfig, normalize_name};
pub use conv::{ToImage, cnn, lenet};
pub use gan::{
    DStep, Discriminator, GLoss, Gan, GanConfig, GanTrainer, GanTraining, Generator, Z_DIM,
    discriminator_loss, generator_loss,
};
pub use joint::{Encoder, Joint, JointConfig, JointDiscriminator, Reconstruction};
pub use joint_train::{JointDStep, JointGStep, JointTrainer, JointTraining};
pub use mlp::{FusedStep, SeedMlp, mlp};
pub use recurrent::RowReader;
pub use reverser::{DIGITS, Reverser, SEP};
pub use vit::{Vit, VitConfig};

use crate::data::UnitPixels;
use crate::io::{self, CONFIG_KEY};
use crate::nn::{Module, RecurrentKind, Sequential};
use crate::train::{Player, StepMetrics};
use crate::{Error, Result, Rng, Tensor};

/// An image classifier's network. An enum rather than a `Box<dyn Module>`
/// so that tools such as `inspect` can walk the layers of a stack or draw a
/// vit's attention maps.
pub enum Net {
    /// Layers applied in order (mlp, lenet, cnn).
    Layers(Sequential),
    /// The seed report's network (seed-mlp).
    SeedMlp(SeedMlp),
    /// A recurrent network over image rows (rnn, lstm, gru).
    Rows(RowReader),
    /// A vision transformer (vit).
    Vit(Vit),
    /// The joint model, seen through its class head (joint).
    Joint(Box<Joint>),
}

impl Net {
    /// The layer stack, if this network is one.
    pub fn layers(&self) -> Option<&Sequential> {
        match self {
            Net::Layers(seq) => Some(seq),
            _ => None,
        }
    }

    fn module(&self) -> &dyn Module {
        match self {
            Net::Layers(m) => m,
            Net::SeedMlp(m) => m,
            Net::Rows(m) => m,
            Net::Vit(m) => m,
            Net::Joint(m) => m.as_ref(),
        }
    }

    fn module_mut(&mut self) -> &mut dyn Module {
        match self {
            Net::Layers(m) => m,
            Net::SeedMlp(m) => m,
            Net::Rows(m) => m,
            Net::Vit(m) => m,
            Net::Joint(m) => m.as_mut(),
        }
    }
}

/// `Module` for an enum of networks: every call goes to the variant's
/// network, which `module` and `module_mut` pick.
macro_rules! module_by_variant {
    ($ty:ty) => {
        impl Module for $ty {
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
                self.module_mut().set_training(training);
            }

            fn for_each_rng(&self, f: &mut dyn FnMut(&mut crate::Rng)) {
                self.module().for_each_rng(f);
            }

            fn describe(&self) -> String {
                self.module().describe()
            }
        }
    };
}

module_by_variant!(Net);

/// An image classifier: its configuration and its network.
///
/// # Shapes
/// Images `[N, rows·cols]` (normalised as `config.normalize` says) `->`
/// class scores `[N, classes]`.
pub struct Classifier {
    /// What it was built from (saved in its checkpoints).
    pub config: ModelConfig,
    /// The network.
    pub net: Net,
}

impl Classifier {
    /// A freshly initialised classifier: weights drawn from `Rng::new(seed)`,
    /// dropout streams seeded from `seed` too, so the same seed gives the
    /// same numbers. Errors name a configuration the architecture cannot take.
    pub fn new(config: ModelConfig, seed: u64) -> Result<Classifier> {
        let mut rng = Rng::new(seed);
        let rng = &mut rng;
        let net = match config.arch {
            Arch::SeedMlp => Net::SeedMlp(SeedMlp::new(&config, rng)?),
            Arch::Mlp => Net::Layers(mlp(&config, seed, rng)),
            Arch::Lenet => Net::Layers(lenet(&config, rng)),
            Arch::Cnn => Net::Layers(cnn(&config, seed, rng)),
            Arch::Rnn | Arch::Lstm | Arch::Gru => {
                let kind = match config.arch {
                    Arch::Rnn => RecurrentKind::Rnn,
                    Arch::Lstm => RecurrentKind::Lstm,
                    _ => RecurrentKind::Gru,
                };
                let h = config.hidden.first().copied().unwrap_or(128);
                if h == 0 || config.hidden.iter().any(|&x| x != h) {
                    return Err(Error::Invalid(format!(
                        "{} takes equal hidden sizes, one per stacked layer, got {:?}",
                        config.arch.name(),
                        config.hidden
                    )));
                }
                let (size, layers) = ((config.rows, config.cols), config.hidden.len().max(1));
                Net::Rows(RowReader::new(kind, size, h, layers, config.classes, rng))
            }
            Arch::Vit => {
                let c = VitConfig::mnist(config.dropout);
                if !config.rows.is_multiple_of(c.patch) || !config.cols.is_multiple_of(c.patch) {
                    return Err(Error::Invalid(format!(
                        "vit cuts images into {p}×{p} patches; {}×{} images do not divide",
                        config.rows,
                        config.cols,
                        p = c.patch
                    )));
                }
                Net::Vit(Vit::new(
                    (config.rows, config.cols),
                    &c,
                    config.classes,
                    rng,
                ))
            }
            Arch::Joint => {
                let c = JointConfig {
                    rows: config.rows,
                    cols: config.cols,
                    classes: config.classes,
                    dataset: config.dataset.clone(),
                    ..JointConfig::for_mnist()
                };
                Net::Joint(Box::new(Joint::new(c, seed)?))
            }
            Arch::Gan | Arch::Dcgan => {
                return Err(Error::Invalid(format!(
                    "{} is a GAN, not a classifier: build it with models::Gan",
                    config.arch.name()
                )));
            }
        };
        Ok(Classifier { config, net })
    }

    /// Class scores `[N, classes]` for images `[N, rows·cols]`.
    pub fn logits(&self, x: &Tensor) -> Tensor {
        self.net.forward(x)
    }

    /// One training step of `player` (this model's parameters) on images
    /// `x` `[N, rows·cols]` with class indices `labels` `[N]`: cross-entropy,
    /// gradients, clipping, optimizer step. The seed network on the CPU
    /// takes its fused kernel ([`SeedMlp::fused_grads`]); every other model
    /// and device runs the composed graph through autograd.
    pub fn train_step(
        &self,
        player: &mut Player,
        x: &Tensor,
        labels: &Tensor,
    ) -> Result<StepMetrics> {
        self.step(player, x, None, labels)
    }

    /// [`Classifier::train_step`] on `x.images()`; the seed network's fused
    /// kernel streams the grey-level bytes (a quarter of the memory) and
    /// gives the same bits as from the f32 images.
    pub fn train_step_pixels(
        &self,
        player: &mut Player,
        x: &UnitPixels,
        labels: &Tensor,
    ) -> Result<StepMetrics> {
        self.step(player, x.images(), Some(x), labels)
    }

    /// `pixels`, when given, hold `x` as grey levels.
    fn step(
        &self,
        player: &mut Player,
        x: &Tensor,
        pixels: Option<&UnitPixels>,
        labels: &Tensor,
    ) -> Result<StepMetrics> {
        if let Net::SeedMlp(m) = &self.net
            && let Some(f) = match pixels {
                Some(p) => m.fused_grads_pixels(p, labels),
                None => m.fused_grads(x, labels),
            }
        {
            let loss = player.step_with_grads(f.loss, || f.grads)?;
            return Ok(StepMetrics {
                loss,
                examples: labels.numel(),
                accuracy: Some(f.accuracy),
            });
        }
        player.classification_step(&self.logits(x), labels)
    }

    /// Writes the `state_dict` and the configuration (plus `metadata`) to a
    /// checkpoint that [`load`] reads back.
    /// A joint model's class head is saved as the whole joint model.
    pub fn save(&self, path: &Path, metadata: BTreeMap<String, String>) -> Result<()> {
        if let Net::Joint(j) = &self.net {
            return j.save(path, metadata);
        }
        save(
            path,
            &self.net,
            &Config::Classifier(self.config.clone()),
            metadata,
        )
    }
}

impl Reverser {
    /// Writes the `state_dict` and the configuration (plus `metadata`) to a
    /// checkpoint that [`load`] reads back.
    pub fn save(&self, path: &Path, metadata: BTreeMap<String, String>) -> Result<()> {
        save(path, self, &Config::Reverser(self.config.clone()), metadata)
    }
}

impl Joint {
    /// Writes the `state_dict` (`discriminator.*`, `generator.*`,
    /// `encoder.*`) and the configuration (plus `metadata`) to a checkpoint
    /// that [`load`] reads back.
    pub fn save(&self, path: &Path, metadata: BTreeMap<String, String>) -> Result<()> {
        save(path, self, &Config::Joint(self.config.clone()), metadata)
    }
}

impl Gan {
    /// Writes both players' `state_dict`s (`generator.*`, `discriminator.*`)
    /// and the configuration (plus `metadata`) to a checkpoint that [`load`]
    /// reads back.
    pub fn save(&self, path: &Path, metadata: BTreeMap<String, String>) -> Result<()> {
        save(path, self, &Config::Gan(self.config.clone()), metadata)
    }
}

/// Any model a checkpoint can hold.
pub enum Model {
    /// An image classifier (`matnet train --model ...`).
    Classifier(Classifier),
    /// The reverse-task transformer (`matnet train --task reverse`).
    Reverser(Reverser),
    /// A generative adversarial network (`matnet train --model gan|dcgan`).
    Gan(Gan),
    /// The joint recognise-and-generate model (`matnet train --model joint`).
    Joint(Joint),
}

impl Model {
    /// A freshly initialised model for `config` (see [`Classifier::new`];
    /// a reverser draws its weights from `Rng::new(seed)`).
    pub fn new(config: Config, seed: u64) -> Result<Model> {
        Ok(match config {
            Config::Classifier(c) => Model::Classifier(Classifier::new(c, seed)?),
            Config::Reverser(c) => Model::Reverser(Reverser::new(&c, &mut Rng::new(seed))),
            Config::Gan(c) => Model::Gan(Gan::new(c, seed)?),
            Config::Joint(c) => Model::Joint(Joint::new(c, seed)?),
        })
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> Config {
        match self {
            Model::Classifier(m) => Config::Classifier(m.config.clone()),
            Model::Reverser(m) => Config::Reverser(m.config.clone()),
            Model::Gan(m) => Config::Gan(m.config.clone()),
            Model::Joint(m) => Config::Joint(m.config.clone()),
        }
    }

    fn module(&self) -> &dyn Module {
        match self {
            Model::Classifier(m) => &m.net,
            Model::Reverser(m) => m,
            Model::Gan(m) => m,
            Model::Joint(m) => m,
        }
    }

    fn module_mut(&mut self) -> &mut dyn Module {
        match self {
            Model::Classifier(m) => &mut m.net,
            Model::Reverser(m) => m,
            Model::Gan(m) => m,
            Model::Joint(m) => m,
        }
    }
}

module_by_variant!(Model);

/// Writes `net`'s `state_dict` (parameters and buffers) to `path`
/// atomically, with `config` as JSON under [`CONFIG_KEY`] and the other
/// `metadata` entries as they are.
pub fn save(
    path: &Path,
    net: &dyn Module,
    config: &Config,
    mut metadata: BTreeMap<String, String>,
) -> Result<()> {
    metadata.insert(CONFIG_KEY.to_string(), config.to_json());
    io::save(path, &net.state_dict(), &metadata)
}

/// Rebuilds the model saved at `path`, in evaluation mode.
///
/// Reads any checkpoint matnet has written, including reverse-task
/// checkpoints from before the models moved into the library. Errors name
/// the file and what is wrong: it is missing or not a safetensors file, it
/// has no configuration, the configuration names an unknown architecture
/// or is malformed, or a tensor is missing, unexpected or of the wrong shape.
pub fn load(path: &Path) -> Result<Model> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    load_bytes(path, &bytes)
}

/// [`load`] on the contents of a file already in memory; `path` is the file
/// name the errors give.
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Model> {
    let ckpt = io::load_bytes(path, bytes)?;
    let json = ckpt.metadata.get(CONFIG_KEY).ok_or_else(|| {
        Error::format(
            path,
            format!("no {CONFIG_KEY} metadata; was it written by matnet?"),
        )
    })?;
    let config = Config::from_json(json).map_err(|e| Error::format(path, e.to_string()))?;
    // Before building: a configuration far larger than the tensors present
    // cannot load, and must not allocate what it claims. Near misses (a
    // tensor missing or misshapen) are built, so that `assign` names them.
    let need = config
        .min_state_len()
        .map_err(|e| Error::format(path, e.to_string()))?;
    let have: u128 = ckpt.tensors.iter().map(|(_, t)| t.numel() as u128).sum();
    if need > 2 * have + 4096 {
        return Err(Error::format(
            path,
            format!(
                "the model configuration describes at least {need} values, the file's \
                 tensors hold {have}: the configuration does not match the tensors"
            ),
        ));
    }
    let mut model = Model::new(config, 0).map_err(|e| Error::format(path, e.to_string()))?;
    io::assign(path, &ckpt, &model.state_dict())?;
    model.set_training(false);
    Ok(model)
}

/// [`load`] for a file that must hold an image classifier. A joint
/// model's class head is one ([`Net::Joint`]).
pub fn load_classifier(path: &Path) -> Result<Classifier> {
    match load(path)? {
        Model::Classifier(m) => Ok(m),
        Model::Joint(m) => Ok(Classifier {
            config: m.config.classifier_config(),
            net: Net::Joint(Box::new(m)),
        }),
        Model::Reverser(_) => Err(Error::format(
            path,
            "holds the reverse-task transformer, not an image classifier",
        )),
        Model::Gan(_) => Err(Error::format(path, "holds a GAN, not an image classifier")),
    }
}

/// [`load`] for a file that must hold a GAN.
pub fn load_gan(path: &Path) -> Result<Gan> {
    match load(path)? {
        Model::Gan(m) => Ok(m),
        Model::Classifier(_) => Err(Error::format(
            path,
            "holds an image classifier, not a GAN (train one with --model gan or dcgan)",
        )),
        Model::Reverser(_) => Err(Error::format(
            path,
            "holds the reverse-task transformer, not a GAN (train one with --model gan or dcgan)",
        )),
        Model::Joint(_) => Err(Error::format(
            path,
            "holds a joint model, not a GAN (its generator: models::load_generator)",
        )),
    }
}

/// The generator of a checkpoint that holds one (a GAN or a joint model),
/// with the configuration that says how to call it.
pub fn load_generator(path: &Path) -> Result<(GanConfig, Generator)> {
    match load(path)? {
        Model::Gan(m) => Ok((m.config, m.generator)),
        Model::Joint(m) => Ok((m.config.gan_config(), m.generator)),
        Model::Classifier(_) | Model::Reverser(_) => Err(Error::format(
            path,
            "holds no generator: not a GAN or joint model (train one with --model gan, dcgan or joint)",
        )),
    }
}
