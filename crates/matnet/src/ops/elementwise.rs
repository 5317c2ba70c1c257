//! Elementwise arithmetic with NumPy broadcasting, activations, comparisons
//! and `where`.

use super::{view, with_storages};
use crate::autograd::{BinaryOp, Op, UnaryOp};
use crate::backend::{BinaryKind, CmpKind, Storage, UnaryKind};
use crate::shape::Shape;
use crate::tensor::Tensor;

impl Tensor {
    fn binary(&self, rhs: &Tensor, op: Option<BinaryOp>, name: &str, kind: BinaryKind) -> Tensor {
        let shape = Shape::broadcast(self.shape(), rhs.shape(), name);
        let la = self.layout().broadcast_to(&shape);
        let lb = rhs.layout().broadcast_to(&shape);
        let data = with_storages(name, &[self, rhs], |s| {
            Storage::binary(view(s[0], &la), view(s[1], &lb), kind)
        });
        match op {
            Some(k) => Tensor::from_op(data, shape, Op::Binary(self.clone(), rhs.clone(), k)),
            None => Tensor::from_storage(data, shape),
        }
    }

    fn unary_with(&self, op: Option<Op>, kind: UnaryKind) -> Tensor {
        let data = Storage::unary(view(&self.storage(), self.layout()), kind);
        match op {
            Some(op) => Tensor::from_op(data, self.shape().clone(), op),
            None => Tensor::from_storage(data, self.shape().clone()),
        }
    }

    fn unary(&self, op: UnaryOp, kind: UnaryKind) -> Tensor {
        self.unary_with(Some(Op::Unary(self.clone(), op)), kind)
    }

    /// `self + rhs`, broadcasting.
    ///
    /// # Shapes
    /// Trailing dimensions are aligned; each pair must be equal or contain a 1:
    /// `[N, D] + [D] -> [N, D]`.
    pub fn add(&self, rhs: &Tensor) -> Tensor {
        self.binary(rhs, Some(BinaryOp::Add), "add", BinaryKind::Add)
    }

    /// `self - rhs`, broadcasting.
    pub fn sub(&self, rhs: &Tensor) -> Tensor {
        self.binary(rhs, Some(BinaryOp::Sub), "sub", BinaryKind::Sub)
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
        self.binary(rhs, Some(BinaryOp::Mul), "mul", BinaryKind::Mul)
    }

    /// `self / rhs`, broadcasting.
    pub fn div(&self, rhs: &Tensor) -> Tensor {
        self.binary(rhs, Some(BinaryOp::Div), "div", BinaryKind::Div)
    }

    /// `self·mul + add` with scalars (one pass, one node).
    pub fn affine(&self, mul: f32, add: f32) -> Tensor {
        self.unary_with(
            Some(Op::Affine(self.clone(), mul, add)),
            UnaryKind::Affine { mul, add },
        )
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
        self.unary(UnaryOp::Neg, UnaryKind::Neg)
    }

    /// `eˣ` elementwise.
    pub fn exp(&self) -> Tensor {
        self.unary(UnaryOp::Exp, UnaryKind::Exp)
    }

    /// Natural logarithm elementwise.
    pub fn log(&self) -> Tensor {
        self.unary(UnaryOp::Log, UnaryKind::Log)
    }

    /// Square root elementwise.
    pub fn sqrt(&self) -> Tensor {
        self.unary(UnaryOp::Sqrt, UnaryKind::Sqrt)
    }

    /// `x²` elementwise.
    pub fn sqr(&self) -> Tensor {
        self.unary(UnaryOp::Sqr, UnaryKind::Sqr)
    }

    /// `|x|` elementwise.
    pub fn abs(&self) -> Tensor {
        self.unary(UnaryOp::Abs, UnaryKind::Abs)
    }

    /// `max(x, 0)`.
    pub fn relu(&self) -> Tensor {
        self.unary(UnaryOp::Relu, UnaryKind::Relu)
    }

