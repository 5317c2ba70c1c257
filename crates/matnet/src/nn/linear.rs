use super::{Init, Module};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// Fully connected layer `Y = X·Wᵀ + b`.
///
/// `W` is stored `[D_out, D_in]` (PyTorch's layout); `Wᵀ` is a strided view,
/// so no copy is made. Backward, by autograd:
/// `grad_X = grad_Y · W`, `grad_W = grad_Yᵀ · X`, `grad_b = Σ_N grad_Y`.
///
/// # Shapes
/// `[N, D_in] -> [N, D_out]`; leading dimensions are kept:
/// `[N, T, D_in] -> [N, T, D_out]`.
pub struct Linear {
    /// `[D_out, D_in]`
    pub weight: Tensor,
    /// `[D_out]`, if the layer has a bias.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// A layer with PyTorch's default initialisation `U(±1/√D_in)`.
    pub fn new(d_in: usize, d_out: usize, rng: &mut Rng) -> Linear {
        Linear::with_init(d_in, d_out, Init::TorchDefault, Init::TorchDefault, rng)
    }

    /// A layer with chosen weight and bias initialisers.
    pub fn with_init(d_in: usize, d_out: usize, weight: Init, bias: Init, rng: &mut Rng) -> Linear {
        Linear {
            weight: weight
                .tensor([d_out, d_in], d_in, d_out, rng)
                .requires_grad(),
            bias: Some(bias.tensor([d_out], d_in, d_out, rng).requires_grad()),
        }
    }

    /// Input features.
    pub fn d_in(&self) -> usize {
        self.weight.dims()[1]
    }

    /// Output features.
    pub fn d_out(&self) -> usize {
        self.weight.dims()[0]
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Tensor {
        assert_eq!(
            x.dim(-1),
            self.d_in(),
            "Linear: input shape {:?} does not end in {} features",
            x.shape(),
            self.d_in()
        );
        let y = x.matmul(&self.weight.t());
        match &self.bias {
            Some(b) => y.add(b),
            None => y,
        }
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        super::weight_and_bias(&self.weight, self.bias.as_ref())
    }

    fn describe(&self) -> String {
        format!("Linear({} -> {})", self.d_in(), self.d_out())
    }
}
