//! One fused training pass of `Dense → ReLU → Dense → softmax cross-entropy`
//! (the seed report's network, samples as columns): loss, accuracy and every
//! parameter gradient, reading the inputs once.
//!
//! The composed graph streams `X` (`[N, D]`, 105 MB for the report's 33,600
//! images) through memory twice per step: once for `Z₁ = W₁·Xᵀ` and once for
//! `grad_W₁ = dZ₁·X`, both products with a dimension of 10 and so bound by
//! memory, not arithmetic. Here each block of samples is multiplied while it
//! sits in L2: forward product, the tiny rest of the network per sample, then
//! the weight-gradient product on the same block.
//!
//! The samples come as f32 or as grey levels (bytes, read as `k / 255`):
//! the bytes are a quarter of the stream (26 MB instead of 105 MB), and each
//! level becomes the very f32 the data loader makes, in registers, so both
//! give the same bits (tested).
//!
//! Results do not depend on the thread count: the samples are cut into chunks
//! of a fixed size, each chunk sums its own gradients in a fixed order, and
//! the chunks' partial sums are added in chunk order.

use std::sync::Mutex;

use super::gemm::sgemm;
use super::math::exp;
use super::threads::parallel_for;

/// Samples per chunk: one partial sum of every gradient each (32 KB for the
/// report's network), so the partials stay small beside `X`.
const CHUNK: usize = 1024;
/// Samples per block inside a chunk: 128 rows of 784 floats are 400 KB,
/// which two threads' blocks keep in a 2 MB L2 between the two products.
const BLOCK: usize = 128;

/// The network's parameters, PyTorch layout: `w1` `[H, D]`, `b1` `[H]`,
/// `w2` `[C, H]`, `b2` `[C]`.
#[derive(Clone, Copy)]
pub struct DenseReluDense<'a> {
    pub w1: &'a [f32],
    pub b1: &'a [f32],
    pub w2: &'a [f32],
    pub b2: &'a [f32],
    /// Input features `D`.
    pub d: usize,
    /// Hidden units `H`.
    pub h: usize,
    /// Classes `C`.
    pub c: usize,
}

/// The samples `X` `[N, D]`, one row per sample, as the kernel reads them.
#[derive(Clone, Copy)]
pub enum Samples<'a> {
    /// The values themselves.
    F32(&'a [f32]),
    /// Grey levels `k`, each standing for [`grey_level`]`(k)` = `k / 255`.
    Levels(&'a [u8]),
}

impl Samples<'_> {
    fn len(&self) -> usize {
        match self {
            Samples::F32(x) => x.len(),
            Samples::Levels(x) => x.len(),
        }
    }
}

/// The f32 a grey level stands for in [`Samples::Levels`]: `k / 255`,
/// correctly rounded (the same value as `k as f64 / 255.0` rounded to f32,
/// which is how the data loader converts bytes: checked for all 256 levels).
pub fn grey_level(k: u8) -> f32 {
    f32::from(k) / 255.0
}

/// What [`dense_relu_dense_grads`] returns.
pub struct DenseReluDenseGrads {
    /// Mean cross-entropy over the samples.
    pub loss: f32,
    /// Samples whose largest logit is at their label.
    pub correct: usize,
    /// `grad_W₁ = dZ₁·X`, `[H, D]`.
    pub grad_w1: Vec<f32>,
    /// `grad_b₁ = Σ_n dZ₁`, `[H]`.
    pub grad_b1: Vec<f32>,
    /// `grad_W₂ = dZ₂·A₁ᵀ`, `[C, H]`.
    pub grad_w2: Vec<f32>,
    /// `grad_b₂ = Σ_n dZ₂`, `[C]`.
    pub grad_b2: Vec<f32>,
}

/// One chunk's sums: the gradients laid out `[W₁ | b₁ | W₂ | b₂]`.
struct Partial {
    grads: Vec<f32>,
    loss: f64,
    correct: usize,
}

