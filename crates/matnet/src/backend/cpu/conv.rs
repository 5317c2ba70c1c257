//! Convolution kernels (pooling is in `pooling.rs`).
//!
//! Strategy (measured on LeNet-5 and the `cnn` model, batch 64, 2 threads):
//! convolution is im2col + the packed GEMM, one image at a time. Each pool
//! task takes a run of images and unfolds one image's patches into a
//! task-local buffer (`C·kh·kw × OH·OW`, 648 KiB for the `cnn` model's
//! second layer: it stays in L2) right before multiplying it, instead of
//! unfolding the whole batch first. The batch-wide `cols` tensor
//! (42 MB at batch 64) was written once and read once from DRAM, and its
//! allocation page-faulted on every step: with it, im2col, page faults and
//! zeroing took 3× the time of the products themselves (perf). The
//! backward pass unfolds again rather than keeping the columns: re-running
//! im2col costs ~5% of the image's GEMMs and saves the memory.
//!
//! A direct (no-unfold) AVX2 kernel was not written: with the columns
//! cache-resident, GEMM time dominates and the GEMM already runs near peak
//! on these shapes (`matnet bench conv` prints the per-layer GFLOP/s).
//!
//! Splitting over images rather than inside each GEMM gives every thread
//! whole products (no hand-off per product, no shared packing); a batch of
//! one image falls back to threads inside the GEMM.

use super::{SendPtr, gemm, threads, vec_written_by};
use crate::params::{ConvGeom, ConvShape};

/// Output positions `o` in `0..out` whose input coordinate `o·stride + off`
/// lies in `0..size`, as a range `lo..hi`.
pub(super) fn valid_range(out: usize, stride: usize, off: isize, size: usize) -> (usize, usize) {
    let (s, size) = (stride as isize, size as isize);
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    let hi = if size - off <= 0 {
        0
    } else {
        (size - off + s - 1) / s
    };
    let lo = (lo as usize).min(out);
    (lo, (hi as usize).clamp(lo, out))
}

