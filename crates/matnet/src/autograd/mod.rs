//! Reverse-mode automatic differentiation.
//!
//! Every op records an [`Op`] naming its inputs; [`crate::Tensor::backward`]
//! walks that graph in reverse topological order and returns a
//! [`Gradients`] map. Nothing is stored on the tensors themselves, so a graph
//! (and every intermediate value it keeps alive) is freed as soon as the last
//! tensor of it is dropped.

mod backward;
mod grads;
mod op;
mod op_kind;
pub mod profile;

pub use grads::Gradients;
pub use op::{BinaryOp, Op, UnaryOp};
pub use op_kind::OpKind;

use std::cell::Cell;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// True unless inside a [`no_grad`] scope on this thread.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Turns off graph recording on this thread until the guard is dropped
/// (evaluation, optimizer updates). Scopes nest.
///
/// ```
/// use matnet::{Tensor, no_grad};
/// let w = Tensor::ones([2, 2]).requires_grad();
/// let y = {
///     let _guard = no_grad();
///     w.mul_scalar(2.0)
/// };
/// assert!(!y.tracks_grad());
/// ```
pub fn no_grad() -> NoGradGuard {
    let prev = GRAD_ENABLED.with(|g| g.replace(false));
    NoGradGuard { prev }
}

/// Restores the previous grad mode when dropped. See [`no_grad`].
pub struct NoGradGuard {
    prev: bool,
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.prev));
    }
}

/// Whether an op is worth recording: grad mode is on and an input needs it.
pub(crate) fn should_record(op: &Op) -> bool {
    is_grad_enabled() && op.inputs().iter().any(|t| t.tracks_grad())
}
