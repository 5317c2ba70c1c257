//! The unrolled recurrence shared by [`super::Rnn`], [`super::Lstm`] and
//! [`super::Gru`]: one input GEMM per layer, then the per-step cell.

use super::RecurrentWeights;
use crate::tensor::Tensor;

/// Which recurrence a stack runs: the one place a cell's arithmetic is
/// chosen (the per-step match below) and its gate count and name are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecurrentKind {
    /// Elman RNN, `tanh`, one gate block.
    Rnn,
    /// LSTM, gate blocks `i f g o`, with a cell state.
    Lstm,
    /// GRU, gate blocks `r z n`.
    Gru,
}

impl RecurrentKind {
    /// Gate blocks `G / H` stacked in the weight rows (1, 4 or 3).
    pub fn gates(self) -> usize {
        match self {
            RecurrentKind::Rnn => 1,
            RecurrentKind::Lstm => 4,
            RecurrentKind::Gru => 3,
        }
    }

    /// PyTorch's name for the layer: `RNN`, `LSTM` or `GRU`.
    pub fn name(self) -> &'static str {
        match self {
            RecurrentKind::Rnn => "RNN",
            RecurrentKind::Lstm => "LSTM",
            RecurrentKind::Gru => "GRU",
        }
    }
}

/// The `T` slices `[N, G]` of a time-major `[T, N, G]` tensor, as views.
///
/// The sequence is halved recursively instead of narrowing each step off the
/// whole tensor: the gradient of a narrow is zero-padded back to the size of
/// what it narrowed, so `T` narrows of the full `[T, N, G]` would cost
/// `O(T²·N·G)` in backward, the balanced tree `O(T·log T·N·G)`. (A
/// multi-output `split` op whose backward is one `cat` would make it linear.)
fn time_steps(x: &Tensor) -> Vec<Tensor> {
    fn split(x: &Tensor, out: &mut Vec<Tensor>) {
        let t = x.dims()[0];
        if t == 1 {
            out.push(x.squeeze(0));
        } else {
            let m = t / 2;
            split(&x.narrow(0, 0, m), out);
            split(&x.narrow(0, m, t - m), out);
        }
    }
    let mut out = Vec::with_capacity(x.dims()[0]);
    split(x, &mut out);
    out
}

/// Runs a stack of recurrent layers. Returns the output sequence (in the
/// caller's layout), `h_n` `[L, N, H]` and, for an LSTM, `c_n`.
pub(super) fn run(
    cell: RecurrentKind,
    layers: &[RecurrentWeights],
    batch_first: bool,
    tbptt: Option<usize>,
    x: &Tensor,
    h0: Option<&Tensor>,
    c0: Option<&Tensor>,
) -> (Tensor, Tensor, Option<Tensor>) {
    let name = cell.name();
    assert!(!layers.is_empty(), "{name}: no layers");
    assert_eq!(
        x.rank(),
        3,
        "{name}: input shape {:?} is not {}",
        x.shape(),
        if batch_first {
            "[N, T, D]"
        } else {
            "[T, N, D]"
        }
    );
    assert!(tbptt != Some(0), "{name}: tbptt window must be at least 1");
    let (t_len, n) = if batch_first {
        (x.dims()[1], x.dims()[0])
    } else {
        (x.dims()[0], x.dims()[1])
    };
    assert!(
        t_len > 0,
        "{name}: input shape {:?} has no time steps",
        x.shape()
    );
    let hidden = layers[0].weight_hh.dims()[1];
    let num_layers = layers.len();
    for (what, s) in [("h0", h0), ("c0", c0)] {
        if let Some(s) = s {
            assert_eq!(
                s.dims(),
                &[num_layers, n, hidden],
                "{name}: {what} shape {:?} is not [L, N, H] = [{num_layers}, {n}, {hidden}] for input {:?}",
                s.shape(),
                x.shape()
            );
        }
    }
    // Internally time-major, so every step is a contiguous [N, ·] slice.
    let mut input = if batch_first {
        x.transpose(0, 1)
    } else {
        x.clone()
    };
    let mut h_n = Vec::with_capacity(num_layers);
    let mut c_n = Vec::with_capacity(num_layers);
    for (k, w) in layers.iter().enumerate() {
        let layer_state = |s: Option<&Tensor>| s.map(|s| s.narrow(0, k, 1).squeeze(0));
        let (seq, h, c) = run_layer(cell, k, w, &input, layer_state(h0), layer_state(c0), tbptt);
        h_n.push(h);
        c_n.extend(c);
        input = seq;
    }
    let out = if batch_first {
        input.transpose(0, 1)
    } else {
        input
    };
    let c_n = (cell == RecurrentKind::Lstm).then(|| Tensor::stack(&c_n, 0));
    (out, Tensor::stack(&h_n, 0), c_n)
}

