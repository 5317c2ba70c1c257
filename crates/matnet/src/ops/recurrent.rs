//! Fused recurrent cells. The layers in `nn/rnn.rs` compose the rest of a
//! recurrence from ordinary ops; the LSTM cell's elementwise part is one op
//! here because a profile asked for it (see `backend/cpu/recurrent.rs`).

use super::{view, with_storages};
use crate::autograd::Op;
use crate::backend::Storage;
use crate::params::LstmDims;
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
        let out = with_storages("lstm_cell", &[self, c_prev], |s| {
            Storage::lstm_cell(view(s[0], self.layout()), view(s[1], c_prev.layout()))
        });
        Tensor::from_op(
            out,
            Shape::new([n, 2 * h]),
            Op::LstmCell(self.clone(), c_prev.clone()),
        )
    }
}

/// Gradients of [`Tensor::lstm_cell`]'s inputs from its output gradient
/// `[N, 2H]`: `(grad_gates [N, 4H], grad_c_prev [N, H])`. Used by its
/// backward rule; records no op.
pub(crate) fn lstm_cell_grads(gates: &Tensor, c_prev: &Tensor, g: &Tensor) -> (Tensor, Tensor) {
    let (ga, gc) = with_storages("lstm_cell backward", &[gates, c_prev, g], |s| {
        Storage::lstm_cell_backward(
            view(s[0], gates.layout()),
            view(s[1], c_prev.layout()),
            view(s[2], g.layout()),
        )
    });
    (
        Tensor::from_storage(ga, gates.shape().clone()),
        Tensor::from_storage(gc, c_prev.shape().clone()),
    )
}

impl Tensor {
    /// A whole LSTM layer over time, fused: from the input projections
    /// `self = xp` (`xp_t = x_t·W_ihᵀ`), the recurrent weight, the gate
    /// bias `b` (`b_ih + b_hh`, if any) and the initial state, every step's
    /// `[h_t | c_t]`: `a_t = (xp_t + b) + h_{t−1}·W_hhᵀ`, then
    /// [`Tensor::lstm_cell`]'s update. Its backward sweeps time once, forms
    /// `grad_W_hh` as one product and sums `grad_b` while the gate
    /// gradients are in cache.
    ///
    /// # Shapes
    /// `self [T, N, 4H]`, `w_hh [4H, H]`, `bias [4H]`, `h0`, `c0` `[N, H]`
    /// -> `[T, N, 2H]`.
    pub fn lstm_layer(
        &self,
        w_hh: &Tensor,
        bias: Option<&Tensor>,
        h0: &Tensor,
        c0: &Tensor,
    ) -> Tensor {
        let d = lstm_dims(self, w_hh);
        assert!(
            h0.dims() == [d.n, d.h] && c0.dims() == [d.n, d.h],
            "lstm_layer: initial state {:?} / {:?} is not [N, H] = [{}, {}]",
            h0.shape(),
            c0.shape(),
            d.n,
            d.h
        );
        if let Some(b) = bias {
            assert!(
                b.dims() == [4 * d.h],
                "lstm_layer: bias {:?} is not [4H] = [{}]",
                b.shape(),
                4 * d.h
            );
        }
        let ins: Vec<&Tensor> = [self, w_hh, h0, c0].into_iter().chain(bias).collect();
        let (out, gates) = with_storages("lstm_layer", &ins, |s| {
            let v: [_; 4] = std::array::from_fn(|i| view(s[i], ins[i].layout()));
            let b = bias.map(|b| view(s[4], b.layout()));
            Storage::lstm_layer(v, b, d)
        });
        let gates = Tensor::from_storage(gates, self.shape().clone());
        Tensor::from_op(
            out,
            Shape::new([d.t, d.n, 2 * d.h]),
            Op::LstmLayer(
                self.clone(),
                w_hh.clone(),
                h0.clone(),
                c0.clone(),
                bias.cloned(),
                gates,
            ),
        )
    }
}

fn lstm_dims(xp: &Tensor, w_hh: &Tensor) -> LstmDims {
    assert!(
        xp.rank() == 3
            && w_hh.rank() == 2
            && w_hh.dims()[0] == 4 * w_hh.dims()[1]
            && xp.dims()[2] == w_hh.dims()[0],
        "lstm_layer: projections {:?} and W_hh {:?} are not [T, N, 4H] and [4H, H]",
        xp.shape(),
        w_hh.shape()
    );
    LstmDims {
        t: xp.dims()[0],
        n: xp.dims()[1],
        h: w_hh.dims()[1],
    }
}

/// Gradients of [`Tensor::lstm_layer`]'s inputs `(xp, W_hh, h0, c0)`, and
/// of its bias when it has one, from its output `out`, the saved gate
/// values and the output gradient `g`. Used by its backward rule; records
/// no op.
pub(crate) fn lstm_layer_grads(
    [xp, w_hh, h0, c0]: [&Tensor; 4],
    bias: Option<&Tensor>,
    gates: &Tensor,
    out: &Tensor,
    g: &Tensor,
) -> ([Tensor; 4], Option<Tensor>) {
    let d = lstm_dims(xp, w_hh);
    let ins = [w_hh, h0, c0, gates, out, g];
    let (grads, gb) = with_storages("lstm_layer backward", &ins, |s| {
        Storage::lstm_layer_backward(
            std::array::from_fn(|i| view(s[i], ins[i].layout())),
            d,
            bias.is_some(),
        )
    });
    let [ga, gw, gh, gc] = grads;
    (
        [
            Tensor::from_storage(ga, xp.shape().clone()),
            Tensor::from_storage(gw, w_hh.shape().clone()),
            Tensor::from_storage(gh, h0.shape().clone()),
            Tensor::from_storage(gc, c0.shape().clone()),
        ],
        gb.zip(bias)
            .map(|(gb, b)| Tensor::from_storage(gb, b.shape().clone())),
    )
}
