//! Recurrent layers: [`Rnn`] (eq. 4 of the source paper), [`Lstm`] and [`Gru`],
//! composed of `matmul`, `add`, `sigmoid`, `tanh` and `mul`; autograd
//! differentiates the unrolled graph (backpropagation through time).
//!
//! # The matrices
//! Each layer `k` holds PyTorch's four tensors: `weight_ih_l{k}` `[G, D]`
//! (`D = H` for `k > 0`), `weight_hh_l{k}` `[G, H]`, `bias_ih_l{k}` and
//! `bias_hh_l{k}` `[G]`, with `G = H` (RNN), `4H` (LSTM) or `3H` (GRU): the
//! gate matrices stacked by rows in PyTorch's order.
//!
//! The input part of every step is one product for the whole sequence,
//! `XP = X·W_ihᵀ + b_ih` with `X` the `[T·N, D]` matrix of all inputs; only
//! the recurrent product `h_{t-1}·W_hhᵀ` (`[N, H]·[H, G]`) runs per step.
//! With `x_t`, `h_t` as rows of `[N, D]`, `[N, H]` matrices:
//!
//! - RNN (eq. 4): `h_t = tanh(x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh)`
//! - LSTM: `[i f g o] = x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh`, then
//!   `c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)` and `h_t = σ(o) ⊙ tanh(c_t)`
//! - GRU: `[r_x z_x n_x] = x_t·W_ihᵀ + b_ih`, `[r_h z_h n_h] = h_{t-1}·W_hhᵀ + b_hh`,
//!   `r = σ(r_x + r_h)`, `z = σ(z_x + z_h)`, `n = tanh(n_x + r ⊙ n_h)`,
//!   `h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}`
//!
//! Each `σ(·) ⊙ v` is the gating of eq. 5: a sigmoid output near 0 forgets
//! an entry of `v`, near 1 lets it through. Layer `k > 0` reads the hidden
//! states `h_t` of layer `k − 1` as its input sequence.
//!
//! Backward (autograd) runs the same matrices transposed:
//! `grad_h_{t-1} = grad_gates_t · W_hh`, `grad_W_hh = Σ_t grad_gates_tᵀ · h_{t-1}`,
//! `grad_W_ih = grad_XPᵀ · X`.

mod unroll;

use super::{Init, Module};
use crate::rng::Rng;
use crate::tensor::Tensor;
pub use unroll::RecurrentKind;
use unroll::run;

/// Options shared by [`Rnn`], [`Lstm`] and [`Gru`] (PyTorch's constructor
/// arguments, plus truncated backpropagation through time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnConfig {
    /// Stacked layers `L`; layer `k > 0` reads the hidden states of layer `k − 1`.
    pub num_layers: usize,
    /// Whether the layers have `bias_ih` and `bias_hh`.
    pub bias: bool,
    /// Input and output sequences are `[N, T, ·]` when true, `[T, N, ·]` when false.
    pub batch_first: bool,
    /// Truncated backpropagation through time: detach the carried state every
    /// `k` steps (see [`Rnn::tbptt`]). `None` backpropagates through all steps.
    pub tbptt: Option<usize>,
}

impl Default for RnnConfig {
    /// PyTorch's defaults: one layer, with bias, time-major, full BPTT.
    fn default() -> Self {
        RnnConfig {
            num_layers: 1,
            bias: true,
            batch_first: false,
            tbptt: None,
        }
    }
}

/// The four tensors of one layer of a recurrent stack, in PyTorch's layout.
///
/// # Shapes
/// `weight_ih` `[G, D]`, `weight_hh` `[G, H]`, `bias_ih` and `bias_hh` `[G]`,
/// with `G = H` (RNN), `4H` (LSTM, gates `i f g o`) or `3H` (GRU, gates `r z n`).
#[derive(Clone, Debug)]
pub struct RecurrentWeights {
    /// `W_ih`, `[G, D]`: input to gates.
    pub weight_ih: Tensor,
    /// `W_hh`, `[G, H]`: previous hidden state to gates.
    pub weight_hh: Tensor,
    /// `b_ih`, `[G]`, if the layer has biases.
    pub bias_ih: Option<Tensor>,
    /// `b_hh`, `[G]`, if the layer has biases.
    pub bias_hh: Option<Tensor>,
}

