//! The transformer encoder: self-attention and a two-layer MLP, each wrapped
//! in a residual connection and layer normalisation, as PyTorch's
//! `nn.TransformerEncoderLayer` and `nn.TransformerEncoder`.

use super::attention::{AttnMask, MultiheadAttention};
use super::{Dropout, LayerNorm, Linear, Module, prefixed};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// The feed-forward block's nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)` (PyTorch's default).
    Relu,
    /// GELU, exact erf form (ViT, BERT).
    Gelu,
}

impl Activation {
    fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Relu => x.relu(),
            Activation::Gelu => x.gelu(),
        }
    }
}

/// Hyper-parameters of a [`TransformerEncoderLayer`], with PyTorch's
/// defaults from [`EncoderLayerConfig::new`]; change fields with struct
/// update syntax:
///
/// ```
/// use matnet::nn::{Activation, EncoderLayerConfig};
/// let c = EncoderLayerConfig {
///     dim_feedforward: 128,
///     activation: Activation::Gelu,
///     norm_first: true,
///     ..EncoderLayerConfig::new(64, 4)
/// };
/// assert_eq!(c.dropout, 0.1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EncoderLayerConfig {
    /// Model width `E`.
    pub d_model: usize,
    /// Number of attention heads (divides `d_model`).
    pub nhead: usize,
    /// Hidden width of the feed-forward block (PyTorch default 2048).
    pub dim_feedforward: usize,
    /// Dropout probability for attention weights and both residual branches
    /// (default 0.1).
    pub dropout: f32,
    /// Feed-forward nonlinearity (default ReLU).
    pub activation: Activation,
    /// Layer norm `ε` (default 1e-5).
    pub layer_norm_eps: f32,
    /// Pre-norm (`true`, ViT) or post-norm (`false`, the original
    /// transformer and PyTorch's default).
    pub norm_first: bool,
}

impl EncoderLayerConfig {
    /// PyTorch's defaults for width `d_model` and `nhead` heads.
    pub fn new(d_model: usize, nhead: usize) -> EncoderLayerConfig {
        EncoderLayerConfig {
            d_model,
            nhead,
            dim_feedforward: 2048,
            dropout: 0.1,
            activation: Activation::Relu,
            layer_norm_eps: 1e-5,
            norm_first: false,
        }
    }
}

/// One encoder layer (batch first). With `SA` = self-attention and
/// `FF(x) = act(x·W₁ᵀ + b₁)·W₂ᵀ + b₂`:
///
/// ```text
/// post-norm (norm_first = false):  x = LN₁(x + SA(x));      y = LN₂(x + FF(x))
/// pre-norm  (norm_first = true):   x = x + SA(LN₁(x));      y = x + FF(LN₂(x))
/// ```
///
/// Dropout (training only) acts on the attention weights, on the hidden
/// layer of `FF` (`dropout`) and on each branch before its residual add
/// (`dropout1`, `dropout2`), as in PyTorch.
///
/// Parameter names match PyTorch's `state_dict`: `self_attn.in_proj_weight`,
/// `self_attn.in_proj_bias`, `self_attn.out_proj.{weight,bias}`,
/// `linear1.*` (`[F, E]`), `linear2.*` (`[E, F]`), `norm1.*`, `norm2.*`.
///
/// # Shapes
/// `[N, T, E] -> [N, T, E]`; masks as in [`MultiheadAttention`]
/// (`[T, T]` or `[N·H, T, T]`, key padding `[N, T]`).
pub struct TransformerEncoderLayer {
    /// Multi-head self-attention.
    pub self_attn: MultiheadAttention,
    /// `E -> F`.
    pub linear1: Linear,
    /// Dropout on the feed-forward hidden layer.
    pub dropout: Dropout,
    /// `F -> E`.
    pub linear2: Linear,
    /// Layer norm of the attention block.
    pub norm1: LayerNorm,
    /// Layer norm of the feed-forward block.
    pub norm2: LayerNorm,
    /// Dropout on the attention branch.
    pub dropout1: Dropout,
    /// Dropout on the feed-forward branch.
    pub dropout2: Dropout,
    /// Feed-forward nonlinearity.
    pub activation: Activation,
    /// Pre-norm when true, post-norm when false.
    pub norm_first: bool,
}

impl TransformerEncoderLayer {
    /// A layer with PyTorch's initialisation (dropout seeds drawn from `rng`).
    pub fn new(c: &EncoderLayerConfig, rng: &mut Rng) -> TransformerEncoderLayer {
        let (e, f) = (c.d_model, c.dim_feedforward);
        let self_attn = MultiheadAttention::with_dropout(e, c.nhead, c.dropout, rng);
        let linear1 = Linear::new(e, f, rng);
        let linear2 = Linear::new(f, e, rng);
        let norm = || LayerNorm::new(&[e]).with_eps(c.layer_norm_eps);
        let mut dropout = || Dropout::new(c.dropout, rng.next_u64());
        TransformerEncoderLayer {
            self_attn,
            linear1,
            dropout: dropout(),
            linear2,
            norm1: norm(),
            norm2: norm(),
            dropout1: dropout(),
            dropout2: dropout(),
            activation: c.activation,
            norm_first: c.norm_first,
        }
    }

