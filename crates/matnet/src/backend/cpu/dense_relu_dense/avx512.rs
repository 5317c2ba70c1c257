//! The AVX-512 products of the fused seed-network pass: `W₁·X_blkᵀ` and
//! `dZ₁·X_blk` for H = 10, with `X` read in place (f32 or grey levels),
//! ten accumulator rows held in registers.

use std::arch::x86_64::*;

use super::super::math::exp_avx512;
use super::{BLOCK, DenseReluDense, Group, L, Lanes};

/// Mask of the `d % 16` valid lanes of the last, partial vector of a row.
pub(super) fn tail_mask(d: usize) -> __mmask16 {
    ((1u32 << (d % 16)) - 1) as __mmask16
}

/// An element of `X` as the AVX-512 products load it: f32 as stored, or a
/// grey level converted in registers to [`super::grey_level`]'s value.
pub(super) trait Element: Copy {
    /// Whether the loaded values are conversions worth keeping (levels).
    const CONVERTS: bool;
    /// Sixteen values at `p`.
    ///
    /// # Safety
    /// AVX-512F; `p` points at 16 readable elements.
    unsafe fn load(p: *const Self) -> __m512;
    /// The lanes of `mask` (a prefix: `tail_mask` or all) at `p`, zeros elsewhere.
    ///
    /// # Safety
    /// AVX-512F; the masked elements at `p` are readable.
    unsafe fn load_masked(p: *const Self, mask: __mmask16) -> __m512;
}

impl Element for f32 {
    const CONVERTS: bool = false;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        // SAFETY: the caller's contract.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f32, mask: __mmask16) -> __m512 {
        // SAFETY: the caller's contract.
        unsafe { _mm512_maskz_loadu_ps(mask, p) }
    }
}

impl Element for u8 {
    const CONVERTS: bool = true;
    #[inline(always)]
    unsafe fn load(p: *const u8) -> __m512 {
        // SAFETY: the caller's contract.
        unsafe { levels_to_unit(_mm_loadu_si128(p.cast())) }
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const u8, mask: __mmask16) -> __m512 {
        if mask == 0xFFFF {
            // SAFETY: the caller's contract.
            return unsafe { Self::load(p) };
        }
        // A row's tail only (masked byte loads need AVX-512BW): copy the
        // valid bytes, zeros after them give zero lanes.
        let mut buf = [0u8; 16];
        let valid = mask.count_ones() as usize;
        // SAFETY: the caller's contract: `valid` bytes at p are readable.
        unsafe {
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), valid);
            levels_to_unit(_mm_loadu_si128(buf.as_ptr().cast()))
        }
    }
}

/// Sixteen grey levels to `k / 255`, correctly rounded like [`super::grey_level`]:
/// `k·hi + k·lo` in one rounding (an FMA), where `hi + lo` is `1/255` to
/// about 48 bits. The product `k·hi` alone is wrong for 126 of the 256
/// levels; a division (`vdivps`) is right but costs several times the
/// multiply and the FMA. Tested for all 256.
#[inline(always)]
unsafe fn levels_to_unit(bytes: __m128i) -> __m512 {
    // SAFETY: the caller has AVX-512F.
    unsafe {
        let k = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
        // hi = 1/255 rounded to f32; lo = 1/255 - hi, rounded.
        let hi = _mm512_set1_ps(1.0 / 255.0);
        let lo = _mm512_set1_ps(((1.0f64 / 255.0) - f64::from(1.0f32 / 255.0)) as f32);
        _mm512_fmadd_ps(k, hi, _mm512_mul_ps(k, lo))
    }
}

