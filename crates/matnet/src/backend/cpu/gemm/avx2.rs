//! The AVX2+FMA microkernel and its SIMD packing routines (x86_64).

use super::Kernel;
use super::packing::scatter_tile;
use std::arch::x86_64::*;

/// AVX2+FMA 6×16 kernel: 12 ymm accumulators + 2 for the B row + 1
/// broadcast of A = 15 of 16 ymm registers. Per k step: 12 FMAs (6
/// cycles on Zen 3's two FMA pipes) against 2 vector loads and 6
/// broadcasts (8 loads, Zen 3 does 3/cycle), so the FMA pipes are the
/// bottleneck as they should be. 12 independent accumulators cover the
/// 4-cycle FMA latency × 2 pipes = 8 in flight with room to spare.
pub(super) struct Avx2Fma6x16;

const MR: usize = 6;
const NR: usize = 16;

impl Kernel for Avx2Fma6x16 {
    const MR: usize = MR;
    const NR: usize = NR;
    // KC = 256: the B micro-panel (256×16 floats = 16 KiB) stays in
    // half of the 32 KiB L1d next to a 6 KiB A micro-panel, and a C
    // tile is loaded/stored once per 256 k-steps (<5% overhead). KC
    // 384/512 measured within noise at n ≥ 1024 and worse for mid sizes.
    // MC = 144: the packed A block (144×256×4 = 144 KiB) sits in the
    // 512 KiB L2 with room for the B panels streaming through; 72-240
    // all measured within ±3%. NC = 4096: the packed B block (4 MiB)
    // lives in the 32 MiB L3; it only limits very wide products.
    const KC: usize = 256;
    const MC: usize = 144;
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
        // SAFETY: forwarded kernel contract; `sgemm` only selects this
        // kernel when AVX2 and FMA are detected.
        unsafe {
            match rows {
                6 => tile_r::<6>(k, a, ars, acs, b, brs, c, rsc, csc, cols, accumulate),
                5 => tile_r::<5>(k, a, ars, acs, b, brs, c, rsc, csc, cols, accumulate),
                4 => tile_r::<4>(k, a, ars, acs, b, brs, c, rsc, csc, cols, accumulate),
                3 => tile_r::<3>(k, a, ars, acs, b, brs, c, rsc, csc, cols, accumulate),
                2 => tile_r::<2>(k, a, ars, acs, b, brs, c, rsc, csc, cols, accumulate),
                1 => tile_r::<1>(k, a, ars, acs, b, brs, c, rsc, csc, cols, accumulate),
                _ => {}
            }
        }
    }

    unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rsb: isize, csb: isize, dst: *mut f32) {
        // SAFETY: forwarded; AVX2 checked by `sgemm`.
        unsafe {
            if rsb == 1 && csb != 1 && nc >= NR && kc >= 8 {
                pack_b_colmajor::<Self>(kc, nc, b, csb, dst)
            } else {
                super::packing::pack_b_block::<Self>(kc, nc, b, rsb, csb, dst)
            }
        }
    }

    unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rsa: isize, csa: isize, dst: *mut f32) {
        // SAFETY: forwarded; AVX2 checked by `sgemm`.
        unsafe {
            if csa == 1 && rsa != 1 && mc >= MR && kc >= 8 {
                pack_a_rowmajor(mc, kc, a, rsa, dst)
            } else {
                super::packing::pack_a_block::<Self>(mc, kc, a, rsa, csa, dst)
            }
        }
    }
}

/// In-register transpose of an 8×8 block: `out[j][i] = r[i][j]`.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}

/// Packs B stored column-contiguous (`rsb == 1`, a transposed operand)
/// with 8×8 register transposes: ~4× faster than the scalar gather,
/// which matters for G·Wᵀ where B is packed once per call and reused
/// by only m/MR tiles.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b_colmajor<K: Kernel>(
    kc: usize,
    nc: usize,
    b: *const f32,
    csb: isize,
    dst: *mut f32,
) {
    let nr = K::NR;
    debug_assert!(nr.is_multiple_of(8));
    let block = |s: *const f32, d: *mut f32, p0: usize, _next: usize| {
        // SAFETY: reads rows p0..p0 + 8 of the 8 columns at `s`, writes
        // those rows' 8 columns at `d`.
        unsafe {
            let mut r = [_mm256_setzero_ps(); 8];
            for (j, rj) in r.iter_mut().enumerate() {
                *rj = _mm256_loadu_ps(s.offset(j as isize * csb).add(p0));
            }
            for (i, ti) in transpose8(r).iter().enumerate() {
                _mm256_storeu_ps(d.add((p0 + i) * nr), *ti);
            }
        }
    };
    // SAFETY: forwarded; `block` writes only the rows and columns it is given.
    unsafe { super::packing::pack_b_colmajor_with::<K>((kc, nc), b, csb, dst, 8, block) }
}

