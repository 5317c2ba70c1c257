//! Max pooling and its adjoint, one pass over each plane's windows.

use super::SendPtr;
use super::conv::{Split, per_image, valid_range};
use crate::params::ConvGeom;

/// Max over each window of `planes` independent `H×W` planes, in one pass:
/// the values `[planes, OH·OW]` and, as f32, the flat index `h·W + w` of the
/// chosen element in its plane (the first maximum; a NaN wins, as in PyTorch).
pub fn max_pool2d(x: &[f32], planes: usize, g: &ConvGeom) -> (Vec<f32>, Vec<f32>) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let (hw, l) = (g.h * g.w, oh * ow);
    let mut vals = vec![0.0f32; planes * l];
    let mut idx = vec![0.0f32; planes * l];
    let (vp, ip) = (SendPtr(vals.as_mut_ptr()), SendPtr(idx.as_mut_ptr()));
    #[cfg(target_arch = "x86_64")]
    let halve = is_halving(g) && std::is_x86_feature_detected!("avx512f");
    Split::new(planes).run(&|_, range, _| {
        for p in range {
            let plane = &x[p * hw..][..hw];
            // SAFETY: tasks own disjoint planes.
            let (v, ix) = unsafe { (vp.slice(p * l, (p + 1) * l), ip.slice(p * l, (p + 1) * l)) };
            #[cfg(target_arch = "x86_64")]
            if halve {
                // SAFETY: AVX-512F detected; plane, v and ix sized for g.
                unsafe { halve_plane_avx512(plane, g.w, oh, ow, v, ix) };
                continue;
            }
            pool_plane(plane, g, v, ix);
        }
    });
    (vals, idx)
}

/// One plane of any max pool (`g`): the general loop.
fn pool_plane(plane: &[f32], g: &ConvGeom, v: &mut [f32], ix: &mut [f32]) {
    let (oh, ow) = (g.out_h(), g.out_w());
    // Window offsets outermost and output columns innermost: each
    // output keeps its running max in its own lane, so there is no
    // dependency chain through a window and the select is branch
    // free (a data-dependent branch per element, mispredicted half
    // the time, cost 5× more, measured with perf).
    for y in 0..oh {
        let best = &mut v[y * ow..][..ow];
        let at = &mut ix[y * ow..][..ow];
        best.fill(f32::NEG_INFINITY);
        at.fill(-1.0);
        for ki in 0..g.kh {
            let iy = (y * g.sh + ki * g.dh) as isize - g.ph as isize;
            if iy < 0 || iy >= g.h as isize {
                continue;
            }
            let row = iy as usize * g.w;
            for kj in 0..g.kw {
                let off = (kj * g.dw) as isize - g.pw as isize;
                let (lo, hi) = valid_range(ow, g.sw, off, g.w);
                for xo in lo..hi {
                    let pos = row + (xo * g.sw).wrapping_add_signed(off);
                    let val = plane[pos];
                    let take = (val > best[xo]) | val.is_nan() | (at[xo] < 0.0);
                    best[xo] = if take { val } else { best[xo] };
                    at[xo] = if take { pos as f32 } else { at[xo] };
                }
            }
        }
    }
}

/// Whether `g` is the 2×2 window at stride 2 without padding or dilation
/// (every pooling layer of the CLI's models), which has a vector path.
#[cfg(target_arch = "x86_64")]
fn is_halving(g: &ConvGeom) -> bool {
    (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw) == (2, 2, 2, 2, 0, 0, 1, 1)
}

