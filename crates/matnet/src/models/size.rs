//! What a configuration will cost, known before anything is built: the
//! sizes each architecture cannot take (an error here rather than a panic or
//! an overflow in a constructor), and a lower bound on the number of values
//! in its `state_dict`, which [`super::load_bytes`] compares with the tensors
//! a checkpoint holds before it allocates a model. A configuration claiming
//! a billion-unit layer next to a few kilobytes of tensors is an error, not
//! a 4 GB allocation.
//!
//! The bound counts the large matrices only (weights, embeddings; biases
//! where a size appears nowhere else), so it stays below the true size; a
//! test checks it is within 2× of the built models for every architecture.

use super::{Arch, Config, GanConfig, JointConfig, ModelConfig, ReverserConfig, VitConfig};
use crate::{Error, Result};

/// Products in u128, saturating: a bound too large for memory only has to
/// compare as too large, never wrap around to a small one.
fn mul(factors: &[usize]) -> u128 {
    factors
        .iter()
        .fold(1u128, |acc, &f| acc.saturating_mul(f as u128))
}

fn sum(terms: &[u128]) -> u128 {
    terms.iter().fold(0u128, |acc, &t| acc.saturating_add(t))
}

impl Config {
    /// A lower bound on the values in the `state_dict` of the model this
    /// configuration builds (parameters and buffers); an error names a size
    /// the architecture cannot take (zero classes, images too small for a
    /// conv net's pooling, a width not divisible by the attention heads, a
    /// dropout probability outside `[0, 1)`).
    pub fn min_state_len(&self) -> Result<u128> {
        match self {
            Config::Classifier(c) => classifier(c),
            Config::Reverser(c) => reverser(c),
            Config::Gan(c) => gan(c),
            Config::Joint(c) => joint(c),
        }
    }
}

fn invalid(msg: String) -> Error {
    Error::Invalid(format!("the model configuration is not valid: {msg}"))
}

fn classifier(c: &ModelConfig) -> Result<u128> {
    let name = c.arch.name();
    if c.rows == 0 || c.cols == 0 || c.classes == 0 {
        return Err(invalid(format!(
            "{name} needs rows, cols and classes of at least 1, got {}, {} and {}",
            c.rows, c.cols, c.classes
        )));
    }
    if !(0.0..1.0).contains(&c.dropout) {
        return Err(invalid(format!(
            "dropout {} is not a probability in [0, 1)",
            c.dropout
        )));
    }
    let min_side = |side: usize, why: &str| {
        if c.rows < side || c.cols < side {
            Err(invalid(format!(
                "{name} needs images of at least {side}×{side} ({why}), got {}×{}",
                c.rows, c.cols
            )))
        } else {
            Ok(())
        }
    };
    let (d, k) = (mul(&[c.rows, c.cols]), c.classes as u128);
    Ok(match c.arch {
        Arch::SeedMlp | Arch::Mlp => {
            // Every hidden width counts once as its bias, so a huge width
            // next to a zero one is still seen.
            let mut widths = vec![d];
            widths.extend(c.hidden.iter().map(|&h| h as u128));
            widths.push(k);
            let matrices = widths.windows(2).map(|w| w[0].saturating_mul(w[1]));
            sum(&[sum(&matrices.collect::<Vec<_>>()), sum(&widths[1..])])
        }
        Arch::Lenet => {
            min_side(12, "two 2×2 poolings around a 5×5 convolution")?;
            let side = |s: usize| (s / 2 - 4) / 2;
            let flat = mul(&[16, side(c.rows), side(c.cols)]);
            sum(&[flat.saturating_mul(120), mul(&[120, 84]), 84 * k])
        }
        Arch::Cnn => {
            min_side(6, "two 3×3 convolutions and a 2×2 pooling")?;
            let flat = mul(&[64, (c.rows - 4) / 2, (c.cols - 4) / 2]);
            sum(&[flat.saturating_mul(128), mul(&[64, 32, 9]), 128 * k])
        }
        Arch::Rnn | Arch::Lstm | Arch::Gru => {
            let gates = match c.arch {
                Arch::Rnn => 1,
                Arch::Lstm => 4,
                _ => 3,
            };
            // As `Classifier::new` reads them: one width per stacked layer.
            let h = c.hidden.first().copied().unwrap_or(128);
            let layers = c.hidden.len().max(1);
            sum(&[
                mul(&[gates, h]).saturating_mul(c.cols as u128 + h as u128),
                mul(&[layers - 1, gates, h, 2, h]),
                (h as u128).saturating_mul(k),
            ])
        }
        Arch::Vit => {
            let v = VitConfig::mnist(c.dropout);
            min_side(v.patch, "one patch")?;
            let tokens = mul(&[c.rows / v.patch, c.cols / v.patch]);
            sum(&[
                tokens.saturating_mul(v.dim as u128),
                mul(&[v.patch, v.patch, v.dim]),
                // Attention (4·D²) and the feed-forward block (2·D·2D) per layer.
                mul(&[v.depth, 8, v.dim, v.dim]),
                (v.dim as u128).saturating_mul(k),
            ])
        }
        // `Classifier::new` says why a GAN is not a classifier.
        Arch::Gan | Arch::Dcgan | Arch::Joint => 0,
    })
}

