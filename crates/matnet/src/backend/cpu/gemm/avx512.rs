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
    // `store_transposed`: two 16×16 register transposes per tile.
    const STORES_TRANSPOSED_C: bool = true;
    // 1024 columns: the packed B block (1 MiB at KC = 256) stays in the
    // 2 MiB L2 while each 12 KiB A micro-panel is reused from L1 across
    // it; measured on 1024² and 2048² (BENCHMARKS, ninth session).
    const NC_A_PANEL_OUTER: usize = 1024;

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
        // The full tile into a row-major C with B packed: straight into
        // the assembly (which prefetches C itself) when A's layout has one.
        // SAFETY: forwarded kernel contract; AVX-512F checked by `sgemm`.
        if rows == MR
            && cols == NR
            && brs == NR as isize
            && csc == 1
            && unsafe { full_tile_any(k, a, ars, acs, b, c, rsc, accumulate) }
        {
            return;
        }
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

    unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rsa: isize, csa: isize, dst: *mut f32) {
        // SAFETY: forwarded; `sgemm` selects this kernel only with AVX-512F.
        unsafe {
            if csa == 1 && rsa != 1 && mc >= MR && kc >= 16 {
                pack_a_rowmajor(mc, kc, a, rsa, dst)
            } else if rsa == 1 && csa != 1 && mc >= 4 * MR {
                pack_a_colmajor(mc, kc, a, csa, dst)
            } else {
                super::packing::pack_a_block::<Self>(mc, kc, a, rsa, csa, dst)
            }
        }
    }

    unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rsb: isize, csb: isize, dst: *mut f32) {
        // Transposed B (G·Wᵀ) through the scalar gather cost 26% on
        // 64×256·(784×256)ᵀ (106 vs 144 GFLOP/s with 8×8 transposes).
        // SAFETY: forwarded; `sgemm` selects this kernel only with AVX-512F.
        unsafe {
            if rsb == 1 && csb != 1 && nc >= NR && kc >= 16 {
                pack_b_colmajor(kc, nc, b, csb, dst)
            } else if csb == 1 {
                pack_b_rowmajor(kc, nc, b, rsb, dst)
            } else {
                super::packing::pack_b_block::<Self>(kc, nc, b, rsb, csb, dst)
            }
        }
    }
}

/// Packs B with contiguous rows (`csb == 1`) into 32-column panels (the
/// layout of [`super::packing::pack_b_block`]), sixteen rows at a time
/// across every panel: the source is read along its rows, so the hardware
/// prefetchers see a few sequential streams, and each panel gets 2 KiB of
/// contiguous writes. Panel by panel, the generic copy read 128 bytes per
/// row at the row stride and measured 5% of a 1024³ product (16-byte moves,
/// stalled on the strided reads).
///
/// # Safety
/// AVX-512F; B rows `b + p·rsb` (p < kc) hold `nc` readable floats; `dst`
/// holds `ceil(nc/32)·32·kc` floats.
#[target_feature(enable = "avx512f")]
unsafe fn pack_b_rowmajor(kc: usize, nc: usize, b: *const f32, rsb: isize, dst: *mut f32) {
    const ROWS: usize = 16;
    let full = nc / NR;
    let rest = nc % NR;
    // The ragged last panel: masked loads read only its columns (masked-off
    // lanes cannot fault) and leave zeros in the padding.
    let m0: __mmask16 = if rest >= 16 {
        0xFFFF
    } else {
        (1u16 << rest) - 1
    };
    let m1: __mmask16 = if rest > 16 {
        (1u16 << (rest - 16)) - 1
    } else {
        0
    };
    // SAFETY: reads B(p, j) for p < kc, j < nc; writes inside the panels.
    unsafe {
        for p0 in (0..kc).step_by(ROWS) {
            let rows = (kc - p0).min(ROWS);
            for q in 0..full {
                let d = dst.add(q * kc * NR + p0 * NR);
                let s = b.offset(p0 as isize * rsb).add(q * NR);
                for p in 0..rows {
                    let src = s.offset(p as isize * rsb);
                    _mm512_storeu_ps(d.add(p * NR), _mm512_loadu_ps(src));
                    _mm512_storeu_ps(d.add(p * NR + 16), _mm512_loadu_ps(src.add(16)));
                }
            }
            if rest > 0 {
                let d = dst.add(full * kc * NR + p0 * NR);
                let s = b.offset(p0 as isize * rsb).add(full * NR);
                for p in 0..rows {
                    let src = s.offset(p as isize * rsb);
                    _mm512_storeu_ps(d.add(p * NR), _mm512_maskz_loadu_ps(m0, src));
                    _mm512_storeu_ps(
                        d.add(p * NR + 16),
                        _mm512_maskz_loadu_ps(m1, src.wrapping_add(16)),
                    );
                }
            }
        }
    }
}

