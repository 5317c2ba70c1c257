//! Token embeddings and positional encodings: the rows of a matrix picked by
//! index, and a `[T, D]` matrix added to a sequence.

use super::Module;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// A lookup table: token id `i` becomes row `i` of `W`. Equivalent to
/// `one_hot(ids)·W`, computed as a row gather (`index_select`), whose
/// backward adds each output gradient row into row `i` of `grad_W`.
///
/// As PyTorch's `nn.Embedding`: `weight [num_embeddings, D]` drawn from
/// `N(0, 1)`. Ids are f32 tensors holding whole numbers in
/// `0..num_embeddings`. (`padding_idx` and `max_norm` are not supported.)
///
/// # Shapes
/// `ids [..] -> [.., D]` (e.g. `[N, T] -> [N, T, D]`).
pub struct Embedding {
    /// `[num_embeddings, D]`
    pub weight: Tensor,
}

impl Embedding {
    /// A table of `num_embeddings` rows of size `dim`, `N(0, 1)`.
    pub fn new(num_embeddings: usize, dim: usize, rng: &mut Rng) -> Embedding {
        Embedding {
            weight: Tensor::randn([num_embeddings, dim], 0.0, 1.0, rng).requires_grad(),
        }
    }
}

impl Module for Embedding {
    fn forward(&self, ids: &Tensor) -> Tensor {
        let d = self.weight.dims()[1];
        let rows = self.weight.index_select(0, &ids.reshape([ids.numel()]));
        let mut shape = ids.dims().to_vec();
        shape.push(d);
        rows.reshape(shape)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".to_string(), self.weight.clone())]
    }

    fn describe(&self) -> String {
        let d = self.weight.dims();
        format!("Embedding({}, {})", d[0], d[1])
    }
}

/// Adds the fixed sinusoidal encoding of "Attention Is All You Need" to a
/// sequence: `y = x + P[0..T]` with
///
/// ```text
/// P[t, 2i]   = sin(t / 10000^(2i/D))
/// P[t, 2i+1] = cos(t / 10000^(2i/D))
/// ```
///
/// `P` is computed once for `max_len` steps; it is neither trained nor saved
/// (it follows from `max_len` and `D`).
///
/// # Shapes
/// `[N, T, D]` or `[T, D]` -> same, `T ≤ max_len`; `P` is `[max_len, D]`.
pub struct SinusoidalPositionalEncoding {
    /// `P`, `[max_len, D]`.
    pub pe: Tensor,
}

impl SinusoidalPositionalEncoding {
    /// The encoding for up to `max_len` steps of `dim` features.
    pub fn new(max_len: usize, dim: usize) -> SinusoidalPositionalEncoding {
        let mut pe = vec![0.0f32; max_len * dim];
        for t in 0..max_len {
            for j in 0..dim {
                // f64: t·ω reaches thousands of radians, where f32 loses digits.
                let freq = 10000f64.powf(-((j - j % 2) as f64) / dim as f64);
                let angle = t as f64 * freq;
                pe[t * dim + j] = if j % 2 == 0 { angle.sin() } else { angle.cos() } as f32;
            }
        }
        SinusoidalPositionalEncoding {
            pe: Tensor::from_vec(pe, [max_len, dim]),
        }
    }
}

impl Module for SinusoidalPositionalEncoding {
    fn forward(&self, x: &Tensor) -> Tensor {
        add_positions(x, &self.pe, "SinusoidalPositionalEncoding")
    }

    fn describe(&self) -> String {
        let d = self.pe.dims();
        format!("SinusoidalPositionalEncoding(max_len={}, D={})", d[0], d[1])
    }
}

/// A trained position table added to a sequence: `y = x + W[0..T]` (as in
/// BERT and ViT). `weight [max_len, D]` starts at `N(0, 0.02²)`, ViT's
/// initialisation.
///
/// # Shapes
/// `[N, T, D]` or `[T, D]` -> same, `T ≤ max_len`; weight `[max_len, D]`.
pub struct LearnedPositionalEncoding {
    /// `[max_len, D]`
    pub weight: Tensor,
}

impl LearnedPositionalEncoding {
    /// A table for up to `max_len` steps of `dim` features.
    pub fn new(max_len: usize, dim: usize, rng: &mut Rng) -> LearnedPositionalEncoding {
        LearnedPositionalEncoding {
            weight: Tensor::randn([max_len, dim], 0.0, 0.02, rng).requires_grad(),
        }
    }
}

impl Module for LearnedPositionalEncoding {
    fn forward(&self, x: &Tensor) -> Tensor {
        add_positions(x, &self.weight, "LearnedPositionalEncoding")
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".to_string(), self.weight.clone())]
    }

    fn describe(&self) -> String {
        let d = self.weight.dims();
        format!("LearnedPositionalEncoding(max_len={}, D={})", d[0], d[1])
    }
}

/// `x + table[0..T]`, broadcast over the batch.
fn add_positions(x: &Tensor, table: &Tensor, name: &str) -> Tensor {
    let (max_len, d) = (table.dims()[0], table.dims()[1]);
    assert!(
        (x.rank() == 2 || x.rank() == 3) && x.dim(-1) == d && x.dim(-2) <= max_len,
        "{name}: input {:?} is not [N, T, {d}] with T ≤ {max_len}",
        x.shape()
    );
    x.add(&table.narrow(0, 0, x.dim(-2)))
}
