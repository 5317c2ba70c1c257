//! Elementwise arithmetic with NumPy broadcasting, activations, comparisons
//! and `where`.

use super::with_slices;
use crate::autograd::{BinaryOp, Op, UnaryOp};
use crate::backend::cpu;
use crate::shape::Shape;
use crate::tensor::Tensor;

impl Tensor {
    fn binary(
        &self,
        rhs: &Tensor,
        op: Option<BinaryOp>,
        name: &str,
        f: impl Fn(f32, f32) -> f32 + Sync,
    ) -> Tensor {
        let shape = Shape::broadcast(self.shape(), rhs.shape(), name);
        let la = self.layout().broadcast_to(&shape);
        let lb = rhs.layout().broadcast_to(&shape);
        let data = with_slices(&[self, rhs], |s| cpu::map2(s[0], &la, s[1], &lb, f));
        let op = op.map(|k| Op::Binary(self.clone(), rhs.clone(), k));
        Tensor::from_parts(data, shape, op)
    }

    fn unary_with(&self, op: Option<Op>, f: impl Fn(f32) -> f32 + Sync) -> Tensor {
        let data = cpu::map1(self.storage().as_slice(), self.layout(), f);
        Tensor::from_parts(data, self.shape().clone(), op)
    }

    fn unary(&self, kind: UnaryOp, f: impl Fn(f32) -> f32 + Sync) -> Tensor {
        self.unary_with(Some(Op::Unary(self.clone(), kind)), f)
    }

    /// `self + rhs`, broadcasting.
    ///
    /// # Shapes
    /// Trailing dimensions are aligned; each pair must be equal or contain a 1:
    /// `[N, D] + [D] -> [N, D]`.
    pub fn add(&self, rhs: &Tensor) -> Tensor {
        self.binary(rhs, Some(BinaryOp::Add), "add", |a, b| a + b)
    }

    /// `self - rhs`, broadcasting.
    pub fn sub(&self, rhs: &Tensor) -> Tensor {
        self.binary(rhs, Some(BinaryOp::Sub), "sub", |a, b| a - b)
    }

    /// Hadamard (elementwise) product `self ⊙ rhs`, broadcasting.
    ///
    /// ```
    /// use matnet::Tensor;
    /// let a = Tensor::from_vec(vec![0.5, 3.6, 15.1], [3]);
    /// let b = Tensor::from_vec(vec![0.0, 0.9, 0.1], [3]);
    /// let c = a.mul(&b).to_vec();
    /// assert!((c[1] - 3.24).abs() < 1e-6 && (c[2] - 1.51).abs() < 1e-6);
    /// ```
    pub fn mul(&self, rhs: &Tensor) -> Tensor {
        self.binary(rhs, Some(BinaryOp::Mul), "mul", |a, b| a * b)
    }

    /// `self / rhs`, broadcasting.
    pub fn div(&self, rhs: &Tensor) -> Tensor {
        self.binary(rhs, Some(BinaryOp::Div), "div", |a, b| a / b)
    }

    /// `self·mul + add` with scalars (one pass, one node).
    pub fn affine(&self, mul: f32, add: f32) -> Tensor {
        self.unary_with(Some(Op::Affine(self.clone(), mul, add)), move |x| {
            x * mul + add
        })
    }

    /// `self + v`.
    pub fn add_scalar(&self, v: f32) -> Tensor {
        self.affine(1.0, v)
    }

    /// `self - v`.
    pub fn sub_scalar(&self, v: f32) -> Tensor {
        self.affine(1.0, -v)
    }

    /// `self · v`.
    pub fn mul_scalar(&self, v: f32) -> Tensor {
        self.affine(v, 0.0)
    }

    /// `self / v`.
    pub fn div_scalar(&self, v: f32) -> Tensor {
        self.affine(1.0 / v, 0.0)
    }

    /// `-self`.
    pub fn neg(&self) -> Tensor {
        self.unary(UnaryOp::Neg, |x| -x)
    }

    /// `eˣ` elementwise.
    pub fn exp(&self) -> Tensor {
        self.unary(UnaryOp::Exp, cpu::math::exp)
    }

    /// Natural logarithm elementwise.
    pub fn log(&self) -> Tensor {
        self.unary(UnaryOp::Log, f32::ln)
    }

    /// Square root elementwise.
    pub fn sqrt(&self) -> Tensor {
        self.unary(UnaryOp::Sqrt, f32::sqrt)
    }

    /// `x²` elementwise.
    pub fn sqr(&self) -> Tensor {
        self.unary(UnaryOp::Sqr, |x| x * x)
    }

    /// `|x|` elementwise.
    pub fn abs(&self) -> Tensor {
        self.unary(UnaryOp::Abs, f32::abs)
    }

    /// `max(x, 0)`.
    pub fn relu(&self) -> Tensor {
        self.unary(UnaryOp::Relu, |x| x.max(0.0))
    }