/// Packs column-contiguous B (`rsb == 1`: `Wᵀ` in `G·Wᵀ` when the product
/// is not swapped) into 32-column panels, 16 columns by 16 rows at a time
/// through one 16×16 register transpose (64 shuffles, where the AVX2
/// kernel's 8×8 blocks take 96 for the same 256 floats).
///
/// # Safety
/// AVX-512F; column j of B (j < nc) holds `kc` readable floats at
/// `b + j·csb`; `dst` holds `ceil(nc/32)·32·kc` floats.
#[target_feature(enable = "avx512f")]
unsafe fn pack_b_colmajor(kc: usize, nc: usize, b: *const f32, csb: isize, dst: *mut f32) {
    let block = |s: *const f32, d: *mut f32, p0: usize, _next: usize| {
        // SAFETY: reads rows p0..p0 + 16 of the 16 columns at `s`, writes
        // those rows' 16 columns at `d`.
        unsafe {
            let mut r = [_mm512_setzero_ps(); 16];
            for (j, rj) in r.iter_mut().enumerate() {
                *rj = _mm512_loadu_ps(s.offset(j as isize * csb).add(p0));
            }
            for (i, ti) in transpose16(r).iter().enumerate() {
                _mm512_storeu_ps(d.add((p0 + i) * NR), *ti);
            }
        }
    };
    // SAFETY: forwarded; `block` writes only the rows and columns it is given.
    unsafe {
        super::packing::pack_b_colmajor_with::<Avx512x12x32>((kc, nc), b, csb, dst, 16, block)
    }
}

/// Packs row-major A (`csa == 1`) into 12-row panels: each 12×16 block
/// (padded to 16 rows) goes through one 16×16 register transpose, and
/// each packed column of 12 is written with a 12-lane masked store. The
/// rows of the next panel are prefetched while this one is packed: each
/// row is a separate stream (a new page when A's rows are 4 KiB apart),
/// too short for the hardware prefetcher to pick up.
///
/// # Safety
/// AVX-512F; rows `a + i·rsa` (i < mc) hold `kc` readable floats; `dst`
/// holds `ceil(mc/12)·12·kc` floats.
#[target_feature(enable = "avx512f")]
unsafe fn pack_a_rowmajor(mc: usize, kc: usize, a: *const f32, rsa: isize, dst: *mut f32) {
    let lanes: __mmask16 = (1 << MR) - 1;
    let block = |src: *const f32, d: *mut f32, p0: usize, next_rows: usize| {
        let next = src.wrapping_offset(MR as isize * rsa);
        // SAFETY: reads A(i, p0..p0 + 16) of the panel's 12 rows, writes
        // the panel's columns p0..p0 + 16; prefetches cannot fault.
        unsafe {
            let mut r = [_mm512_setzero_ps(); 16];
            for (i, ri) in r.iter_mut().enumerate().take(MR) {
                *ri = _mm512_loadu_ps(src.offset(i as isize * rsa).add(p0));
            }
            for i in 0..next_rows {
                let line = next.wrapping_offset(i as isize * rsa).wrapping_add(p0);
                _mm_prefetch::<_MM_HINT_T0>(line as *const i8);
            }
            for (j, tj) in transpose16(r).iter().enumerate() {
                _mm512_mask_storeu_ps(d.add((p0 + j) * MR), lanes, *tj);
            }
        }
    };
    // SAFETY: forwarded; `block` writes only the columns it is given.
    unsafe {
        super::packing::pack_a_rowmajor_with::<Avx512x12x32>((mc, kc), a, rsa, dst, 16, block)
    }
}