/// One sample at a time: H accumulators of 16 lanes along `k`, one
/// horizontal sum per output at the end. `W₁` (31 KB for the report's
/// network) stays in L1, so loading each weight vector once per sample
/// costs no more than sharing it between two samples did, and H = 10
/// accumulators leave the register allocator room: with two samples' 20,
/// it kept 8 of them on the stack (a load and a store beside each of their
/// FMAs, 52% of a step). Each output is the same sum in the same order
/// either way.
///
/// # Safety
/// AVX-512F; `w1` holds `H·d` values, `xb` `nb·d`, `z1` `H·BLOCK`, `nb <= BLOCK`;
/// for levels (`T::CONVERTS`) `copy` holds `nb·d`, where their f32 values go.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn forward_avx512<const H: usize, T: Element>(
    w1: &[f32],
    xb: &[T],
    nb: usize,
    d: usize,
    z1: &mut [f32],
    copy: &mut [f32],
) {
    let (full, mask) = (d / 16, tail_mask(d));
    let w = w1.as_ptr();
    let out = copy.as_mut_ptr();
    // One prefetch per cache line of X.
    let per_line = 64 / (16 * std::mem::size_of::<T>());
    for j in 0..nb {
        // SAFETY: row j < nb of xb; k < d in every load below.
        unsafe {
            let x = xb.as_ptr().add(j * d);
            let mut acc = [_mm512_setzero_ps(); H];
            for line in (0..full).step_by(per_line) {
                // The stream of X is the cost (perf: 80% of this loop on the
                // load of x); fetch four samples ahead, past the block's end too.
                _mm_prefetch::<_MM_HINT_T0>(x.wrapping_add(16 * line + 4 * d).cast());
                for c in line..(line + per_line).min(full) {
                    let v = T::load(x.add(16 * c));
                    if T::CONVERTS {
                        _mm512_storeu_ps(out.add(j * d + 16 * c), v);
                    }
                    for (r, a) in acc.iter_mut().enumerate() {
                        *a = _mm512_fmadd_ps(_mm512_loadu_ps(w.add(r * d + 16 * c)), v, *a);
                    }
                }
            }
            if mask != 0 {
                let k = 16 * full;
                let v = T::load_masked(x.add(k), mask);
                if T::CONVERTS {
                    _mm512_mask_storeu_ps(out.add(j * d + k), mask, v);
                }
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, w.add(r * d + k)), v, *a);
                }
            }
            for (r, a) in acc.iter().enumerate() {
                z1[r * BLOCK + j] = _mm512_reduce_add_ps(*a);
            }
        }
    }
}

/// Thirty-two columns of `grad_W₁` at a time: 2·H accumulators of 16 lanes
/// along `k`, summed over the block's samples in order, then added to `gw1`.
///
/// # Safety
/// AVX-512F; `dz1` holds `H·BLOCK` values, `xb` `nb·d`, `gw1` `H·d`, `nb <= BLOCK`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn grad_w1_avx512<const H: usize>(
    dz1: &[f32],
    xb: &[f32],
    nb: usize,
    d: usize,
    gw1: &mut [f32],
) {
    let (x, g, out) = (xb.as_ptr(), dz1.as_ptr(), gw1.as_mut_ptr());
    let mut k = 0;
    while k < d {
        // Masks for the two vectors at k and k + 16 (a partial or empty tail).
        let lanes = |at: usize| -> __mmask16 {
            if at + 16 <= d {
                0xFFFF
            } else if at < d {
                tail_mask(d)
            } else {
                0
            }
        };
        let (m0, m1) = (lanes(k), lanes(k + 16));
        // SAFETY: masked lanes stay below d; rows j < nb; r < H.
        unsafe {
            let mut a0 = [_mm512_setzero_ps(); H];
            let mut a1 = [_mm512_setzero_ps(); H];
            for j in 0..nb {
                let row = x.add(j * d + k);
                let v0 = _mm512_maskz_loadu_ps(m0, row);
                let v1 = _mm512_maskz_loadu_ps(m1, row.wrapping_add(16));
                for r in 0..H {
                    let gv = _mm512_set1_ps(*g.add(r * BLOCK + j));
                    a0[r] = _mm512_fmadd_ps(gv, v0, a0[r]);
                    a1[r] = _mm512_fmadd_ps(gv, v1, a1[r]);
                }
            }
            for r in 0..H {
                let p = out.add(r * d + k);
                _mm512_mask_storeu_ps(p, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, p), a0[r]));
                let p = p.wrapping_add(16);
                _mm512_mask_storeu_ps(p, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, p), a1[r]));
            }
        }
        k += 32;
    }
}

