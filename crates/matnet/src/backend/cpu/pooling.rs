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
    Split::new(planes).run(&|_, range, _| {
        for p in range {
            let plane = &x[p * hw..][..hw];
            // SAFETY: tasks own disjoint planes.
            let (v, ix) = unsafe { (vp.slice(p * l, (p + 1) * l), ip.slice(p * l, (p + 1) * l)) };
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
    });
    (vals, idx)
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