/// Packs A with contiguous columns (`rsa == 1`: `Xᵀ` in `grad_W = Xᵀ·G`)
/// four panels (48 rows) at a time: each of A's columns gives three full
/// vectors, whole cache lines, cut into four 12-float pieces by lane
/// permutes. Panel by panel, each 48-byte piece split a line that the
/// next panel read again.
///
/// # Safety
/// AVX-512F; columns `a + p·csa` (p < kc) hold `mc` readable floats;
/// `dst` holds `ceil(mc/12)·12·kc` floats.
#[target_feature(enable = "avx512f")]
unsafe fn pack_a_colmajor(mc: usize, kc: usize, a: *const f32, csa: isize, dst: *mut f32) {
    const G: usize = 4 * MR;
    let lanes: __mmask16 = (1 << MR) - 1;
    // Piece q of a 48-float column: lanes 12q.. of (v0, v1, v2).
    let i1 = _mm512_setr_epi32(12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 0, 0, 0, 0);
    let i2 = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 0, 0, 0, 0);
    let i3 = _mm512_setr_epi32(4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 0, 0, 0);
    let groups = mc / G;
    for g in 0..groups {
        let src = a.wrapping_add(g * G);
        let d = dst.wrapping_add(g * 4 * MR * kc);
        // SAFETY: reads rows g·48.. + 48 of each column, writes the four
        // panels of those rows.
        unsafe {
            for p in 0..kc {
                let s = src.offset(p as isize * csa);
                let v0 = _mm512_loadu_ps(s);
                let v1 = _mm512_loadu_ps(s.add(16));
                let v2 = _mm512_loadu_ps(s.add(32));
                let o = d.add(p * MR);
                _mm512_mask_storeu_ps(o, lanes, v0);
                _mm512_mask_storeu_ps(o.add(MR * kc), lanes, _mm512_permutex2var_ps(v0, i1, v1));
                _mm512_mask_storeu_ps(
                    o.add(2 * MR * kc),
                    lanes,
                    _mm512_permutex2var_ps(v1, i2, v2),
                );
                _mm512_mask_storeu_ps(o.add(3 * MR * kc), lanes, _mm512_permutexvar_ps(i3, v2));
            }
        }
    }
    let done = groups * G;
    if done < mc {
        // SAFETY: the remaining rows and their panels.
        unsafe {
            super::packing::pack_a_block::<Avx512x12x32>(
                mc - done,
                kc,
                a.wrapping_add(done),
                1,
                csa,
                dst.wrapping_add(done * kc),
            )
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
        if R == MR && brs == NR as isize && cols == NR && rsc == 1 {
            // A full tile with B packed and C's columns contiguous (a
            // product run as Cᵀ = Bᵀ·Aᵀ): into a row-major scratch tile,
            // then transposed into C. (A row-major C never gets here:
            // `tile` sends it straight to the assembly.)
            let mut tmp = [0.0f32; MR * NR];
            if full_tile_any(k, a, ars, acs, b, tmp.as_mut_ptr(), NR as isize, false) {
                return store_transposed(&tmp, c, csc, R, cols, accumulate);
            }
        }
        let packed_a = ars == 1 && acs == MR as isize;
        // A tile at most 16 columns wide (the ragged last panel of n = 784,
        // say) runs on one vector per row: half the multiply-adds.
        let acc = match (packed_a, brs == NR as isize, cols <= 16) {
            (true, true, false) => body::<R, true, false, 2>(k, a, ars, acs, b, brs),
            (false, true, false) => body::<R, false, false, 2>(k, a, ars, acs, b, brs),
            (true, false, false) => body::<R, true, true, 2>(k, a, ars, acs, b, brs),
            (false, false, false) => body::<R, false, true, 2>(k, a, ars, acs, b, brs),
            (true, true, true) => body::<R, true, false, 1>(k, a, ars, acs, b, brs),
            (false, true, true) => body::<R, false, false, 1>(k, a, ars, acs, b, brs),
            (true, false, true) => body::<R, true, true, 1>(k, a, ars, acs, b, brs),
            (false, false, true) => body::<R, false, true, 1>(k, a, ars, acs, b, brs),
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
            if rsc == 1 {
                store_transposed(&tmp, c, csc, R, cols, accumulate);
            } else {
                scatter_tile(tmp.as_ptr(), NR, c, rsc, csc, R, cols, accumulate);
            }
        }
    }
}

