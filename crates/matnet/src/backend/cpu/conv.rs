//! im2col / col2im: the two data movements that turn convolution into a
//! matrix product. Each is the other's adjoint (and backward rule).

use crate::ops::conv::ConvGeom;

/// `[N, C, H, W]` (contiguous) → `[N, C·kh·kw, OH·OW]`; row `(c, ki, kj)`,
/// column `(oh, ow)` holds `x[c, oh·sh + ki·dh - ph, ow·sw + kj·dw - pw]`,
/// or 0 in the padding.
pub fn im2col(x: &[f32], n: usize, c: usize, g: &ConvGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let l = oh * ow;
    let rows = c * g.kh * g.kw;
    let mut out = vec![0.0f32; n * rows * l];
    for (img, dst) in x
        .chunks_exact(c * g.h * g.w)
        .zip(out.chunks_exact_mut(rows * l))
    {
        for ch in 0..c {
            let plane = &img[ch * g.h * g.w..(ch + 1) * g.h * g.w];
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let row = &mut dst[((ch * g.kh + ki) * g.kw + kj) * l..][..l];
                    for y in 0..oh {
                        let iy = (y * g.sh + ki * g.dh) as isize - g.ph as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        let src = &plane[iy as usize * g.w..][..g.w];
                        let r = &mut row[y * ow..][..ow];
                        for (xo, v) in r.iter_mut().enumerate() {
                            let ix = (xo * g.sw + kj * g.dw) as isize - g.pw as isize;
                            if ix >= 0 && ix < g.w as isize {
                                *v = src[ix as usize];
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// The adjoint of [`im2col`]: `[N, C·kh·kw, OH·OW]` → `[N, C, H, W]`,
/// adding every column entry back into the pixel it came from.
pub fn col2im(cols: &[f32], n: usize, c: usize, g: &ConvGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let l = oh * ow;
    let rows = c * g.kh * g.kw;
    let mut out = vec![0.0f32; n * c * g.h * g.w];
    for (src, img) in cols
        .chunks_exact(rows * l)
        .zip(out.chunks_exact_mut(c * g.h * g.w))
    {
        for ch in 0..c {
            let plane = &mut img[ch * g.h * g.w..(ch + 1) * g.h * g.w];
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let row = &src[((ch * g.kh + ki) * g.kw + kj) * l..][..l];
                    for y in 0..oh {
                        let iy = (y * g.sh + ki * g.dh) as isize - g.ph as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        let dst = &mut plane[iy as usize * g.w..][..g.w];
                        for (xo, &v) in row[y * ow..][..ow].iter().enumerate() {
                            let ix = (xo * g.sw + kj * g.dw) as isize - g.pw as isize;
                            if ix >= 0 && ix < g.w as isize {
                                dst[ix as usize] += v;
                            }
                        }
                    }
                }
            }
        }
    }
    out
}