/// Loss, accuracy and gradients of `mean_n CE(softmax(W₂·ReLU(W₁·xₙ + b₁) + b₂), yₙ)`
/// for the rows `xₙ` of `x` (`[N, D]`, i.e. `X = xᵀ` holds samples as
/// columns) and class indices `labels` (`[N]`), on up to `threads` threads.
///
/// # Shapes
/// `x [N, D]`, `labels [N]` -> gradients shaped as the parameters.
///
/// # Panics
/// If the slices do not match `net`'s sizes, or a label is not a class index.
pub fn dense_relu_dense_grads(
    net: &DenseReluDense,
    x: Samples,
    labels: &[f32],
    threads: usize,
) -> DenseReluDenseGrads {
    let DenseReluDense { d, h, c, .. } = *net;
    let n = labels.len();
    assert!(
        x.len() == n * d
            && net.w1.len() == h * d
            && net.b1.len() == h
            && net.w2.len() == c * h
            && net.b2.len() == c,
        "dense_relu_dense_grads: x of {} values, {n} labels, W1 {} (H {h}, D {d}), b1 {}, W2 {} (C {c}), b2 {}",
        x.len(),
        net.w1.len(),
        net.b1.len(),
        net.w2.len(),
        net.b2.len()
    );
    let chunks = n.div_ceil(CHUNK);
    let slots: Vec<Mutex<Option<Partial>>> = (0..chunks).map(|_| Mutex::new(None)).collect();
    parallel_for(chunks, threads, &|i| {
        let rows = i * CHUNK..((i + 1) * CHUNK).min(n);
        let p = chunk(net, x, labels, rows, n);
        *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
    });
    // Fixed order: chunk 0, 1, 2, ... whichever thread ran it.
    let mut total = vec![0.0f32; h * d + h + c * h + c];
    let (mut loss, mut correct) = (0.0f64, 0);
    for slot in slots {
        let p = slot
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .expect("every chunk ran");
        total.iter_mut().zip(&p.grads).for_each(|(t, g)| *t += g);
        loss += p.loss;
        correct += p.correct;
    }
    let grad_b2 = total.split_off(h * d + h + c * h);
    let grad_w2 = total.split_off(h * d + h);
    let grad_b1 = total.split_off(h * d);
    DenseReluDenseGrads {
        loss: (loss / n.max(1) as f64) as f32,
        correct,
        grad_w1: total,
        grad_b1,
        grad_w2,
        grad_b2,
    }
}

/// The sums over the samples `rows`, block by block; `n` is the whole
/// batch (the mean's divisor).
fn chunk(
    net: &DenseReluDense,
    x: Samples,
    labels: &[f32],
    rows: std::ops::Range<usize>,
    n: usize,
) -> Partial {
    let DenseReluDense { w1, d, h, c, .. } = *net;
    let mut grads = vec![0.0f32; h * d + h + c * h + c];
    let (gw1, rest) = grads.split_at_mut(h * d);
    let (gb1, rest) = rest.split_at_mut(h);
    let (gw2, gb2) = rest.split_at_mut(c * h);
    let (mut loss, mut correct) = (0.0f64, 0);
    // Per block: Z₁ [H, BLOCK] (pre-activation), then dZ₁ [H, BLOCK].
    let mut z1 = vec![0.0f32; h * BLOCK];
    let mut dz1 = vec![0.0f32; h * BLOCK];
    let mut lanes = Lanes::new(h, c);
    let inv_n = 1.0 / n as f32;
    let products = Products::for_hidden(h);
    // A block of levels as f32, written by the forward product as it
    // converts them, read back from L2 by the weight-gradient product (one
    // conversion per value: converting in both products cost more than the
    // bytes saved, measured).
    let mut converted = match x {
        Samples::F32(_) => Vec::new(),
        Samples::Levels(_) => vec![0.0f32; BLOCK * d],
    };
    let mut start = rows.start;
    while start < rows.end {
        let nb = BLOCK.min(rows.end - start);
        let span = start * d..(start + nb) * d;
        let xb = match x {
            Samples::F32(x) => Samples::F32(&x[span]),
            Samples::Levels(x) => Samples::Levels(&x[span]),
        };
        products.forward(w1, xb, nb, d, h, &mut z1, &mut converted);
        let xb = match xb {
            Samples::F32(xb) => xb,
            Samples::Levels(_) => &converted[..nb * d],
        };
        for j0 in (0..nb).step_by(L) {
            let group = Group {
                j0,
                valid: L.min(nb - j0),
                labels: &labels[start + j0..start + j0 + L.min(nb - j0)],
                inv_n,
            };
            let (l, k) = lanes.run(net, &group, &mut z1, &mut dz1);
            loss += l;
            correct += k;
        }
        // grad_W₁ += dZ₁·X_blk while the block is still in cache.
        products.grad_w1(&dz1, xb, nb, d, h, gw1);
        start += nb;
    }
    lanes.add_to(gb1, gw2, gb2);
    Partial {
        grads,
        loss,
        correct,
    }
}

