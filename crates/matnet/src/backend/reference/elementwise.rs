//! The definition of every elementwise kind, one element at a time; `exp`,
//! `tanh` and the sigmoid in f64 (the CPU backend's fast polynomials are
//! tested against these).

use crate::backend::special::{gelu_derivative, normal_cdf};
use crate::backend::{BinaryKind, UnaryKind};

/// `op(x)`.
pub(super) fn unary(op: UnaryKind, x: f32) -> f32 {
    let xd = x as f64;
    match op {
        UnaryKind::Neg => -x,
        UnaryKind::Exp => xd.exp() as f32,
        UnaryKind::Log => x.ln(),
        UnaryKind::Sqrt => x.sqrt(),
        UnaryKind::Sqr => x * x,
        UnaryKind::Abs => x.abs(),
        UnaryKind::Relu => x.max(0.0),
        UnaryKind::Sigmoid => (1.0 / (1.0 + (-xd).exp())) as f32,
        UnaryKind::Tanh => xd.tanh() as f32,
        UnaryKind::Gelu => x * normal_cdf(x),
        UnaryKind::GeluDerivative => gelu_derivative(x),
        UnaryKind::Sign => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        UnaryKind::Affine { mul, add } => x * mul + add,
        UnaryKind::Powf(e) => x.powf(e),
        UnaryKind::Clamp { lo, hi } => x.clamp(lo, hi),
        UnaryKind::LeakyRelu(k) => {
            if x > 0.0 {
                x
            } else {
                k * x
            }
        }
        UnaryKind::CmpScalar(k, v) => k.eval(x, v),
    }
}

/// `op(a, b)`.
pub(super) fn binary(op: BinaryKind, a: f32, b: f32) -> f32 {
    match op {
        BinaryKind::Add => a + b,
        BinaryKind::Sub => a - b,
        BinaryKind::Mul => a * b,
        BinaryKind::Div => a / b,
        BinaryKind::LeakyReluBackward(slope) => {
            if b > 0.0 {
                a
            } else if slope == 0.0 {
                0.0
            } else {
                slope * a
            }
        }
        BinaryKind::Cmp(k) => k.eval(a, b),
    }
}

/// `σ(x)` in f64.
pub(super) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}