impl RecurrentWeights {
    /// Trainable tensors drawn from PyTorch's recurrent default `U(±1/√H)`
    /// (for every tensor, so the bound uses `H`, not the input width).
    fn new(d_in: usize, hidden: usize, gates: usize, bias: bool, rng: &mut Rng) -> Self {
        let g = gates * hidden;
        let mut draw = |shape: Vec<usize>| {
            Init::TorchDefault
                .tensor(shape, hidden, g, rng)
                .requires_grad()
        };
        // PyTorch's draw order: weight_ih, weight_hh, bias_ih, bias_hh.
        let weight_ih = draw(vec![g, d_in]);
        let weight_hh = draw(vec![g, hidden]);
        let (bias_ih, bias_hh) = if bias {
            (Some(draw(vec![g])), Some(draw(vec![g])))
        } else {
            (None, None)
        };
        RecurrentWeights {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
        }
    }
}

/// Builds the layers of a stack with PyTorch's default initialisation.
fn new_layers(
    cell: RecurrentKind,
    d_in: usize,
    hidden: usize,
    cfg: RnnConfig,
    rng: &mut Rng,
) -> Vec<RecurrentWeights> {
    assert!(
        cfg.num_layers > 0,
        "{}: num_layers must be at least 1",
        cell.name()
    );
    (0..cfg.num_layers)
        .map(|k| {
            let d = if k == 0 { d_in } else { hidden };
            RecurrentWeights::new(d, hidden, cell.gates(), cfg.bias, rng)
        })
        .collect()
}

/// `weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, weight_ih_l1, ...`:
/// PyTorch's `state_dict` names and order.
fn layer_parameters(layers: &[RecurrentWeights]) -> Vec<(String, Tensor)> {
    let mut p = Vec::with_capacity(4 * layers.len());
    for (k, w) in layers.iter().enumerate() {
        p.push((format!("weight_ih_l{k}"), w.weight_ih.clone()));
        p.push((format!("weight_hh_l{k}"), w.weight_hh.clone()));
        if let Some(b) = &w.bias_ih {
            p.push((format!("bias_ih_l{k}"), b.clone()));
        }
        if let Some(b) = &w.bias_hh {
            p.push((format!("bias_hh_l{k}"), b.clone()));
        }
    }
    p
}

fn describe(
    cell: RecurrentKind,
    layers: &[RecurrentWeights],
    batch_first: bool,
    tbptt: Option<usize>,
) -> String {
    let w = &layers[0];
    let mut s = format!(
        "{}({} -> {}, {} layer{}",
        cell.name(),
        w.weight_ih.dims()[1],
        w.weight_hh.dims()[1],
        layers.len(),
        if layers.len() == 1 { "" } else { "s" }
    );
    if w.bias_ih.is_none() {
        s.push_str(", no bias");
    }
    if batch_first {
        s.push_str(", batch_first");
    }
    if let Some(k) = tbptt {
        s.push_str(&format!(", tbptt {k}"));
    }
    s.push(')');
    s
}

/// Elman RNN with `tanh`, eq. 4 of the source paper, as PyTorch's `nn.RNN`:
/// `h_t = tanh(x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh)`.
///
/// # Shapes
/// Input `[N, T, D]` if `batch_first`, else `[T, N, D]`; initial state
/// `h0` `[L, N, H]` (zeros if absent). Output: the hidden states of the last
/// layer, `[N, T, H]` if `batch_first`, else `[T, N, H]`, and `h_n` `[L, N, H]`.
/// Weights of layer `k`: `weight_ih_l{k}` `[H, D]` (`[H, H]` for `k > 0`),
/// `weight_hh_l{k}` `[H, H]`, `bias_ih_l{k}`, `bias_hh_l{k}` `[H]`.
///
/// ```
/// use matnet::nn::{Rnn, RnnConfig};
/// use matnet::{Rng, Tensor};
/// let cfg = RnnConfig { num_layers: 2, batch_first: true, ..Default::default() };
/// let rnn = Rnn::new(3, 4, cfg, &mut Rng::new(0));
/// let x = Tensor::zeros([2, 5, 3]); // N = 2 sequences of T = 5 steps
/// let (out, h_n) = rnn.forward_with_state(&x, None);
/// assert_eq!((out.dims(), h_n.dims()), (&[2, 5, 4][..], &[2, 2, 4][..]));
/// ```
pub struct Rnn {
    /// One entry per stacked layer.
    pub layers: Vec<RecurrentWeights>,
    /// Sequences are `[N, T, ·]` when true, `[T, N, ·]` when false.
    pub batch_first: bool,
    /// Truncated backpropagation through time: when `Some(k)`, the state
    /// carried into steps `k, 2k, ...` is detached, so a gradient flows back
    /// at most to the start of its window of `k` steps (the forward values are
    /// unchanged). The same as running the sequence in chunks of `k` with
    /// `state.detach()` between chunks. Weights still get gradients from every step.
    pub tbptt: Option<usize>,
}

