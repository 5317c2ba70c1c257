//! [`OpKind`]: which op produced a tensor, without its inputs, for code that
//! describes ops (`matnet explain`, the profiler) rather than runs them.
//!
//! Matching on this enum instead of on name strings means a new op cannot
//! slip past a description or a FLOP count: every exhaustive `match` over
//! `OpKind` stops compiling until the new kind is handled there.

use super::op::{BinaryOp, Op, UnaryOp};

// One list gives the variants, their display names and `OpKind::ALL`, so the
// three can never disagree.
macro_rules! op_kinds {
    ($($(#[doc = $doc:literal])* $kind:ident => $name:literal,)*) => {
        /// The kind of an [`Op`]: one fieldless variant per op, with the
        /// binary and unary families spelled out (`Add`, `Relu`, ...).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum OpKind {
            $($(#[doc = $doc])* $kind,)*
        }

        impl OpKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [OpKind] = &[$(OpKind::$kind,)*];

            /// The PyTorch-style name (`matmul`, `log_softmax`, ...), for
            /// messages and tables.
            pub fn name(self) -> &'static str {
                match self {
                    $(OpKind::$kind => $name,)*
                }
            }
        }
    };
}

op_kinds! {
    /// `a + b`
    Add => "add",
    /// `a - b`
    Sub => "sub",
    /// `a ⊙ b`
    Mul => "mul",
    /// `a / b`
    Div => "div",
    /// `-x`
    Neg => "neg",
    /// `eˣ`
    Exp => "exp",
    /// `ln x`
    Log => "log",
    /// `√x`
    Sqrt => "sqrt",
    /// `x²`
    Sqr => "sqr",
    /// `|x|`
    Abs => "abs",
    /// `max(x, 0)`
    Relu => "relu",
    /// `1 / (1 + e⁻ˣ)`
    Sigmoid => "sigmoid",
    /// `tanh x`
    Tanh => "tanh",
    /// `x·Φ(x)`
    Gelu => "gelu",
    /// `x·mul + add`
    Affine => "affine",
    /// `xᵉ`
    Powf => "powf",
    /// `min(max(x, lo), hi)`
    Clamp => "clamp",
    /// `x` or `slope·x`
    LeakyRelu => "leaky_relu",
    /// `cond ? a : b`
    Where => "where",
    /// Matrix product of the last two dimensions.
    Matmul => "matmul",
    /// Sum over dimensions.
    Sum => "sum",
    /// Maximum over dimensions.
    Max => "max",
    /// Softmax along a dimension.
    Softmax => "softmax",
    /// Log-softmax along a dimension.
    LogSoftmax => "log_softmax",
    /// Same elements, new shape (a view).
    Reshape => "reshape",
    /// Reordered dimensions (a view).
    Permute => "permute",
    /// A slice of one dimension.
    Narrow => "narrow",
    /// Concatenation along a dimension.
    Cat => "cat",
    /// Broadcast view to a larger shape.
    BroadcastTo => "broadcast_to",
    /// A contiguous copy.
    Copy => "copy",
    /// Values picked along a dimension by an index tensor.
    Gather => "gather",
    /// Slices picked along a dimension by a 1-D index.
    IndexSelect => "index_select",
    /// Image patches unfolded into columns.
    Im2col => "im2col",
    /// Columns folded back into images.
    Col2im => "col2im",
    /// 2-D convolution.
    Conv2d => "conv2d",
    /// Transposed 2-D convolution.
    ConvTranspose2d => "conv_transpose2d",
    /// Max pooling.
    MaxPool2d => "max_pool2d",
    /// Values placed back at pooled positions.
    MaxUnpool2d => "max_unpool2d",
    /// The fused LSTM cell.
    LstmCell => "lstm_cell",
    /// The fused LSTM layer (every time step).
    LstmLayer => "lstm_layer",
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad` so table columns (`{:<10}`) line up as with a plain `&str`.
        f.pad(self.name())
    }
}

impl Op {
    /// Which op this is. Exhaustive: a new `Op` variant (or a new binary or
    /// unary op) does not compile until it has a kind here.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Binary(_, _, b) => match b {
                BinaryOp::Add => OpKind::Add,
                BinaryOp::Sub => OpKind::Sub,
                BinaryOp::Mul => OpKind::Mul,
                BinaryOp::Div => OpKind::Div,
            },
            Op::Unary(_, u) => match u {
                UnaryOp::Neg => OpKind::Neg,
                UnaryOp::Exp => OpKind::Exp,
                UnaryOp::Log => OpKind::Log,
                UnaryOp::Sqrt => OpKind::Sqrt,
                UnaryOp::Sqr => OpKind::Sqr,
                UnaryOp::Abs => OpKind::Abs,
                UnaryOp::Relu => OpKind::Relu,
                UnaryOp::Sigmoid => OpKind::Sigmoid,
                UnaryOp::Tanh => OpKind::Tanh,
                UnaryOp::Gelu => OpKind::Gelu,
            },
            Op::Affine(..) => OpKind::Affine,
            Op::Powf(..) => OpKind::Powf,
            Op::Clamp(..) => OpKind::Clamp,
            Op::LeakyRelu(..) => OpKind::LeakyRelu,
            Op::Where(..) => OpKind::Where,
            Op::Matmul(..) => OpKind::Matmul,
            Op::Sum(..) => OpKind::Sum,
            Op::Max(..) => OpKind::Max,
            Op::Softmax(..) => OpKind::Softmax,
            Op::LogSoftmax(..) => OpKind::LogSoftmax,
            Op::Reshape(..) => OpKind::Reshape,
            Op::Permute(..) => OpKind::Permute,
            Op::Narrow(..) => OpKind::Narrow,
            Op::Cat(..) => OpKind::Cat,
            Op::BroadcastTo(..) => OpKind::BroadcastTo,
            Op::Copy(..) => OpKind::Copy,
            Op::Gather(..) => OpKind::Gather,
            Op::IndexSelect(..) => OpKind::IndexSelect,
            Op::Im2col(..) => OpKind::Im2col,
            Op::Col2im(..) => OpKind::Col2im,
            Op::Conv2d(..) => OpKind::Conv2d,
            Op::ConvTranspose2d(..) => OpKind::ConvTranspose2d,
            Op::MaxPool2d(..) => OpKind::MaxPool2d,
            Op::MaxUnpool2d(..) => OpKind::MaxUnpool2d,
            Op::LstmCell(..) => OpKind::LstmCell,
            Op::LstmLayer(..) => OpKind::LstmLayer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OpKind;

    #[test]
    fn names_are_distinct_and_snake_case() {
        let mut names: Vec<&str> = OpKind::ALL.iter().map(|k| k.name()).collect();
        assert!(names.iter().all(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "two kinds share a name");
        assert_eq!(format!("{:<8}|", OpKind::Relu), "relu    |");
    }
}
