//! The AVX-512 products of the fused seed-network pass: `W₁·X_blkᵀ` and
//! `dZ₁·X_blk` for H = 10, with `X` read in place (f32 or grey levels),
//! ten accumulator rows held in registers.

use std::arch::x86_64::*;

use super::BLOCK;

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

/// Two samples at a time: 2·H accumulators of 16 lanes along `k`, each
/// weight vector loaded once for both samples, one horizontal sum per
/// output at the end.
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
    let mut j = 0;
    while j < nb {
        // An odd last sample runs as its own pair (computed twice, stored once).
        let j1 = if j + 1 < nb { j + 1 } else { j };
        // SAFETY: rows j and j1 < nb of xb; k < d in every load below.
        unsafe {
            let (x0, x1) = (xb.as_ptr().add(j * d), xb.as_ptr().add(j1 * d));
            let mut a0 = [_mm512_setzero_ps(); H];
            let mut a1 = [_mm512_setzero_ps(); H];
            for c in 0..full {
                // The stream of X is the cost (perf: 80% of this loop on the
                // load of x); fetch two pairs ahead, past the block's end too.
                if c % per_line == 0 {
                    _mm_prefetch::<_MM_HINT_T0>(x0.wrapping_add(16 * c + 4 * d).cast());
                    _mm_prefetch::<_MM_HINT_T0>(x0.wrapping_add(16 * c + 5 * d).cast());
                }
                let (v0, v1) = (T::load(x0.add(16 * c)), T::load(x1.add(16 * c)));
                if T::CONVERTS {
                    _mm512_storeu_ps(out.add(j * d + 16 * c), v0);
                    _mm512_storeu_ps(out.add(j1 * d + 16 * c), v1);
                }
                for r in 0..H {
                    let wv = _mm512_loadu_ps(w.add(r * d + 16 * c));
                    a0[r] = _mm512_fmadd_ps(wv, v0, a0[r]);
                    a1[r] = _mm512_fmadd_ps(wv, v1, a1[r]);
                }
            }
            if mask != 0 {
                let k = 16 * full;
                let (v0, v1) = (
                    T::load_masked(x0.add(k), mask),
                    T::load_masked(x1.add(k), mask),
                );
                if T::CONVERTS {
                    _mm512_mask_storeu_ps(out.add(j * d + k), mask, v0);
                    _mm512_mask_storeu_ps(out.add(j1 * d + k), mask, v1);
                }
                for r in 0..H {
                    let wv = _mm512_maskz_loadu_ps(mask, w.add(r * d + k));
                    a0[r] = _mm512_fmadd_ps(wv, v0, a0[r]);
                    a1[r] = _mm512_fmadd_ps(wv, v1, a1[r]);
                }
            }
            for r in 0..H {
                z1[r * BLOCK + j] = _mm512_reduce_add_ps(a0[r]);
                z1[r * BLOCK + j1] = _mm512_reduce_add_ps(a1[r]);
            }
        }
        j += 2;
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
