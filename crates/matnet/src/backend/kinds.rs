//! The parameters of the primitives: which elementwise function, which
//! reduction, which optimizer rule. Plain enums rather than closures, so a
//! backend that cannot run Rust closures (a GPU) can still implement them.

/// A comparison; the result is 1.0 where it holds, else 0.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpKind {
    /// `a == b`
    Eq,
    /// `a != b`
    Ne,
    /// `a < b`
    Lt,
    /// `a <= b`
    Le,
    /// `a > b`
    Gt,
    /// `a >= b`
    Ge,
}

impl CmpKind {
    /// 1.0 where `a ⋄ b` holds, else 0.0.
    #[inline(always)]
    pub fn eval(self, a: f32, b: f32) -> f32 {
        let holds = match self {
            CmpKind::Eq => a == b,
            CmpKind::Ne => a != b,
            CmpKind::Lt => a < b,
            CmpKind::Le => a <= b,
            CmpKind::Gt => a > b,
            CmpKind::Ge => a >= b,
        };
        if holds { 1.0 } else { 0.0 }
    }
}

/// An elementwise function of one tensor, with its scalar parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryKind {
    /// `-x`
    Neg,
    /// `eˣ`
    Exp,
    /// `ln x`
    Log,
    /// `√x`
    Sqrt,
    /// `x²`
    Sqr,
    /// `|x|`
    Abs,
    /// `max(x, 0)`
    Relu,
    /// `1 / (1 + e⁻ˣ)`
    Sigmoid,
    /// `tanh x`
    Tanh,
    /// `x·Φ(x)`, Φ the standard normal CDF.
    Gelu,
    /// `Φ(x) + x·φ(x)`, the derivative of GELU.
    GeluDerivative,
    /// -1, 0 or 1.
    Sign,
    /// `x·mul + add`
    Affine {
        /// Factor.
        mul: f32,
        /// Offset.
        add: f32,
    },
    /// `xᵉ`
    Powf(f32),
    /// `min(max(x, lo), hi)`
    Clamp {
        /// Lower bound.
        lo: f32,
        /// Upper bound.
        hi: f32,
    },
    /// `x` for `x > 0`, else `slope·x`.
    LeakyRelu(f32),
    /// `x ⋄ v` against a scalar, as 1.0 / 0.0.
    CmpScalar(CmpKind, f32),
}

/// An elementwise function of two same-shaped (already broadcast) views.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinaryKind {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a · b`
    Mul,
    /// `a / b`
    Div,
    /// `a` where `b > 0`, else `slope · a` (the backward rule of leaky
    /// ReLU, and of ReLU with slope 0, which gives exactly 0: `a` the
    /// gradient, `b` the input).
    LeakyReluBackward(f32),
    /// `a ⋄ b` as 1.0 / 0.0.
    Cmp(CmpKind),
}

/// A reduction over some axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    /// `Σ`
    Sum,
    /// The maximum (a NaN wins, as in PyTorch).
    Max,
    /// The position of the first maximum, row-major over the reduced axes,
    /// as f32.
    Argmax,
}

/// One optimizer update rule with its constants for this step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimRule {
    /// SGD as PyTorch: `g += wd·p; v = μ·v + g; p -= lr·(nesterov ? g + μ·v : v)`.
    /// With `momentum == 0` there is no velocity and the state is empty.
    Sgd {
        /// Learning rate.
        lr: f32,
        /// μ; 0 for plain SGD.
        momentum: f32,
        /// L2 weight decay.
        weight_decay: f32,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// Adam / AdamW; the state holds `m` then `v` (`2n` values):
    /// `g += l2·p; m = β₁m + (1-β₁)g; v = β₂v + (1-β₂)g²;`
    /// `p = shrink·p - step·m / (√v·inv_c2s + ε)`.
    Adam {
        /// β₁
        b1: f32,
        /// β₂
        b2: f32,
        /// `lr / (1 - β₁ᵗ)`
        step: f32,
        /// `1 / √(1 - β₂ᵗ)`
        inv_c2s: f32,
        /// ε
        eps: f32,
        /// Adam's L2 term (0 for AdamW).
        l2: f32,
        /// AdamW's decoupled decay factor `1 - lr·wd` (1 for Adam).
        shrink: f32,
    },
}

impl OptimRule {
    /// State values per parameter element (velocity, or Adam's `m` and `v`).
    pub fn state_per_element(&self) -> usize {
        match self {
            OptimRule::Sgd { momentum, .. } => usize::from(*momentum != 0.0),
            OptimRule::Adam { .. } => 2,
        }
    }
}