/// Samples per lane group of the small layers: one AVX-512 vector.
const L: usize = 16;

/// One group of up to `L` samples of a block.
struct Group<'a> {
    /// First sample, as a column of the block's `Z₁`.
    j0: usize,
    /// Samples in the group (`L` but at a block's end).
    valid: usize,
    labels: &'a [f32],
    inv_n: f32,
}

impl Group<'_> {
    /// Labels as floats (-1 past the group's end) and the per-lane scale:
    /// 1/N for samples, 0 for padding, so padding adds nothing anywhere.
    ///
    /// # Panics
    /// If a label is not a class index below `c`.
    fn lanes(&self, c: usize) -> ([f32; L], [f32; L]) {
        let (mut y, mut scale) = ([-1.0f32; L], [0.0f32; L]);
        for (l, &label) in self.labels.iter().enumerate() {
            assert!(
                label >= 0.0 && label.fract() == 0.0 && (label as usize) < c,
                "dense_relu_dense_grads: label {label} is not a class index below {c}"
            );
            (y[l], scale[l]) = (label, self.inv_n);
        }
        (y, scale)
    }
}

/// The layers after `Z₁`, sixteen samples at a time so every step is a
/// vector operation (the per-sample scalar loops were a third of the step,
/// perf). The portable body's lane loops stayed scalar code all the same
/// (27% of a 2-thread step in `vaddss`/`vmulss`, perf), so on AVX-512 the
/// same steps are written with intrinsics (`avx512::lanes_avx512`).
/// Lane `l` of each accumulator sums sample `j0 + l` of every group;
/// the lanes are added up once, at the chunk's end, in lane order.
struct Lanes {
    h: usize,
    c: usize,
    /// `A₁`, `Z₂` / `dZ₂`, `dA₁` of the group: `[H, L]`, `[C, L]`, `[H, L]`.
    a1: Vec<f32>,
    z2: Vec<f32>,
    da1: Vec<f32>,
    /// Lane partial sums of `grad_b₁` `[H, L]`, `grad_W₂` `[C·H, L]`, `grad_b₂` `[C, L]`.
    gb1: Vec<f32>,
    gw2: Vec<f32>,
    gb2: Vec<f32>,
}

impl Lanes {
    fn new(h: usize, c: usize) -> Lanes {
        Lanes {
            h,
            c,
            a1: vec![0.0; h * L],
            z2: vec![0.0; c * L],
            da1: vec![0.0; h * L],
            gb1: vec![0.0; h * L],
            gw2: vec![0.0; c * h * L],
            gb2: vec![0.0; c * L],
        }
    }