/// Writes the row-major tile `tmp` (rows × cols of 12×32) into a C whose
/// columns are contiguous (`rsc == 1`, column j at `c + j·csc`): 16×16
/// register transposes turn each tile column into one vector, stored with
/// a `rows`-lane mask. `C = tile + C` when accumulating, the order
/// [`tile_r`]'s row stores add in, so the bits match a row-major C.
/// Against the scalar scatter this is 64 shuffles per 16 columns instead
/// of a load, add and store per element.
///
/// # Safety
/// AVX-512F; `c + i + j·csc` (i < rows, j < cols) valid for writes, and
/// for reads when `accumulate`.
#[target_feature(enable = "avx512f")]
unsafe fn store_transposed(
    tmp: &[f32; MR * NR],
    c: *mut f32,
    csc: isize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    let mask = ((1u32 << rows) - 1) as __mmask16;
    for h in (0..cols).step_by(16) {
        let mut r = [_mm512_setzero_ps(); 16];
        for (i, ri) in r.iter_mut().enumerate().take(rows) {
            // SAFETY: inside `tmp` (i < 12, h + 16 <= 32).
            *ri = unsafe { _mm512_loadu_ps(tmp.as_ptr().add(i * NR + h)) };
        }
        let t = transpose16(r);
        for (j, tj) in t.iter().enumerate().take(cols - h) {
            let cj = c.wrapping_offset((h + j) as isize * csc);
            // SAFETY: column h + j < cols of C, lanes i < rows only.
            unsafe {
                let v = if accumulate {
                    _mm512_add_ps(*tj, _mm512_maskz_loadu_ps(mask, cj))
                } else {
                    *tj
                };
                _mm512_mask_storeu_ps(cj, mask, v);
            }
        }
    }
}

/// The transpose of a 16×16 block held as 16 row vectors: 32-bit then
/// 64-bit interleaves within 128-bit lanes, then two rounds of 128-bit lane
/// shuffles (16 shuffles a round).
#[target_feature(enable = "avx512f")]
fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        // Per 128-bit lane L: rows 2i, 2i+1 at columns 4L, 4L+1 / 4L+2, 4L+3.
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    let pd = _mm512_castps_pd;
    let ps = _mm512_castpd_ps;
    let mut u = [_mm512_setzero_ps(); 16];
    for i in 0..4 {
        // u[4i + q], lane L: column 4L + q of rows 4i..4i+3.
        let (a, b, c, d) = (t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]);
        u[4 * i] = ps(_mm512_unpacklo_pd(pd(a), pd(c)));
        u[4 * i + 1] = ps(_mm512_unpackhi_pd(pd(a), pd(c)));
        u[4 * i + 2] = ps(_mm512_unpacklo_pd(pd(b), pd(d)));
        u[4 * i + 3] = ps(_mm512_unpackhi_pd(pd(b), pd(d)));
    }
    let mut v = [_mm512_setzero_ps(); 16];
    for q in 0..4 {
        // Lanes 0 and 2 (x), 1 and 3 (y) of rows 0-7 and of rows 8-15.
        let x = _mm512_shuffle_f32x4::<0x88>(u[q], u[4 + q]);
        let y = _mm512_shuffle_f32x4::<0xDD>(u[q], u[4 + q]);
        let x2 = _mm512_shuffle_f32x4::<0x88>(u[8 + q], u[12 + q]);
        let y2 = _mm512_shuffle_f32x4::<0xDD>(u[8 + q], u[12 + q]);
        v[q] = _mm512_shuffle_f32x4::<0x88>(x, x2);
        v[8 + q] = _mm512_shuffle_f32x4::<0xDD>(x, x2);
        v[4 + q] = _mm512_shuffle_f32x4::<0x88>(y, y2);
        v[12 + q] = _mm512_shuffle_f32x4::<0xDD>(y, y2);
    }
    v
}