/// One image `[C, H, W]` → columns `[C·kh·kw, OH·OW]`; every entry of `dst`
/// is written (zeros in the padding), so it may hold anything before.
fn im2col_image(img: &[f32], c: usize, g: &ConvGeom, dst: &mut [f32]) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let l = oh * ow;
    for ch in 0..c {
        let plane = &img[ch * g.h * g.w..][..g.h * g.w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = &mut dst[((ch * g.kh + ki) * g.kw + kj) * l..][..l];
                let off = (kj * g.dw) as isize - g.pw as isize;
                let (lo, hi) = valid_range(ow, g.sw, off, g.w);
                for y in 0..oh {
                    let r = &mut row[y * ow..][..ow];
                    let iy = (y * g.sh + ki * g.dh) as isize - g.ph as isize;
                    if iy < 0 || iy >= g.h as isize {
                        r.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * g.w..][..g.w];
                    r[..lo].fill(0.0);
                    r[hi..].fill(0.0);
                    if g.sw == 1 {
                        let s0 = (lo as isize + off) as usize;
                        r[lo..hi].copy_from_slice(&src[s0..s0 + hi - lo]);
                    } else {
                        for (xo, v) in r[lo..hi].iter_mut().enumerate() {
                            *v = src[((xo + lo) * g.sw).wrapping_add_signed(off)];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col_image`]: adds columns `[C·kh·kw, OH·OW]` into the
/// pixels `[C, H, W]` they came from.
fn col2im_image(cols: &[f32], c: usize, g: &ConvGeom, img: &mut [f32]) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let l = oh * ow;
    for ch in 0..c {
        let plane = &mut img[ch * g.h * g.w..][..g.h * g.w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = &cols[((ch * g.kh + ki) * g.kw + kj) * l..][..l];
                let off = (kj * g.dw) as isize - g.pw as isize;
                let (lo, hi) = valid_range(ow, g.sw, off, g.w);
                for y in 0..oh {
                    let iy = (y * g.sh + ki * g.dh) as isize - g.ph as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let dst = &mut plane[iy as usize * g.w..][..g.w];
                    let r = &row[y * ow + lo..y * ow + hi];
                    if g.sw == 1 {
                        let d0 = (lo as isize + off) as usize;
                        for (d, &v) in dst[d0..d0 + r.len()].iter_mut().zip(r) {
                            *d += v;
                        }
                    } else {
                        for (xo, &v) in r.iter().enumerate() {
                            dst[((xo + lo) * g.sw).wrapping_add_signed(off)] += v;
                        }
                    }
                }
            }
        }
    }
}

/// How a batch of `n` images is split over the pool: `tasks` runs of `per`
/// images, each product inside a task using `gemm_threads`.
pub(super) struct Split {
    n: usize,
    tasks: usize,
    per: usize,
    gemm_threads: usize,
}

impl Split {
    pub(super) fn new(n: usize) -> Split {
        let threads = threads::num_threads();
        // A few tasks per thread, so a late-waking worker still gets a share.
        let tasks = (4 * threads).min(n).max(1);
        Split {
            n,
            tasks,
            per: n.div_ceil(tasks),
            gemm_threads: if tasks == 1 { threads } else { 1 },
        }
    }

    /// Runs `f(task, images, gemm_threads)` for every task.
    pub(super) fn run(&self, f: &(dyn Fn(usize, std::ops::Range<usize>, usize) + Sync)) {
        threads::parallel_for(self.tasks, threads::num_threads(), &|t| {
            let start = (t * self.per).min(self.n);
            f(
                t,
                start..((t + 1) * self.per).min(self.n),
                self.gemm_threads,
            )
        });
    }
}

/// A zeroed `[n, per]` buffer, `f(i, row_i)` filling row `i` for every `i`
/// in parallel (image `i`'s output, or plane `i`'s).
pub(super) fn per_image(n: usize, per: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) -> Vec<f32> {
    let mut out = vec![0.0f32; n * per];
    let op = SendPtr(out.as_mut_ptr());
    Split::new(n).run(&|_, images, _| {
        for i in images {
            // SAFETY: tasks own disjoint rows of `out`, which outlives the call.
            f(i, unsafe { op.slice(i * per, (i + 1) * per) });
        }
    });
    out
}

/// The columns of image `i`, group `gi`: `x` itself for a pointwise
/// convolution, else unfolded into `buf`.
fn columns<'a>(x: &'a [f32], s: &ConvShape, i: usize, gi: usize, buf: &'a mut [f32]) -> &'a [f32] {
    let (hw, cg) = (s.geom.h * s.geom.w, s.c / s.groups);
    let img = &x[(i * s.c + gi * cg) * hw..][..cg * hw];
    if s.pointwise() {
        img
    } else {
        im2col_image(img, cg, &s.geom, buf);
        buf
    }
}

/// A task-local columns buffer (empty when convolution needs none).
fn column_buffer(s: &ConvShape) -> Vec<f32> {
    if s.pointwise() {
        Vec::new()
    } else {
        vec![0.0; s.col_rows() * s.col_len()]
    }
}

/// `y[i, o] = W[o] · cols(x[i])` for every image and group:
/// `x [N, C, H, W]`, `w [O, C/groups·kh·kw]` → `y [N, O, OH·OW]`.
pub fn conv2d_forward(x: &[f32], w: &[f32], s: &ConvShape) -> Vec<f32> {
    let l = s.col_len();
    // SAFETY: the images' groups' og×l output blocks tile y, and every GEMM
    // (accumulate = false) writes its whole block.
    unsafe { vec_written_by(s.n * s.o * l, |yp| conv2d_forward_into(x, w, s, yp)) }
}

fn conv2d_forward_into(x: &[f32], w: &[f32], s: &ConvShape, yp: SendPtr) {
    let (k, l, og) = (s.col_rows(), s.col_len(), s.o / s.groups);
    Split::new(s.n).run(&|_, images, gt| {
        let mut buf = column_buffer(s);
        for i in images {
            for gi in 0..s.groups {
                let b = columns(x, s, i, gi, &mut buf);
                // SAFETY: W_g is og×k, b is k×l, and the output block of image
                // i, group gi is og×l; tasks own disjoint images.
                unsafe {
                    gemm::sgemm(
                        og,
                        l,
                        k,
                        w.as_ptr().add(gi * og * k),
                        k as isize,
                        1,
                        b.as_ptr(),
                        l as isize,
                        1,
                        yp.get().add((i * s.o + gi * og) * l),
                        l as isize,
                        1,
                        false,
                        gt,
                    )
                };
            }
        }
    });
}

/// The adjoint of [`conv2d_forward`] in `x` (the gradient of the input, and
/// the forward pass of transposed convolution): `gx[i] = col2im(Wᵀ · gy[i])`,
/// `gy [N, O, OH·OW]` → `gx [N, C, H, W]`.
pub fn conv2d_backward_data(gy: &[f32], w: &[f32], s: &ConvShape) -> Vec<f32> {
    let (k, l, og, cg) = (s.col_rows(), s.col_len(), s.o / s.groups, s.c / s.groups);
    let hw = s.geom.h * s.geom.w;
    let mut gx = vec![0.0f32; s.n * s.c * hw];
    let gxp = SendPtr(gx.as_mut_ptr());
    Split::new(s.n).run(&|_, images, gt| {
        let mut buf = column_buffer(s);
        for i in images {
            for gi in 0..s.groups {
                // SAFETY: tasks own disjoint images of gx.
                let dst =
                    unsafe { gxp.slice((i * s.c + gi * cg) * hw, (i * s.c + gi * cg + cg) * hw) };
                // A pointwise convolution's columns are the image itself.
                let c_out = if s.pointwise() {
                    dst.as_mut_ptr()
                } else {
                    buf.as_mut_ptr()
                };
                // SAFETY: Wᵀ_g is k×og (element (p, q) at w[(gi·og + q)·k + p]),
                // gy's block og×l, the destination k×l.
                unsafe {
                    gemm::sgemm(
                        k,
                        l,
                        og,
                        w.as_ptr().add(gi * og * k),
                        1,
                        k as isize,
                        gy.as_ptr().add((i * s.o + gi * og) * l),
                        l as isize,
                        1,
                        c_out,
                        l as isize,
                        1,
                        false,
                        gt,
                    )
                };
                if !s.pointwise() {
                    col2im_image(&buf, cg, &s.geom, dst);
                }
            }
        }
    });
    gx
}

/// The gradient of the weight: `gW = Σ_i gy[i] · cols(x[i])ᵀ`,
/// → `[O, C/groups·kh·kw]`. Each task sums its images into its own buffer;
/// the buffers are added at the end.
pub fn conv2d_backward_weight(x: &[f32], gy: &[f32], s: &ConvShape) -> Vec<f32> {
    let (k, l, og) = (s.col_rows(), s.col_len(), s.o / s.groups);
    let split = Split::new(s.n);
    let size = s.o * k;
    let mut parts = vec![0.0f32; split.tasks * size];
    let pp = SendPtr(parts.as_mut_ptr());
    split.run(&|t, images, gt| {
        let mut buf = column_buffer(s);
        for i in images {
            for gi in 0..s.groups {
                let b = columns(x, s, i, gi, &mut buf);
                // SAFETY: gy's block is og×l, bᵀ is l×k (element (p, j) at
                // b[j·l + p]), and task t accumulates into its own og×k block.
                unsafe {
                    gemm::sgemm(
                        og,
                        k,
                        l,
                        gy.as_ptr().add((i * s.o + gi * og) * l),
                        l as isize,
                        1,
                        b.as_ptr(),
                        1,
                        l as isize,
                        pp.get().add(t * size + gi * og * k),
                        k as isize,
                        1,
                        true,
                        gt,
                    )
                };
            }
        }
    });
    let (first, rest) = parts.split_at_mut(size);
    for part in rest.chunks_exact(size) {
        for (a, &b) in first.iter_mut().zip(part) {
            *a += b;
        }
    }
    parts.truncate(size);
    parts
}

/// `[N, C, H, W]` (contiguous) → `[N, C·kh·kw, OH·OW]`; row `(c, ki, kj)`,
/// column `(oh, ow)` holds `x[c, oh·sh + ki·dh - ph, ow·sw + kj·dw - pw]`,
/// or 0 in the padding.
pub fn im2col(x: &[f32], n: usize, c: usize, g: &ConvGeom) -> Vec<f32> {
    let per_in = c * g.h * g.w;
    per_image(n, c * g.kh * g.kw * g.out_h() * g.out_w(), &|i, dst| {
        im2col_image(&x[i * per_in..][..per_in], c, g, dst)
    })
}

/// The adjoint of [`im2col`]: `[N, C·kh·kw, OH·OW]` → `[N, C, H, W]`,
/// adding every column entry back into the pixel it came from.
pub fn col2im(cols: &[f32], n: usize, c: usize, g: &ConvGeom) -> Vec<f32> {
    let per_col = c * g.kh * g.kw * g.out_h() * g.out_w();
    per_image(n, c * g.h * g.w, &|i, dst| {
        col2im_image(&cols[i * per_col..][..per_col], c, g, dst)
    })
}
