//! The reference backend: every primitive as a plain loop over index
//! arithmetic, accumulating in f64 wherever values are summed (reductions,
//! matmul, convolution, recurrences). No threads, no SIMD, no blocking: it
//! is slow on purpose, so that it is obviously correct and the fast CPU
//! backend can be tested against it (`tests/backend_diff.rs`).
//!
//! Every input view is first read into a row-major vector (`read`), so the
//! kernels index plain arrays by their coordinates.

mod conv;
mod elementwise;
mod linalg;
mod recurrent;

use crate::backend::{BackendStorage, BinaryKind, OptimRule, ReduceKind, UnaryKind, View};
use crate::layout::Layout;
use crate::params::{ConvGeom, ConvShape, LstmDims};

/// A buffer of f32 in host memory, for the reference backend.
#[derive(Debug, Clone)]
pub struct RefStorage(pub(crate) Vec<f32>);

type V<'a> = View<'a, RefStorage>;

/// The coordinates of row-major position `p` in a tensor of shape `dims`.
pub(super) fn unravel(mut p: usize, dims: &[usize]) -> Vec<usize> {
    let mut c = vec![0; dims.len()];
    for k in (0..dims.len()).rev() {
        c[k] = p % dims[k].max(1);
        p /= dims[k].max(1);
    }
    c
}

/// The row-major position of coordinates `c` in shape `dims`.
pub(super) fn ravel(c: &[usize], dims: &[usize]) -> usize {
    c.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// Where coordinates `c` of a view live in its buffer.
fn offset_of(l: &Layout, c: &[usize]) -> usize {
    l.offset() + c.iter().zip(l.strides()).map(|(i, s)| i * s).sum::<usize>()
}

/// The elements of a view, row-major.
pub(super) fn read(x: V<'_>) -> Vec<f32> {
    let dims = x.layout.shape().dims();
    (0..x.layout.shape().numel())
        .map(|p| x.data.0[offset_of(x.layout, &unravel(p, dims))])
        .collect()
}

/// The dimensions of a view.
pub(super) fn dims_of<'a>(x: &V<'a>) -> &'a [usize] {
    x.layout.shape().dims()
}

/// Index values as positions.
fn positions(index: V<'_>) -> Vec<usize> {
    read(index).into_iter().map(|v| v as usize).collect()
}

impl BackendStorage for RefStorage {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn host_slice(&self) -> Option<&[f32]> {
        Some(&self.0)
    }

    fn from_host(data: Vec<f32>) -> Self {
        RefStorage(data)
    }

    fn full(n: usize, v: f32) -> Self {
        RefStorage(vec![v; n])
    }

    fn to_host(x: V<'_>) -> Vec<f32> {
        read(x)
    }

    fn copy_strided(x: V<'_>) -> Self {
        RefStorage(read(x))
    }

    fn copy_into(dst: &mut Self, dst_layout: &Layout, src: V<'_>) {
        let dims = dst_layout.shape().dims();
        for (p, v) in read(src).into_iter().enumerate() {
            dst.0[offset_of(dst_layout, &unravel(p, dims))] = v;
        }
    }

    fn unary(x: V<'_>, op: UnaryKind) -> Self {
        RefStorage(
            read(x)
                .into_iter()
                .map(|v| elementwise::unary(op, v))
                .collect(),
        )
    }

    fn binary(a: V<'_>, b: V<'_>, op: BinaryKind) -> Self {
        let (a, b) = (read(a), read(b));
        RefStorage(
            a.iter()
                .zip(&b)
                .map(|(&p, &q)| elementwise::binary(op, p, q))
                .collect(),
        )
    }

    fn where_cond(c: V<'_>, a: V<'_>, b: V<'_>) -> Self {
        let (c, a, b) = (read(c), read(a), read(b));
        RefStorage(
            (0..c.len())
                .map(|i| if c[i] != 0.0 { a[i] } else { b[i] })
                .collect(),
        )
    }

    fn reduce(x: V<'_>, dims: &[usize], op: ReduceKind) -> Self {
        RefStorage(linalg::reduce(&read(x), dims_of(&x), dims, op))
    }

    fn softmax(x: V<'_>, dim: usize, log: bool) -> Self {
        RefStorage(linalg::softmax(&read(x), dims_of(&x), dim, log))
    }

    fn matmul(a: V<'_>, b: V<'_>) -> Self {
        RefStorage(linalg::matmul(&read(a), dims_of(&a), &read(b), dims_of(&b)))
    }

    fn gather(x: V<'_>, dim: usize, index: V<'_>) -> Self {
        let (xs, dims, idims) = (read(x), dims_of(&x), dims_of(&index));
        let idx = positions(index);
        RefStorage(
            (0..idx.len())
                .map(|p| {
                    let mut c = unravel(p, idims);
                    c[dim] = idx[p];
                    xs[ravel(&c, dims)]
                })
                .collect(),
        )
    }

    fn scatter_add(x: V<'_>, dim: usize, index: V<'_>, src: V<'_>) -> Self {
        let (mut out, dims, idims) = (read(x), dims_of(&x), dims_of(&index));
        let (idx, src) = (positions(index), read(src));
        for p in 0..idx.len() {
            let mut c = unravel(p, idims);
            c[dim] = idx[p];
            out[ravel(&c, dims)] += src[p];
        }
        RefStorage(out)
    }