impl Rnn {
    /// A stack with PyTorch's default initialisation `U(±1/√H)`.
    pub fn new(input_size: usize, hidden_size: usize, cfg: RnnConfig, rng: &mut Rng) -> Rnn {
        Rnn {
            layers: new_layers(RecurrentKind::Rnn, input_size, hidden_size, cfg, rng),
            batch_first: cfg.batch_first,
            tbptt: cfg.tbptt,
        }
    }

    /// Runs the sequence from `h0` (`[L, N, H]`, zeros if `None`); returns the
    /// last layer's hidden states and `h_n` `[L, N, H]` (see the type's `# Shapes`).
    pub fn forward_with_state(&self, x: &Tensor, h0: Option<&Tensor>) -> (Tensor, Tensor) {
        let (out, state) = self.forward_seq(x, h0.map(RecurrentState::hidden).as_ref());
        (out, state.h)
    }
}

/// Long short-term memory, as PyTorch's `nn.LSTM`:
/// `[i f g o] = x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh`,
/// `c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)`, `h_t = σ(o) ⊙ tanh(c_t)`.
///
/// # Shapes
/// Input `[N, T, D]` if `batch_first`, else `[T, N, D]`; initial state
/// `(h0, c0)`, each `[L, N, H]` (zeros if absent). Output: the hidden states
/// of the last layer, `[N, T, H]` or `[T, N, H]`, and `(h_n, c_n)`, each
/// `[L, N, H]`. Weights of layer `k`: `weight_ih_l{k}` `[4H, D]` (`[4H, H]`
/// for `k > 0`), `weight_hh_l{k}` `[4H, H]`, `bias_ih_l{k}`, `bias_hh_l{k}`
/// `[4H]`; rows are the gate blocks `i, f, g, o`.
///
/// ```
/// use matnet::nn::{Lstm, RnnConfig};
/// use matnet::{Rng, Tensor};
/// let lstm = Lstm::new(3, 4, RnnConfig::default(), &mut Rng::new(0));
/// let x = Tensor::zeros([5, 2, 3]); // T = 5 steps of N = 2
/// let (out, (h_n, c_n)) = lstm.forward_with_state(&x, None);
/// assert_eq!(out.dims(), &[5, 2, 4]);
/// assert_eq!((h_n.dims(), c_n.dims()), (&[1, 2, 4][..], &[1, 2, 4][..]));
/// ```
pub struct Lstm {
    /// One entry per stacked layer.
    pub layers: Vec<RecurrentWeights>,
    /// Sequences are `[N, T, ·]` when true, `[T, N, ·]` when false.
    pub batch_first: bool,
    /// Truncated backpropagation through time, as [`Rnn::tbptt`]; both `h`
    /// and `c` are detached.
    pub tbptt: Option<usize>,
}

impl Lstm {
    /// A stack with PyTorch's default initialisation `U(±1/√H)`.
    pub fn new(input_size: usize, hidden_size: usize, cfg: RnnConfig, rng: &mut Rng) -> Lstm {
        Lstm {
            layers: new_layers(RecurrentKind::Lstm, input_size, hidden_size, cfg, rng),
            batch_first: cfg.batch_first,
            tbptt: cfg.tbptt,
        }
    }

    /// Runs the sequence from `(h0, c0)` (each `[L, N, H]`, zeros if `None`);
    /// returns the last layer's hidden states and `(h_n, c_n)`.
    pub fn forward_with_state(
        &self,
        x: &Tensor,
        state: Option<(&Tensor, &Tensor)>,
    ) -> (Tensor, (Tensor, Tensor)) {
        let state = state.map(|(h, c)| RecurrentState {
            h: h.clone(),
            c: Some(c.clone()),
        });
        let (out, s) = self.forward_seq(x, state.as_ref());
        (out, (s.h, s.c.expect("an LSTM returns c_n")))
    }
}