/// One layer over a time-major `[T, N, D]` input: the hidden states
/// `[T, N, H]` and the final `h` and `c`. A missing initial state is
/// zero; its terms are skipped rather than multiplied by zeros.
fn run_layer(
    cell: RecurrentKind,
    k: usize,
    w: &RecurrentWeights,
    input: &Tensor,
    mut h: Option<Tensor>,
    mut c: Option<Tensor>,
    tbptt: Option<usize>,
) -> (Tensor, Tensor, Option<Tensor>) {
    let name = cell.name();
    let (t_len, n, d) = (input.dims()[0], input.dims()[1], input.dims()[2]);
    let hidden = w.weight_hh.dims()[1];
    let g = cell.gates() * hidden;
    assert_eq!(
        w.weight_ih.dims(),
        &[g, d],
        "{name}: weight_ih_l{k} shape {:?} is not [{}·H, D] = [{g}, {d}]",
        w.weight_ih.shape(),
        cell.gates()
    );
    assert_eq!(
        w.weight_hh.dims(),
        &[g, hidden],
        "{name}: weight_hh_l{k} shape {:?} is not [{}·H, H]",
        w.weight_hh.shape(),
        cell.gates()
    );
    for b in [&w.bias_ih, &w.bias_hh].into_iter().flatten() {
        assert_eq!(
            b.dims(),
            &[g],
            "{name}: bias shape {:?} of layer {k} is not [{g}]",
            b.shape()
        );
    }

    // XP = X·W_ihᵀ + b: one GEMM for all T·N rows. b_hh is folded in here
    // (it is added every step anyway), except GRU's n block, which r gates.
    let mut xp = input.reshape([t_len * n, d]).matmul(&w.weight_ih.t());
    let mut b_hn = None;
    let b_hh = w.bias_hh.as_ref().map(|b| {
        if cell == RecurrentKind::Gru {
            b_hn = Some(b.narrow(0, 2 * hidden, hidden));
            Tensor::cat(
                &[
                    b.narrow(0, 0, 2 * hidden),
                    Tensor::zeros_on([hidden], b.device()),
                ],
                0,
            )
        } else {
            b.clone()
        }
    });
    let bias = match (&w.bias_ih, b_hh) {
        (Some(b_ih), Some(b_hh)) => Some(b_ih.add(&b_hh)),
        (b_ih, b_hh) => b_ih.clone().or(b_hh),
    };
    if cell == RecurrentKind::Lstm && tbptt.is_none() {
        // The fused layer op: one kernel adds the bias and runs the
        // recurrence, and its backward sweeps time once (see
        // `Tensor::lstm_layer`).
        let zeros = || Tensor::zeros_on([n, hidden], xp.device());
        let (h0, c0) = (h.unwrap_or_else(zeros), c.unwrap_or_else(zeros));
        let xp = xp.reshape([t_len, n, g]);
        let hc = xp.lstm_layer(&w.weight_hh, bias.as_ref(), &h0, &c0);
        let last = hc.narrow(0, t_len - 1, 1).squeeze(0);
        return (
            hc.narrow(2, 0, hidden),
            last.narrow(1, 0, hidden),
            Some(last.narrow(1, hidden, hidden)),
        );
    }
    if let Some(b) = bias {
        xp = xp.add(&b);
    }
    let xs = time_steps(&xp.reshape([t_len, n, g]));

    let w_hh_t = w.weight_hh.t();
    let mut out = Vec::with_capacity(t_len);
    for (t, xt) in xs.iter().enumerate() {
        if tbptt.is_some_and(|k| t > 0 && t % k == 0) {
            h = h.map(|h| h.detach());
            c = c.map(|c| c.detach());
        }
        let hp = h.as_ref().map(|h| h.matmul(&w_hh_t));
        let (new_h, new_c) = step(cell, hidden, xt, hp, h.as_ref(), c.as_ref(), b_hn.as_ref());
        c = new_c;
        out.push(new_h.clone());
        h = Some(new_h);
    }
    let h = h.expect("at least one time step");
    (Tensor::stack(&out, 0), h, c)
}

/// One time step of `cell`: the new `h` (and, for an LSTM, `c`) from the
/// input projection `xt = x_t·W_ihᵀ + b` `[N, G]`, the recurrent product
/// `hp = h·W_hhᵀ` `[N, G]` and the previous state; `None` stands for a zero
/// state, whose terms are skipped. `b_hn` is the GRU's unfolded `n` block of `b_hh`.
fn step(
    cell: RecurrentKind,
    hidden: usize,
    xt: &Tensor,
    hp: Option<Tensor>,
    h: Option<&Tensor>,
    c: Option<&Tensor>,
    b_hn: Option<&Tensor>,
) -> (Tensor, Option<Tensor>) {
    // Gate block `i` (of `len` blocks) of a `[N, G]` matrix: a strided view.
    let gate = |x: &Tensor, i: usize, len: usize| x.narrow(1, i * hidden, len * hidden);
    let plus_hp = |x: Tensor, hp: Option<Tensor>| match hp {
        Some(hp) => x.add(&hp),
        None => x,
    };
    match cell {
        RecurrentKind::Rnn => (plus_hp(xt.clone(), hp).tanh(), None),
        RecurrentKind::Lstm => {
            // One fused op for the gates and the state update (see
            // `Tensor::lstm_cell`); a zero state is a zero matrix here.
            let gates = plus_hp(xt.clone(), hp);
            let n = gates.dims()[0];
            let c_prev = c
                .cloned()
                .unwrap_or_else(|| Tensor::zeros_on([n, hidden], gates.device()));
            let hc = gates.lstm_cell(&c_prev);
            (hc.narrow(1, 0, hidden), Some(hc.narrow(1, hidden, hidden)))
        }
        RecurrentKind::Gru => {
            let rz = plus_hp(gate(xt, 0, 2), hp.as_ref().map(|hp| gate(hp, 0, 2))).sigmoid();
            let (r, z) = (gate(&rz, 0, 1), gate(&rz, 1, 1));
            let n_h = match (hp.as_ref().map(|hp| gate(hp, 2, 1)), b_hn) {
                (Some(n_h), Some(b)) => Some(n_h.add(b)),
                (n_h, b) => n_h.or_else(|| b.cloned()),
            };
            let n_x = gate(xt, 2, 1);
            let n = match n_h {
                Some(n_h) => n_x.add(&r.mul(&n_h)),
                None => n_x,
            }
            .tanh();
            // (1 − z) ⊙ n + z ⊙ h = n + z ⊙ (h − n)
            let h = match h {
                Some(h) => n.add(&z.mul(&h.sub(&n))),
                None => n.sub(&z.mul(&n)),
            };
            (h, None)
        }
    }
}