/// The k loop. `PACKED` fixes A's strides to the packed layout (1, MR)
/// so A loads use immediate offsets (and fold into the FMA as embedded
/// broadcasts) instead of runtime-stride address arithmetic. `W` is the
/// number of 16-column halves computed (1 or 2); with 1, the second
/// accumulator of each row stays zero and B's second half is not read.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn body<const R: usize, const PACKED: bool, const PREFETCH_B: bool, const W: usize>(
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
            let b1 = if W == 2 {
                _mm512_loadu_ps(bp.add(16))
            } else {
                b0
            };
            if PREFETCH_B {
                // The next panel's two cache lines of this B row.
                _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(NR) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(NR + 16) as *const i8);
            }
            for (r, acc_r) in acc.iter_mut().enumerate().take(R) {
                let av = _mm512_set1_ps(*ap.offset(r as isize * ars));
                acc_r[0] = _mm512_fmadd_ps(av, b0, acc_r[0]);
                if W == 2 {
                    acc_r[1] = _mm512_fmadd_ps(av, b1, acc_r[1]);
                }
            }
            ap = ap.wrapping_offset(acs);
            bp = bp.wrapping_offset(brs);
        }
    }
    acc
}

/// One k step of the full 12×32 tile, `$u` steps past the pointers: the two
/// B vectors, then each A element broadcast and multiplied into its row's
/// two accumulators (row r in zmm(2r), zmm(2r+1)). A is `packed` (12 floats
/// per step at `{a}`) or `rows` (contiguous rows: rows 0-2 at `{a}`, 3-5 at
/// `{a3}`, 6-8 at `{a6}`, 9-11 at `{a9}`, plus 0, 1 or 2 row strides `{lda}`).
macro_rules! k_step {
    ($layout:ident, $u:literal) => {
        concat!(
            "vmovups zmm24, [{b} + 128*",
            $u,
            "]\n",
            "vmovups zmm25, [{b} + 128*",
            $u,
            " + 64]\n",
            fma_row!(a_addr!($layout, $u, 0, "{a}", ""), "zmm0", "zmm1"),
            fma_row!(a_addr!($layout, $u, 1, "{a}", " + {lda}"), "zmm2", "zmm3"),
            fma_row!(a_addr!($layout, $u, 2, "{a}", " + 2*{lda}"), "zmm4", "zmm5"),
            fma_row!(a_addr!($layout, $u, 3, "{a3}", ""), "zmm6", "zmm7"),
            fma_row!(a_addr!($layout, $u, 4, "{a3}", " + {lda}"), "zmm8", "zmm9"),
            fma_row!(
                a_addr!($layout, $u, 5, "{a3}", " + 2*{lda}"),
                "zmm10",
                "zmm11"
            ),
            fma_row!(a_addr!($layout, $u, 6, "{a6}", ""), "zmm12", "zmm13"),
            fma_row!(
                a_addr!($layout, $u, 7, "{a6}", " + {lda}"),
                "zmm14",
                "zmm15"
            ),
            fma_row!(
                a_addr!($layout, $u, 8, "{a6}", " + 2*{lda}"),
                "zmm16",
                "zmm17"
            ),
            fma_row!(a_addr!($layout, $u, 9, "{a9}", ""), "zmm18", "zmm19"),
            fma_row!(
                a_addr!($layout, $u, 10, "{a9}", " + {lda}"),
                "zmm20",
                "zmm21"
            ),
            fma_row!(
                a_addr!($layout, $u, 11, "{a9}", " + 2*{lda}"),
                "zmm22",
                "zmm23"
            ),
        )
    };
}

/// The address of A's row `$r` at step `$u`: packed, or in its row through
/// the base `$base` and the stride term `$stride`.
macro_rules! a_addr {
    (packed, $u:literal, $r:literal, $base:literal, $stride:literal) => {
        concat!("[{a} + 48*", $u, " + 4*", $r, "]")
    };
    (rows, $u:literal, $r:literal, $base:literal, $stride:literal) => {
        concat!("[", $base, $stride, " + 4*", $u, "]")
    };
}

macro_rules! fma_row {
    ($addr:expr, $lo:literal, $hi:literal) => {
        concat!(
            "vbroadcastss zmm26, dword ptr ",
            $addr,
            "\n",
            "vfmadd231ps ",
            $lo,
            ", zmm24, zmm26\n",
            "vfmadd231ps ",
            $hi,
            ", zmm25, zmm26\n",
        )
    };
}

