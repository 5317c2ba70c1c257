//! Convolution as matrix products: `conv2d` is im2col followed by
//! `W[O, C·kh·kw] · cols`, `conv_transpose2d` is `Wᵀ · x` followed by col2im.
//! im2col and col2im are differentiable ops that are each other's adjoint,
//! so both convolutions get their gradients from autograd (matmul rules plus
//! those two), and `conv_transpose2d` is exactly the adjoint of `conv2d`.
//!
//! Each convolution is one op (`Op::Conv2d`, `Op::ConvTranspose2d`) whose
//! kernel unfolds and multiplies one image at a time (see
//! `backend/cpu/conv.rs` for why); its backward rule is the other
//! convolution plus the weight gradient `Σ_i gy[i]·cols(x[i])ᵀ`, so
//! `conv_transpose2d` is still exactly the adjoint of `conv2d`.

use super::{view, with_storages};
use crate::autograd::Op;
use crate::backend::Storage;
pub use crate::params::{Conv2dParams, ConvGeom, ConvShape};
use crate::shape::Shape;
use crate::tensor::Tensor;

impl Tensor {
    /// Unfolds image patches into columns: `[N, C, H, W] -> [N, C·kh·kw, OH·OW]`.
    pub fn im2col(&self, g: ConvGeom) -> Tensor {
        g.check("im2col");
        let (n, c) = (self.dims()[0], self.dims()[1]);
        assert!(
            self.rank() == 4 && self.dims()[2] == g.h && self.dims()[3] == g.w,
            "im2col: input shape {:?} does not match geometry {g:?}",
            self.shape()
        );
        let data = Storage::im2col(view(&self.storage(), self.layout()), &g);
        let shape = Shape::new([n, c * g.kh * g.kw, g.out_h() * g.out_w()]);
        Tensor::from_op(data, shape, Op::Im2col(self.clone(), g))
    }

    /// Folds columns back into images, summing overlaps (the adjoint of
    /// `im2col`): `[N, C·kh·kw, OH·OW] -> [N, C, H, W]`.
    pub fn col2im(&self, g: ConvGeom) -> Tensor {
        g.check("col2im");
        let kk = g.kh * g.kw;
        assert!(
            self.rank() == 3
                && self.dims()[1].is_multiple_of(kk)
                && self.dims()[2] == g.out_h() * g.out_w(),
            "col2im: columns of shape {:?} do not match geometry {g:?}",
            self.shape()
        );
        let (n, c) = (self.dims()[0], self.dims()[1] / kk);
        let data = Storage::col2im(view(&self.storage(), self.layout()), c, &g);
        Tensor::from_op(
            data,
            Shape::new([n, c, g.h, g.w]),
            Op::Col2im(self.clone(), g),
        )
    }

