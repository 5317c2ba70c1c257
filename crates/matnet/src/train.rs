//! One training step for every loop: forward (the caller's), loss,
//! backward, gradient clipping, optimizer step, metrics; and evaluation.
//!
//! A [`Player`] is a set of parameters with its own optimizer and clipping.
//! An ordinary model is one player. A GAN is two, stepped in turn on their
//! own losses: each backward reaches every parameter the loss depends on,
//! but a player's step updates only its own parameters, so the generator's
//! step sends gradients through the discriminator without changing it.
//!
//! ```
//! use matnet::nn::{Linear, Module};
//! use matnet::optim::Sgd;
//! use matnet::train::Player;
//! use matnet::{Rng, Tensor};
//!
//! # fn main() -> matnet::Result<()> {
//! let mut rng = Rng::new(0);
//! let (d, g) = (Linear::new(2, 1, &mut rng), Linear::new(3, 2, &mut rng));
//! let mut d_player = Player::new(d.parameters(), |p| Box::new(Sgd::new(p, 0.1)));
//! let mut g_player = Player::new(g.parameters(), |p| Box::new(Sgd::new(p, 0.1)));
//! let (real, z) = (Tensor::ones([4, 2]), Tensor::randn([4, 3], 0.0, 1.0, &mut rng));
//! // Discriminator: real up, fake down; the fake batch is detached from G.
//! let fake = g.forward(&z).detach();
//! let d_loss = d.forward(&fake).sub(&d.forward(&real)).mean_all();
//! d_player.step(&d_loss)?;
//! // Generator: make D score its samples high; only G's weights move.
//! let d_before = d.weight.to_vec();
//! g_player.step(&d.forward(&g.forward(&z)).neg().mean_all())?;
//! assert_eq!(d.weight.to_vec(), d_before);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;

use crate::data::{Dataset, Normalize, batches};
use crate::nn::Module;
use crate::nn::loss::{accuracy, cross_entropy};
use crate::optim::{Optimizer, OptimizerState, clip_grad_norm};
use crate::{Error, Gradients, Result, Tensor};

/// Parameters trained together: their optimizer and gradient clipping.
pub struct Player {
    params: Vec<Tensor>,
    optimizer: Box<dyn Optimizer>,
    clip: Option<f32>,
}

impl Player {
    /// A player for `params`, with the optimizer `make` builds for exactly
    /// those parameters (so the two lists cannot differ).
    pub fn new(
        params: Vec<Tensor>,
        make: impl FnOnce(Vec<Tensor>) -> Box<dyn Optimizer>,
    ) -> Player {
        Player {
            optimizer: make(params.clone()),
            params,
            clip: None,
        }
    }

    /// Clips the global L2 norm of this player's gradients to `max_norm`
    /// before each step (`None`: no clipping).
    pub fn clip(mut self, max_norm: Option<f32>) -> Player {
        self.clip = max_norm;
        self
    }

    /// The parameters this player updates.
    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// Changes the optimizer's learning rate (schedules call this).
    pub fn set_lr(&mut self, lr: f32) {
        self.optimizer.set_lr(lr);
    }

    /// The optimizer's current learning rate.
    pub fn lr(&self) -> f32 {
        self.optimizer.lr()
    }

    /// A copy of the optimizer's state (moments, step count), for saving a run.
    pub fn state_dict(&self) -> OptimizerState {
        self.optimizer.state_dict()
    }

    /// Restores the optimizer's state saved by [`Player::state_dict`]; an
    /// error (wrong buffer count or sizes) leaves it unchanged.
    pub fn load_state_dict(&mut self, state: &OptimizerState) -> Result<()> {
        self.optimizer.load_state_dict(state)
    }

    /// One step on the scalar `loss`: backward, clipping, optimizer update of
    /// this player's parameters (and no others). Returns the loss value.
    ///
    /// A loss that is NaN or infinite is an error and nothing is updated.
    pub fn step(&mut self, loss: &Tensor) -> Result<f32> {
        let l = loss.item();
        // Only this player's gradients: rules that lead elsewhere (the
        // other player's weights) are skipped.
        let params = self.params.clone();
        self.step_with_grads(l, || loss.backward_for(&params))
    }

