//! [`CpuStorage`]: the primitives of `BackendStorage` on the optimised CPU
//! kernels. Each elementwise kind is matched once, outside the element loop,
//! so every arm is its own monomorphised (vectorised) loop: naming ops by
//! enum costs nothing against the closures it replaced.

use std::borrow::Cow;

use super::{conv, math, pooling, recurrent, reduce, strided};
use crate::backend::{BackendStorage, BinaryKind, CmpKind, OptimRule, ReduceKind, UnaryKind, View};
use crate::layout::Layout;
use crate::params::{ConvGeom, ConvShape, LstmDims};

/// A buffer of f32 in host memory, for the CPU backend.
#[derive(Debug, Clone)]
pub struct CpuStorage(pub(crate) Vec<f32>);

type V<'a> = View<'a, CpuStorage>;

/// The elements of a view as one contiguous slice, copying only when the
/// view is strided.
pub(super) fn contiguous<'a>(x: V<'a>) -> Cow<'a, [f32]> {
    let l = x.layout;
    if l.is_contiguous() {
        Cow::Borrowed(&x.data.0[l.offset()..l.offset() + l.shape().numel()])
    } else {
        Cow::Owned(strided::copy_strided(&x.data.0, l))
    }
}

/// Index values as positions (already checked by the op).
pub(super) fn positions(index: V<'_>) -> Vec<usize> {
    contiguous(index).iter().map(|&v| v as usize).collect()
}

/// One arm per comparison, each binding `$f` to its own concrete closure, so
/// the element loop in `$body` is monomorphised per comparison.
macro_rules! cmp_arms {
    ($k:expr, |$f:ident| $body:expr) => {
        match $k {
            CmpKind::Eq => {
                let $f = |a: f32, b: f32| if a == b { 1.0 } else { 0.0 };
                $body
            }
            CmpKind::Ne => {
                let $f = |a: f32, b: f32| if a != b { 1.0 } else { 0.0 };
                $body
            }
            CmpKind::Lt => {
                let $f = |a: f32, b: f32| if a < b { 1.0 } else { 0.0 };
                $body
            }
            CmpKind::Le => {
                let $f = |a: f32, b: f32| if a <= b { 1.0 } else { 0.0 };
                $body
            }
            CmpKind::Gt => {
                let $f = |a: f32, b: f32| if a > b { 1.0 } else { 0.0 };
                $body
            }
            CmpKind::Ge => {
                let $f = |a: f32, b: f32| if a >= b { 1.0 } else { 0.0 };
                $body
            }
        }
    };
}

impl BackendStorage for CpuStorage {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn host_slice(&self) -> Option<&[f32]> {
        Some(&self.0)
    }

    fn from_host(data: Vec<f32>) -> Self {
        CpuStorage(data)
    }

    fn full(n: usize, v: f32) -> Self {
        CpuStorage(vec![v; n])
    }

    fn to_host(x: V<'_>) -> Vec<f32> {
        strided::copy_strided(&x.data.0, x.layout)
    }

    fn copy_strided(x: V<'_>) -> Self {
        CpuStorage(strided::copy_strided(&x.data.0, x.layout))
    }

    fn copy_into(dst: &mut Self, dst_layout: &Layout, src: V<'_>) {
        let (d, s) = (&mut dst.0, &src.data.0);
        strided::for_each_row([dst_layout, src.layout], |_, [bd, bs], [sd, ss], n| {
            if sd == 1 && ss == 1 {
                d[bd..bd + n].copy_from_slice(&s[bs..bs + n]);
            } else {
                for j in 0..n {
                    d[bd + j * sd] = s[bs + j * ss];
                }
            }
        });
    }

    fn unary(x: V<'_>, op: UnaryKind) -> Self {
        let (s, l) = (&x.data.0[..], x.layout);
        CpuStorage(match op {
            UnaryKind::Neg => strided::map1(s, l, |v| -v),
            UnaryKind::Exp => strided::map1(s, l, math::exp),
            UnaryKind::Log => strided::map1(s, l, f32::ln),
            UnaryKind::Sqrt => strided::map1(s, l, f32::sqrt),
            UnaryKind::Sqr => strided::map1(s, l, |v| v * v),
            UnaryKind::Abs => strided::map1(s, l, f32::abs),
            UnaryKind::Relu => strided::map1(s, l, |v| v.max(0.0)),
            UnaryKind::Sigmoid => strided::map1(s, l, math::sigmoid),
            UnaryKind::Tanh => strided::map1(s, l, math::tanh),
            UnaryKind::Gelu => strided::map1_slices(s, l, math::gelu_slice),
            UnaryKind::GeluDerivative => strided::map1_slices(s, l, math::gelu_derivative_slice),
            UnaryKind::Sign => strided::map1(s, l, |v| {
                if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }),
            UnaryKind::Affine { mul, add } => strided::map1(s, l, move |v| v * mul + add),
            UnaryKind::Powf(e) => strided::map1(s, l, move |v| v.powf(e)),
            UnaryKind::Clamp { lo, hi } => strided::map1(s, l, move |v| v.clamp(lo, hi)),
            UnaryKind::LeakyRelu(k) => {
                strided::map1(s, l, move |v| if v > 0.0 { v } else { k * v })
            }
            UnaryKind::CmpScalar(k, c) => {
                cmp_arms!(k, |f| strided::map1(s, l, move |a| f(a, c)))
            }
        })
    }