/// Gated recurrent unit, as PyTorch's `nn.GRU`:
/// `[r_x z_x n_x] = x_t·W_ihᵀ + b_ih`, `[r_h z_h n_h] = h_{t-1}·W_hhᵀ + b_hh`,
/// `r = σ(r_x + r_h)`, `z = σ(z_x + z_h)`, `n = tanh(n_x + r ⊙ n_h)`,
/// `h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}`.
///
/// # Shapes
/// Input `[N, T, D]` if `batch_first`, else `[T, N, D]`; initial state
/// `h0` `[L, N, H]` (zeros if absent). Output: the hidden states of the last
/// layer, `[N, T, H]` or `[T, N, H]`, and `h_n` `[L, N, H]`. Weights of layer
/// `k`: `weight_ih_l{k}` `[3H, D]` (`[3H, H]` for `k > 0`), `weight_hh_l{k}`
/// `[3H, H]`, `bias_ih_l{k}`, `bias_hh_l{k}` `[3H]`; rows are the gate blocks
/// `r, z, n`.
///
/// ```
/// use matnet::nn::{Gru, RnnConfig};
/// use matnet::{Module, Rng, Tensor};
/// let gru = Gru::new(3, 4, RnnConfig { batch_first: true, ..Default::default() }, &mut Rng::new(0));
/// assert_eq!(gru.forward(&Tensor::zeros([2, 5, 3])).dims(), &[2, 5, 4]);
/// ```
pub struct Gru {
    /// One entry per stacked layer.
    pub layers: Vec<RecurrentWeights>,
    /// Sequences are `[N, T, ·]` when true, `[T, N, ·]` when false.
    pub batch_first: bool,
    /// Truncated backpropagation through time, as [`Rnn::tbptt`].
    pub tbptt: Option<usize>,
}

impl Gru {
    /// A stack with PyTorch's default initialisation `U(±1/√H)`.
    pub fn new(input_size: usize, hidden_size: usize, cfg: RnnConfig, rng: &mut Rng) -> Gru {
        Gru {
            layers: new_layers(RecurrentKind::Gru, input_size, hidden_size, cfg, rng),
            batch_first: cfg.batch_first,
            tbptt: cfg.tbptt,
        }
    }

    /// Runs the sequence from `h0` (`[L, N, H]`, zeros if `None`); returns the
    /// last layer's hidden states and `h_n` `[L, N, H]`.
    pub fn forward_with_state(&self, x: &Tensor, h0: Option<&Tensor>) -> (Tensor, Tensor) {
        let (out, state) = self.forward_seq(x, h0.map(RecurrentState::hidden).as_ref());
        (out, state.h)
    }
}

/// The state a recurrent stack carries: `h` `[L, N, H]`, one row block per
/// layer, and for an LSTM the cell state `c` `[L, N, H]` as well.
#[derive(Clone, Debug)]
pub struct RecurrentState {
    /// Hidden states `h` `[L, N, H]`.
    pub h: Tensor,
    /// Cell states `c` `[L, N, H]` (LSTM only; `None` elsewhere).
    pub c: Option<Tensor>,
}

impl RecurrentState {
    /// A state of hidden vectors only (RNN, GRU; an LSTM starts its cell
    /// state from zeros).
    pub fn hidden(h: &Tensor) -> RecurrentState {
        RecurrentState {
            h: h.clone(),
            c: None,
        }
    }
}

/// One interface for [`Rnn`], [`Lstm`] and [`Gru`] (candle-nn's `RNN`
/// trait): code that reads sequences holds a `Box<dyn Recurrent>` and never
/// asks which cell it has. A new cell is one more [`RecurrentKind`] and one
/// impl.
///
/// # Shapes
/// Input `[N, T, D]` if [`batch_first`](Recurrent::batch_first), else
/// `[T, N, D]`; state `[L, N, H]` per tensor; output the last layer's hidden
/// states `[N, T, H]` (or `[T, N, H]`).
///
/// ```
/// use matnet::nn::{Recurrent, RecurrentKind, RnnConfig};
/// use matnet::{Rng, Tensor};
/// let cfg = RnnConfig { num_layers: 2, batch_first: true, ..Default::default() };
/// for kind in [RecurrentKind::Rnn, RecurrentKind::Lstm, RecurrentKind::Gru] {
///     let net: Box<dyn Recurrent> = kind.build(3, 4, cfg, &mut Rng::new(0));
///     let (out, state) = net.forward_seq(&Tensor::zeros([2, 5, 3]), None);
///     assert_eq!((out.dims(), state.h.dims()), (&[2, 5, 4][..], &[2, 2, 4][..]));
///     assert_eq!(state.c.is_some(), kind == RecurrentKind::Lstm);
/// }
/// ```
pub trait Recurrent: Module {
    /// Which cell the stack runs.
    fn kind(&self) -> RecurrentKind;

