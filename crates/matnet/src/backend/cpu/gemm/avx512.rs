//! The AVX-512F microkernel (x86_64).

use super::Kernel;
use super::packing::scatter_tile;
use std::arch::x86_64::*;

/// AVX-512F 12×32 kernel: 24 zmm accumulators + 2 for the B row + 1
/// broadcast of A = 27 of 32 zmm registers. Per k step: 24 FMAs (12
/// cycles on two 512-bit FMA ports) against 2 vector loads and 12
/// broadcasts, so the FMA ports stay the bottleneck. 24 independent
/// accumulators cover the 4-cycle latency × 2 ports = 8 in flight three
/// times over.
///
/// NR = 32 (two zmm per B row) rather than 48: the MLP and attention
/// shapes have n = 10..256, where a 48-wide tile wastes more lanes on the
/// ragged last panel. Measured on a 2-core AVX-512 Xeon (L2 2 MiB per
/// core), 1 thread: 512³ 165 GFLOP/s vs 111 for AVX2 6×16, 2048³ 156 vs
/// 105; the MNIST MLP shapes 1.3-1.6× AVX2. 14×32 (28 accumulators,
/// MC = 336) measured within 6% of 12×32 on all of these shapes, slower
/// on most of them (2048³: 147 vs 156), so 12×32 stays.
pub(super) struct Avx512x12x32;

const MR: usize = 12;
const NR: usize = 32;

impl Kernel for Avx512x12x32 {
    const MR: usize = MR;
    const NR: usize = NR;
    // KC = 256: the B micro-panel (256×32 floats = 32 KiB) stays in the
    // 48 KiB L1d next to the streaming 12 KiB A micro-panel, and each C
    // tile is loaded/stored once per 256 k-steps.
    // MC = 384: the packed A block (384×256×4 = 384 KiB) takes a fifth
    // of the 2 MiB L2, leaving room for the B panels streaming through
    // and for the other hyperthread's working set.
    // NC = 4096: the packed B block (4 MiB) lives in L3.
    const KC: usize = 256;
    const MC: usize = 384;
    const NC: usize = 4096;

    unsafe fn tile(
        k: usize,
        a: *const f32,
        ars: isize,
        acs: isize,
        b: *const f32,
        brs: isize,
        c: *mut f32,
        rsc: isize,
        csc: isize,
        rows: usize,
        cols: usize,
        accumulate: bool,
    ) {
        macro_rules! rows {
            ($($r:literal)*) => {
                match rows {
                    // SAFETY: forwarded kernel contract; `sgemm` only
                    // selects this kernel when AVX-512F is detected.
                    $($r => unsafe {
                        tile_r::<$r>(k, a, ars, acs, b, brs, c, rsc, csc, cols, accumulate)
                    },)*
                    _ => {}
                }
            };
        }
        rows!(12 11 10 9 8 7 6 5 4 3 2 1);
    }

    unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rsb: isize, csb: isize, dst: *mut f32) {
        // Transposed B (G·Wᵀ) through the scalar gather cost 26% on
        // 64×256·(784×256)ᵀ (106 vs 144 GFLOP/s with the 8×8 transposes).
        // SAFETY: forwarded; `GemmKernel::Avx512` requires AVX2+FMA too.
        unsafe {
            if rsb == 1 && csb != 1 && nc >= NR && kc >= 8 {
                super::avx2::pack_b_colmajor::<Self>(kc, nc, b, csb, dst)
            } else {
                super::packing::pack_b_block::<Self>(kc, nc, b, rsb, csb, dst)
            }
        }
    }
}

#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_r<const R: usize>(
    k: usize,
    a: *const f32,
    ars: isize,
    acs: isize,
    b: *const f32,
    brs: isize,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    cols: usize,
    accumulate: bool,
) {
    // SAFETY: forwarded kernel contract.
    unsafe {
        // Same reasons as the AVX2 kernel: C is touched only after the
        // whole k loop, so its misses are started now, and B read in
        // place (unpacked) needs software prefetch to keep streaming.
        for r in 0..R {
            let cr = c.wrapping_offset(r as isize * rsc) as *const i8;
            _mm_prefetch::<_MM_HINT_T0>(cr);
            _mm_prefetch::<_MM_HINT_T0>(cr.wrapping_offset((cols as isize - 1) * csc * 4));
        }
        let packed_a = ars == 1 && acs == MR as isize;
        let acc = match (packed_a, brs == NR as isize) {
            (true, true) => body::<R, true, false>(k, a, ars, acs, b, brs),
            (false, true) => body::<R, false, false>(k, a, ars, acs, b, brs),
            (true, false) => body::<R, true, true>(k, a, ars, acs, b, brs),
            (false, false) => body::<R, false, true>(k, a, ars, acs, b, brs),
        };
        if csc == 1 {
            // Ragged columns use masked loads/stores: masked-off lanes are
            // neither read nor written (and cannot fault), so no
            // temporary tile is needed.
            let m0: __mmask16 = if cols >= 16 {
                0xFFFF
            } else {
                (1u16 << cols) - 1
            };
            let m1: __mmask16 = if cols >= NR {
                0xFFFF
            } else if cols > 16 {
                (1u16 << (cols - 16)) - 1
            } else {
                0
            };
            for (r, acc_r) in acc.iter().enumerate().take(R) {
                let cr = c.offset(r as isize * rsc);
                let (mut lo, mut hi) = (acc_r[0], acc_r[1]);
                if accumulate {
                    lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(m0, cr));
                    hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(m1, cr.wrapping_add(16)));
                }
                _mm512_mask_storeu_ps(cr, m0, lo);
                _mm512_mask_storeu_ps(cr.wrapping_add(16), m1, hi);
            }
        } else {
            let mut tmp = [0.0f32; MR * NR];
            for (r, acc_r) in acc.iter().enumerate().take(R) {
                _mm512_storeu_ps(tmp.as_mut_ptr().add(r * NR), acc_r[0]);
                _mm512_storeu_ps(tmp.as_mut_ptr().add(r * NR + 16), acc_r[1]);
            }
            scatter_tile(tmp.as_ptr(), NR, c, rsc, csc, R, cols, accumulate);
        }
    }
}

/// The k loop. `PACKED` fixes A's strides to the packed layout (1, MR)
/// so A loads use immediate offsets (and fold into the FMA as embedded
/// broadcasts) instead of runtime-stride address arithmetic.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn body<const R: usize, const PACKED: bool, const PREFETCH_B: bool>(
    k: usize,
    a: *const f32,
    ars: isize,
    acs: isize,
    b: *const f32,
    brs: isize,
) -> [[__m512; 2]; MR] {
    let (ars, acs) = if PACKED { (1, MR as isize) } else { (ars, acs) };
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let mut ap = a;
    let mut bp = b;
    // SAFETY: kernel contract: A rows < R and B rows < k readable.
    unsafe {
        for _ in 0..k {
            let b0 = _mm512_loadu_ps(bp);
            let b1 = _mm512_loadu_ps(bp.add(16));
            if PREFETCH_B {
                // The next panel's two cache lines of this B row.
                _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(NR) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(NR + 16) as *const i8);
            }
            for (r, acc_r) in acc.iter_mut().enumerate().take(R) {
                let av = _mm512_set1_ps(*ap.offset(r as isize * ars));
                acc_r[0] = _mm512_fmadd_ps(av, b0, acc_r[0]);
                acc_r[1] = _mm512_fmadd_ps(av, b1, acc_r[1]);
            }
            ap = ap.wrapping_offset(acs);
            bp = bp.wrapping_offset(brs);
        }
    }
    acc
}
