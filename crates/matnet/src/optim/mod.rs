//! Optimizers, learning-rate schedules and gradient clipping. Updates run
//! in place on the parameters' storage, outside the autograd graph.

mod adam;
mod schedule;
mod sgd;

pub use adam::Adam;
pub use schedule::LrSchedule;
pub use sgd::Sgd;

use crate::autograd::Gradients;
use crate::backend::OptimRule;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Updates parameters from their gradients.
pub trait Optimizer {
    /// One update of every parameter that has a gradient in `grads`.
    fn step(&mut self, grads: &Gradients);
    /// The current learning rate.
    fn lr(&self) -> f32;
    /// Changes the learning rate (schedules call this).
    fn set_lr(&mut self, lr: f32);
    /// A copy of what the optimizer carries from step to step (PyTorch's
    /// `optimizer.state_dict()`), for saving a training run.
    fn state_dict(&self) -> OptimizerState;
    /// Replaces the optimizer's state with `state` (from [`Optimizer::state_dict`]
    /// of an optimizer of the same kind over parameters of the same shapes),
    /// so the next step is the one the saved optimizer would have taken.
    /// A state with the wrong number or size of buffers is an error and
    /// leaves the optimizer unchanged.
    fn load_state_dict(&mut self, state: &OptimizerState) -> Result<()>;
}

/// What an optimizer carries from one step to the next.
#[derive(Clone, Debug)]
pub struct OptimizerState {
    /// Updates taken so far (Adam's `t`, which its bias correction reads;
    /// SGD keeps no count and reports 0).
    pub step: u64,
    /// One buffer per parameter, in the optimizer's parameter order (SGD with
    /// momentum: the velocity, `[n]`; Adam: `m` then `v`, `[2n]` for a
    /// parameter of `n` values); `None` until the parameter's first update.
    pub buffers: Vec<Option<Tensor>>,
}

/// Deep copies of `state`, so later in-place updates do not reach them.
fn copy_buffers(state: &[Option<Tensor>]) -> Vec<Option<Tensor>> {
    state
        .iter()
        .map(|b| {
            b.as_ref()
                .map(|t| Tensor::from_vec(t.to_vec(), t.dims().to_vec()))
        })
        .collect()
}

/// Checks `saved` against `params` (`per_element` state values for each
/// parameter value), then copies it onto the parameters' devices.
fn restore_buffers(
    params: &[Tensor],
    per_element: usize,
    saved: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    if saved.len() != params.len() {
        return Err(Error::Invalid(format!(
            "optimizer state has {} buffers for {} parameters",
            saved.len(),
            params.len()
        )));
    }
    params
        .iter()
        .zip(saved)
        .enumerate()
        .map(|(i, (p, b))| {
            let Some(b) = b else { return Ok(None) };
            let want = per_element * p.numel();
            if b.numel() != want {
                return Err(Error::Invalid(format!(
                    "optimizer state buffer {i} has {} values, parameter {i} {:?} needs {want}",
                    b.numel(),
                    p.dims()
                )));
            }
            Ok(Some(Tensor::from_vec_on(b.to_vec(), [want], p.device())))
        })
        .collect()
}

/// Scales all gradients down so their global L2 norm is at most `max_norm`;
/// returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut Gradients, params: &[Tensor], max_norm: f32) -> f32 {
    let total: f64 = params
        .iter()
        .filter_map(|p| grads.get(p))
        .map(|g| g.with_data(|d| d.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>()))
        .sum();
    let norm = total.sqrt() as f32;
    if norm > max_norm && norm > 0.0 {
        let scale = max_norm / norm;
        for p in params {
            if let Some(g) = grads.remove(p) {
                grads.insert(p.id(), g.mul_scalar(scale));
            }
        }
    }
    norm
}

/// The state buffer of parameter `i` for `rule` (zeros, created on first
/// use on the parameter's device), and one update of `p` from `g` through
/// the backend's `optim_step` primitive.
pub(crate) fn update(
    state: &mut [Option<Tensor>],
    i: usize,
    p: &Tensor,
    g: &Tensor,
    rule: OptimRule,
) {
    let n = rule.state_per_element() * p.numel();
    let s = state[i].get_or_insert_with(|| Tensor::zeros_on([n], p.device()));
    p.optim_step_(g, s, &rule);
}