/// Row `r`'s two accumulators written to C at `{c}` (then the next row):
/// `C = acc + C` when accumulating, as [`tile_r`] computes it.
macro_rules! c_row {
    (add, $lo:literal, $hi:literal) => {
        concat!(
            "vaddps ",
            $lo,
            ", ",
            $lo,
            ", [{c}]\n",
            "vaddps ",
            $hi,
            ", ",
            $hi,
            ", [{c} + 64]\n",
            "vmovups [{c}], ",
            $lo,
            "\n",
            "vmovups [{c} + 64], ",
            $hi,
            "\n",
            "add {c}, {rsc}\n",
        )
    };
    (store, $lo:literal, $hi:literal) => {
        concat!(
            "vmovups [{c}], ",
            $lo,
            "\n",
            "vmovups [{c} + 64], ",
            $hi,
            "\n",
            "add {c}, {rsc}\n",
        )
    };
}

macro_rules! c_rows {
    ($mode:ident) => {
        concat!(
            c_row!($mode, "zmm0", "zmm1"),
            c_row!($mode, "zmm2", "zmm3"),
            c_row!($mode, "zmm4", "zmm5"),
            c_row!($mode, "zmm6", "zmm7"),
            c_row!($mode, "zmm8", "zmm9"),
            c_row!($mode, "zmm10", "zmm11"),
            c_row!($mode, "zmm12", "zmm13"),
            c_row!($mode, "zmm14", "zmm15"),
            c_row!($mode, "zmm16", "zmm17"),
            c_row!($mode, "zmm18", "zmm19"),
            c_row!($mode, "zmm20", "zmm21"),
            c_row!($mode, "zmm22", "zmm23"),
        )
    };
}

/// Prefetches the first and last cache line of the C row at `{n}`, then
/// moves `{n}` to the next row.
macro_rules! c_prefetch {
    () => {
        "prefetcht0 [{n}]\nprefetcht0 [{n} + 124]\nadd {n}, {rsc}\n"
    };
}

/// The full-tile assembly: prefetch C's tile, zero the 24 accumulators,
/// run the k loop four steps per iteration (then one at a time), add or
/// store into C. `$adv4` and `$adv1` move the A pointers of `$layout` on
/// by four steps and one.
macro_rules! full_tile_asm {
    ($layout:ident, [$($adv4:literal),*], [$($adv1:literal),*], $($operands:tt)*) => {
        std::arch::asm!(
            // C's tile is read or written only after the k loop: start its
            // misses now (first and last line of each row).
            "mov {n}, {c}",
            c_prefetch!(), c_prefetch!(), c_prefetch!(), c_prefetch!(),
            c_prefetch!(), c_prefetch!(), c_prefetch!(), c_prefetch!(),
            c_prefetch!(), c_prefetch!(), c_prefetch!(), c_prefetch!(),
            "vxorps xmm0, xmm0, xmm0", "vxorps xmm1, xmm1, xmm1",
            "vxorps xmm2, xmm2, xmm2", "vxorps xmm3, xmm3, xmm3",
            "vxorps xmm4, xmm4, xmm4", "vxorps xmm5, xmm5, xmm5",
            "vxorps xmm6, xmm6, xmm6", "vxorps xmm7, xmm7, xmm7",
            "vxorps xmm8, xmm8, xmm8", "vxorps xmm9, xmm9, xmm9",
            "vxorps xmm10, xmm10, xmm10", "vxorps xmm11, xmm11, xmm11",
            "vxorps xmm12, xmm12, xmm12", "vxorps xmm13, xmm13, xmm13",
            "vxorps xmm14, xmm14, xmm14", "vxorps xmm15, xmm15, xmm15",
            "vpxord zmm16, zmm16, zmm16", "vpxord zmm17, zmm17, zmm17",
            "vpxord zmm18, zmm18, zmm18", "vpxord zmm19, zmm19, zmm19",
            "vpxord zmm20, zmm20, zmm20", "vpxord zmm21, zmm21, zmm21",
            "vpxord zmm22, zmm22, zmm22", "vpxord zmm23, zmm23, zmm23",
            "mov {n}, {k}",
            "shr {n}, 2",
            "jz 3f",
            "2:",
            k_step!($layout, 0),
            k_step!($layout, 1),
            k_step!($layout, 2),
            k_step!($layout, 3),
            $($adv4,)*
            "add {b}, 512",
            "dec {n}",
            "jnz 2b",
            "3:",
            "and {k}, 3",
            "jz 5f",
            "4:",
            k_step!($layout, 0),
            $($adv1,)*
            "add {b}, 128",
            "dec {k}",
            "jnz 4b",
            "5:",
            "test {acc}, {acc}",
            "jz 6f",
            c_rows!(add),
            "jmp 7f",
            "6:",
            c_rows!(store),
            "7:",
            $($operands)*
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
            out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
            out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
            out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
            out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
            out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
            out("zmm24") _, out("zmm25") _, out("zmm26") _,
            options(nostack),
        )
    };
}

