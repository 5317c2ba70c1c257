//! Attention as matrix products: the source document's raw self-attention
//! `softmax(X·Xᵀ)` (eq. 6), scaled dot-product attention
//! `softmax(Q·Kᵀ/√d_k)·V` (eq. 7), and PyTorch's `nn.MultiheadAttention`.
//!
//! Attention weights are always returned next to the output: they are the
//! softmax node the backward pass keeps anyway, so handing them out costs
//! nothing, and they are what an attention map draws.
//!
//! Mask convention (one for the whole crate): a [`AttnMask::Bool`] entry that
//! is non-zero means *masked out* (may not attend), as in
//! `nn.MultiheadAttention`'s boolean `attn_mask` and `key_padding_mask`.
//! `torch.nn.functional.scaled_dot_product_attention` uses the opposite
//! convention (`True` takes part); negate such a mask before passing it here.

use super::{Dropout, Init, Linear, Module};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// A mask over attention scores `[.., T, S]` (query `t`, key `s`), broadcast
/// against them.
#[derive(Clone, Debug)]
pub enum AttnMask {
    /// Added to the scaled scores before the softmax: `0` keeps a pair,
    /// `-∞` removes it, other values bias it. Gradients flow into it if it
    /// tracks them.
    Float(Tensor),
    /// Non-zero = masked out (not allowed to attend), zero = allowed; like a
    /// boolean mask of `nn.MultiheadAttention`.
    Bool(Tensor),
}

impl AttnMask {
    /// The additive form: `Float` as is, `Bool` as `-∞` where non-zero and
    /// `0` elsewhere.
    pub fn to_additive(&self) -> Tensor {
        match self {
            AttnMask::Float(m) => m.clone(),
            AttnMask::Bool(m) => {
                let on = |v: f32| Tensor::full_on([], v, m.device());
                Tensor::where_cond(m, &on(f32::NEG_INFINITY), &on(0.0))
            }
        }
    }

    /// The mask tensor itself.
    pub fn tensor(&self) -> &Tensor {
        match self {
            AttnMask::Float(m) | AttnMask::Bool(m) => m,
        }
    }
}

/// The causal (look-ahead) mask for `t` steps: step `i` may attend to steps
/// `j ≤ i` only. The same tensor as PyTorch's
/// `nn.Transformer.generate_square_subsequent_mask(t)`:
///
/// ```text
/// t = 3:  [[0, -∞, -∞],
///          [0,  0, -∞],
///          [0,  0,  0]]
/// ```
///
/// # Shapes
/// `-> [T, T]` (as [`AttnMask::Float`]).
pub fn causal_mask(t: usize) -> AttnMask {
    let mut m = vec![0.0f32; t * t];
    for i in 0..t {
        for v in &mut m[i * t + i + 1..(i + 1) * t] {
            *v = f32::NEG_INFINITY;
        }
    }
    AttnMask::Float(Tensor::from_vec(m, [t, t]))
}

/// Raw self-attention, the document's eq. 6: `A = softmax(X·Xᵀ)` (row-wise),
/// and the rows of `X` mixed by it, `A·X`.
///
/// Entry `(i, j)` of `X·Xᵀ` is the inner product of token vectors `xᵢ` and
/// `xⱼ`; after the softmax each row of `A` sums to 1, so row `i` of `A·X` is
/// a weighted mean of all tokens. No projections and no `1/√d` scaling:
/// that is [`scaled_dot_product_attention`] (eq. 7) with `Q = K = V = X`
/// and `d_k = 1`.
///
/// Returns `(A·X, A)`.
///
/// # Shapes
/// `x: [.., T, D] -> ([.., T, D], [.., T, T])`
///
/// ```
/// use matnet::Tensor;
/// use matnet::nn::attention::self_attention_raw;
/// let x = Tensor::eye(2);
/// let (_, a) = self_attention_raw(&x);
/// // softmax of the rows of X·Xᵀ = I: [e/(e+1), 1/(e+1)], ...
/// let e = std::f32::consts::E;
/// assert!((a.to_vec()[0] - e / (e + 1.0)).abs() < 1e-6);
/// ```
pub fn self_attention_raw(x: &Tensor) -> (Tensor, Tensor) {
    assert!(
        x.rank() >= 2,
        "self_attention_raw: input shape {:?} is not [.., T, D]",
        x.shape()
    );
    let a = x.matmul(&x.transpose(-2, -1)).softmax(-1);
    (a.matmul(x), a)
}