    /// Forward from `Z₁` (bias added in place), softmax cross-entropy, and
    /// backward to `dZ₁`; returns the group's summed loss and correct count.
    fn run(
        &mut self,
        net: &DenseReluDense,
        g: &Group,
        z1: &mut [f32],
        dz1: &mut [f32],
    ) -> (f64, usize) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { avx512::lanes_avx512(self, net, g, z1, dz1) };
        }
        self.run_body(net, g, z1, dz1)
    }

    fn run_body(
        &mut self,
        net: &DenseReluDense,
        g: &Group,
        z1: &mut [f32],
        dz1: &mut [f32],
    ) -> (f64, usize) {
        let (h, c) = (self.h, self.c);
        let (w2, b1, b2) = (net.w2, net.b1, net.b2);
        let lanes = |v: &mut [f32], i: usize| -> *mut [f32; L] {
            <&mut [f32; L]>::try_from(&mut v[i * L..(i + 1) * L]).expect("L lanes")
        };
        let (y, scale) = g.lanes(c);
        // SAFETY (every deref below): `lanes` points into a live Vec owned
        // by self or the caller, L values in bounds, no two alive at once
        // for the same buffer.
        unsafe {
            for r in 0..h {
                let z = &mut *(&mut z1[r * BLOCK + g.j0..r * BLOCK + g.j0 + L] as *mut [f32]
                    as *mut [f32; L]);
                let a = &mut *lanes(&mut self.a1, r);
                for l in 0..L {
                    z[l] += b1[r];
                    a[l] = z[l].max(0.0);
                }
            }
            // Z₂ = W₂·A₁ + b₂.
            for i in 0..c {
                let z = &mut *lanes(&mut self.z2, i);
                *z = [0.0; L];
                for r in 0..h {
                    let (w, a) = (w2[i * h + r], &*lanes(&mut self.a1, r));
                    for l in 0..L {
                        z[l] += w * a[l];
                    }
                }
                for v in z.iter_mut() {
                    *v += b2[i];
                }
            }
            // Softmax cross-entropy: dZ₂ = (softmax(Z₂) - onehot(y)) / N.
            let (mut max, mut best) = ([f32::NEG_INFINITY; L], [0.0f32; L]);
            let mut zy = [0.0f32; L];
            for i in 0..c {
                let z = &*lanes(&mut self.z2, i);
                for l in 0..L {
                    if z[l] > max[l] {
                        (max[l], best[l]) = (z[l], i as f32);
                    }
                    if y[l] == i as f32 {
                        zy[l] = z[l];
                    }
                }
            }
            let mut sum = [0.0f32; L];
            for i in 0..c {
                let z = &mut *lanes(&mut self.z2, i);
                for l in 0..L {
                    z[l] = exp(z[l] - max[l]);
                    sum[l] += z[l];
                }
            }
            let (mut loss, mut correct) = (0.0f64, 0);
            for l in 0..g.valid {
                // -log_softmax(z₂)[y] = ln Σ e^(z - max) - (z_y - max).
                loss += f64::from(sum[l].ln() - (zy[l] - max[l]));
                correct += usize::from(best[l] == y[l]);
            }
            for i in 0..c {
                let z = &mut *lanes(&mut self.z2, i);
                let gb = &mut *lanes(&mut self.gb2, i);
                for l in 0..L {
                    let hot = if y[l] == i as f32 { 1.0 } else { 0.0 };
                    z[l] = (z[l] / sum[l] - hot) * scale[l];
                    gb[l] += z[l];
                }
            }
            // grad_W₂ += dZ₂·A₁ᵀ, dA₁ = W₂ᵀ·dZ₂.
            self.da1.fill(0.0);
            for i in 0..c {
                let dz = &*lanes(&mut self.z2, i);
                for r in 0..h {
                    let (a, gw) = (
                        &*lanes(&mut self.a1, r),
                        &mut *lanes(&mut self.gw2, i * h + r),
                    );
                    let da = &mut *lanes(&mut self.da1, r);
                    let w = w2[i * h + r];
                    for l in 0..L {
                        gw[l] += dz[l] * a[l];
                        da[l] += w * dz[l];
                    }
                }
            }
            // ReLU: dZ₁ = dA₁ where Z₁ > 0.
            for r in 0..h {
                let z = &*(&z1[r * BLOCK + g.j0..r * BLOCK + g.j0 + L] as *const [f32]
                    as *const [f32; L]);
                let d = &mut *(&mut dz1[r * BLOCK + g.j0..r * BLOCK + g.j0 + L] as *mut [f32]
                    as *mut [f32; L]);
                let (da, gb) = (&*lanes(&mut self.da1, r), &mut *lanes(&mut self.gb1, r));
                for l in 0..L {
                    d[l] = if z[l] > 0.0 { da[l] } else { 0.0 };
                    gb[l] += d[l];
                }
            }
            (loss, correct)
        }
    }

    /// Adds the lane sums, lane 0 first, to the chunk's gradients.
    fn add_to(&self, gb1: &mut [f32], gw2: &mut [f32], gb2: &mut [f32]) {
        for (out, acc) in [(gb1, &self.gb1), (gw2, &self.gw2), (gb2, &self.gb2)] {
            for (o, v) in out.iter_mut().zip(acc.chunks_exact(L)) {
                *o += v.iter().sum::<f32>();
            }
        }
    }
}

