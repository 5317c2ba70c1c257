//! Packing of A and B blocks into microkernel panels, and writing ragged tiles back.

use super::Kernel;

/// Packs `kc×nc` of B into panels of `nr` columns: panel q holds row p's
/// columns at `dst[q*kc*nr + p*nr ..][..nr]`, zero-padded to `nr`.
pub(super) unsafe fn pack_b_block<K: Kernel + ?Sized>(
    kc: usize,
    nc: usize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    dst: *mut f32,
) {
    let nr = K::NR;
    for (q, j0) in (0..nc).step_by(nr).enumerate() {
        let cols = (nc - j0).min(nr);
        let src = b.wrapping_offset(j0 as isize * csb);
        let d = dst.wrapping_add(q * kc * nr);
        // SAFETY: reads inside the caller's B block, writes inside `dst`
        // which holds ceil(nc/nr)*nr*kc floats.
        unsafe {
            if csb == 1 && cols == nr {
                for p in 0..kc {
                    std::ptr::copy_nonoverlapping(src.offset(p as isize * rsb), d.add(p * nr), nr);
                }
            } else if rsb == 1 {
                // Column-contiguous B (a transposed operand): walk each
                // column contiguously; the scattered writes stay in L1.
                for j in 0..cols {
                    let s = src.offset(j as isize * csb);
                    for p in 0..kc {
                        *d.add(p * nr + j) = *s.add(p);
                    }
                }
                if cols < nr {
                    for p in 0..kc {
                        std::ptr::write_bytes(d.add(p * nr + cols), 0, nr - cols);
                    }
                }
            } else {
                for p in 0..kc {
                    let s = src.offset(p as isize * rsb);
                    for j in 0..nr {
                        *d.add(p * nr + j) = if j < cols {
                            *s.offset(j as isize * csb)
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

/// Packs `mc×kc` of A into panels of `mr` rows: panel q holds column p's
/// rows at `dst[q*kc*mr + p*mr ..][..rows]`. Rows past `mc` in the last
/// panel are left unwritten: kernels are told the real row count.
pub(super) unsafe fn pack_a_block<K: Kernel + ?Sized>(
    mc: usize,
    kc: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    dst: *mut f32,
) {
    let mr = K::MR;
    for (q, i0) in (0..mc).step_by(mr).enumerate() {
        let rows = (mc - i0).min(mr);
        let src = a.wrapping_offset(i0 as isize * rsa);
        let d = dst.wrapping_add(q * kc * mr);
        // SAFETY: reads inside the caller's A block, writes inside `dst`
        // which holds ceil(mc/mr)*mr*kc floats.
        unsafe {
            if csa == 1 && rows == mr {
                // Row-major A: read MR rows in lockstep so each packed
                // column is written whole (MR is a constant here, so the
                // inner loop unrolls).
                for p in 0..kc {
                    for i in 0..mr {
                        *d.add(p * mr + i) = *src.offset(i as isize * rsa + p as isize);
                    }
                }
            } else if rsa == 1 && rows == mr {
                for p in 0..kc {
                    std::ptr::copy_nonoverlapping(src.offset(p as isize * csa), d.add(p * mr), mr);
                }
            } else if csa == 1 {
                for i in 0..rows {
                    let s = src.offset(i as isize * rsa);
                    for p in 0..kc {
                        *d.add(p * mr + i) = *s.add(p);
                    }
                }
            } else {
                for p in 0..kc {
                    let s = src.offset(p as isize * csa);
                    for i in 0..rows {
                        *d.add(p * mr + i) = *s.offset(i as isize * rsa);
                    }
                }
            }
        }
    }
}

/// Packs column-contiguous B (`rsb == 1`, a transposed operand) as
/// [`pack_b_block`] does, with a SIMD transpose for the bulk: `block(src,
/// dst, p0)` packs rows `p0..p0 + width` of the `width` columns starting
/// at `src` (column stride `csb`) into `dst`, the place of row 0 of those
/// columns in their panel. Rows past the last whole `width` are copied
/// here one by one, and the ragged last panel goes to [`pack_b_block`].
///
/// # Safety
/// As [`pack_b_block`] with `rsb == 1`; `K::NR` a multiple of `width`;
/// `block` must write only the rows and columns it is given.
#[inline(always)]
pub(super) unsafe fn pack_b_colmajor_with<K: Kernel + ?Sized>(
    kc: usize,
    nc: usize,
    b: *const f32,
    csb: isize,
    dst: *mut f32,
    width: usize,
    block: impl Fn(*const f32, *mut f32, usize),
) {
    let nr = K::NR;
    let full = nc / nr;
    let bulk = kc / width * width;
    for q in 0..full {
        let src = b.wrapping_offset((q * nr) as isize * csb);
        let d = dst.wrapping_add(q * kc * nr);
        for j0 in (0..nr).step_by(width) {
            for p0 in (0..bulk).step_by(width) {
                block(
                    src.wrapping_offset(j0 as isize * csb),
                    d.wrapping_add(j0),
                    p0,
                );
            }
        }
        // SAFETY: reads B(p, j) for p < kc, j < nc; writes the panel.
        unsafe {
            for p in bulk..kc {
                for j in 0..nr {
                    *d.add(p * nr + j) = *src.offset(j as isize * csb).add(p);
                }
            }
        }
    }
    if !nc.is_multiple_of(nr) {
        // SAFETY: forwarded for the ragged last panel.
        unsafe {
            pack_b_block::<K>(
                kc,
                nc % nr,
                b.wrapping_offset((full * nr) as isize * csb),
                1,
                csb,
                dst.wrapping_add(full * kc * nr),
            )
        };
    }
}

/// Packs row-major A (`csa == 1`) as [`pack_a_block`] does, with a SIMD
/// transpose for the bulk: `block(src, dst, p0, next_rows)` packs columns
/// `p0..p0 + width` of the full panel whose rows start at `src` into
/// `dst` (the panel's start), `next_rows` being how many rows the next
/// panel has (for prefetching them). Columns past the last whole `width`
/// are copied here one by one, and the ragged last panel goes to
/// [`pack_a_block`].
///
/// # Safety
/// As [`pack_a_block`] with `csa == 1`; `block` must write only the
/// panel's columns it is given.
#[inline(always)]
pub(super) unsafe fn pack_a_rowmajor_with<K: Kernel + ?Sized>(
    mc: usize,
    kc: usize,
    a: *const f32,
    rsa: isize,
    dst: *mut f32,
    width: usize,
    block: impl Fn(*const f32, *mut f32, usize, usize),
) {
    let mr = K::MR;
    let full = mc / mr;
    let bulk = kc / width * width;
    for q in 0..full {
        let src = a.wrapping_offset((q * mr) as isize * rsa);
        let d = dst.wrapping_add(q * kc * mr);
        let next_rows = (mc - (q + 1) * mr).min(mr);
        for p0 in (0..bulk).step_by(width) {
            block(src, d, p0, next_rows);
        }
        // SAFETY: reads A(i, p) for i < mc, p < kc; writes inside the panel.
        unsafe {
            for p in bulk..kc {
                for i in 0..mr {
                    *d.add(p * mr + i) = *src.offset(i as isize * rsa).add(p);
                }
            }
        }
    }
    if !mc.is_multiple_of(mr) {
        // SAFETY: forwarded for the ragged last panel.
        unsafe {
            pack_a_block::<K>(
                mc % mr,
                kc,
                a.wrapping_offset((full * mr) as isize * rsa),
                rsa,
                1,
                dst.wrapping_add(full * kc * mr),
            )
        };
    }
}

/// Writes an MR×NR (row stride `ld`) temporary tile into C, for ragged
/// tiles and non-unit C column strides.
///
/// # Safety
/// `tmp` holds `rows` rows of `ld` floats; C addresses valid for
/// `rows × cols`.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn scatter_tile(
    tmp: *const f32,
    ld: usize,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    for r in 0..rows {
        for j in 0..cols {
            // SAFETY: see function contract.
            unsafe {
                let v = *tmp.add(r * ld + j);
                let cij = c.offset(r as isize * rsc + j as isize * csc);
                *cij = if accumulate { *cij + v } else { v };
            }
        }
    }
}
