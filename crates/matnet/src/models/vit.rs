//! A small vision transformer over image patches.

use crate::nn::{
    Activation, EncoderLayerConfig, LearnedPositionalEncoding, Linear, Module, TransformerEncoder,
    prefixed,
};
use crate::{Rng, Tensor};

/// The shape of a [`Vit`].
#[derive(Clone, Debug, PartialEq)]
pub struct VitConfig {
    /// Patch side in pixels (must divide the image sides).
    pub patch: usize,
    /// Model width `E`.
    pub dim: usize,
    /// Encoder layers.
    pub depth: usize,
    /// Attention heads.
    pub heads: usize,
    /// Dropout in the encoder.
    pub dropout: f32,
}

impl VitConfig {
    /// `matnet`'s vit: 7×7 patches, width 64, 2 layers, 4 heads.
    pub fn mnist(dropout: f32) -> VitConfig {
        VitConfig {
            patch: 7,
            dim: 64,
            depth: 2,
            heads: 4,
            dropout,
        }
    }
}

/// A small vision transformer: the image cut into `patch×patch` patches,
/// each flattened and projected to width `E` (`[N, P, patch²]·W_embᵀ`),
/// learned position embeddings added, a pre-norm transformer encoder, a
/// final layer norm, the mean over patches, and a linear classifier.
///
/// # Shapes
/// `[N, rows·cols] -> [N, P, patch²] -> [N, P, E] -> [N, E] -> [N, classes]`.
pub struct Vit {
    /// Patch embedding `W_emb` `[E, patch²]`.
    pub embed: Linear,
    /// Learned position embeddings `[P, E]`.
    pub pos: LearnedPositionalEncoding,
    /// The pre-norm encoder stack.
    pub encoder: TransformerEncoder,
    /// Classifier on the mean token.
    pub fc: Linear,
    rows: usize,
    cols: usize,
    patch: usize,
}

impl Vit {
    /// A vit for `rows × cols` images (both divisible by `c.patch`).
    pub fn new((rows, cols): (usize, usize), c: &VitConfig, classes: usize, rng: &mut Rng) -> Vit {
        let tokens = (rows / c.patch) * (cols / c.patch);
        let layer = EncoderLayerConfig {
            dim_feedforward: 2 * c.dim,
            dropout: c.dropout,
            activation: Activation::Gelu,
            norm_first: true,
            ..EncoderLayerConfig::new(c.dim, c.heads)
        };
        Vit {
            embed: Linear::new(c.patch * c.patch, c.dim, rng),
            pos: LearnedPositionalEncoding::new(tokens, c.dim, rng),
            encoder: TransformerEncoder::new(&layer, c.depth, true, rng),
            fc: Linear::new(c.dim, classes, rng),
            rows,
            cols,
            patch: c.patch,
        }
    }

    /// Patch side in pixels.
    pub fn patch_size(&self) -> usize {
        self.patch
    }

    /// `[N, rows·cols] -> [N, P, patch²]`, patches in row-major order.
    pub fn patches(&self, x: &Tensor) -> Tensor {
        let (n, p) = (x.dims()[0], self.patch);
        let (gh, gw) = (self.rows / p, self.cols / p);
        x.reshape([n, gh, p, gw, p])
            .permute(&[0, 1, 3, 2, 4])
            .reshape([n, gh * gw, p * p])
    }

    /// Class scores and each encoder layer's attention weights `[N, heads, P, P]`.
    pub fn forward_attn(&self, x: &Tensor) -> (Tensor, Vec<Tensor>) {
        let tokens = self.pos.forward(&self.embed.forward(&self.patches(x)));
        let (h, maps) = self.encoder.forward_attn(&tokens, None, None);
        (self.fc.forward(&h.mean(&[1], false)), maps)
    }
}

impl Module for Vit {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_attn(x).0
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("embed", self.embed.named_parameters());
        p.extend(prefixed("pos", self.pos.named_parameters()));
        p.extend(prefixed("encoder", self.encoder.named_parameters()));
        p.extend(prefixed("fc", self.fc.named_parameters()));
        p
    }

    fn set_training(&mut self, training: bool) {
        self.encoder.set_training(training);
    }

    fn for_each_rng(&self, f: &mut dyn FnMut(&mut crate::Rng)) {
        self.encoder.for_each_rng(f);
    }

    fn describe(&self) -> String {
        format!(
            "Vit[{}×{} patches of {}×{}, {}, {} layers, {}]",
            self.rows / self.patch,
            self.cols / self.patch,
            self.patch,
            self.patch,
            self.embed.describe(),
            self.encoder.layers.len(),
            self.fc.describe()
        )
    }
}
