//! Fused recurrent cells. The layers in `nn/rnn.rs` compose the rest of a
//! recurrence from ordinary ops; the LSTM cell's elementwise part is one op
//! here because a profile asked for it (see `backend/cpu/recurrent.rs`).

use crate::autograd::Op;
use crate::backend::cpu;
use crate::shape::Shape;
use crate::tensor::Tensor;

impl Tensor {
    /// The LSTM cell update from gate pre-activations `self = [a_i a_f a_g a_o]`
    /// (PyTorch's gate order) and the previous cell state:
    /// `c = σ(a_f)⊙c_prev + σ(a_i)⊙tanh(a_g)`, `h = σ(a_o)⊙tanh(c)`,
    /// returned side by side as `[h | c]`.
    ///
    /// # Shapes
    /// `self [N, 4H]`, `c_prev [N, H]` -> `[N, 2H]`.
    pub fn lstm_cell(&self, c_prev: &Tensor) -> Tensor {
        assert!(
            self.rank() == 2
                && c_prev.rank() == 2
                && self.dims()[0] == c_prev.dims()[0]
                && self.dims()[1] == 4 * c_prev.dims()[1],
            "lstm_cell: gates {:?} and cell state {:?} are not [N, 4H] and [N, H]",
            self.shape(),
            c_prev.shape()
        );
        let (n, h) = (c_prev.dims()[0], c_prev.dims()[1]);
        let out =
            self.with_data(|a| c_prev.with_data(|c| cpu::recurrent::lstm_cell_forward(a, c, h)));
        Tensor::from_parts(
            out,
            Shape::new([n, 2 * h]),
            Some(Op::LstmCell(self.clone(), c_prev.clone())),
        )
    }
}

/// Gradients of [`Tensor::lstm_cell`]'s inputs from its output gradient
/// `[N, 2H]`: `(grad_gates [N, 4H], grad_c_prev [N, H])`. Used by its
/// backward rule; records no op.
pub(crate) fn lstm_cell_grads(gates: &Tensor, c_prev: &Tensor, g: &Tensor) -> (Tensor, Tensor) {
    let h = c_prev.dims()[1];
    let (ga, gc) = gates.with_data(|a| {
        c_prev.with_data(|c| g.with_data(|g| cpu::recurrent::lstm_cell_backward(a, c, g, h)))
    });
    (
        Tensor::from_parts(ga, gates.shape().clone(), None),
        Tensor::from_parts(gc, c_prev.shape().clone(), None),
    )
}