    fn binary(a: V<'_>, b: V<'_>, op: BinaryKind) -> Self {
        let (sa, la, sb, lb) = (&a.data.0[..], a.layout, &b.data.0[..], b.layout);
        CpuStorage(match op {
            BinaryKind::Add => strided::map2(sa, la, sb, lb, |p, q| p + q),
            BinaryKind::Sub => strided::map2(sa, la, sb, lb, |p, q| p - q),
            BinaryKind::Mul => strided::map2(sa, la, sb, lb, |p, q| p * q),
            BinaryKind::Div => strided::map2(sa, la, sb, lb, |p, q| p / q),
            BinaryKind::LeakyReluBackward(0.0) => {
                strided::map2(sa, la, sb, lb, |g, x| if x > 0.0 { g } else { 0.0 })
            }
            BinaryKind::LeakyReluBackward(s) => {
                strided::map2(sa, la, sb, lb, |g, x| if x > 0.0 { g } else { s * g })
            }
            BinaryKind::Cmp(k) => cmp_arms!(k, |f| strided::map2(sa, la, sb, lb, f)),
        })
    }

    fn where_cond(c: V<'_>, a: V<'_>, b: V<'_>) -> Self {
        CpuStorage(strided::map3(
            &c.data.0,
            c.layout,
            &a.data.0,
            a.layout,
            &b.data.0,
            b.layout,
            |c, x, y| if c != 0.0 { x } else { y },
        ))
    }

    fn reduce(x: V<'_>, dims: &[usize], op: ReduceKind) -> Self {
        // A sum over scattered dimensions (a per-channel sum over [0, 2, 3])
        // reads the view in place instead of copying it into order first.
        if op == ReduceKind::Sum
            && !dims.windows(2).all(|w| w[1] == w[0] + 1)
            && let Some(out) = strided::sum_runs(
                &x.data.0,
                &x.layout.permute(&kept_then(x.layout.shape().rank(), dims)),
                dims.iter().map(|&i| x.layout.shape().dims()[i]).product(),
            )
        {
            return CpuStorage(out);
        }
        CpuStorage(with_reduce_view(x, dims, |d, o, r, i| match op {
            ReduceKind::Sum => reduce::sum(d, o, r, i),
            ReduceKind::Max => reduce::max_with_index(d, o, r, i).0,
            ReduceKind::Argmax => reduce::argmax(d, o, r, i),
        }))
    }

    fn softmax(x: V<'_>, dim: usize, log: bool) -> Self {
        CpuStorage(with_reduce_view(x, &[dim], |d, o, r, i| {
            reduce::softmax(d, o, r, i, log)
        }))
    }

    fn matmul(a: V<'_>, b: V<'_>) -> Self {
        CpuStorage(super::matmul::matmul(
            &a.data.0, a.layout, &b.data.0, b.layout,
        ))
    }

    fn gather(x: V<'_>, dim: usize, index: V<'_>) -> Self {
        let (dims, idims) = (x.layout.shape().dims(), index.layout.shape().dims());
        CpuStorage(super::index::gather(
            &contiguous(x),
            dims,
            dim,
            &positions(index),
            idims,
        ))
    }

    fn scatter_add(x: V<'_>, dim: usize, index: V<'_>, src: V<'_>) -> Self {
        let (dims, idims) = (x.layout.shape().dims(), index.layout.shape().dims());
        let mut out = strided::copy_strided(&x.data.0, x.layout);
        super::index::scatter_add(
            &mut out,
            dims,
            dim,
            &positions(index),
            idims,
            &contiguous(src),
        );
        CpuStorage(out)
    }

    fn index_select(x: V<'_>, dim: usize, index: V<'_>) -> Self {
        let dims = x.layout.shape().dims();
        CpuStorage(super::index::index_select(
            &contiguous(x),
            dims,
            dim,
            &positions(index),
        ))
    }

    fn index_add(x: V<'_>, dim: usize, index: V<'_>, src: V<'_>) -> Self {
        let dims = x.layout.shape().dims();
        let mut out = strided::copy_strided(&x.data.0, x.layout);
        super::index::index_add(&mut out, dims, dim, &positions(index), &contiguous(src));
        CpuStorage(out)
    }

    fn conv2d(x: V<'_>, w: V<'_>, bias: Option<V<'_>>, s: &ConvShape) -> Self {
        let bias = bias.map(contiguous);
        CpuStorage(conv::conv2d_forward(
            &contiguous(x),
            &contiguous(w),
            bias.as_deref(),
            s,
        ))
    }

    fn conv_transpose2d(gy: V<'_>, w: V<'_>, s: &ConvShape) -> Self {
        CpuStorage(conv::conv2d_backward_data(
            &contiguous(gy),
            &contiguous(w),
            s,
        ))
    }

