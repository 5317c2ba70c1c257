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

use std::ops::Range;

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

/// Where each kernel tap reads, worked out once per image rather than for
/// every channel (two divisions per tap and channel were a fifth of
/// im2col's time on the DCGAN's 4×4 kernels): for kernel row `ki`, the
/// output rows `ylo..yhi` whose input row `y·sh + off` is inside the image;
/// for kernel column `kj`, the output columns `lo..hi` inside it and the
/// input column of the first of them.
struct Taps {
    rows: Vec<(usize, usize, isize)>,
    cols: Vec<(usize, usize, usize)>,
}

impl Taps {
    fn new(g: &ConvGeom) -> Taps {
        let rows = (0..g.kh)
            .map(|ki| {
                let off = (ki * g.dh) as isize - g.ph as isize;
                let (lo, hi) = valid_range(g.out_h(), g.sh, off, g.h);
                (lo, hi, off)
            })
            .collect();
        let cols = (0..g.kw)
            .map(|kj| {
                let off = (kj * g.dw) as isize - g.pw as isize;
                let (lo, hi) = valid_range(g.out_w(), g.sw, off, g.w);
                (lo, hi, (lo * g.sw).wrapping_add_signed(off))
            })
            .collect();
        Taps { rows, cols }
    }
}

/// One image `[C, H, W]` → columns `[C·kh·kw, OH·OW]`, row `r` starting at
/// `dst[r·ld]` (`ld > OH·OW` when a chunk's images sit side by side); every
/// entry of those rows is written (zeros in the padding), so `dst` may hold
/// anything before.
fn im2col_image(img: &[f32], c: usize, g: &ConvGeom, dst: &mut [f32], ld: usize) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let l = oh * ow;
    let taps = Taps::new(g);
    for ch in 0..c {
        let plane = &img[ch * g.h * g.w..][..g.h * g.w];
        for (ki, &(ylo, yhi, yoff)) in taps.rows.iter().enumerate() {
            for (kj, &(lo, hi, s0)) in taps.cols.iter().enumerate() {
                let row = &mut dst[((ch * g.kh + ki) * g.kw + kj) * ld..][..l];
                row[..ylo * ow].fill(0.0);
                row[yhi * ow..].fill(0.0);
                for y in ylo..yhi {
                    let r = &mut row[y * ow..][..ow];
                    r[..lo].fill(0.0);
                    r[hi..].fill(0.0);
                    if lo == hi {
                        continue;
                    }
                    let iy = (y * g.sh).wrapping_add_signed(yoff);
                    let src = &plane[iy * g.w..][..g.w];
                    if g.sw == 1 {
                        r[lo..hi].copy_from_slice(&src[s0..s0 + hi - lo]);
                    } else {
                        // Iterators rather than indexing: no bounds check
                        // per element.
                        for (v, &x) in r[lo..hi].iter_mut().zip(src[s0..].iter().step_by(g.sw)) {
                            *v = x;
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col_image`]: adds columns `[C·kh·kw, OH·OW]` (row `r`
/// at `cols[r·ld]`) into the pixels `[C, H, W]` they came from.
fn col2im_image(cols: &[f32], c: usize, g: &ConvGeom, img: &mut [f32], ld: usize) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let l = oh * ow;
    let taps = Taps::new(g);
    for ch in 0..c {
        let plane = &mut img[ch * g.h * g.w..][..g.h * g.w];
        for (ki, &(ylo, yhi, yoff)) in taps.rows.iter().enumerate() {
            for (kj, &(lo, hi, d0)) in taps.cols.iter().enumerate() {
                if lo == hi {
                    continue;
                }
                let row = &cols[((ch * g.kh + ki) * g.kw + kj) * ld..][..l];
                for y in ylo..yhi {
                    let iy = (y * g.sh).wrapping_add_signed(yoff);
                    let dst = &mut plane[iy * g.w..][..g.w];
                    let r = &row[y * ow + lo..y * ow + hi];
                    if g.sw == 1 {
                        for (d, &v) in dst[d0..d0 + r.len()].iter_mut().zip(r) {
                            *d += v;
                        }
                    } else {
                        for (d, &v) in dst[d0..].iter_mut().step_by(g.sw).zip(r) {
                            *d += v;
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
        // A few tasks per thread, so a late-waking worker still gets a share.
        Split::with_tasks(n, 4 * threads::num_threads())
    }

    /// At most `tasks` runs of images.
    fn with_tasks(n: usize, tasks: usize) -> Split {
        let threads = threads::num_threads();
        let tasks = tasks.min(n).max(1);
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

/// Columns a product should reach: a task unfolds this many columns' worth
/// of its images side by side, so the small feature maps of a DCGAN (7×7
/// outputs: 49 columns per image) become products 196 columns wide instead
/// of many 49-wide ones that waste part of a 32-wide register tile and
/// re-pack A for every image. Maps of this width or more stay one image
/// per product: chunking them gained nothing, and for small kernels (the
/// first layers, K = 9 to 25) the extra copy of the output cost 30-40%
/// (`matnet bench conv`).
const TARGET_COLUMNS: usize = 192;

/// At most this many bytes of columns per chunk (an L2-sized share).
const COLUMN_BUDGET: usize = 1 << 20;

/// Images per product for a task of `per` images.
fn chunk_images(s: &ConvShape, per: usize) -> usize {
    let l = s.col_len().max(1);
    if s.pointwise() || l >= TARGET_COLUMNS {
        return 1;
    }
    let bytes = s.col_rows() * l * std::mem::size_of::<f32>();
    TARGET_COLUMNS
        .div_ceil(l)
        .min(COLUMN_BUDGET / bytes.max(1))
        .clamp(1, per.max(1))
}

/// `images` in runs of at most `nb`.
fn chunks(images: Range<usize>, nb: usize) -> impl Iterator<Item = Range<usize>> {
    let end = images.end;
    images.step_by(nb).map(move |i| i..(i + nb).min(end))
}

/// The columns of images `chunk`, group `gi`, side by side as one
/// `[C/groups·kh·kw, m·OH·OW]` matrix (m images), with its row stride:
/// `x` itself for a pointwise convolution (always one image), else unfolded
/// into `buf`.
fn columns<'a>(
    x: &'a [f32],
    s: &ConvShape,
    chunk: Range<usize>,
    gi: usize,
    buf: &'a mut [f32],
) -> (&'a [f32], usize) {
    let (hw, cg, l) = (s.geom.h * s.geom.w, s.c / s.groups, s.col_len());
    let image = |i: usize| &x[(i * s.c + gi * cg) * hw..][..cg * hw];
    if s.pointwise() {
        return (image(chunk.start), l);
    }
    let ld = chunk.len() * l;
    for (j, i) in chunk.enumerate() {
        im2col_image(image(i), cg, &s.geom, &mut buf[j * l..], ld);
    }
    (buf, ld)
}

/// Group `gi` of images `chunk` of `t [N, O, l]` as one `[O/groups, m·l]`
/// matrix with its row stride: `t` in place for one image, else copied
/// into `buf`.
fn gather<'a>(
    t: &'a [f32],
    s: &ConvShape,
    chunk: Range<usize>,
    gi: usize,
    buf: &'a mut [f32],
) -> (&'a [f32], usize) {
    let (l, og) = (s.col_len(), s.o / s.groups);
    let block = |i: usize| &t[(i * s.o + gi * og) * l..][..og * l];
    if chunk.len() == 1 {
        return (block(chunk.start), l);
    }
    let ld = chunk.len() * l;
    for (j, i) in chunk.enumerate() {
        for (o, src) in block(i).chunks_exact(l).enumerate() {
            buf[o * ld + j * l..][..l].copy_from_slice(src);
        }
    }
    (buf, ld)
}

/// A task-local columns buffer for chunks of `nb` images (empty when
/// convolution needs none).
fn column_buffer(s: &ConvShape, nb: usize) -> Vec<f32> {
    if s.pointwise() {
        Vec::new()
    } else {
        vec![0.0; s.col_rows() * nb * s.col_len()]
    }
}

/// A task-local `[O/groups, nb·l]` buffer for [`gather`] (empty for chunks
/// of one image, which need none).
fn block_buffer(s: &ConvShape, nb: usize) -> Vec<f32> {
    if nb == 1 {
        Vec::new()
    } else {
        vec![0.0; s.o / s.groups * nb * s.col_len()]
    }
}

/// `y[i, o] = W[o] · cols(x[i]) (+ b[o])` for every image and group:
/// `x [N, C, H, W]`, `w [O, C/groups·kh·kw]`, `bias [O]` → `y [N, O, OH·OW]`.
/// The bias is added to each image's block right after its product, while
/// the block is still in cache, instead of in a second pass over `y`.
pub fn conv2d_forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, s: &ConvShape) -> Vec<f32> {
    let l = s.col_len();
    // SAFETY: the images' groups' og×l output blocks tile y, and every GEMM
    // (accumulate = false) writes its whole block, or its chunk's [og, m·l]
    // block that is then copied to all of those.
    unsafe { vec_written_by(s.n * s.o * l, |yp| conv2d_forward_into(x, w, bias, s, yp)) }
}

/// `row += b` for each row of `block` (rows of `l`) and its entry of `bias`.
fn add_bias_rows(block: &mut [f32], bias: &[f32], l: usize) {
    for (row, &b) in block.chunks_exact_mut(l).zip(bias) {
        for y in row {
            *y += b;
        }
    }
}

fn conv2d_forward_into(x: &[f32], w: &[f32], bias: Option<&[f32]>, s: &ConvShape, yp: SendPtr) {
    let (k, l, og) = (s.col_rows(), s.col_len(), s.o / s.groups);
    let split = Split::new(s.n);
    let nb = chunk_images(s, split.per);
    split.run(&|_, images, gt| {
        let mut buf = column_buffer(s, nb);
        let mut out = block_buffer(s, nb);
        for chunk in chunks(images, nb) {
            let (i0, m) = (chunk.start, chunk.len());
            for gi in 0..s.groups {
                let (b, ld) = columns(x, s, chunk.clone(), gi, &mut buf);
                // One image writes its output block in place; a chunk
                // writes [og, m·l] and copies each image's part out.
                let (c, rsc) = if m == 1 {
                    // SAFETY: image i0, group gi's og×l block of y.
                    (unsafe { yp.get().add((i0 * s.o + gi * og) * l) }, l)
                } else {
                    (out.as_mut_ptr(), m * l)
                };
                // SAFETY: W_g is og×k, b is k×(m·l) with row stride ld, the
                // destination og×(m·l) with row stride rsc; tasks own
                // disjoint images.
                unsafe {
                    gemm::sgemm(
                        og,
                        m * l,
                        k,
                        w.as_ptr().add(gi * og * k),
                        k as isize,
                        1,
                        b.as_ptr(),
                        ld as isize,
                        1,
                        c,
                        rsc as isize,
                        1,
                        false,
                        gt,
                    )
                };
                let group_bias = bias.map(|b| &b[gi * og..][..og]);
                for (j, i) in chunk.clone().enumerate() {
                    let base = (i * s.o + gi * og) * l;
                    // SAFETY: image i's group block, owned by this task.
                    let dst = unsafe { yp.slice(base, base + og * l) };
                    if m > 1 {
                        for (o, d) in dst.chunks_exact_mut(l).enumerate() {
                            d.copy_from_slice(&out[o * m * l + j * l..][..l]);
                        }
                    }
                    if let Some(b) = group_bias {
                        add_bias_rows(dst, b, l);
                    }
                }
            }
        }
    });
}

/// The adjoint of [`conv2d_forward`] in `x` (the gradient of the input, and
/// the forward pass of transposed convolution): `gx[i] = col2im(Wᵀ · gy[i])`,
/// `gy [N, O, OH·OW]` → `gx [N, C, H, W]`.
pub fn conv2d_backward_data(gy: &[f32], w: &[f32], s: &ConvShape) -> Vec<f32> {
    let hw = s.geom.h * s.geom.w;
    // SAFETY: each task zeroes its images' whole [C, H, W] blocks first.
    unsafe {
        vec_written_by(s.n * s.c * hw, |gxp| {
            conv2d_backward_data_into(gy, w, s, gxp);
        })
    }
}

fn conv2d_backward_data_into(gy: &[f32], w: &[f32], s: &ConvShape, gxp: SendPtr) {
    let (k, l, og, cg) = (s.col_rows(), s.col_len(), s.o / s.groups, s.c / s.groups);
    let hw = s.geom.h * s.geom.w;
    let split = Split::new(s.n);
    let nb = chunk_images(s, split.per);
    split.run(&|_, images, gt| {
        // SAFETY: tasks own disjoint images of gx, zeroed here before
        // col2im adds into them.
        for v in unsafe { gxp.uninit_slice(images.start * s.c * hw, images.end * s.c * hw) } {
            v.write(0.0);
        }
        let mut buf = column_buffer(s, nb);
        let mut block = block_buffer(s, nb);
        for chunk in chunks(images, nb) {
            let m = chunk.len();
            for gi in 0..s.groups {
                // SAFETY: tasks own disjoint images of gx.
                let image = |i: usize| unsafe {
                    gxp.slice((i * s.c + gi * cg) * hw, (i * s.c + gi * cg + cg) * hw)
                };
                let (b, rsb) = gather(gy, s, chunk.clone(), gi, &mut block);
                // A pointwise convolution's columns are the image itself
                // (its chunks are single images).
                let (c_out, ld) = if s.pointwise() {
                    (image(chunk.start).as_mut_ptr(), l)
                } else {
                    (buf.as_mut_ptr(), m * l)
                };
                // SAFETY: Wᵀ_g is k×og (element (p, q) at w[(gi·og + q)·k + p]),
                // b is og×(m·l) with row stride rsb, the destination
                // k×(m·l) with row stride ld.
                unsafe {
                    gemm::sgemm(
                        k,
                        m * l,
                        og,
                        w.as_ptr().add(gi * og * k),
                        1,
                        k as isize,
                        b.as_ptr(),
                        rsb as isize,
                        1,
                        c_out,
                        ld as isize,
                        1,
                        false,
                        gt,
                    )
                };
                if !s.pointwise() {
                    for (j, i) in chunk.clone().enumerate() {
                        col2im_image(&buf[j * l..], cg, &s.geom, image(i), ld);
                    }
                }
            }
        }
    });
}

/// Images summed into one partial weight gradient.
const IMAGES_PER_PARTIAL: usize = 16;

/// The gradient of the weight: `gW = Σ_i gy[i] · cols(x[i])ᵀ`,
/// → `[O, C/groups·kh·kw]`, and with `bias` that of a bias too,
/// `gb[o] = Σ_i Σ_p gy[i, o, p]` → `[O]`. Each task sums its images into its
/// own weight buffer; the buffers are added at the end. The bias sums are
/// taken per image and channel right after that image's product has read
/// `gy[i]` (so from cache, not in another pass over `gy`), then added over
/// the images in order: the same sums, in the same order, as summing
/// `gy` over its batch and pixels.
pub fn conv2d_backward_weight(
    x: &[f32],
    gy: &[f32],
    s: &ConvShape,
    bias: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let (k, l, og) = (s.col_rows(), s.col_len(), s.o / s.groups);
    // One partial sum per run of IMAGES_PER_PARTIAL images, added in a
    // fixed order: which images each partial holds does not depend on the
    // thread count, so neither do the weights (with a partial per thread,
    // LeNet trained on 1 and 2 threads ended up to 0.1 apart). Four
    // partials per thread, as the other kernels split, cost more zeroing
    // and adding than a late worker costs (a 128×1024 weight: 4 MB per
    // call at batch 64).
    let split = Split::with_tasks(s.n, s.n.div_ceil(IMAGES_PER_PARTIAL));
    let nb = chunk_images(s, split.per);
    let size = s.o * k;
    let mut parts = vec![0.0f32; split.tasks * size];
    let pp = SendPtr(parts.as_mut_ptr());
    let mut sums = vec![0.0f32; if bias { s.n * s.o } else { 0 }];
    let sp = SendPtr(sums.as_mut_ptr());
    split.run(&|t, images, gt| {
        let mut buf = column_buffer(s, nb);
        let mut block = block_buffer(s, nb);
        for chunk in chunks(images, nb) {
            let m = chunk.len();
            for gi in 0..s.groups {
                let (a, rsa) = gather(gy, s, chunk.clone(), gi, &mut block);
                let (b, ld) = columns(x, s, chunk.clone(), gi, &mut buf);
                // SAFETY: a is og×(m·l) with row stride rsa, bᵀ is (m·l)×k
                // (element (p, j) at b[j·ld + p]), and task t accumulates
                // into its own og×k block.
                unsafe {
                    gemm::sgemm(
                        og,
                        k,
                        m * l,
                        a.as_ptr(),
                        rsa as isize,
                        1,
                        b.as_ptr(),
                        1,
                        ld as isize,
                        pp.get().add(t * size + gi * og * k),
                        k as isize,
                        1,
                        true,
                        gt,
                    )
                };
            }
            if bias {
                for i in chunk {
                    // SAFETY: tasks own disjoint images' rows of `sums`.
                    let row = unsafe { sp.slice(i * s.o, (i + 1) * s.o) };
                    for (o, v) in row.iter_mut().enumerate() {
                        *v = super::reduce::sum_row(&gy[(i * s.o + o) * l..][..l]);
                    }
                }
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
    let gb = bias.then(|| {
        let mut gb = vec![0.0f32; s.o];
        for image in sums.chunks_exact(s.o) {
            for (g, &v) in gb.iter_mut().zip(image) {
                *g += v;
            }
        }
        gb
    });
    (parts, gb)
}

/// `[N, C, H, W]` (contiguous) → `[N, C·kh·kw, OH·OW]`; row `(c, ki, kj)`,
/// column `(oh, ow)` holds `x[c, oh·sh + ki·dh - ph, ow·sw + kj·dw - pw]`,
/// or 0 in the padding.
pub fn im2col(x: &[f32], n: usize, c: usize, g: &ConvGeom) -> Vec<f32> {
    let per_in = c * g.h * g.w;
    per_image(n, c * g.kh * g.kw * g.out_h() * g.out_w(), &|i, dst| {
        im2col_image(&x[i * per_in..][..per_in], c, g, dst, g.out_h() * g.out_w())
    })
}

/// The adjoint of [`im2col`]: `[N, C·kh·kw, OH·OW]` → `[N, C, H, W]`,
/// adding every column entry back into the pixel it came from.
pub fn col2im(cols: &[f32], n: usize, c: usize, g: &ConvGeom) -> Vec<f32> {
    let per_col = c * g.kh * g.kw * g.out_h() * g.out_w();
    per_image(n, c * g.h * g.w, &|i, dst| {
        col2im_image(
            &cols[i * per_col..][..per_col],
            c,
            g,
            dst,
            g.out_h() * g.out_w(),
        )
    })
}
