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

/// The panels of [`pack_a_block`] for row-major A and of [`pack_b_block`]
/// for column-contiguous B are one layout: `count` source lines (A's rows,
/// B's columns), `stride` floats apart, each holding `depth` contiguous
/// floats, go `height` lines to a panel (`MR` for A, `NR` for B), element
/// (line l, step p) of panel q at `dst[q·depth·height + p·height + l]`.
/// This packs it with a SIMD transpose for the bulk: `block(src, dst, p0,
/// next)` packs steps `p0..p0 + step` of the up to `step` lines from `src`
/// into `dst` (the place of line 0, step 0 in its panel), where `next` is
/// how many lines the next panel has (for prefetching them); each panel
/// goes to `block` in groups of `group` lines. Steps past the last whole
/// `step` are copied here one by one, and the ragged last panel goes to
/// `ragged(lines, src, dst)`.
///
/// # Safety
/// The source lines readable for `depth` floats, `dst` holding
/// `ceil(count/height)·height·depth` floats; `group` divides `height`;
/// `block` and `ragged` write only the lines and steps they are given.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn pack_transposed_panels(
    count: usize,
    depth: usize,
    src: *const f32,
    stride: isize,
    dst: *mut f32,
    height: usize,
    (step, group): (usize, usize),
    block: impl Fn(*const f32, *mut f32, usize, usize),
    ragged: impl Fn(usize, *const f32, *mut f32),
) {
    let full = count / height;
    let bulk = depth / step * step;
    for q in 0..full {
        let s = src.wrapping_offset((q * height) as isize * stride);
        let d = dst.wrapping_add(q * depth * height);
        let next = (count - (q + 1) * height).min(height);
        for l0 in (0..height).step_by(group) {
            let (s, d) = (s.wrapping_offset(l0 as isize * stride), d.wrapping_add(l0));
            for p0 in (0..bulk).step_by(step) {
                block(s, d, p0, next);
            }
        }
        // SAFETY: reads line l < count at steps < depth; writes the panel.
        unsafe {
            for p in bulk..depth {
                for l in 0..height {
                    *d.add(p * height + l) = *s.offset(l as isize * stride).add(p);
                }
            }
        }
    }
    if !count.is_multiple_of(height) {
        let at = (full * height) as isize * stride;
        ragged(
            count % height,
            src.wrapping_offset(at),
            dst.wrapping_add(full * depth * height),
        );
    }
}

/// Row-major A (`csa == 1`) packed as [`pack_a_block`] does, through
/// [`pack_transposed_panels`] with `block` taking `step` columns of a
/// whole `MR`-row panel at a time.
///
/// # Safety
/// As [`pack_a_block`] with `csa == 1`, and as [`pack_transposed_panels`].
#[inline(always)]
pub(super) unsafe fn pack_a_rowmajor_with<K: Kernel + ?Sized>(
    (mc, kc): (usize, usize),
    a: *const f32,
    rsa: isize,
    dst: *mut f32,
    step: usize,
    block: impl Fn(*const f32, *mut f32, usize, usize),
) {
    // SAFETY: forwarded; the ragged panel is packed by `pack_a_block`.
    let ragged = |rows, a, d| unsafe { pack_a_block::<K>(rows, kc, a, rsa, 1, d) };
    // SAFETY: forwarded.
    unsafe { pack_transposed_panels(mc, kc, a, rsa, dst, K::MR, (step, K::MR), block, ragged) }
}

/// Column-contiguous B (`rsb == 1`) packed as [`pack_b_block`] does,
/// through [`pack_transposed_panels`] with `block` taking `step` rows of
/// `step` columns at a time.
///
/// # Safety
/// As [`pack_b_block`] with `rsb == 1`, and as [`pack_transposed_panels`].
#[inline(always)]
pub(super) unsafe fn pack_b_colmajor_with<K: Kernel + ?Sized>(
    (kc, nc): (usize, usize),
    b: *const f32,
    csb: isize,
    dst: *mut f32,
    step: usize,
    block: impl Fn(*const f32, *mut f32, usize, usize),
) {
    // SAFETY: forwarded; the ragged panel is packed by `pack_b_block`.
    let ragged = |cols, b, d| unsafe { pack_b_block::<K>(kc, cols, b, 1, csb, d) };
    // SAFETY: forwarded.
    unsafe { pack_transposed_panels(nc, kc, b, csb, dst, K::NR, (step, step), block, ragged) }
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