    fn conv2d_weight_grad(x: V<'_>, gy: V<'_>, s: &ConvShape, bias: bool) -> (Self, Option<Self>) {
        let (gw, gb) = conv::conv2d_backward_weight(&contiguous(x), &contiguous(gy), s, bias);
        (CpuStorage(gw), gb.map(CpuStorage))
    }

    fn im2col(x: V<'_>, g: &ConvGeom) -> Self {
        let d = x.layout.shape().dims();
        CpuStorage(conv::im2col(&contiguous(x), d[0], d[1], g))
    }

    fn col2im(cols: V<'_>, c: usize, g: &ConvGeom) -> Self {
        let n = cols.layout.shape().dims()[0];
        CpuStorage(conv::col2im(&contiguous(cols), n, c, g))
    }

    fn max_pool2d(x: V<'_>, g: &ConvGeom) -> (Self, Self) {
        let planes = x.layout.shape().numel() / (g.h * g.w).max(1);
        let (v, i) = pooling::max_pool2d(&contiguous(x), planes, g);
        (CpuStorage(v), CpuStorage(i))
    }

    fn max_unpool2d(x: V<'_>, idx: V<'_>, hw: usize) -> Self {
        let d = x.layout.shape().dims();
        let planes = d[0] * d[1];
        CpuStorage(pooling::max_unpool2d(
            &contiguous(x),
            &contiguous(idx),
            planes,
            hw,
        ))
    }

    fn lstm_cell(gates: V<'_>, c_prev: V<'_>) -> Self {
        let h = c_prev.layout.shape().dims()[1];
        CpuStorage(recurrent::lstm_cell_forward(
            &contiguous(gates),
            &contiguous(c_prev),
            h,
        ))
    }

    fn lstm_cell_backward(gates: V<'_>, c_prev: V<'_>, g: V<'_>) -> (Self, Self) {
        let h = c_prev.layout.shape().dims()[1];
        let (ga, gc) = recurrent::lstm_cell_backward(
            &contiguous(gates),
            &contiguous(c_prev),
            &contiguous(g),
            h,
        );
        (CpuStorage(ga), CpuStorage(gc))
    }

    fn lstm_layer(
        xp: V<'_>,
        w_hh: V<'_>,
        bias: Option<V<'_>>,
        h0: V<'_>,
        c0: V<'_>,
        d: LstmDims,
    ) -> (Self, Self) {
        let (out, gates) = recurrent::lstm_layer_forward(
            &contiguous(xp),
            &contiguous(w_hh),
            bias.map(contiguous).as_deref(),
            &contiguous(h0),
            &contiguous(c0),
            d,
        );
        (CpuStorage(out), CpuStorage(gates))
    }

    fn lstm_layer_backward(
        w_hh: V<'_>,
        h0: V<'_>,
        c0: V<'_>,
        gates: V<'_>,
        out: V<'_>,
        g: V<'_>,
        d: LstmDims,
        bias: bool,
    ) -> ([Self; 4], Option<Self>) {
        let (grads, gb) = recurrent::lstm_layer_backward(
            &contiguous(w_hh),
            &contiguous(h0),
            &contiguous(c0),
            &contiguous(gates),
            &contiguous(out),
            &contiguous(g),
            d,
            bias,
        );
        (grads.map(CpuStorage), gb.map(CpuStorage))
    }

    fn optim_step(
        param: &mut Self,
        param_layout: &Layout,
        grad: V<'_>,
        state: &mut Self,
        rule: &OptimRule,
    ) {
        let (off, n) = (param_layout.offset(), param_layout.shape().numel());
        super::optim::step(
            &mut param.0[off..off + n],
            &contiguous(grad),
            &mut state.0,
            rule,
        );
    }
}

/// Runs `kernel(data, outer, r, inner)` with the reduced axes brought into the
/// middle of a contiguous `[outer, r, inner]` view. Reduced axes that are
/// already adjacent need no copy; others are permuted to the end first.
/// The dimensions `0..rank` not in `dims`, then `dims`: a permutation that
/// puts the reduced dimensions last.
fn kept_then(rank: usize, dims: &[usize]) -> Vec<usize> {
    (0..rank)
        .filter(|i| !dims.contains(i))
        .chain(dims.iter().copied())
        .collect()
}

fn with_reduce_view<R>(
    x: V<'_>,
    dims: &[usize],
    kernel: impl FnOnce(&[f32], usize, usize, usize) -> R,
) -> R {
    let d = x.layout.shape().dims();
    let adjacent = dims.windows(2).all(|w| w[1] == w[0] + 1);
    if adjacent && !dims.is_empty() {
        let (first, last) = (dims[0], dims[dims.len() - 1]);
        let outer = d[..first].iter().product();
        let r = d[first..=last].iter().product();
        let inner = d[last + 1..].iter().product();
        return kernel(&contiguous(x), outer, r, inner);
    }
    let perm = kept_then(d.len(), dims);
    let outer = perm[..d.len() - dims.len()].iter().map(|&i| d[i]).product();
    let r = dims.iter().map(|&i| d[i]).product();
    let data = strided::copy_strided(&x.data.0, &x.layout.permute(&perm));
    kernel(&data, outer, r, 1)
}