/// Scaled dot-product attention, the document's eq. 7:
/// `A = softmax(Q·Kᵀ/√d_k + M)`, output `A·V`, where `M` is the additive
/// form of `mask` (see [`AttnMask`]; omitted when `None`).
///
/// Returns `(A·V, A)`. A query row whose keys are all masked out has no
/// defined softmax and comes out NaN, as in PyTorch.
///
/// Backward, by autograd through the same products:
/// `grad_V = Aᵀ·grad_O`, `grad_A = grad_O·Vᵀ`,
/// `grad_S = A ⊙ (grad_A − rowsum(grad_A ⊙ A))`,
/// `grad_Q = grad_S·K/√d_k`, `grad_K = grad_Sᵀ·Q/√d_k`.
///
/// # Shapes
/// `q: [.., T, d_k]`, `k: [.., S, d_k]`, `v: [.., S, d_v]`, mask broadcast to
/// `[.., T, S]` -> `([.., T, d_v], [.., T, S])`; leading (batch, head)
/// dimensions broadcast as in `matmul`.
pub fn scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&AttnMask>,
) -> (Tensor, Tensor) {
    assert!(
        q.rank() >= 2 && k.rank() >= 2 && v.rank() >= 2,
        "scaled_dot_product_attention: shapes {:?}, {:?}, {:?} are not [.., L, d]",
        q.shape(),
        k.shape(),
        v.shape()
    );
    assert_eq!(
        k.dim(-2),
        v.dim(-2),
        "scaled_dot_product_attention: keys {:?} and values {:?} differ in length",
        k.shape(),
        v.shape()
    );
    let scale = 1.0 / (q.dim(-1) as f32).sqrt();
    let mask = mask.map(AttnMask::to_additive);
    attend(&q.mul_scalar(scale), k, v, mask.as_ref(), None)
}

/// `softmax(Q·Kᵀ + M)` (dropped out in training) and its product with `V`,
/// for a `Q` that is already scaled.
fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    additive_mask: Option<&Tensor>,
    dropout: Option<&Dropout>,
) -> (Tensor, Tensor) {
    let mut scores = q.matmul(&k.transpose(-2, -1));
    if let Some(m) = additive_mask {
        scores = scores.add(m);
    }
    let mut a = scores.softmax(-1);
    if let Some(d) = dropout {
        a = d.forward(&a);
    }
    (a.matmul(v), a)
}

/// Multi-head attention with PyTorch's `nn.MultiheadAttention` parameters
/// and `batch_first=True` semantics.
///
/// With `E` = `embed_dim`, `H` heads of size `D_h = E/H`:
///
/// ```text
/// [Q | K | V] = X·W_inᵀ + b_in        W_in = in_proj_weight [3E, E] = [W^Q; W^K; W^V]
/// headᵢ = softmax(QᵢKᵢᵀ/√D_h + M)·Vᵢ  Qᵢ = columns i·D_h..(i+1)·D_h of Q
/// Y = [head₀ | … | head_{H−1}]·W_outᵀ + b_out
/// ```
///
/// For self-attention (`query`, `key` and `value` the same tensor) the three
/// projections are one `[N·T, E]·[E, 3E]` product; the heads are
/// reshape/permute views of it, and all `N·H` score matrices are one batched
/// product. Masks follow [`AttnMask`] (`Bool`: non-zero = masked out).
///
/// Parameters (PyTorch names): `in_proj_weight [3E, E]` (Xavier uniform),
/// `in_proj_bias [3E]` (zeros), `out_proj.weight [E, E]` (`U(±1/√E)`),
/// `out_proj.bias [E]` (zeros). Separate key/value sizes (`kdim`, `vdim`)
/// are not supported.
///
/// # Shapes
/// `query [N, T, E]`, `key [N, S, E]`, `value [N, S, E]`,
/// `attn_mask [T, S]` or `[N·H, T, S]`, `key_padding_mask [N, S]`
/// -> output `[N, T, E]`, weights `[N, H, T, S]`. Unbatched inputs
/// `[T, E]` give `[T, E]` and `[H, T, S]`.
pub struct MultiheadAttention {
    /// `[3E, E]`: `W^Q`, `W^K`, `W^V` stacked by rows.
    pub in_proj_weight: Tensor,
    /// `[3E]`, if the layer has biases.
    pub in_proj_bias: Option<Tensor>,
    /// The output projection `E -> E`.
    pub out_proj: Linear,
    /// Number of heads `H`.
    pub num_heads: usize,
    /// Dropout on the attention weights (PyTorch's `dropout` argument).
    pub dropout: Dropout,
}