/// Packs row-major A (`csa == 1`): 6 rows (+2 zero rows) are
/// transposed 8 columns at a time, and each packed column of 6 is
/// written with one 8-wide store whose 2 extra lanes the next store
/// overwrites.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_a_rowmajor(mc: usize, kc: usize, a: *const f32, rsa: isize, dst: *mut f32) {
    let block = |src: *const f32, d: *mut f32, p0: usize, _next_rows: usize| {
        // SAFETY: reads A(i, p0..p0 + 8) of the panel's 6 rows, writes the
        // panel's columns p0..p0 + 8 (the last one stored as 4 + 2).
        unsafe {
            let mut r = [_mm256_setzero_ps(); 8];
            for (i, ri) in r.iter_mut().enumerate().take(MR) {
                *ri = _mm256_loadu_ps(src.offset(i as isize * rsa).add(p0));
            }
            let t = transpose8(r);
            for (j, tj) in t.iter().enumerate().take(7) {
                _mm256_storeu_ps(d.add((p0 + j) * MR), *tj);
            }
            let last = d.add((p0 + 7) * MR);
            _mm_storeu_ps(last, _mm256_castps256_ps128(t[7]));
            _mm_storel_pd(
                last.add(4) as *mut f64,
                _mm_castps_pd(_mm256_extractf128_ps::<1>(t[7])),
            );
        }
    };
    // SAFETY: forwarded; `block` writes only the columns it is given.
    unsafe { super::packing::pack_a_rowmajor_with::<Avx2Fma6x16>((mc, kc), a, rsa, dst, 8, block) }
}

#[target_feature(enable = "avx2,fma")]
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
        // C is touched only after the whole k loop, far beyond what
        // out-of-order execution can look ahead; a C row that fell out
        // of cache would stall for a full miss on every tile. Prefetch
        // it now so the miss overlaps the FMAs.
        for r in 0..R {
            let cr = c.wrapping_offset(r as isize * rsc) as *const i8;
            _mm_prefetch::<_MM_HINT_T0>(cr);
            _mm_prefetch::<_MM_HINT_T0>(cr.wrapping_offset((cols as isize - 1) * csc * 4));
        }
        // B read in place (not packed) is a strided walk over rows that
        // may each sit in a different page; the hardware prefetchers
        // lose track and each tile became latency-bound (≈6 GB/s on
        // 10×784·784×33600). Prefetching the next NR panel's cache line
        // of every row while computing this one restores streaming.
        let packed_a = ars == 1 && acs == MR as isize;
        let acc = match (packed_a, brs == NR as isize) {
            (true, true) => body::<R, true, false>(k, a, ars, acs, b, brs),
            (false, true) => body::<R, false, false>(k, a, ars, acs, b, brs),
            (true, false) => body::<R, true, true>(k, a, ars, acs, b, brs),
            (false, false) => body::<R, false, true>(k, a, ars, acs, b, brs),
        };
        if cols == NR && csc == 1 {
            for (r, acc_r) in acc.iter().enumerate().take(R) {
                let cr = c.offset(r as isize * rsc);
                let (mut lo, mut hi) = (acc_r[0], acc_r[1]);
                if accumulate {
                    lo = _mm256_add_ps(lo, _mm256_loadu_ps(cr));
                    hi = _mm256_add_ps(hi, _mm256_loadu_ps(cr.add(8)));
                }
                _mm256_storeu_ps(cr, lo);
                _mm256_storeu_ps(cr.add(8), hi);
            }
        } else {
            let mut tmp = [0.0f32; MR * NR];
            for (r, acc_r) in acc.iter().enumerate().take(R) {
                _mm256_storeu_ps(tmp.as_mut_ptr().add(r * NR), acc_r[0]);
                _mm256_storeu_ps(tmp.as_mut_ptr().add(r * NR + 8), acc_r[1]);
            }
            scatter_tile(tmp.as_ptr(), NR, c, rsc, csc, R, cols, accumulate);
        }
    }
}

/// The k loop. `PACKED` fixes A's strides to the packed layout (1, MR)
/// so A loads use immediate offsets instead of runtime-stride address
/// arithmetic.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn body<const R: usize, const PACKED: bool, const PREFETCH_B: bool>(
    k: usize,
    a: *const f32,
    ars: isize,
    acs: isize,
    b: *const f32,
    brs: isize,
) -> [[__m256; 2]; MR] {
    let (ars, acs) = if PACKED { (1, MR as isize) } else { (ars, acs) };
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    let mut ap = a;
    let mut bp = b;
    // SAFETY: kernel contract: A rows < R and B rows < k readable.
    unsafe {
        for _ in 0..k {
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            if PREFETCH_B {
                _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(NR) as *const i8);
            }
            for (r, acc_r) in acc.iter_mut().enumerate().take(R) {
                let av = _mm256_broadcast_ss(&*ap.offset(r as isize * ars));
                acc_r[0] = _mm256_fmadd_ps(av, b0, acc_r[0]);
                acc_r[1] = _mm256_fmadd_ps(av, b1, acc_r[1]);
            }
            ap = ap.wrapping_offset(acs);
            bp = bp.wrapping_offset(brs);
        }
    }
    acc
}