    /// 2-D convolution (cross-correlation, as in PyTorch):
    /// `out[n, o] = Σ_c W[o, c] ⋆ x[n, c] + b[o]`, computed as
    /// `W[O, C·kh·kw] · im2col(x)`.
    ///
    /// # Shapes
    /// x `[N, C, H, W]`, weight `[O, C/groups, kh, kw]`, bias `[O]` ->
    /// `[N, O, OH, OW]` with `OH = ⌊(H + 2p − d(kh−1) − 1)/s⌋ + 1`.
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, p: Conv2dParams) -> Tensor {
        let ([n, c, h, w], [o, cg, kh, kw]) = conv_dims(self, weight, "conv2d");
        let groups = p.groups.max(1);
        assert!(
            cg * groups == c && o.is_multiple_of(groups),
            "conv2d: input {:?} and weight {:?} do not match with {groups} groups",
            self.shape(),
            weight.shape()
        );
        let geom = ConvGeom::new((h, w), (kh, kw), &p);
        geom.check("conv2d");
        let s = ConvShape {
            n,
            c,
            o,
            groups,
            geom,
        };
        if let Some(b) = bias {
            assert!(
                b.dims() == [o],
                "conv2d: bias {:?} does not match {o} output channels",
                b.shape()
            );
        }
        self.conv2d_op(weight, bias, s)
    }

    /// Transposed convolution, the adjoint of `conv2d` with the same weight:
    /// `col2im(Wᵀ · x)`. With stride 1 and no padding it is the full
    /// convolution of the source documents (eq. 1).
    ///
    /// # Shapes
    /// x `[N, C_in, H, W]`, weight `[C_in, C_out/groups, kh, kw]`, bias
    /// `[C_out]` -> `[N, C_out, H_out, W_out]` with
    /// `H_out = (H − 1)·s − 2p + d(kh − 1) + output_padding + 1`.
    pub fn conv_transpose2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: Conv2dParams,
    ) -> Tensor {
        let ([n, cin, h, w], [wc, og, kh, kw]) = conv_dims(self, weight, "conv_transpose2d");
        let groups = p.groups.max(1);
        assert!(
            wc == cin && cin.is_multiple_of(groups),
            "conv_transpose2d: input {:?} and weight {:?} do not match with {groups} groups",
            self.shape(),
            weight.shape()
        );
        let (s, pad, d, op) = (p.stride, p.padding, p.dilation, p.output_padding);
        assert!(
            op.0 < s.0.max(d.0) && op.1 < s.1.max(d.1),
            "conv_transpose2d: output_padding {op:?} must be smaller than stride or dilation"
        );
        // The output size is the input size of the conv2d this is the adjoint of.
        let size = |i: usize, s: usize, p: usize, d: usize, k: usize, o: usize| {
            ((i - 1) * s + d * (k - 1) + o + 1)
                .checked_sub(2 * p)
                .unwrap_or_else(|| {
                    panic!(
                        "conv_transpose2d: padding {p} is too large for input {:?}",
                        self.shape()
                    )
                })
        };
        // Output padding at least the stride (allowed when it is below the
        // dilation) would give the adjoint conv2d more than H×W windows; no
        // tap reaches those last rows/columns, so they are appended as zeros.
        let extra = |o: usize, s: usize| if o < s { 0 } else { o };
        let e = (extra(op.0, s.0), extra(op.1, s.1));
        let out_size = (
            size(h, s.0, pad.0, d.0, kh, op.0 - e.0),
            size(w, s.1, pad.1, d.1, kw, op.1 - e.1),
        );
        let geom = ConvGeom::new(out_size, (kh, kw), &p);
        geom.check("conv_transpose2d");
        // The conv2d this is the adjoint of maps C_out channels to C_in.
        let s = ConvShape {
            n,
            c: og * groups,
            o: cin,
            groups,
            geom,
        };
        let mut out = self.conv_transpose2d_op(weight, s);
        if e.0 > 0 {
            out = out.pad_dim(2, 0, out_size.0 + e.0);
        }
        if e.1 > 0 {
            out = out.pad_dim(3, 0, out_size.1 + e.1);
        }
        add_channel_bias(out, bias)
    }

    /// `conv2d` for a checked shape and bias `[O]`: `[N, C, H, W] -> [N, O, OH, OW]`.
    pub(crate) fn conv2d_op(&self, weight: &Tensor, bias: Option<&Tensor>, s: ConvShape) -> Tensor {
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        let y = with_storages("conv2d", &inputs, |st| {
            let b = bias.map(|b| view(st[2], b.layout()));
            Storage::conv2d(
                view(st[0], self.layout()),
                view(st[1], weight.layout()),
                b,
                &s,
            )
        });
        let shape = Shape::new([s.n, s.o, s.geom.out_h(), s.geom.out_w()]);
        let op = Op::Conv2d(self.clone(), weight.clone(), bias.cloned(), s);
        Tensor::from_op(y, shape, op)
    }

    /// The adjoint of [`Tensor::conv2d_op`] in its input:
    /// `[N, O, OH, OW] -> [N, C, H, W]`.
    pub(crate) fn conv_transpose2d_op(&self, weight: &Tensor, s: ConvShape) -> Tensor {
        let y = with_storages("conv_transpose2d", &[self, weight], |st| {
            Storage::conv_transpose2d(view(st[0], self.layout()), view(st[1], weight.layout()), &s)
        });
        let shape = Shape::new([s.n, s.c, s.geom.h, s.geom.w]);
        Tensor::from_op(
            y,
            shape,
            Op::ConvTranspose2d(self.clone(), weight.clone(), s),
        )
    }

    /// The last two dimensions reversed (a kernel rotated by 180°).
    pub fn rot180(&self) -> Tensor {
        assert!(
            self.rank() >= 2,
            "rot180: shape {:?} has fewer than 2 dimensions",
            self.shape()
        );
        let rev = |n: usize| {
            Tensor::from_vec_on((0..n).rev().map(|i| i as f32).collect(), [n], self.device())
        };
        let (h, w) = (self.dim(-2), self.dim(-1));
        self.index_select(-1, &rev(w)).index_select(-2, &rev(h))
    }

    /// The documents' full convolution of two matrices (eq. 1):
    /// `z(u, v) = Σ x(i, j)·k(u − i, v − j)`, `[m, m'] ⊛ [n, n'] -> [m+n−1, m'+n'−1]`.
    pub fn full_conv2d(&self, k: &Tensor) -> Tensor {
        assert!(
            self.rank() == 2 && k.rank() == 2,
            "full_conv2d: {:?} and {:?} must be matrices",
            self.shape(),
            k.shape()
        );
        let x = self.reshape([1, 1, self.dims()[0], self.dims()[1]]);
        let w = k.reshape([1, 1, k.dims()[0], k.dims()[1]]);
        let out = x.conv_transpose2d(&w, None, Conv2dParams::default());
        let (a, b) = (out.dims()[2], out.dims()[3]);
        out.reshape([a, b])
    }

    /// The documents' valid convolution (eq. 2-3): the kernel rotated by 180°
    /// slid over the positions where it fits entirely,
    /// `[m, m'] ⊛ [n, n'] -> [m−n+1, m'−n'+1]`.
    pub fn valid_conv2d(&self, k: &Tensor) -> Tensor {
        assert!(
            self.rank() == 2 && k.rank() == 2,
            "valid_conv2d: {:?} and {:?} must be matrices",
            self.shape(),
            k.shape()
        );
        let x = self.reshape([1, 1, self.dims()[0], self.dims()[1]]);
        let w = k.rot180().reshape([1, 1, k.dims()[0], k.dims()[1]]);
        let out = x.conv2d(&w, None, Conv2dParams::default());
        let (a, b) = (out.dims()[2], out.dims()[3]);
        out.reshape([a, b])
    }
}

