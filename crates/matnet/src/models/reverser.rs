//! The reverse task's model: a decoder-only transformer that reads
//! `x₁ … x_L SEP` and writes `x_L … x₁`, one token at a time, under a causal
//! mask; learned positions tell it where it is.

use crate::nn::attention::causal_mask;
use crate::nn::{
    Activation, Embedding, EncoderLayerConfig, LearnedPositionalEncoding, Linear, Module,
    TransformerEncoder, prefixed,
};
use crate::{Rng, Tensor};

use super::ReverserConfig;

/// Token ids `0..DIGITS` are the digits.
pub const DIGITS: usize = 10;
/// The separator token between a sequence and its reversal.
pub const SEP: usize = 10;

/// Token embedding + learned positions, a causal pre-norm transformer
/// stack, and a linear read-out over the 10 digits at every position.
///
/// # Shapes
/// Token ids `[N, T]` (`T ≤ 2L`) `-> [N, T, E] -> [N, T, 10]` next-digit scores.
pub struct Reverser {
    /// The configuration it was built from.
    pub config: ReverserConfig,
    /// Token embedding `[11, E]` (10 digits and SEP).
    pub embed: Embedding,
    /// Learned positions `[2L, E]`.
    pub pos: LearnedPositionalEncoding,
    /// The causal encoder stack.
    pub encoder: TransformerEncoder,
    /// Read-out `[10, E]`.
    pub head: Linear,
}

impl Reverser {
    /// A freshly initialised model (embedding, positions, layers, head: the
    /// order the weights are drawn from `rng`).
    pub fn new(config: &ReverserConfig, rng: &mut Rng) -> Reverser {
        let layer = EncoderLayerConfig {
            dim_feedforward: config.dim_feedforward,
            dropout: 0.0,
            activation: Activation::Gelu,
            norm_first: true,
            ..EncoderLayerConfig::new(config.dim, config.heads)
        };
        Reverser {
            config: config.clone(),
            embed: Embedding::new(DIGITS + 1, config.dim, rng),
            pos: LearnedPositionalEncoding::new(2 * config.seq_len, config.dim, rng),
            encoder: TransformerEncoder::new(&layer, config.depth, true, rng),
            head: Linear::new(config.dim, DIGITS, rng),
        }
    }

    /// Next-digit scores `[N, T, 10]` for token ids `[N, T]`; position `t`
    /// sees tokens `0..=t` only.
    pub fn logits(&self, ids: &Tensor) -> Tensor {
        let t = ids.dims()[1];
        let x = self.pos.forward(&self.embed.forward(ids));
        let h = self.encoder.forward_masked(&x, Some(&causal_mask(t)), None);
        self.head.forward(&h)
    }

    /// Teacher forcing: the model's input `x₁ … x_L SEP x_L … x₂` `[N, 2L]`
    /// and its targets `x_L … x₁` at the last `L` positions, flattened to
    /// `[N·L]`, for a batch of sequences of equal length `L`.
    pub fn teacher_forcing(seqs: &[Vec<usize>]) -> (Tensor, Tensor) {
        let l = seqs[0].len();
        let mut ids = Vec::with_capacity(seqs.len() * 2 * l);
        let mut targets = Vec::with_capacity(seqs.len() * l);
        for s in seqs {
            ids.extend(s.iter().map(|&d| d as f32));
            ids.push(SEP as f32);
            ids.extend(s.iter().rev().take(l - 1).map(|&d| d as f32));
            targets.extend(s.iter().rev().map(|&d| d as f32));
        }
        (
            Tensor::from_vec(ids, [seqs.len(), 2 * l]),
            Tensor::from_vec(targets, [seqs.len() * l]),
        )
    }

    /// Greedy decoding: the `L` digits the model writes after
    /// `x₁ … x_L SEP`, each fed back as the next input.
    pub fn decode(&self, seqs: &[Vec<usize>]) -> Vec<Vec<usize>> {
        let _no_grad = crate::no_grad();
        let l = seqs[0].len();
        let mut rows: Vec<Vec<f32>> = seqs
            .iter()
            .map(|s| {
                let mut r: Vec<f32> = s.iter().map(|&d| d as f32).collect();
                r.push(SEP as f32);
                r
            })
            .collect();
        for _ in 0..l {
            let t = rows[0].len();
            let ids = Tensor::from_vec(rows.concat(), [rows.len(), t]);
            let logits = self.logits(&ids); // [N, t, 10]
            let next = logits.narrow(1, t - 1, 1).argmax(-1, false).to_vec();
            for (r, d) in rows.iter_mut().zip(next) {
                r.push(d);
            }
        }
        rows.iter()
            .map(|r| r[l + 1..].iter().map(|&d| d as usize).collect())
            .collect()
    }
}

impl Module for Reverser {
    fn forward(&self, ids: &Tensor) -> Tensor {
        self.logits(ids)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("embed", self.embed.named_parameters());
        p.extend(prefixed("pos", self.pos.named_parameters()));
        p.extend(prefixed("encoder", self.encoder.named_parameters()));
        p.extend(prefixed("head", self.head.named_parameters()));
        p
    }

    fn for_each_rng(&self, f: &mut dyn FnMut(&mut Rng)) {
        self.encoder.for_each_rng(f);
    }

    fn describe(&self) -> String {
        format!(
            "Reverser[Embedding({} -> {}), {} causal layers, Linear({} -> {DIGITS})]",
            DIGITS + 1,
            self.config.dim,
            self.encoder.layers.len(),
            self.config.dim
        )
    }
}
