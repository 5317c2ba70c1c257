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

/// Updates parameters from their gradients.
pub trait Optimizer {
    /// One update of every parameter that has a gradient in `grads`.
    fn step(&mut self, grads: &Gradients);
    /// The current learning rate.
    fn lr(&self) -> f32;
    /// Changes the learning rate (schedules call this).
    fn set_lr(&mut self, lr: f32);
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