/// The dimensions of a 4-D input and a 4-D weight.
fn conv_dims(x: &Tensor, weight: &Tensor, op: &str) -> ([usize; 4], [usize; 4]) {
    assert!(
        x.rank() == 4 && weight.rank() == 4,
        "{op}: input {:?} and weight {:?} must both be 4-D",
        x.shape(),
        weight.shape()
    );
    let d4 = |t: &Tensor| [t.dims()[0], t.dims()[1], t.dims()[2], t.dims()[3]];
    (d4(x), d4(weight))
}

/// The weight gradient of `conv2d_op(x, W)` given the output gradient `gy`:
/// `grad_W = Σ_i gy[i] · cols(x[i])ᵀ`, `[O, C/groups, kh, kw]`, and with
/// `bias` the bias gradient `[O]` (`gy` summed over images and pixels), taken
/// in the same pass. Used by the backward rules of both convolutions (for a
/// transposed convolution the roles of `x` and `gy` swap); it records no op
/// of its own.
pub(crate) fn conv2d_weight_grad(
    x: &Tensor,
    gy: &Tensor,
    s: &ConvShape,
    bias: bool,
) -> (Tensor, Option<Tensor>) {
    let (gw, gb) = with_storages("conv2d weight gradient", &[x, gy], |st| {
        Storage::conv2d_weight_grad(view(st[0], x.layout()), view(st[1], gy.layout()), s, bias)
    });
    let gb = gb.map(|gb| Tensor::from_storage(gb, Shape::new([s.o])));
    (Tensor::from_storage(gw, s.weight_shape()), gb)
}

/// The dimensions of a 4-D `[N, C, H, W]` input to pooling.
fn pool_dims(x: &Tensor, op: &str) -> [usize; 4] {
    assert_eq!(
        x.rank(),
        4,
        "{op}: input {:?} is not [N, C, H, W]",
        x.shape()
    );
    [x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]]
}

/// `out + bias[c]` over the channels of an `[N, C, H, W]` tensor.
fn add_channel_bias(out: Tensor, bias: Option<&Tensor>) -> Tensor {
    match bias {
        Some(b) => {
            let c = out.dims()[1];
            out.add(&b.reshape([1, c, 1, 1]))
        }
        None => out,
    }
}

/// Pooling as a reduction over the im2col window dimension: overlapping
/// windows and their gradients come for free (col2im sums overlaps back).
impl Tensor {
    fn pool_columns(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        op: &str,
    ) -> (Tensor, ConvGeom) {
        let [n, c, h, w] = pool_dims(self, op);
        assert!(
            padding.0 * 2 <= kernel.0 && padding.1 * 2 <= kernel.1,
            "{op}: padding {padding:?} must be at most half the kernel {kernel:?}"
        );
        let p = Conv2dParams {
            stride,
            padding,
            ..Default::default()
        };
        let g = ConvGeom::new((h, w), kernel, &p);
        // Every channel pools alone: fold channels into the batch.
        (self.reshape([n * c, 1, h, w]).im2col(g), g)
    }