    /// Logistic sigmoid `1 / (1 + e⁻ˣ)`, stable for large |x|.
    pub fn sigmoid(&self) -> Tensor {
        self.unary(UnaryOp::Sigmoid, cpu::math::sigmoid)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Tensor {
        self.unary(UnaryOp::Tanh, cpu::math::tanh)
    }

    /// GELU with the exact normal CDF: `x·Φ(x)` (PyTorch's default form).
    pub fn gelu(&self) -> Tensor {
        self.unary(UnaryOp::Gelu, |x| x * normal_cdf(x))
    }

    /// `xᵉ` elementwise for a scalar exponent.
    pub fn powf(&self, e: f32) -> Tensor {
        self.unary_with(Some(Op::Powf(self.clone(), e)), move |x| x.powf(e))
    }

    /// Clamps every element to `[lo, hi]`.
    pub fn clamp(&self, lo: f32, hi: f32) -> Tensor {
        assert!(lo <= hi, "clamp: lower bound {lo} exceeds upper bound {hi}");
        self.unary_with(Some(Op::Clamp(self.clone(), lo, hi)), move |x| {
            x.clamp(lo, hi)
        })
    }

    /// `x` for `x > 0`, else `slope·x`.
    pub fn leaky_relu(&self, slope: f32) -> Tensor {
        self.unary_with(Some(Op::LeakyRelu(self.clone(), slope)), move |x| {
            if x > 0.0 { x } else { slope * x }
        })
    }

    /// Sign (-1, 0 or 1) elementwise; no gradient (it is 0 almost everywhere).
    pub fn sign(&self) -> Tensor {
        self.unary_with(None, |x| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        })
    }

    /// `self` where `x > 0`, else 0: ReLU's backward rule in one pass
    /// (rather than building a 0/1 mask and multiplying).
    pub(crate) fn relu_backward(&self, x: &Tensor) -> Tensor {
        self.binary(
            x,
            None,
            "relu_backward",
            |g, x| if x > 0.0 { g } else { 0.0 },
        )
    }

    /// d/dx of GELU, `Φ(x) + x·φ(x)`; used by its backward rule.
    pub(crate) fn gelu_derivative(&self) -> Tensor {
        self.unary_with(None, |x| {
            let pdf = (-0.5 * x * x).exp() * 0.398_942_3;
            normal_cdf(x) + x * pdf
        })
    }

    /// `cond ? a : b` elementwise, broadcasting all three; `cond` is non-zero
    /// for true and receives no gradient.
    pub fn where_cond(cond: &Tensor, a: &Tensor, b: &Tensor) -> Tensor {
        let shape = Shape::broadcast(
            &Shape::broadcast(cond.shape(), a.shape(), "where"),
            b.shape(),
            "where",
        );
        let (lc, la, lb) = (
            cond.layout().broadcast_to(&shape),
            a.layout().broadcast_to(&shape),
            b.layout().broadcast_to(&shape),
        );
        let data = with_slices(&[cond, a, b], |s| {
            cpu::map3(s[0], &lc, s[1], &la, s[2], &lb, |c, x, y| {
                if c != 0.0 { x } else { y }
            })
        });
        // The mask is stored as 0/1 so the backward rule can multiply by it.
        let mask = cond.ne_scalar(0.0);
        Tensor::from_parts(data, shape, Some(Op::Where(mask, a.clone(), b.clone())))
    }
}

macro_rules! comparisons {
    ($($name:ident, $sname:ident, $op:tt, $doc:literal;)*) => {
        impl Tensor {
            $(
                #[doc = concat!("1.0 where `self ", $doc, " rhs`, else 0.0 (broadcasting; no gradient).")]
                pub fn $name(&self, rhs: &Tensor) -> Tensor {
                    self.binary(rhs, None, stringify!($name), |a, b| if a $op b { 1.0 } else { 0.0 })
                }

                #[doc = concat!("1.0 where `self ", $doc, " v`, else 0.0 (no gradient).")]
                pub fn $sname(&self, v: f32) -> Tensor {
                    self.unary_with(None, move |a| if a $op v { 1.0 } else { 0.0 })
                }
            )*
        }
    };
}

comparisons! {
    eq, eq_scalar, ==, "==";
    ne, ne_scalar, !=, "!=";
    lt, lt_scalar, <, "<";
    le, le_scalar, <=, "<=";
    gt, gt_scalar, >, ">";
    ge, ge_scalar, >=, ">=";
}

/// Standard normal CDF through erfc, Chebyshev-fitted with relative error
/// below 1.2e-7 (evaluated in f64, then rounded).
pub(crate) fn normal_cdf(x: f32) -> f32 {
    (0.5 * erfc(-(x as f64) * std::f64::consts::FRAC_1_SQRT_2)) as f32
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 { r } else { 2.0 - r }
}