    fn index_select(x: V<'_>, dim: usize, index: V<'_>) -> Self {
        let (xs, dims, idx) = (read(x), dims_of(&x), positions(index));
        let mut odims = dims.to_vec();
        odims[dim] = idx.len();
        let n: usize = odims.iter().product();
        RefStorage(
            (0..n)
                .map(|p| {
                    let mut c = unravel(p, &odims);
                    c[dim] = idx[c[dim]];
                    xs[ravel(&c, dims)]
                })
                .collect(),
        )
    }

    fn index_add(x: V<'_>, dim: usize, index: V<'_>, src: V<'_>) -> Self {
        let (mut out, dims, idx) = (read(x), dims_of(&x), positions(index));
        let (sdims, src) = (dims_of(&src).to_vec(), read(src));
        for (p, &v) in src.iter().enumerate() {
            let mut c = unravel(p, &sdims);
            c[dim] = idx[c[dim]];
            out[ravel(&c, dims)] += v;
        }
        RefStorage(out)
    }

    fn conv2d(x: V<'_>, w: V<'_>, bias: Option<V<'_>>, s: &ConvShape) -> Self {
        RefStorage(conv::conv2d(
            &read(x),
            &read(w),
            bias.map(read).as_deref(),
            s,
        ))
    }

    fn conv_transpose2d(gy: V<'_>, w: V<'_>, s: &ConvShape) -> Self {
        RefStorage(conv::conv_transpose2d(&read(gy), &read(w), s))
    }

    fn conv2d_weight_grad(x: V<'_>, gy: V<'_>, s: &ConvShape, bias: bool) -> (Self, Option<Self>) {
        let gy = read(gy);
        let gw = RefStorage(conv::conv2d_weight_grad(&read(x), &gy, s));
        (gw, bias.then(|| RefStorage(conv::conv2d_bias_grad(&gy, s))))
    }

    fn im2col(x: V<'_>, g: &ConvGeom) -> Self {
        let d = dims_of(&x);
        RefStorage(conv::im2col(&read(x), d[0], d[1], g))
    }

    fn col2im(cols: V<'_>, c: usize, g: &ConvGeom) -> Self {
        let n = dims_of(&cols)[0];
        RefStorage(conv::col2im(&read(cols), n, c, g))
    }

    fn max_pool2d(x: V<'_>, g: &ConvGeom) -> (Self, Self) {
        let (v, i) = conv::max_pool2d(&read(x), g);
        (RefStorage(v), RefStorage(i))
    }

    fn max_unpool2d(x: V<'_>, idx: V<'_>, hw: usize) -> Self {
        let d = dims_of(&x);
        let (planes, l) = (d[0] * d[1], d[2] * d[3]);
        let (xs, idx) = (read(x), positions(idx));
        let mut out = vec![0.0f32; planes * hw];
        for p in 0..planes {
            for j in 0..l {
                out[p * hw + idx[p * l + j]] += xs[p * l + j];
            }
        }
        RefStorage(out)
    }

    fn lstm_cell(gates: V<'_>, c_prev: V<'_>) -> Self {
        let h = dims_of(&c_prev)[1];
        RefStorage(recurrent::cell(&read(gates), &read(c_prev), h).0)
    }

    fn lstm_cell_backward(gates: V<'_>, c_prev: V<'_>, g: V<'_>) -> (Self, Self) {
        let h = dims_of(&c_prev)[1];
        let (ga, gc) = recurrent::cell_backward(&read(gates), &read(c_prev), &read(g), h);
        (RefStorage(ga), RefStorage(gc))
    }

    fn lstm_layer(
        xp: V<'_>,
        w_hh: V<'_>,
        bias: Option<V<'_>>,
        h0: V<'_>,
        c0: V<'_>,
        d: LstmDims,
    ) -> (Self, Self) {
        let bias = bias.map(read);
        let (out, gates) = recurrent::layer(
            &read(xp),
            &read(w_hh),
            bias.as_deref(),
            &read(h0),
            &read(c0),
            d,
        );
        (RefStorage(out), RefStorage(gates))
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
        let (grads, gb) = recurrent::layer_backward(
            [&read(w_hh), &read(h0), &read(c0)],
            &read(gates),
            &read(out),
            &read(g),
            d,
        );
        (grads.map(RefStorage), bias.then_some(RefStorage(gb)))
    }

    fn optim_step(
        param: &mut Self,
        param_layout: &Layout,
        grad: V<'_>,
        state: &mut Self,
        rule: &OptimRule,
    ) {
        let g = read(grad);
        let (off, n) = (param_layout.offset(), param_layout.shape().numel());
        let w = &mut param.0[off..off + n];
        let s = &mut state.0;
        for i in 0..n {
            match *rule {
                OptimRule::Sgd {
                    lr,
                    momentum,
                    weight_decay,
                    nesterov,
                } => {
                    let gi = g[i] + weight_decay * w[i];
                    if momentum == 0.0 {
                        w[i] -= lr * gi;
                    } else {
                        s[i] = momentum * s[i] + gi;
                        let d = if nesterov { gi + momentum * s[i] } else { s[i] };
                        w[i] -= lr * d;
                    }
                }
                OptimRule::Adam {
                    b1,
                    b2,
                    step,
                    inv_c2s,
                    eps,
                    l2,
                    shrink,
                } => {
                    let gi = g[i] + l2 * w[i];
                    s[i] = b1 * s[i] + (1.0 - b1) * gi;
                    s[n + i] = b2 * s[n + i] + (1.0 - b2) * gi * gi;
                    w[i] = shrink * w[i] - step * s[i] / (s[n + i].sqrt() * inv_c2s + eps);
                }
            }
        }
    }
}