    /// The end of [`Player::step`] for gradients computed elsewhere (a fused
    /// kernel): checks that `loss` is finite, then clips and applies the
    /// gradients `grads` returns. Returns `loss`.
    pub fn step_with_grads(&mut self, loss: f32, grads: impl FnOnce() -> Gradients) -> Result<f32> {
        if !loss.is_finite() {
            return Err(Error::Invalid(format!(
                "training diverged: the loss became {loss}"
            )));
        }
        let mut grads = grads();
        if let Some(max) = self.clip {
            clip_grad_norm(&mut grads, &self.params, max);
        }
        self.optimizer.step(&grads);
        Ok(loss)
    }

    /// [`Player::step`] on the cross-entropy of `logits` `[N, C]` against
    /// class indices `labels` `[N]`, with the batch's accuracy.
    pub fn classification_step(&mut self, logits: &Tensor, labels: &Tensor) -> Result<StepMetrics> {
        let loss = self.step(&cross_entropy(logits, labels))?;
        Ok(StepMetrics {
            loss,
            examples: labels.numel(),
            accuracy: Some(accuracy(logits, labels)),
        })
    }
}

/// What one step measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepMetrics {
    /// The loss (a mean over the batch).
    pub loss: f32,
    /// Examples in the batch.
    pub examples: usize,
    /// Fraction classified correctly, where there are labels.
    pub accuracy: Option<f32>,
}

/// Example-weighted means of [`StepMetrics`] over many steps. It
/// serializes (serde) so a saved training run keeps its epoch's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunningMetrics {
    loss_sum: f64,
    hits: f64,
    examples: usize,
}

impl RunningMetrics {
    /// Adds one step's figures, weighted by its number of examples.
    pub fn add(&mut self, m: &StepMetrics) {
        let n = m.examples as f64;
        self.loss_sum += m.loss as f64 * n;
        self.hits += m.accuracy.unwrap_or(0.0) as f64 * n;
        self.examples += m.examples;
    }

    /// Examples seen since the last reset.
    pub fn examples(&self) -> usize {
        self.examples
    }

    /// Mean loss per example.
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.examples as f64
    }

    /// Fraction of examples classified correctly.
    pub fn accuracy(&self) -> f64 {
        self.hits / self.examples as f64
    }
}

/// Loss, accuracy and confusion matrix of a classifier on a dataset.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Mean cross-entropy per image.
    pub loss: f32,
    /// Fraction classified correctly.
    pub accuracy: f32,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

/// Images per evaluation step. Large enough to keep the products efficient,
/// small enough that a conv model's activations stay in the allocator's heap
/// (at 1,000 images the `cnn` model's were 147 MB each, fresh `mmap`s whose
/// page faults cost more than the convolutions).
const EVAL_BATCH: usize = 250;

/// Evaluates `net` (images `[N, rows·cols]` to scores `[N, classes]`) on
/// `ds` in batches, without recording a graph. Put the network in
/// evaluation mode first (`set_training(false)`).
pub fn evaluate(
    net: &dyn Module,
    classes: usize,
    ds: &Dataset,
    normalize: Normalize,
) -> Evaluation {
    let _no_grad = crate::no_grad();
    let mut confusion = vec![vec![0usize; classes]; classes];
    let (mut loss, mut n) = (0.0f64, 0usize);
    for b in batches(ds, EVAL_BATCH, normalize, None) {
        let logits = net.forward(&b.images);
        let bn = b.labels.numel();
        loss += cross_entropy(&logits, &b.labels).item() as f64 * bn as f64;
        n += bn;
        let pred = logits.argmax(-1, false).to_vec();
        for (&p, &t) in pred.iter().zip(&b.labels.to_vec()) {
            confusion[t as usize][p as usize] += 1;
        }
    }
    let hits: usize = (0..classes).map(|i| confusion[i][i]).sum();
    Evaluation {
        loss: (loss / n.max(1) as f64) as f32,
        accuracy: hits as f32 / n.max(1) as f32,
        confusion,
    }
}