    /// Logistic sigmoid `1 / (1 + e⁻ˣ)`, stable for large |x|.
    pub fn sigmoid(&self) -> Tensor {
        self.unary(UnaryOp::Sigmoid, UnaryKind::Sigmoid)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Tensor {
        self.unary(UnaryOp::Tanh, UnaryKind::Tanh)
    }

    /// GELU with the exact normal CDF: `x·Φ(x)` (PyTorch's default form).
    pub fn gelu(&self) -> Tensor {
        self.unary(UnaryOp::Gelu, UnaryKind::Gelu)
    }

    /// `xᵉ` elementwise for a scalar exponent.
    pub fn powf(&self, e: f32) -> Tensor {
        self.unary_with(Some(Op::Powf(self.clone(), e)), UnaryKind::Powf(e))
    }

    /// Clamps every element to `[lo, hi]`.
    pub fn clamp(&self, lo: f32, hi: f32) -> Tensor {
        assert!(lo <= hi, "clamp: lower bound {lo} exceeds upper bound {hi}");
        self.unary_with(
            Some(Op::Clamp(self.clone(), lo, hi)),
            UnaryKind::Clamp { lo, hi },
        )
    }

    /// `x` for `x > 0`, else `slope·x`.
    pub fn leaky_relu(&self, slope: f32) -> Tensor {
        self.unary_with(
            Some(Op::LeakyRelu(self.clone(), slope)),
            UnaryKind::LeakyRelu(slope),
        )
    }

    /// Sign (-1, 0 or 1) elementwise; no gradient (it is 0 almost everywhere).
    pub fn sign(&self) -> Tensor {
        self.unary_with(None, UnaryKind::Sign)
    }

    /// `self` where `x > 0`, else `slope · self`: the backward rule of
    /// (leaky) ReLU in one pass, rather than building a mask and
    /// multiplying (three passes).
    pub(crate) fn leaky_relu_backward(&self, x: &Tensor, slope: f32) -> Tensor {
        self.binary(
            x,
            None,
            "leaky_relu_backward",
            BinaryKind::LeakyReluBackward(slope),
        )
    }

    /// d/dx of GELU, `Φ(x) + x·φ(x)`; used by its backward rule.
    pub(crate) fn gelu_derivative(&self) -> Tensor {
        self.unary_with(None, UnaryKind::GeluDerivative)
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
        let data = with_storages("where", &[cond, a, b], |s| {
            Storage::where_cond(view(s[0], &lc), view(s[1], &la), view(s[2], &lb))
        });
        // The mask is stored as 0/1 so the backward rule can multiply by it.
        let mask = cond.ne_scalar(0.0);
        Tensor::from_op(data, shape, Op::Where(mask, a.clone(), b.clone()))
    }
}

macro_rules! comparisons {
    ($($name:ident, $sname:ident, $kind:ident, $doc:literal;)*) => {
        impl Tensor {
            $(
                #[doc = concat!("1.0 where `self ", $doc, " rhs`, else 0.0 (broadcasting; no gradient).")]
                pub fn $name(&self, rhs: &Tensor) -> Tensor {
                    self.binary(rhs, None, stringify!($name), BinaryKind::Cmp(CmpKind::$kind))
                }

                #[doc = concat!("1.0 where `self ", $doc, " v`, else 0.0 (no gradient).")]
                pub fn $sname(&self, v: f32) -> Tensor {
                    self.unary_with(None, UnaryKind::CmpScalar(CmpKind::$kind, v))
                }
            )*
        }
    };
}

comparisons! {
    eq, eq_scalar, Eq, "==";
    ne, ne_scalar, Ne, "!=";
    lt, lt_scalar, Lt, "<";
    le, le_scalar, Le, "<=";
    gt, gt_scalar, Gt, ">";
    ge, ge_scalar, Ge, ">=";
}
