//! Layer normalisation.

use super::Module;
use crate::tensor::Tensor;

/// Layer normalisation over the trailing dimensions (`normalized_shape`),
/// separately for every leading index (each token of each sequence):
///
/// ```text
/// μ = mean(x),  σ² = mean((x − μ)²)      over the normalised dimensions
/// y = (x − μ)/√(σ² + ε) ⊙ γ + β
/// ```
///
/// As PyTorch's `nn.LayerNorm`: population variance, `ε = 1e-5`, `γ`
/// (`weight`) initialised to 1 and `β` (`bias`) to 0. Unlike batch norm it
/// has no running statistics, so training and evaluation agree.
///
/// # Shapes
/// `[.., *normalized_shape] -> same`; weight and bias `normalized_shape`
/// (`[D]` for the usual `[N, T, D]`).
pub struct LayerNorm {
    /// γ, shaped `normalized_shape`; None without `elementwise_affine`.
    pub weight: Option<Tensor>,
    /// β, shaped `normalized_shape`; None without an affine bias.
    pub bias: Option<Tensor>,
    /// Added to the variance for stability.
    pub eps: f32,
    normalized_shape: Vec<usize>,
}

impl LayerNorm {
    /// Layer norm over trailing dimensions `normalized_shape` (`&[D]` for
    /// the last), with a learned γ and β and PyTorch's `ε = 1e-5`.
    pub fn new(normalized_shape: &[usize]) -> LayerNorm {
        assert!(
            !normalized_shape.is_empty(),
            "LayerNorm: normalized_shape is empty"
        );
        LayerNorm {
            weight: Some(Tensor::ones(normalized_shape).requires_grad()),
            bias: Some(Tensor::zeros(normalized_shape).requires_grad()),
            eps: 1e-5,
            normalized_shape: normalized_shape.to_vec(),
        }
    }

    /// Layer norm without γ and β (`elementwise_affine=False`).
    pub fn without_affine(normalized_shape: &[usize]) -> LayerNorm {
        LayerNorm {
            weight: None,
            bias: None,
            ..LayerNorm::new(normalized_shape)
        }
    }

    /// The same layer with `ε = eps` (builder style).
    pub fn with_eps(mut self, eps: f32) -> LayerNorm {
        self.eps = eps;
        self
    }

    /// The normalised trailing dimensions.
    pub fn normalized_shape(&self) -> &[usize] {
        &self.normalized_shape
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        let k = self.normalized_shape.len();
        assert!(
            x.rank() >= k && x.dims()[x.rank() - k..] == self.normalized_shape[..],
            "LayerNorm: input {:?} does not end in {:?}",
            x.shape(),
            self.normalized_shape
        );
        let dims: Vec<isize> = (1..=k as isize).map(|i| -i).collect();
        // Centre once and reuse it for the variance (rather than `var`, which
        // would compute the mean a second time).
        let xc = x.sub(&x.mean(&dims, true));
        let rstd = xc.sqr().mean(&dims, true).add_scalar(self.eps).powf(-0.5);
        let mut y = xc.mul(&rstd);
        if let Some(w) = &self.weight {
            y = y.mul(w);
        }
        if let Some(b) = &self.bias {
            y = y.add(b);
        }
        y
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = Vec::new();
        p.extend(
            self.weight
                .iter()
                .map(|w| ("weight".to_string(), w.clone())),
        );
        p.extend(self.bias.iter().map(|b| ("bias".to_string(), b.clone())));
        p
    }

    fn describe(&self) -> String {
        format!("LayerNorm({:?})", self.normalized_shape)
    }
}