/// The two products with `X`: the packed GEMM for any width, or direct
/// AVX-512 loops for the seed network's H = 10.
///
/// Measured (perf, 2 threads, 33,600 × 784): through `sgemm`, packing each
/// block of `X` (twice: once per product) took 35% of the step and the
/// microkernel 29%; a product with 10 rows needs no packing, since its
/// 10 accumulator rows fit in registers and `X`'s rows are read in place.
#[derive(Clone, Copy)]
enum Products {
    Gemm,
    #[cfg(target_arch = "x86_64")]
    Avx512H10,
}

impl Products {
    fn for_hidden(h: usize) -> Products {
        #[cfg(target_arch = "x86_64")]
        if h == 10 && std::is_x86_feature_detected!("avx512f") {
            return Products::Avx512H10;
        }
        let _ = h;
        Products::Gemm
    }

    /// `z1[r·BLOCK + j] = Σ_k w1[r·d + k] · xb[j·d + k]`; levels are also
    /// written to `converted` (`[nb, d]`) as f32.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        self,
        w1: &[f32],
        xb: Samples,
        nb: usize,
        d: usize,
        h: usize,
        z1: &mut [f32],
        converted: &mut [f32],
    ) {
        assert!(w1.len() >= h * d && xb.len() >= nb * d && nb <= BLOCK && z1.len() >= h * BLOCK);
        if let Samples::Levels(_) = xb {
            assert!(
                converted.len() >= nb * d,
                "dense_relu_dense: conversion buffer"
            );
        }
        match (self, xb) {
            // SAFETY: w1 is [h, d], xb [nb, d], z1 [h, BLOCK] (checked above).
            (Products::Gemm, Samples::F32(xb)) => unsafe {
                sgemm(
                    h,
                    nb,
                    d,
                    w1.as_ptr(),
                    d as isize,
                    1,
                    xb.as_ptr(),
                    1,
                    d as isize,
                    z1.as_mut_ptr(),
                    BLOCK as isize,
                    1,
                    false,
                    1,
                )
            },
            (Products::Gemm, Samples::Levels(xb)) => {
                let copy = &mut converted[..nb * d];
                copy.iter_mut()
                    .zip(xb)
                    .for_each(|(v, &k)| *v = grey_level(k));
                Products::Gemm.forward(w1, Samples::F32(copy), nb, d, h, z1, &mut []);
            }
            // SAFETY: the CPU has AVX-512F (for_hidden checked); sizes above.
            #[cfg(target_arch = "x86_64")]
            (Products::Avx512H10, Samples::F32(xb)) => unsafe {
                forward_avx512::<10, f32>(w1, xb, nb, d, z1, &mut [])
            },
            // SAFETY: as above; converted holds nb·d values (checked above).
            #[cfg(target_arch = "x86_64")]
            (Products::Avx512H10, Samples::Levels(xb)) => unsafe {
                forward_avx512::<10, u8>(w1, xb, nb, d, z1, converted)
            },
        }
    }

    /// `gw1[r·d + k] += Σ_j dz1[r·BLOCK + j] · xb[j·d + k]`.
    fn grad_w1(self, dz1: &[f32], xb: &[f32], nb: usize, d: usize, h: usize, gw1: &mut [f32]) {
        assert!(nb <= BLOCK && dz1.len() >= h * BLOCK && xb.len() >= nb * d && gw1.len() >= h * d);
        match self {
            // SAFETY: dz1 is [h, BLOCK], xb [nb, d], gw1 [h, d].
            Products::Gemm => unsafe {
                sgemm(
                    h,
                    d,
                    nb,
                    dz1.as_ptr(),
                    BLOCK as isize,
                    1,
                    xb.as_ptr(),
                    d as isize,
                    1,
                    gw1.as_mut_ptr(),
                    d as isize,
                    1,
                    true,
                    1,
                )
            },
            // SAFETY: as forward.
            #[cfg(target_arch = "x86_64")]
            Products::Avx512H10 => unsafe { grad_w1_avx512::<10>(dz1, xb, nb, d, gw1) },
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
use avx512::{forward_avx512, grad_w1_avx512};

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "x86_64")]
    use avx512::{Element, lanes_avx512, tail_mask};
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::{__mmask16, _mm512_storeu_ps};

    /// The AVX-512 lane groups give the portable body's bits: every buffer
    /// they write (Z₁ with its bias, dZ₁, the lane sums) and the loss and
    /// correct count, for a full group and a partial one.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_lanes_match_the_portable_body() {
        if !std::is_x86_feature_detected!("avx512f") {
            println!("skipped: no avx512f");
            return;
        }
        let (h, c) = (10, 10);
        let mut rng = crate::Rng::new(11);
        let mut next = move || rng.uniform_range(-2.0, 2.0);
        let (w2, b1, b2): (Vec<f32>, Vec<f32>, Vec<f32>) = (
            (0..c * h).map(|_| next()).collect(),
            (0..h).map(|_| next()).collect(),
            (0..c).map(|_| next()).collect(),
        );
        let w1 = vec![0.0f32; h * 3];
        let net = DenseReluDense {
            w1: &w1,
            b1: &b1,
            w2: &w2,
            b2: &b2,
            d: 3,
            h,
            c,
        };
        let labels: Vec<f32> = (0..L).map(|l| (l * 7 % c) as f32).collect();
        let z1: Vec<f32> = (0..h * BLOCK).map(|_| next() * 3.0).collect();
        for (j0, valid) in [(0, L), (32, 5)] {
            let g = Group {
                j0,
                valid,
                labels: &labels[..valid],
                inv_n: 1.0 / 300.0,
            };
            let mut want = (Lanes::new(h, c), z1.clone(), vec![0.0f32; h * BLOCK]);
            let mut got = (Lanes::new(h, c), z1.clone(), vec![0.0f32; h * BLOCK]);
            let mut sums = Vec::new();
            for _ in 0..2 {
                sums.push(want.0.run_body(&net, &g, &mut want.1, &mut want.2));
                // SAFETY: AVX-512F detected; buffers sized as run expects.
                sums.push(unsafe { lanes_avx512(&mut got.0, &net, &g, &mut got.1, &mut got.2) });
            }
            assert_eq!(sums[0], sums[1], "loss and correct count, group at {j0}");
            assert_eq!(
                sums[2], sums[3],
                "second pass: loss and correct count, group at {j0}"
            );
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            for (what, a, b) in [
                ("z1", &want.1, &got.1),
                ("dz1", &want.2, &got.2),
                ("gb1", &want.0.gb1, &got.0.gb1),
                ("gw2", &want.0.gw2, &got.0.gw2),
                ("gb2", &want.0.gb2, &got.0.gb2),
            ] {
                assert_eq!(bits(a), bits(b), "{what}, group at {j0}");
            }
        }
    }

    /// The kernels' vector conversion gives [`grey_level`]'s bits for every
    /// level, and `grey_level` the data loader's (`k as f64 / 255` rounded).
    #[test]
    fn levels_convert_like_the_loader() {
        for k in 0..=255u8 {
            let loader = (f64::from(k) / 255.0) as f32;
            assert_eq!(grey_level(k).to_bits(), loader.to_bits(), "level {k}");
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            #[target_feature(enable = "avx512f")]
            unsafe fn convert(levels: &[u8; 16], mask: __mmask16) -> [f32; 16] {
                let mut out = [0.0f32; 16];
                // SAFETY: 16 readable bytes, 16 writable floats.
                unsafe {
                    _mm512_storeu_ps(out.as_mut_ptr(), u8::load_masked(levels.as_ptr(), mask))
                };
                out
            }
            for base in (0..256).step_by(16) {
                let levels: [u8; 16] = std::array::from_fn(|i| (base + i) as u8);
                for mask in [0xFFFF, tail_mask(7), 0] {
                    // SAFETY: the CPU has AVX-512F.
                    let got = unsafe { convert(&levels, mask) };
                    for (i, (g, &k)) in got.iter().zip(&levels).enumerate() {
                        let want = if mask >> i & 1 == 1 {
                            grey_level(k)
                        } else {
                            0.0
                        };
                        assert_eq!(g.to_bits(), want.to_bits(), "level {k}, mask {mask:#x}");
                    }
                }
            }
        }
    }
}
