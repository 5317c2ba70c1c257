//! Convolution, its adjoints, unfolding and max pooling as direct loops over
//! every (image, channel, output position, kernel tap), summing in f64.

use crate::params::{ConvGeom, ConvShape};

/// The input coordinate that output `o`, kernel tap `k` reads along one axis
/// (`o·stride + k·dilation − padding`), if it is inside the input.
fn tap(o: usize, k: usize, stride: usize, dil: usize, pad: usize, size: usize) -> Option<usize> {
    let i = (o * stride + k * dil) as isize - pad as isize;
    (i >= 0 && (i as usize) < size).then_some(i as usize)
}

/// Calls `f(x_index, y_index, w_index)` for every product term of
/// `conv2d`: image n, output channel o, output (oy, ox), input channel ci of
/// o's group, tap (ki, kj) landing inside the image.
fn for_each_term(s: &ConvShape, mut f: impl FnMut(usize, usize, usize)) {
    let g = &s.geom;
    let (oh, ow) = (g.out_h(), g.out_w());
    let (cg, og) = (s.c / s.groups, s.o / s.groups);
    for n in 0..s.n {
        for o in 0..s.o {
            let group = o / og;
            for oy in 0..oh {
                for ox in 0..ow {
                    let yi = ((n * s.o + o) * oh + oy) * ow + ox;
                    for ci in 0..cg {
                        let c = group * cg + ci;
                        for ki in 0..g.kh {
                            let Some(iy) = tap(oy, ki, g.sh, g.dh, g.ph, g.h) else {
                                continue;
                            };
                            for kj in 0..g.kw {
                                let Some(ix) = tap(ox, kj, g.sw, g.dw, g.pw, g.w) else {
                                    continue;
                                };
                                let xi = ((n * s.c + c) * g.h + iy) * g.w + ix;
                                let wi = ((o * cg + ci) * g.kh + ki) * g.kw + kj;
                                f(xi, yi, wi);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn rounded(v: Vec<f64>) -> Vec<f32> {
    v.into_iter().map(|v| v as f32).collect()
}

/// `y[n, o, oy, ox] = Σ x[n, c, iy, ix] · w[o, c, ki, kj]`.
pub(super) fn conv2d(x: &[f32], w: &[f32], bias: Option<&[f32]>, s: &ConvShape) -> Vec<f32> {
    let l = s.col_len();
    let mut y = vec![0.0f64; s.n * s.o * l];
    if let Some(b) = bias {
        for (j, y) in y.iter_mut().enumerate() {
            *y = b[j / l % s.o] as f64;
        }
    }
    for_each_term(s, |xi, yi, wi| y[yi] += x[xi] as f64 * w[wi] as f64);
    rounded(y)
}

/// The bias gradient: `gy` summed over images and pixels, per channel.
pub(super) fn conv2d_bias_grad(gy: &[f32], s: &ConvShape) -> Vec<f32> {
    let l = s.col_len();
    let mut gb = vec![0.0f64; s.o];
    for (j, &g) in gy.iter().enumerate() {
        gb[j / l % s.o] += g as f64;
    }
    rounded(gb)
}

/// The adjoint in the input: every term sends `gy · w` back to its pixel.
pub(super) fn conv_transpose2d(gy: &[f32], w: &[f32], s: &ConvShape) -> Vec<f32> {
    let mut gx = vec![0.0f64; s.n * s.c * s.geom.h * s.geom.w];
    for_each_term(s, |xi, yi, wi| gx[xi] += gy[yi] as f64 * w[wi] as f64);
    rounded(gx)
}

/// The weight gradient: every term sends `gy · x` to its tap.
pub(super) fn conv2d_weight_grad(x: &[f32], gy: &[f32], s: &ConvShape) -> Vec<f32> {
    let mut gw = vec![0.0f64; s.o * s.col_rows()];
    for_each_term(s, |xi, yi, wi| gw[wi] += gy[yi] as f64 * x[xi] as f64);
    rounded(gw)
}

/// Calls `f(col_index, x_index)` for every column entry of `im2col` that
/// reads a pixel (entries in the padding read none).
fn for_each_col(n: usize, c: usize, g: &ConvGeom, mut f: impl FnMut(usize, usize)) {
    let (oh, ow) = (g.out_h(), g.out_w());
    for i in 0..n {
        for ch in 0..c {
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let row = (ch * g.kh + ki) * g.kw + kj;
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let (Some(iy), Some(ix)) = (
                                tap(oy, ki, g.sh, g.dh, g.ph, g.h),
                                tap(ox, kj, g.sw, g.dw, g.pw, g.w),
                            ) else {
                                continue;
                            };
                            let col = ((i * c * g.kh * g.kw + row) * oh + oy) * ow + ox;
                            f(col, ((i * c + ch) * g.h + iy) * g.w + ix);
                        }
                    }
                }
            }
        }
    }
}

/// `[N, C, H, W] -> [N, C·kh·kw, OH·OW]`, zeros in the padding.
pub(super) fn im2col(x: &[f32], n: usize, c: usize, g: &ConvGeom) -> Vec<f32> {
    let mut cols = vec![0.0f32; n * c * g.kh * g.kw * g.out_h() * g.out_w()];
    for_each_col(n, c, g, |col, xi| cols[col] = x[xi]);
    cols
}

/// The adjoint of `im2col`: every column entry added back to its pixel.
pub(super) fn col2im(cols: &[f32], n: usize, c: usize, g: &ConvGeom) -> Vec<f32> {
    let mut x = vec![0.0f64; n * c * g.h * g.w];
    for_each_col(n, c, g, |col, xi| x[xi] += cols[col] as f64);
    rounded(x)
}

/// Max over each window of every `H×W` plane, and the in-plane index of the
/// first maximum (a NaN wins), window taps in row-major order.
pub(super) fn max_pool2d(x: &[f32], g: &ConvGeom) -> (Vec<f32>, Vec<f32>) {
    let (oh, ow, hw) = (g.out_h(), g.out_w(), g.h * g.w);
    let planes = x.len() / hw.max(1);
    let mut vals = Vec::with_capacity(planes * oh * ow);
    let mut idx = Vec::with_capacity(planes * oh * ow);
    for p in 0..planes {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut best, mut at) = (f32::NEG_INFINITY, None::<usize>);
                for ki in 0..g.kh {
                    for kj in 0..g.kw {
                        let (Some(iy), Some(ix)) = (
                            tap(oy, ki, g.sh, g.dh, g.ph, g.h),
                            tap(ox, kj, g.sw, g.dw, g.pw, g.w),
                        ) else {
                            continue;
                        };
                        let v = x[p * hw + iy * g.w + ix];
                        if at.is_none() || (!best.is_nan() && (v > best || v.is_nan())) {
                            best = v;
                            at = Some(iy * g.w + ix);
                        }
                    }
                }
                vals.push(best);
                idx.push(at.map_or(-1.0, |i| i as f32));
            }
        }
    }
    (vals, idx)
}