impl MultiheadAttention {
    /// A layer with PyTorch's initialisation, biases and no attention
    /// dropout. Panics unless `num_heads` divides `embed_dim`.
    pub fn new(embed_dim: usize, num_heads: usize, rng: &mut Rng) -> MultiheadAttention {
        MultiheadAttention::with_dropout(embed_dim, num_heads, 0.0, rng)
    }

    /// Like [`MultiheadAttention::new`] with dropout probability `p` on the
    /// attention weights (active in training only).
    pub fn with_dropout(
        embed_dim: usize,
        num_heads: usize,
        p: f32,
        rng: &mut Rng,
    ) -> MultiheadAttention {
        assert!(
            num_heads > 0 && embed_dim.is_multiple_of(num_heads),
            "MultiheadAttention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}"
        );
        let e = embed_dim;
        let in_proj_weight = Init::XavierUniform
            .tensor([3 * e, e], e, 3 * e, rng)
            .requires_grad();
        let mut out_proj = Linear::new(e, e, rng);
        out_proj.bias = Some(Tensor::zeros([e]).requires_grad());
        MultiheadAttention {
            in_proj_weight,
            in_proj_bias: Some(Tensor::zeros([3 * e]).requires_grad()),
            out_proj,
            num_heads,
            dropout: Dropout::new(p, rng.next_u64()),
        }
    }

    /// Embedding size `E`.
    pub fn embed_dim(&self) -> usize {
        self.in_proj_weight.dims()[1]
    }

    /// Size of one head, `E/H`.
    pub fn head_dim(&self) -> usize {
        self.embed_dim() / self.num_heads
    }