fn joint(c: &JointConfig) -> Result<u128> {
    c.check()?;
    let (r, w) = (c.rows / 4, c.cols / 4);
    let (e, h) = (c.attn_dim, c.rnn_hidden);
    // A row of the stem's map: its channels times its width.
    let row = mul(&[c.stem[1], w]);
    let features = (e + if c.rnn { h } else { 0 }) as u128;
    Ok(sum(&[
        // Generator: z to the 2·g_width × R × W map, then the 4×4 transposed
        // convolution to g_width channels.
        mul(&[c.z_dim, 2, c.g_width, r, w]),
        mul(&[2, c.g_width, c.g_width, 16]),
        // The stem's second convolution and the row projection.
        mul(&[c.stem[0], c.stem[1], 16]),
        row.saturating_mul(e as u128),
        if c.rnn {
            mul(&[4, h]).saturating_mul(row.saturating_add(h as u128))
        } else {
            0
        },
        if c.attention { mul(&[4, e, e]) } else { 0 },
        features.saturating_mul(features),
        if c.reconstruction {
            mul(&[c.rows, c.cols, c.encoder_hidden])
        } else {
            0
        },
    ]))
}

fn reverser(c: &ReverserConfig) -> Result<u128> {
    if c.seq_len == 0 || c.dim == 0 || c.heads == 0 || !c.dim.is_multiple_of(c.heads) {
        return Err(invalid(format!(
            "the reverse-task transformer needs seq_len and dim of at least 1 and dim \
             divisible by heads, got seq_len {}, dim {}, heads {}",
            c.seq_len, c.dim, c.heads
        )));
    }
    Ok(sum(&[
        mul(&[11, c.dim]),
        mul(&[2, c.seq_len, c.dim]),
        mul(&[c.depth, 4, c.dim, c.dim]),
        mul(&[c.depth, 2, c.dim, c.dim_feedforward]),
        // The feed-forward biases, for a wide block in a zero-width model.
        mul(&[c.depth, c.dim_feedforward]),
        mul(&[c.dim, 10]),
    ]))
}

fn gan(c: &GanConfig) -> Result<u128> {
    if c.rows == 0 || c.cols == 0 {
        return Err(invalid(format!(
            "a GAN needs images of at least 1×1, got {}×{}",
            c.rows, c.cols
        )));
    }
    let pixels = mul(&[c.rows, c.cols]);
    let g_in = (c.z_dim as u128).saturating_add(if c.conditional { c.classes as u128 } else { 0 });
    let labels = if c.conditional {
        sum(&[
            mul(&[c.classes, c.classes]),
            (c.classes as u128).saturating_mul(pixels),
        ])
    } else {
        0
    };
    let players = match c.arch {
        Arch::Gan => sum(&[
            g_in.saturating_mul(256),
            mul(&[256, 512]),
            mul(&[512, 1024]),
            pixels.saturating_mul(1024),
            pixels.saturating_mul(512),
            mul(&[512, 256]),
        ]),
        Arch::Dcgan => sum(&[g_in.saturating_mul(128 * 7 * 7), mul(&[128, 64, 16])]),
        // `Gan::new` says why a classifier is not a GAN.
        _ => 0,
    };
    Ok(sum(&[players, labels]))
}
