//! Weight initialisation schemes.

use crate::rng::Rng;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// How to draw a weight matrix. `fan_in`/`fan_out` are the number of inputs
/// and outputs of each unit (for a conv kernel, channels × kernel area).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// He/Kaiming normal for ReLU nets: `N(0, 2 / fan_in)`.
    KaimingNormal,
    /// He/Kaiming uniform: `U(±√(6 / fan_in))`.
    KaimingUniform,
    /// Xavier/Glorot normal: `N(0, 2 / (fan_in + fan_out))`.
    XavierNormal,
    /// Xavier/Glorot uniform: `U(±√(6 / (fan_in + fan_out)))`.
    XavierUniform,
    /// `U(lo, hi)`, e.g. the source documents' `U(-0.5, 0.5)`.
    Uniform(f32, f32),
    /// PyTorch's default for Linear/Conv: `U(±1/√fan_in)`.
    TorchDefault,
    /// All zeros (biases).
    Zeros,
}

impl Init {
    /// A tensor of `shape` drawn with this scheme.
    pub fn tensor(
        self,
        shape: impl Into<Shape>,
        fan_in: usize,
        fan_out: usize,
        rng: &mut Rng,
    ) -> Tensor {
        let shape = shape.into();
        let (fi, fo) = (fan_in.max(1) as f32, fan_out.max(1) as f32);
        match self {
            Init::KaimingNormal => Tensor::randn(shape, 0.0, (2.0 / fi).sqrt(), rng),
            Init::KaimingUniform => {
                let b = (6.0 / fi).sqrt();
                Tensor::rand_uniform(shape, -b, b, rng)
            }
            Init::XavierNormal => Tensor::randn(shape, 0.0, (2.0 / (fi + fo)).sqrt(), rng),
            Init::XavierUniform => {
                let b = (6.0 / (fi + fo)).sqrt();
                Tensor::rand_uniform(shape, -b, b, rng)
            }
            Init::Uniform(lo, hi) => Tensor::rand_uniform(shape, lo, hi, rng),
            Init::TorchDefault => {
                let b = 1.0 / fi.sqrt();
                Tensor::rand_uniform(shape, -b, b, rng)
            }
            Init::Zeros => Tensor::zeros(shape),
        }
    }
}