/// The full 12×32 tile in assembly if A's layout has a variant (packed or
/// in rows); false, with nothing done, otherwise.
///
/// # Safety
/// As the variant taken: [`full_tile`] or [`full_tile_rows`].
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn full_tile_any(
    k: usize,
    a: *const f32,
    ars: isize,
    acs: isize,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    accumulate: bool,
) -> bool {
    // SAFETY: forwarded.
    unsafe {
        if ars == 1 && acs == MR as isize {
            full_tile(k, a, b, c, rsc, accumulate);
        } else if acs == 1 {
            full_tile_rows(k, a, ars, b, c, rsc, accumulate);
        } else {
            return false;
        }
    }
    true
}

/// The full tile with both panels packed: the k loop in assembly, four
/// steps per iteration with every address an immediate offset.
///
/// The same loop written with intrinsics compiles to the same instructions
/// one step per iteration, and measured 82% of the FMA peak on L1-resident
/// panels against 87% for this one (the loop counter and two pointer
/// increments share ports 0 and 5 with the FMAs; here they come once per
/// four steps), and the C update in the same block saves spilling the 24
/// accumulators. Same operations in the same order, so the same bits.
///
/// # Safety
/// AVX-512F; `a` holds `12·k` and `b` `32·k` floats (packed panels); C rows
/// `c + r·rsc` (r < 12) hold 32 contiguous floats.
#[target_feature(enable = "avx512f")]
unsafe fn full_tile(
    k: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    accumulate: bool,
) {
    // SAFETY: the caller's contract; every access is inside the panels or C's tile.
    unsafe {
        full_tile_asm!(
            packed,
            ["add {a}, 192"],
            ["add {a}, 48"],
            a = inout(reg) a => _,
            b = inout(reg) b => _,
            c = inout(reg) c => _,
            k = inout(reg) k => _,
            n = out(reg) _,
            rsc = in(reg) rsc * 4,
            acc = in(reg) usize::from(accumulate),
        );
    }
}

/// [`full_tile`] with A read in place from 12 contiguous rows (`acs == 1`,
/// row stride `lda` floats), as the recurrences' and small products' A
/// is (not packed: each A panel there meets only a few B panels). The
/// intrinsic loop walked a pointer down the rows with an addition per
/// broadcast (12 extra ALU operations per step, on the FMA ports' share);
/// here four row pointers and a stride register address every row.
///
/// # Safety
/// AVX-512F; rows `a + r·lda` (r < 12) hold `k` floats; `b` holds `32·k`
/// (a packed panel); C rows `c + r·rsc` (r < 12) hold 32 contiguous floats.
#[target_feature(enable = "avx512f")]
unsafe fn full_tile_rows(
    k: usize,
    a: *const f32,
    lda: isize,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    accumulate: bool,
) {
    // SAFETY: the caller's contract; every access is inside A's rows, the
    // panel or C's tile.
    unsafe {
        full_tile_asm!(
            rows,
            ["add {a}, 16", "add {a3}, 16", "add {a6}, 16", "add {a9}, 16"],
            ["add {a}, 4", "add {a3}, 4", "add {a6}, 4", "add {a9}, 4"],
            a = inout(reg) a => _,
            a3 = inout(reg) a.wrapping_offset(3 * lda) => _,
            a6 = inout(reg) a.wrapping_offset(6 * lda) => _,
            a9 = inout(reg) a.wrapping_offset(9 * lda) => _,
            lda = in(reg) lda * 4,
            b = inout(reg) b => _,
            c = inout(reg) c => _,
            k = inout(reg) k => _,
            n = out(reg) _,
            rsc = in(reg) rsc * 4,
            acc = in(reg) usize::from(accumulate),
        );
    }
}
