use crate::params::{ConvGeom, ConvShape};
use crate::tensor::Tensor;

/// Elementwise binary operations (with broadcasting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a ⊙ b` (Hadamard product)
    Mul,
    /// `a / b`
    Div,
}

/// Elementwise unary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
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
    /// `x·Φ(x)` with the exact normal CDF.
    Gelu,
}

/// What produced a tensor: the op and its inputs. The backward pass matches
/// on this exhaustively, so an op without a gradient rule does not compile.
#[derive(Clone)]
pub enum Op {
    /// Broadcasting elementwise binary op.
    Binary(Tensor, Tensor, BinaryOp),
    /// Elementwise unary op.
    Unary(Tensor, UnaryOp),
    /// `x·mul + add` with scalars.
    Affine(Tensor, f32, f32),
    /// `xᵉ` for a scalar exponent.
    Powf(Tensor, f32),
    /// `min(max(x, lo), hi)`.
    Clamp(Tensor, f32, f32),
    /// `x` for `x > 0`, else `slope·x`.
    LeakyRelu(Tensor, f32),
    /// `cond ? a : b` elementwise (cond holds 0/1 and gets no gradient).
    Where(Tensor, Tensor, Tensor),
    /// Matrix product of the last two dimensions, batch dimensions broadcast.
    Matmul(Tensor, Tensor),
    /// Sum over the listed dimensions (output keeps or drops them).
    Sum(Tensor, Vec<usize>),
    /// Maximum over the listed dimensions.
    Max(Tensor, Vec<usize>),
    /// Softmax along a dimension.
    Softmax(Tensor, usize),
    /// Log-softmax along a dimension.
    LogSoftmax(Tensor, usize),
    /// Same elements, new shape.
    Reshape(Tensor),
    /// Reordered dimensions.
    Permute(Tensor, Vec<usize>),
    /// A slice `start..start+len` of one dimension (dim, start).
    Narrow(Tensor, usize, usize),
    /// Concatenation along a dimension.
    Cat(Vec<Tensor>, usize),
    /// Broadcast view to a larger shape.
    BroadcastTo(Tensor),
    /// A contiguous copy.
    Copy(Tensor),
    /// `out[i][j] = src[i][index[i][j]]` along a dimension (src, dim, index).
    Gather(Tensor, usize, Tensor),
    /// Slices of `src` chosen by a 1-D index along a dimension (src, dim, index).
    IndexSelect(Tensor, usize, Tensor),
    /// Image patches unfolded into columns.
    Im2col(Tensor, ConvGeom),
    /// Columns folded back into images (overlaps summed).
    Col2im(Tensor, ConvGeom),
    /// 2-D convolution (input, weight, bias `[O]` if any).
    Conv2d(Tensor, Tensor, Option<Tensor>, ConvShape),
    /// Transposed convolution without bias (input, weight): the adjoint of
    /// `Conv2d` with that shape.
    ConvTranspose2d(Tensor, Tensor, ConvShape),
    /// Max pooling (input, chosen flat indices, input plane size).
    MaxPool2d(Tensor, Tensor, (usize, usize)),
    /// Values placed at given plane indices (values, indices).
    MaxUnpool2d(Tensor, Tensor),
    /// The fused LSTM cell (gate pre-activations, previous cell state).
    LstmCell(Tensor, Tensor),
    /// A fused LSTM layer (input projections, W_hh, h0, c0, the gate bias
    /// if any) and the gate values its forward pass saved for the backward
    /// pass.
    LstmLayer(Tensor, Tensor, Tensor, Tensor, Option<Tensor>, Tensor),
}

impl Op {
    /// The tensors this op read.
    pub fn inputs(&self) -> Vec<&Tensor> {
        match self {
            Op::Binary(a, b, _)
            | Op::Matmul(a, b)
            | Op::ConvTranspose2d(a, b, _)
            | Op::LstmCell(a, b) => vec![a, b],
            Op::Where(c, a, b) => vec![c, a, b],
            Op::Conv2d(x, w, b, _) => [x, w].into_iter().chain(b).collect(),
            Op::Unary(x, _)
            | Op::Affine(x, _, _)
            | Op::Powf(x, _)
            | Op::Clamp(x, _, _)
            | Op::LeakyRelu(x, _)
            | Op::Sum(x, _)
            | Op::Max(x, _)
            | Op::Softmax(x, _)
            | Op::LogSoftmax(x, _)
            | Op::Reshape(x)
            | Op::Permute(x, _)
            | Op::Narrow(x, _, _)
            | Op::BroadcastTo(x)
            | Op::Copy(x)
            | Op::Gather(x, _, _)
            | Op::IndexSelect(x, _, _)
            | Op::Im2col(x, _)
            | Op::Col2im(x, _)
            | Op::MaxPool2d(x, _, _)
            | Op::MaxUnpool2d(x, _) => vec![x],
            Op::Cat(xs, _) => xs.iter().collect(),
            Op::LstmLayer(xp, w, h0, c0, b, _) => [xp, w, h0, c0].into_iter().chain(b).collect(),
        }
    }

    /// A short name for messages and tables: [`OpKind::name`](super::OpKind::name) of [`Op::kind`].
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}