    /// Max over each `kh×kw` window (windows may overlap).
    ///
    /// # Shapes
    /// `[N, C, H, W] -> [N, C, OH, OW]`, `OH = ⌊(H − kh)/s⌋ + 1`.
    pub fn max_pool2d(&self, kernel: (usize, usize), stride: (usize, usize)) -> Tensor {
        self.max_pool2d_with_indices(kernel, stride).0
    }

    /// `max_pool2d` and, for each output, the flat index `h·W + w` of the
    /// chosen input element within its plane (as PyTorch returns them).
    /// The gradient flows to that element only ([`Tensor::max_unpool2d`]).
    pub fn max_pool2d_with_indices(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
    ) -> (Tensor, Tensor) {
        let [n, c, h, w] = pool_dims(self, "max_pool2d");
        let p = Conv2dParams {
            stride,
            ..Default::default()
        };
        let g = ConvGeom::new((h, w), kernel, &p);
        g.check("max_pool2d");
        let shape = Shape::new([n, c, g.out_h(), g.out_w()]);
        let (vals, idx) = Storage::max_pool2d(view(&self.storage(), self.layout()), &g);
        let idx = Tensor::from_storage(idx, shape.clone());
        let out = Tensor::from_op(
            vals,
            shape,
            Op::MaxPool2d(self.clone(), idx.clone(), (h, w)),
        );
        (out, idx)
    }

    /// The partial inverse of max pooling (PyTorch's `max_unpool2d`): each
    /// value is added at the plane position `indices` gives (`h·W + w`), all
    /// other positions are 0. It is max pooling's backward rule.
    ///
    /// # Shapes
    /// `self`, `indices` `[N, C, OH, OW]` -> `[N, C, H, W]` for `size = (H, W)`.
    pub fn max_unpool2d(&self, indices: &Tensor, size: (usize, usize)) -> Tensor {
        pool_dims(self, "max_unpool2d");
        assert_eq!(
            self.shape(),
            indices.shape(),
            "max_unpool2d: values {:?} and indices {:?} differ in shape",
            self.shape(),
            indices.shape()
        );
        let hw = size.0 * size.1;
        let valid = indices.with_data(|idx| {
            idx.iter()
                .all(|&i| i >= 0.0 && i.fract() == 0.0 && (i as usize) < hw)
        });
        assert!(
            valid,
            "max_unpool2d: an index is outside the {}×{} output plane",
            size.0, size.1
        );
        self.max_unpool2d_op(indices, size)
    }

    /// [`Tensor::max_unpool2d`] for indices known to be valid (max pooling's
    /// own, in its backward pass).
    pub(crate) fn max_unpool2d_op(&self, indices: &Tensor, size: (usize, usize)) -> Tensor {
        let (n, c) = (self.dims()[0], self.dims()[1]);
        let out = with_storages("max_unpool2d", &[self, indices], |s| {
            Storage::max_unpool2d(
                view(s[0], self.layout()),
                view(s[1], indices.layout()),
                size.0 * size.1,
            )
        });
        Tensor::from_op(
            out,
            Shape::new([n, c, size.0, size.1]),
            Op::MaxUnpool2d(self.clone(), indices.clone()),
        )
    }

    /// Mean over each window; zero padding counts towards the mean (PyTorch's
    /// default `count_include_pad=True`).
    pub fn avg_pool2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Tensor {
        let (cols, g) = self.pool_columns(kernel, stride, padding, "avg_pool2d");
        let (n, c) = (self.dims()[0], self.dims()[1]);
        cols.mean(&[1], false).reshape([n, c, g.out_h(), g.out_w()])
    }

    /// Average pooling to a fixed output size, for input sizes that divide
    /// evenly (window = stride = input / output).
    pub fn adaptive_avg_pool2d(&self, out: (usize, usize)) -> Tensor {
        assert_eq!(
            self.rank(),
            4,
            "adaptive_avg_pool2d: input {:?} is not [N, C, H, W]",
            self.shape()
        );
        let (h, w) = (self.dims()[2], self.dims()[3]);
        assert!(
            out.0 > 0 && out.1 > 0 && h.is_multiple_of(out.0) && w.is_multiple_of(out.1),
            "adaptive_avg_pool2d: input {h}×{w} does not divide into {}×{} (uneven windows are not supported yet)",
            out.0,
            out.1
        );
        let k = (h / out.0, w / out.1);
        self.avg_pool2d(k, k, (0, 0))
    }
}