    /// The weights, one entry per stacked layer.
    fn layers(&self) -> &[RecurrentWeights];

    /// Sequences are `[N, T, ·]` when true, `[T, N, ·]` when false.
    fn batch_first(&self) -> bool;

    /// The truncated-BPTT window (see [`Rnn::tbptt`]), if any.
    fn tbptt(&self) -> Option<usize>;

    /// Runs the sequence `x` from `state` (zeros if `None`; an LSTM state
    /// without `c` starts its cell state from zeros); returns the last
    /// layer's hidden states for every step and the final state.
    fn forward_seq(&self, x: &Tensor, state: Option<&RecurrentState>) -> (Tensor, RecurrentState) {
        let (out, h, c) = run(
            self.kind(),
            self.layers(),
            self.batch_first(),
            self.tbptt(),
            x,
            state.map(|s| &s.h),
            state.and_then(|s| s.c.as_ref()),
        );
        (out, RecurrentState { h, c })
    }

    /// Input features `D`.
    fn input_size(&self) -> usize {
        self.layers()[0].weight_ih.dims()[1]
    }

    /// Hidden features `H`.
    fn hidden_size(&self) -> usize {
        self.layers()[0].weight_hh.dims()[1]
    }

    /// Stacked layers `L`.
    fn num_layers(&self) -> usize {
        self.layers().len()
    }
}

impl RecurrentKind {
    /// A freshly initialised stack of this kind (PyTorch's `U(±1/√H)`).
    pub fn build(
        self,
        input_size: usize,
        hidden_size: usize,
        cfg: RnnConfig,
        rng: &mut Rng,
    ) -> Box<dyn Recurrent> {
        let layers = new_layers(self, input_size, hidden_size, cfg, rng);
        self.from_layers(layers, cfg.batch_first, cfg.tbptt)
    }

    /// A stack of this kind around existing weights.
    pub fn from_layers(
        self,
        layers: Vec<RecurrentWeights>,
        batch_first: bool,
        tbptt: Option<usize>,
    ) -> Box<dyn Recurrent> {
        match self {
            RecurrentKind::Rnn => Box::new(Rnn {
                layers,
                batch_first,
                tbptt,
            }),
            RecurrentKind::Lstm => Box::new(Lstm {
                layers,
                batch_first,
                tbptt,
            }),
            RecurrentKind::Gru => Box::new(Gru {
                layers,
                batch_first,
                tbptt,
            }),
        }
    }
}

/// The [`Recurrent`] and [`Module`] impls, identical for the three stacks.
macro_rules! recurrent_common {
    ($ty:ident, $cell:expr) => {
        impl Recurrent for $ty {
            fn kind(&self) -> RecurrentKind {
                $cell
            }

            fn layers(&self) -> &[RecurrentWeights] {
                &self.layers
            }

            fn batch_first(&self) -> bool {
                self.batch_first
            }

            fn tbptt(&self) -> Option<usize> {
                self.tbptt
            }
        }

        impl Module for $ty {
            /// The last layer's hidden states for every step, from a zero
            /// initial state (`[N, T, D] -> [N, T, H]` if `batch_first`).
            fn forward(&self, x: &Tensor) -> Tensor {
                self.forward_seq(x, None).0
            }

            fn named_parameters(&self) -> Vec<(String, Tensor)> {
                layer_parameters(&self.layers)
            }

            fn describe(&self) -> String {
                describe($cell, &self.layers, self.batch_first, self.tbptt)
            }
        }
    };
}

recurrent_common!(Rnn, RecurrentKind::Rnn);
recurrent_common!(Lstm, RecurrentKind::Lstm);
recurrent_common!(Gru, RecurrentKind::Gru);