/// An exponential moving average of a module's state (parameters and
/// buffers, e.g. batch norm's running statistics): after each update,
/// `ā ← r·ā + (1 − r)·a` for every tensor `a`, with the rate
/// `r = min(decay, (1 + t)/(10 + t))` at update `t` (from 0), so the first
/// updates follow the weights closely instead of remembering their random
/// start. A GAN samples from such an average of its generator (Karras et
/// al. 2018, Yazıcı et al. 2019): the raw weights swing from step to step
/// as the players chase each other, their average much less.
///
/// ```
/// use matnet::nn::{Linear, Module};
/// use matnet::train::Ema;
/// use matnet::{Rng, Tensor};
///
/// # fn main() -> matnet::Result<()> {
/// let layer = Linear::new(2, 1, &mut Rng::new(0));
/// let before = layer.weight.to_vec();
/// let mut ema = Ema::new(&layer, 0.9)?;
/// layer.weight.assign_(&Tensor::zeros([1, 2]));
/// ema.update(&layer); // t = 0: r = min(0.9, 1/10) = 0.1
/// ema.swap(&layer); // the layer now holds the average
/// let avg = layer.weight.to_vec();
/// assert!((avg[0] - 0.1 * before[0]).abs() < 1e-6);
/// ema.swap(&layer); // and the raw weights again
/// assert_eq!(layer.weight.to_vec(), vec![0.0, 0.0]);
/// # Ok(())
/// # }
/// ```
pub struct Ema {
    decay: f32,
    updates: u64,
    /// The average of each tensor of the module's `state_dict`, in order.
    average: Vec<(String, Tensor)>,
}

impl Ema {
    /// Starts the average at `module`'s current state. `decay` must be in
    /// `[0, 1)`.
    pub fn new(module: &dyn Module, decay: f32) -> Result<Ema> {
        if !(0.0..1.0).contains(&decay) {
            return Err(Error::Invalid(format!(
                "EMA decay must be in [0, 1), got {decay}"
            )));
        }
        let average = module
            .state_dict()
            .into_iter()
            .map(|(n, t)| (n, t.detach().copy()))
            .collect();
        Ok(Ema {
            decay,
            updates: 0,
            average,
        })
    }

    /// The decay given to [`Ema::new`].
    pub fn decay(&self) -> f32 {
        self.decay
    }

    /// Updates made so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The averaged tensors, named as in the module's `state_dict`.
    pub fn tensors(&self) -> &[(String, Tensor)] {
        &self.average
    }

    /// Restores a saved average: its tensors (by name, shapes checked: an
    /// error changes nothing) and its update count.
    pub fn load(&mut self, saved: &BTreeMap<&str, &Tensor>, updates: u64) -> Result<()> {
        crate::io::checkpoint::assign_checked(saved, &self.average)
            .map_err(|msg| Error::Invalid(format!("EMA: {msg}")))?;
        self.updates = updates;
        Ok(())
    }

    /// Moves the average one step toward `module`'s current state (the
    /// module given to [`Ema::new`], or one with the same `state_dict`).
    pub fn update(&mut self, module: &dyn Module) {
        let t = self.updates as f32;
        let r = self.decay.min((1.0 + t) / (10.0 + t));
        let current = module.state_dict();
        assert_eq!(
            current.len(),
            self.average.len(),
            "Ema::update: a module with another state_dict"
        );
        for ((_, avg), (_, now)) in self.average.iter_mut().zip(&current) {
            *avg = avg.affine(r, 0.0).add(&now.detach().mul_scalar(1.0 - r));
        }
        self.updates += 1;
    }

    /// Exchanges the average and `module`'s state in place: the module then
    /// computes with the averaged weights, and a second call puts its own
    /// back.
    pub fn swap(&mut self, module: &dyn Module) {
        for ((_, avg), (_, now)) in self.average.iter_mut().zip(module.state_dict()) {
            let raw = now.detach().copy();
            now.assign_(avg);
            *avg = raw;
        }
    }
}
