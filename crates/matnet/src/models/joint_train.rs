//! Training the [`Joint`] model: the two players of eq. 8-10 in turn, with
//! AC-GAN's auxiliary class losses and the reconstruction loss.
//!
//! With `s`, `k` the real/fake logits and class scores of `D`, images `x`
//! with labels `y`, and samples `x̃ = G(z, c)` asked for class `c`:
//!
//! - `D` minimises `BCE(s(x), 1) + BCE(s(x̃), 0)` (minus eq. 8)
//!   `+ CE(k(x), y)` (recognition) `+ CE(k(x̃), c)` (the class of a sample
//!   is the one asked for);
//! - `G` and the encoder `E` minimise `BCE(s(x̃), 1)` (the non-saturating
//!   eq. 9, or eq. 9 as written) `+ CE(k(x̃), c)` (samples should read as
//!   their class) `+ λ·(‖x̂ − x̃‖²/P + CE(ĉ, c))` on what `D` judges fake
//!   ([`Joint::reconstruction`]).
//!
//! `fake_class_loss: false` drops both `CE(k(x̃), c)` terms (the ablation
//! "no class head on generated samples"); `real_class_only` drops `D`'s
//! only, so the class head learns from real images while `G` is still
//! trained to make its samples read as their class. An auxiliary classifier
//! that also learns the class asked of each sample rewards `G` for samples
//! it finds easy to classify, a pull toward fewer, more typical digits
//! (Shu et al. 2017; Gong et al. 2019, "Twin Auxiliary Classifiers GAN").
//!
//! A model with a twin class head ([`JointConfig::twin`](super::JointConfig),
//! TAC-GAN, Gong et al. 2019) removes that pull instead of the class loss:
//! `D`'s class head learns real images only, the twin head `t` learns the
//! class asked of each sample, `D` minimising `CE(t(x̃), c)`, and `G`
//! minimises `CE(k(x̃), c) − CE(t(x̃), c)`. Minimising `CE(k(x̃), c)` alone
//! also lowers the entropy of the class given the sample, so `G` gains by
//! drawing only the digits that read most clearly; the twin term cancels
//! that gain (in the limit, `G`'s class-conditional distributions then match
//! the real ones).
//!
//! With `augment`, every image `D` sees in training, real or generated, in
//! either step, first goes through a random shift and rotation drawn afresh
//! per image ([`Augment::draw`]), differentiably, so `G`'s gradient passes
//! through it (DiffAugment, Zhao et al. 2020). `D` then learns its class
//! head on moved digits, as a classifier trained with `--augment` does,
//! while the game still pulls `G` toward the unmoved digits: a sample and a
//! real image that differ would still differ after the same kind of move.
//! The generator step reuses the moves drawn for its samples' `D` step.

use crate::data::{Augment, Warp};
use crate::nn::Module;
use crate::nn::loss::{accuracy, cross_entropy};
use crate::optim::{Adam, Optimizer};
use crate::train::Player;
use crate::{Result, Rng, Tensor};

use super::{GanTraining, Joint, discriminator_loss, generator_loss};

/// How the joint model is trained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JointTraining {
    /// The adversarial settings: G loss, real target, learning rates.
    pub gan: GanTraining,
    /// Whether `D` classifies generated samples (as the class asked for)
    /// and `G` is trained to make them read so.
    pub fake_class_loss: bool,
    /// With `fake_class_loss`: `D`'s class head learns from real images
    /// only (`G` keeps its class loss on samples).
    pub real_class_only: bool,
    /// Weight `λ` of the reconstruction loss in `G`'s objective.
    pub reconstruction_weight: f32,
    /// The reconstruction term runs on generator steps `0, k, 2k, …` only,
    /// weighted `k·λ` (lazy regularisation); `1` runs it on every step.
    pub reconstruction_every: usize,
    /// Random shifts and rotations of every image `D` sees in training
    /// (real and generated), or none.
    pub augment: Option<Augment>,
}

impl Default for JointTraining {
    /// [`GanTraining::default`], class losses on generated samples, `λ = 0.01`
    /// (at `λ = 1` the reconstruction loss blurs `G`: the README's joint
    /// model section has the measurements) on every 4th generator step.
    fn default() -> Self {
        JointTraining {
            gan: GanTraining::default(),
            fake_class_loss: true,
            real_class_only: false,
            reconstruction_weight: 0.01,
            reconstruction_every: 4,
            augment: None,
        }
    }
}

/// What one discriminator step measured, and the generated batch (still
/// attached to `G`'s graph, for the generator step).
pub struct JointDStep {
    /// `D`'s whole loss.
    pub loss: f32,
    /// Mean `D(x)` over the real batch.
    pub d_real: f32,
    /// Mean `D(G(z))` over the generated batch.
    pub d_fake: f32,
    /// Fraction of the real batch the class head got right.
    pub real_accuracy: f32,
    /// Fraction of the generated batch the class head read as asked.
    pub fake_accuracy: f32,
    /// `G(z, c)` `[N, rows·cols]`.
    pub fake: Tensor,
    /// The classes `c` it was asked for `[N]`.
    pub labels: Tensor,
    /// The moves `D` saw `fake` through, with `augment`.
    pub warp: Option<Warp>,
}