/// [`Lanes::run`] in 16-lane AVX-512 registers, one vector per row of the
/// group: the portable body's operations in its order (separate multiplies
/// and adds, the same comparisons, [`exp_avx512`] for `exp`), so the two
/// give the same bits.
///
/// # Safety
/// AVX-512F; `z1` and `dz1` are `[H, BLOCK]` with `g.j0 + L <= BLOCK`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn lanes_avx512(
    lanes: &mut Lanes,
    net: &DenseReluDense,
    g: &Group,
    z1: &mut [f32],
    dz1: &mut [f32],
) -> (f64, usize) {
    let (h, c) = (lanes.h, lanes.c);
    let (w2, b1, b2) = (net.w2, net.b1, net.b2);
    assert!(
        w2.len() >= c * h && b1.len() >= h && b2.len() >= c && g.j0 + L <= BLOCK,
        "dense_relu_dense: lane group"
    );
    assert!(z1.len() >= h * BLOCK && dz1.len() >= h * BLOCK);
    let (y, scale) = g.lanes(c);
    let (add, sub, mul) = (_mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps);
    let set1 = _mm512_set1_ps;
    let zero = _mm512_setzero_ps();
    let (a1, z2, da1) = (
        lanes.a1.as_mut_ptr(),
        lanes.z2.as_mut_ptr(),
        lanes.da1.as_mut_ptr(),
    );
    let (gb1, gw2, gb2) = (
        lanes.gb1.as_mut_ptr(),
        lanes.gw2.as_mut_ptr(),
        lanes.gb2.as_mut_ptr(),
    );
    let row = |r: usize| r * BLOCK + g.j0;
    // SAFETY (every load and store): the buffers hold H·L (a1, da1, gb1),
    // C·L (z2, gb2), C·H·L (gw2) floats, Lanes::new; z1 and dz1 rows as
    // asserted above.
    unsafe {
        let (yv, sv) = (_mm512_loadu_ps(y.as_ptr()), _mm512_loadu_ps(scale.as_ptr()));
        for (r, &bias) in b1.iter().enumerate().take(h) {
            let zp = z1.as_mut_ptr().add(row(r));
            let z = add(_mm512_loadu_ps(zp), set1(bias));
            _mm512_storeu_ps(zp, z);
            // f32::max(z, 0) gives 0 for NaN; so does vmaxps with 0 second.
            _mm512_storeu_ps(a1.add(r * L), _mm512_max_ps(z, zero));
        }
        // Z₂ = W₂·A₁ + b₂.
        for i in 0..c {
            let mut z = zero;
            for r in 0..h {
                z = add(z, mul(set1(w2[i * h + r]), _mm512_loadu_ps(a1.add(r * L))));
            }
            _mm512_storeu_ps(z2.add(i * L), add(z, set1(b2[i])));
        }
        // Softmax cross-entropy: dZ₂ = (softmax(Z₂) - onehot(y)) / N.
        let (mut max, mut best, mut zy) = (set1(f32::NEG_INFINITY), zero, zero);
        for i in 0..c {
            let (z, iv) = (_mm512_loadu_ps(z2.add(i * L)), set1(i as f32));
            let gt = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(z, max);
            max = _mm512_mask_mov_ps(max, gt, z);
            best = _mm512_mask_mov_ps(best, gt, iv);
            zy = _mm512_mask_mov_ps(zy, _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(yv, iv), z);
        }
        let mut sum = zero;
        for i in 0..c {
            let e = exp_avx512(sub(_mm512_loadu_ps(z2.add(i * L)), max));
            _mm512_storeu_ps(z2.add(i * L), e);
            sum = add(sum, e);
        }
        let mut out = [[0.0f32; L]; 4];
        for (o, v) in out.iter_mut().zip([sum, zy, max, best]) {
            _mm512_storeu_ps(o.as_mut_ptr(), v);
        }
        let [sum_l, zy_l, max_l, best_l] = out;
        let (mut loss, mut correct) = (0.0f64, 0);
        for l in 0..g.valid {
            // -log_softmax(z₂)[y] = ln Σ e^(z - max) - (z_y - max).
            loss += f64::from(sum_l[l].ln() - (zy_l[l] - max_l[l]));
            correct += usize::from(best_l[l] == y[l]);
        }
        for i in 0..c {
            let hot = _mm512_mask_mov_ps(
                zero,
                _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(yv, set1(i as f32)),
                set1(1.0),
            );
            let d = mul(
                sub(_mm512_div_ps(_mm512_loadu_ps(z2.add(i * L)), sum), hot),
                sv,
            );
            _mm512_storeu_ps(z2.add(i * L), d);
            _mm512_storeu_ps(gb2.add(i * L), add(_mm512_loadu_ps(gb2.add(i * L)), d));
        }
        // grad_W₂ += dZ₂·A₁ᵀ, dA₁ = W₂ᵀ·dZ₂.
        for r in 0..h {
            _mm512_storeu_ps(da1.add(r * L), zero);
        }
        for i in 0..c {
            let dz = _mm512_loadu_ps(z2.add(i * L));
            for r in 0..h {
                let gw = gw2.add((i * h + r) * L);
                let a = _mm512_loadu_ps(a1.add(r * L));
                _mm512_storeu_ps(gw, add(_mm512_loadu_ps(gw), mul(dz, a)));
                let da = da1.add(r * L);
                _mm512_storeu_ps(da, add(_mm512_loadu_ps(da), mul(set1(w2[i * h + r]), dz)));
            }
        }
        // ReLU: dZ₁ = dA₁ where Z₁ > 0.
        for r in 0..h {
            let pos =
                _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_loadu_ps(z1.as_ptr().add(row(r))), zero);
            let d = _mm512_maskz_mov_ps(pos, _mm512_loadu_ps(da1.add(r * L)));
            _mm512_storeu_ps(dz1.as_mut_ptr().add(row(r)), d);
            _mm512_storeu_ps(gb1.add(r * L), add(_mm512_loadu_ps(gb1.add(r * L)), d));
        }
        (loss, correct)
    }
}