    /// The layer with optional masks; returns the output and the attention
    /// weights `[N, H, T, T]` of its self-attention.
    pub fn forward_attn(
        &self,
        x: &Tensor,
        mask: Option<&AttnMask>,
        key_padding_mask: Option<&AttnMask>,
    ) -> (Tensor, Tensor) {
        let sa = |h: &Tensor| {
            let (y, a) = self.self_attn.forward_attn(h, h, h, mask, key_padding_mask);
            (self.dropout1.forward(&y), a)
        };
        let ff = |h: &Tensor| {
            let hidden = self.activation.apply(&self.linear1.forward(h));
            let y = self.linear2.forward(&self.dropout.forward(&hidden));
            self.dropout2.forward(&y)
        };
        if self.norm_first {
            let (s, a) = sa(&self.norm1.forward(x));
            let x = x.add(&s);
            (x.add(&ff(&self.norm2.forward(&x))), a)
        } else {
            let (s, a) = sa(x);
            let x = self.norm1.forward(&x.add(&s));
            (self.norm2.forward(&x.add(&ff(&x))), a)
        }
    }

    /// The layer with optional masks (output only).
    pub fn forward_masked(
        &self,
        x: &Tensor,
        mask: Option<&AttnMask>,
        key_padding_mask: Option<&AttnMask>,
    ) -> Tensor {
        self.forward_attn(x, mask, key_padding_mask).0
    }
}

impl Module for TransformerEncoderLayer {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_masked(x, None, None)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        // PyTorch's state_dict order.
        let mut p = prefixed("self_attn", self.self_attn.named_parameters());
        p.extend(prefixed("linear1", self.linear1.named_parameters()));
        p.extend(prefixed("linear2", self.linear2.named_parameters()));
        p.extend(prefixed("norm1", self.norm1.named_parameters()));
        p.extend(prefixed("norm2", self.norm2.named_parameters()));
        p
    }

    fn set_training(&mut self, training: bool) {
        self.self_attn.set_training(training);
        self.dropout.set_training(training);
        self.dropout1.set_training(training);
        self.dropout2.set_training(training);
    }

    fn for_each_rng(&self, f: &mut dyn FnMut(&mut Rng)) {
        self.self_attn.for_each_rng(f);
        self.dropout.for_each_rng(f);
        self.dropout1.for_each_rng(f);
        self.dropout2.for_each_rng(f);
    }

    fn describe(&self) -> String {
        format!(
            "TransformerEncoderLayer(E={}, heads={}, F={}, {:?}, {})",
            self.self_attn.embed_dim(),
            self.self_attn.num_heads,
            self.linear1.d_out(),
            self.activation,
            if self.norm_first {
                "pre-norm"
            } else {
                "post-norm"
            }
        )
    }
}

/// A stack of encoder layers applied in order, with an optional final layer
/// norm (PyTorch's `nn.TransformerEncoder(layer, num_layers, norm)`; a
/// pre-norm stack usually ends in one). Names: `layers.0.self_attn.…`,
/// `layers.1.…`, `norm.weight`.
///
/// # Shapes
/// `[N, T, E] -> [N, T, E]`.
pub struct TransformerEncoder {
    /// The layers, first applied first.
    pub layers: Vec<TransformerEncoderLayer>,
    /// Final layer norm, if any.
    pub norm: Option<LayerNorm>,
}

impl TransformerEncoder {
    /// `num_layers` layers of configuration `c`, each initialised
    /// independently (PyTorch deep-copies one layer, so its layers start
    /// equal; load a state_dict to reproduce that), with a final layer norm
    /// when `final_norm`.
    pub fn new(
        c: &EncoderLayerConfig,
        num_layers: usize,
        final_norm: bool,
        rng: &mut Rng,
    ) -> TransformerEncoder {
        TransformerEncoder {
            layers: (0..num_layers)
                .map(|_| TransformerEncoderLayer::new(c, rng))
                .collect(),
            norm: final_norm.then(|| LayerNorm::new(&[c.d_model]).with_eps(c.layer_norm_eps)),
        }
    }

    /// The stack with optional masks (the same for every layer); returns the
    /// output and each layer's attention weights `[N, H, T, T]`.
    pub fn forward_attn(
        &self,
        x: &Tensor,
        mask: Option<&AttnMask>,
        key_padding_mask: Option<&AttnMask>,
    ) -> (Tensor, Vec<Tensor>) {
        let mut h = x.clone();
        let mut maps = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let (y, a) = l.forward_attn(&h, mask, key_padding_mask);
            h = y;
            maps.push(a);
        }
        if let Some(n) = &self.norm {
            h = n.forward(&h);
        }
        (h, maps)
    }

    /// The stack with optional masks (output only).
    pub fn forward_masked(
        &self,
        x: &Tensor,
        mask: Option<&AttnMask>,
        key_padding_mask: Option<&AttnMask>,
    ) -> Tensor {
        self.forward_attn(x, mask, key_padding_mask).0
    }
}

impl Module for TransformerEncoder {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_masked(x, None, None)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p: Vec<(String, Tensor)> = self
            .layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| prefixed(format!("layers.{i}"), l.named_parameters()))
            .collect();
        if let Some(n) = &self.norm {
            p.extend(prefixed("norm", n.named_parameters()));
        }
        p
    }

    fn set_training(&mut self, training: bool) {
        self.layers
            .iter_mut()
            .for_each(|l| l.set_training(training));
    }

    fn for_each_rng(&self, f: &mut dyn FnMut(&mut Rng)) {
        self.layers.iter().for_each(|l| l.for_each_rng(f));
    }

    fn describe(&self) -> String {
        let first = self
            .layers
            .first()
            .map(|l| l.describe())
            .unwrap_or_default();
        format!(
            "TransformerEncoder({} × {first}{})",
            self.layers.len(),
            if self.norm.is_some() {
                ", final LayerNorm"
            } else {
                ""
            }
        )
    }
}