    /// Attention of `query` over `key`/`value` with optional masks.
    /// Returns the output and the per-head attention weights (after dropout,
    /// as PyTorch returns them); `weights.mean(&[1], false)` is PyTorch's
    /// default head-averaged `[N, T, S]`.
    ///
    /// # Shapes
    /// See [`MultiheadAttention`].
    pub fn forward_attn(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        attn_mask: Option<&AttnMask>,
        key_padding_mask: Option<&AttnMask>,
    ) -> (Tensor, Tensor) {
        if query.rank() == 2 {
            let kpm = key_padding_mask.map(|m| match m {
                AttnMask::Float(t) => AttnMask::Float(t.unsqueeze(0)),
                AttnMask::Bool(t) => AttnMask::Bool(t.unsqueeze(0)),
            });
            let (y, a) = self.forward_attn(
                &query.unsqueeze(0),
                &key.unsqueeze(0),
                &value.unsqueeze(0),
                attn_mask,
                kpm.as_ref(),
            );
            return (y.squeeze(0), a.squeeze(0));
        }
        let (e, h, dh) = (self.embed_dim(), self.num_heads, self.head_dim());
        assert!(
            query.rank() == 3
                && key.rank() == 3
                && value.rank() == 3
                && query.dim(-1) == e
                && key.dim(-1) == e
                && value.dim(-1) == e
                && key.dims()[..2] == value.dims()[..2]
                && query.dims()[0] == key.dims()[0],
            "MultiheadAttention: query {:?}, key {:?}, value {:?} are not [N, T, {e}], [N, S, {e}], [N, S, {e}]",
            query.shape(),
            key.shape(),
            value.shape()
        );
        let (n, t, s) = (query.dims()[0], query.dims()[1], key.dims()[1]);

        // Every head tensor below is [1, N, H, L, D_h]: the leading 1 is the
        // slot of the packed q/k/v axis. Dropping it would copy (a reshape of
        // a strided view), and matmul broadcasts it for free.
        let (q, k, v) = if query.id() == key.id() && key.id() == value.id() {
            let mut qkv = query.reshape([n * t, e]).matmul(&self.in_proj_weight.t());
            if let Some(b) = &self.in_proj_bias {
                qkv = qkv.add(b);
            }
            let heads = qkv.reshape([n, t, 3, h, dh]).permute(&[2, 0, 3, 1, 4]);
            (
                heads.narrow(0, 0, 1),
                heads.narrow(0, 1, 1),
                heads.narrow(0, 2, 1),
            )
        } else {
            let project = |x: &Tensor, i: usize| {
                let len = x.dims()[1];
                let w = self.in_proj_weight.narrow(0, i * e, e);
                let mut y = x.reshape([n * len, e]).matmul(&w.t());
                if let Some(b) = &self.in_proj_bias {
                    y = y.add(&b.narrow(0, i * e, e));
                }
                y.reshape([1, n, len, h, dh]).permute(&[0, 1, 3, 2, 4])
            };
            (project(query, 0), project(key, 1), project(value, 2))
        };
        // PyTorch scales Q (smaller than the scores when T > D_h).
        let q = q.mul_scalar(1.0 / (dh as f32).sqrt());

        let mask = combine_masks(attn_mask, key_padding_mask, n, h, t, s);
        let (o, a) = attend(&q, &k, &v, mask.as_ref(), Some(&self.dropout));
        let o = o
            .permute(&[0, 1, 3, 2, 4])
            .reshape([n * t, e])
            .matmul(&self.out_proj.weight.t());
        let o = match &self.out_proj.bias {
            Some(b) => o.add(b),
            None => o,
        };
        (o.reshape([n, t, e]), a.reshape([n, h, t, s]))
    }
}

/// One additive mask broadcastable to the scores `[1, N, H, T, S]`, or None.
fn combine_masks(
    attn_mask: Option<&AttnMask>,
    key_padding_mask: Option<&AttnMask>,
    n: usize,
    h: usize,
    t: usize,
    s: usize,
) -> Option<Tensor> {
    let attn = attn_mask.map(|m| {
        let a = m.to_additive();
        match a.dims() {
            [tt, ss] if (*tt, *ss) == (t, s) => a,
            [nh, tt, ss] if (*nh, *tt, *ss) == (n * h, t, s) => a.reshape([n, h, t, s]),
            _ => panic!(
                "MultiheadAttention: attn_mask {:?} is neither [{t}, {s}] nor [{}, {t}, {s}]",
                a.shape(),
                n * h
            ),
        }
    });
    let pad = key_padding_mask.map(|m| {
        let p = m.to_additive();
        assert_eq!(
            p.dims(),
            &[n, s],
            "MultiheadAttention: key_padding_mask {:?} is not [{n}, {s}]",
            p.shape()
        );
        p.reshape([n, 1, 1, s])
    });
    match (attn, pad) {
        (Some(a), Some(p)) => Some(a.add(&p)),
        (a, p) => a.or(p),
    }
}

impl Module for MultiheadAttention {
    /// Self-attention without masks: `forward_attn(x, x, x, None, None).0`.
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_attn(x, x, x, None, None).0
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = vec![("in_proj_weight".to_string(), self.in_proj_weight.clone())];
        p.extend(
            self.in_proj_bias
                .as_ref()
                .map(|b| ("in_proj_bias".to_string(), b.clone())),
        );
        p.extend(super::prefixed(
            "out_proj",
            self.out_proj.named_parameters(),
        ));
        p
    }

    fn set_training(&mut self, training: bool) {
        self.dropout.set_training(training);
    }

    fn for_each_rng(&self, f: &mut dyn FnMut(&mut Rng)) {
        self.dropout.for_each_rng(f);
    }

    fn describe(&self) -> String {
        format!(
            "MultiheadAttention(E={}, heads={})",
            self.embed_dim(),
            self.num_heads
        )
    }
}