/// One plane of the 2×2, stride-2 max pool, sixteen outputs per step: the
/// two input rows are loaded as 32 contiguous floats each and split into
/// even and odd columns, so the four window positions are four vectors. The
/// generic loop gathers every element through its stride-2 index (6.6% of
/// a cnn training step, perf, against ~1% for this). The same candidates in
/// the same order (row 0 then row 1, left then right) with the same test,
/// so the same values and indices, ties and NaN included (tested).
///
/// # Safety
/// AVX-512F; `plane` holds `(2·oh)·w` values with `ow = w / 2`, `v` and `ix`
/// `oh·ow`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn halve_plane_avx512(
    plane: &[f32],
    w: usize,
    oh: usize,
    ow: usize,
    v: &mut [f32],
    ix: &mut [f32],
) {
    use std::arch::x86_64::*;
    assert!(plane.len() >= 2 * oh * w && 2 * ow <= w && v.len() >= oh * ow && ix.len() >= oh * ow);
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    // Output lane j of a step at column x0 reads columns 2·(x0 + j) and one
    // more: its index in the plane is row·w + 2·x0 + 2j (+1, +w, +w+1).
    let lane2 = _mm512_cvtepi32_ps(even);
    let mask = |n: usize| -> __mmask16 { if n >= 16 { 0xFFFF } else { (1u16 << n) - 1 } };
    // SAFETY: masked loads and stores touch only the elements named in the
    // contract: columns < 2·ow of rows < 2·oh, outputs < oh·ow.
    unsafe {
        for y in 0..oh {
            let r0 = plane.as_ptr().add(2 * y * w);
            let r1 = r0.add(w);
            for x0 in (0..ow).step_by(16) {
                let n = (ow - x0).min(16);
                let (m, mlo, mhi) = (mask(n), mask(2 * n), mask(2 * n.saturating_sub(8)));
                let split = |r: *const f32| {
                    let lo = _mm512_maskz_loadu_ps(mlo, r.add(2 * x0));
                    let hi = _mm512_maskz_loadu_ps(mhi, r.add(2 * x0).wrapping_add(16));
                    (
                        _mm512_permutex2var_ps(lo, even, hi),
                        _mm512_permutex2var_ps(lo, odd, hi),
                    )
                };
                let ((a, b), (c, d)) = (split(r0), split(r1));
                let base = _mm512_add_ps(_mm512_set1_ps((2 * y * w + 2 * x0) as f32), lane2);
                let (mut best, mut at) = (a, base);
                for (val, off) in [(b, 1.0), (c, w as f32), (d, w as f32 + 1.0)] {
                    let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(val, best)
                        | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(val, val);
                    best = _mm512_mask_mov_ps(best, take, val);
                    at = _mm512_mask_mov_ps(at, take, _mm512_add_ps(base, _mm512_set1_ps(off)));
                }
                _mm512_mask_storeu_ps(v.as_mut_ptr().add(y * ow + x0), m, best);
                _mm512_mask_storeu_ps(ix.as_mut_ptr().add(y * ow + x0), m, at);
            }
        }
    }
}

/// The adjoint of taking `x[p][idx[p][j]]`: adds `g[p][j]` at plane position
/// `idx[p][j]` of a zero `[planes, hw]` buffer (max pooling's backward).
pub fn max_unpool2d(g: &[f32], idx: &[f32], planes: usize, hw: usize) -> Vec<f32> {
    let l = g.len() / planes.max(1);
    per_image(planes, hw, &|p, dst| {
        for (&v, &i) in g[p * l..][..l].iter().zip(&idx[p * l..][..l]) {
            dst[i as usize] += v;
        }
    })
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The 2×2 vector path gives the general loop's values and indices,
    /// ties and NaN included, on even and odd sizes and ragged rows.
    #[test]
    fn halving_path_matches_the_general_loop() {
        if !std::is_x86_feature_detected!("avx512f") {
            println!("skipped: no avx512f");
            return;
        }
        let mut rng = crate::Rng::new(3);
        for (h, w) in [
            (2, 2),
            (3, 5),
            (24, 24),
            (28, 28),
            (10, 10),
            (7, 33),
            (6, 64),
            (5, 70),
        ] {
            let g = ConvGeom {
                h,
                w,
                kh: 2,
                kw: 2,
                sh: 2,
                sw: 2,
                ph: 0,
                pw: 0,
                dh: 1,
                dw: 1,
            };
            let plane: Vec<f32> = (0..h * w)
                .map(|_| {
                    // Few distinct values, so windows tie; now and then NaN.
                    match rng.below(11) {
                        0 => f32::NAN,
                        k => (k % 4) as f32 - 1.5,
                    }
                })
                .collect();
            let l = g.out_h() * g.out_w();
            let (mut v0, mut i0) = (vec![0.0; l], vec![0.0; l]);
            let (mut v1, mut i1) = (vec![0.0; l], vec![0.0; l]);
            pool_plane(&plane, &g, &mut v0, &mut i0);
            // SAFETY: AVX-512F detected; buffers sized for g.
            unsafe { halve_plane_avx512(&plane, w, g.out_h(), g.out_w(), &mut v1, &mut i1) };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&v0), bits(&v1), "values, {h}×{w}");
            assert_eq!(i0, i1, "indices, {h}×{w}");
        }
    }
}