/// What one generator step measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JointGStep {
    /// `G`'s whole loss (adversarial, class and reconstruction terms).
    pub loss: f32,
    /// The reconstruction loss, when the module ran.
    pub reconstruction: Option<f32>,
    /// Samples that went through the reconstruction module.
    pub reconstructed: usize,
}

/// The joint model's players: `D` with its Adam, and `G` with the encoder
/// under one Adam (β₁ = 0.5, β₂ = 0.999, as DCGAN).
pub struct JointTrainer {
    /// The discriminator's parameters and optimizer.
    pub d: Player,
    /// The generator's and encoder's parameters and optimizer.
    pub g: Player,
    /// The settings it was built with.
    pub settings: JointTraining,
}

impl JointTrainer {
    /// Players for `model`'s parts.
    pub fn new(model: &Joint, settings: JointTraining) -> JointTrainer {
        let adam = |lr: f32| {
            move |p| -> Box<dyn Optimizer> { Box::new(Adam::new(p, lr).betas(0.5, 0.999)) }
        };
        let mut g_params = model.generator.parameters();
        if let Some(e) = &model.encoder {
            g_params.extend(e.parameters());
        }
        JointTrainer {
            d: Player::new(model.discriminator.parameters(), adam(settings.gan.lr_d)),
            g: Player::new(g_params, adam(settings.gan.lr_g)),
            settings,
        }
    }

    /// One discriminator step on `real` `[N, rows·cols]` in `[-1, 1]` with
    /// class ids `labels` `[N]`: `G(z, labels)` for fresh noise, then `D`'s
    /// parameters move on its loss against the detached samples. Errors
    /// when the loss is not finite.
    pub fn d_step(
        &mut self,
        model: &Joint,
        real: &Tensor,
        labels: &Tensor,
        rng: &mut Rng,
    ) -> Result<JointDStep> {
        let n = real.dims()[0];
        let fake = model.generate(&model.noise(n, rng), labels);
        let (rows, cols) = (model.config.rows, model.config.cols);
        let mut draw = || self.settings.augment.map(|a| a.draw(n, rows, cols, rng));
        let (real_warp, warp) = (draw(), draw());
        let d = &model.discriminator;
        let (s_real, k_real) = d.forward_both(&seen(&real_warp, real));
        let (s_fake, k_fake, t_fake) = d.forward_heads(&seen(&warp, &fake.detach()));
        let mut loss = discriminator_loss(&s_real, &s_fake, self.settings.gan.real_target)
            .add(&cross_entropy(&k_real, labels));
        // The head that learns the samples' classes: the twin head if there
        // is one, else the class head unless it learns real images only.
        let learns_samples = t_fake
            .as_ref()
            .or((!self.settings.real_class_only).then_some(&k_fake));
        if let (true, Some(k)) = (self.settings.fake_class_loss, learns_samples) {
            loss = loss.add(&cross_entropy(k, labels));
        }
        let mean_prob = |s: &Tensor| s.sigmoid().mean_all().item();
        let (d_real, d_fake) = (mean_prob(&s_real), mean_prob(&s_fake));
        let (real_accuracy, fake_accuracy) = (accuracy(&k_real, labels), accuracy(&k_fake, labels));
        let loss = self.d.step(&loss)?;
        Ok(JointDStep {
            loss,
            d_real,
            d_fake,
            real_accuracy,
            fake_accuracy,
            fake,
            labels: labels.clone(),
            warp,
        })
    }

    /// Generator step number `step` (counted from 0 over the whole run) on
    /// the samples of a discriminator step: the loss flows back through `D`
    /// (whose gradients are not computed) into `G`, and, on the steps the
    /// lazy reconstruction term runs, the reconstruction loss into `G` and
    /// `E`; only they move.
    pub fn g_step(
        &mut self,
        model: &Joint,
        d_step: &JointDStep,
        step: usize,
    ) -> Result<JointGStep> {
        let (s, k, t) = model
            .discriminator
            .forward_heads(&seen(&d_step.warp, &d_step.fake));
        let mut loss = generator_loss(&s, self.settings.gan.g_loss);
        if self.settings.fake_class_loss {
            loss = loss.add(&cross_entropy(&k, &d_step.labels));
            if let Some(t) = &t {
                loss = loss.sub(&cross_entropy(t, &d_step.labels));
            }
        }
        let every = self.settings.reconstruction_every.max(1);
        let rec = step
            .is_multiple_of(every)
            .then(|| model.reconstruction(&d_step.fake, &d_step.labels, &s.detach()))
            .flatten();
        let (reconstruction, reconstructed) = match &rec {
            Some(r) => {
                let weight = self.settings.reconstruction_weight * every as f32;
                loss = loss.add(&r.loss.mul_scalar(weight));
                (Some(r.loss.item()), r.samples)
            }
            None => (None, 0),
        };
        let loss = self.g.step(&loss)?;
        Ok(JointGStep {
            loss,
            reconstruction,
            reconstructed,
        })
    }
}

/// `x` as `D` sees it: moved by `warp`, or as it is.
fn seen(warp: &Option<Warp>, x: &Tensor) -> Tensor {
    warp.as_ref().map_or_else(|| x.clone(), |w| w.apply(x))
}
