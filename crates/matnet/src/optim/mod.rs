//! Optimizers, learning-rate schedules and gradient clipping. Updates run
//! in place on the parameters' storage, outside the autograd graph.

mod adam;
mod schedule;
mod sgd;

pub use adam::Adam;
pub use schedule::LrSchedule;
pub use sgd::Sgd;

use crate::autograd::Gradients;
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

/// Runs `f(start, end)` over `0..n` in chunks, in parallel for large `n`.
pub(crate) fn par_ranges(n: usize, f: impl Fn(usize, usize) + Sync) {
    crate::backend::cpu::par_ranges(n, 2, f)
}

pub(crate) use crate::backend::cpu::SendPtr as Shared;

/// Per-parameter state buffers, created on first use.
pub(crate) fn state_for(state: &mut [Option<Vec<f32>>], i: usize, n: usize) -> &mut Vec<f32> {
    state[i].get_or_insert_with(|| vec![0.0; n])
}
