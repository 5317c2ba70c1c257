//! Reductions, softmax and matrix products over row-major arrays, summing
//! in f64.

use super::{ravel, unravel};
use crate::backend::ReduceKind;

/// Reduces `x` (shape `dims`) over the axes `red`: the result has `dims`
/// without them. Every input element is visited in row-major order, so the
/// first maximum of each output is the first one met.
pub(super) fn reduce(x: &[f32], dims: &[usize], red: &[usize], op: ReduceKind) -> Vec<f32> {
    let kept: Vec<usize> = (0..dims.len()).filter(|i| !red.contains(i)).collect();
    let odims: Vec<usize> = kept.iter().map(|&i| dims[i]).collect();
    let rdims: Vec<usize> = red.iter().map(|&i| dims[i]).collect();
    let n: usize = odims.iter().product();
    let mut sum = vec![0.0f64; n];
    let mut best = vec![f32::NAN; n];
    let mut at = vec![usize::MAX; n];
    for (p, &v) in x.iter().enumerate() {
        let c = unravel(p, dims);
        let o = ravel(&kept.iter().map(|&i| c[i]).collect::<Vec<_>>(), &odims);
        let r = ravel(&red.iter().map(|&i| c[i]).collect::<Vec<_>>(), &rdims);
        sum[o] += v as f64;
        // A NaN wins (the first one), else the first strictly larger value.
        let take = at[o] == usize::MAX || (!best[o].is_nan() && (v > best[o] || v.is_nan()));
        if take {
            best[o] = v;
            at[o] = r;
        }
    }
    match op {
        ReduceKind::Sum => sum.into_iter().map(|s| s as f32).collect(),
        ReduceKind::Max => best,
        ReduceKind::Argmax => at.into_iter().map(|i| i as f32).collect(),
    }
}

/// Softmax (or log-softmax) of `x` (shape `dims`) along axis `dim`.
pub(super) fn softmax(x: &[f32], dims: &[usize], dim: usize, log: bool) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    let stride: usize = dims[dim + 1..].iter().product();
    let len = dims[dim];
    for p in 0..x.len() {
        if unravel(p, dims)[dim] != 0 {
            continue;
        }
        // p starts a line along `dim`: its elements are p + j·stride.
        let line: Vec<f64> = (0..len).map(|j| x[p + j * stride] as f64).collect();
        let m = line.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = line.iter().map(|v| (v - m).exp()).sum();
        for (j, v) in line.iter().enumerate() {
            out[p + j * stride] = if log {
                (v - m - s.ln()) as f32
            } else {
                ((v - m).exp() / s) as f32
            };
        }
    }
    out
}

/// `[B.., M, K] · [B.., K, N]` for row-major arrays with equal batch dims.
pub(super) fn matmul(a: &[f32], adims: &[usize], b: &[f32], bdims: &[usize]) -> Vec<f32> {
    let r = adims.len();
    let (m, k, n) = (adims[r - 2], adims[r - 1], bdims[r - 1]);
    let batches: usize = adims[..r - 2].iter().product();
    let mut out = vec![0.0f32; batches * m * n];
    for bi in 0..batches {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    s += a[(bi * m + i) * k + p] as f64 * b[(bi * k + p) * n + j] as f64;
                }
                out[(bi * m + i) * n + j] = s as f32;
            }
        }
    }
    out
}
