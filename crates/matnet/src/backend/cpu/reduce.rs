//! Reductions over the middle axis of a contiguous `[outer, r, inner]` view.
//! `ops/reduce.rs` brings any set of reduced dimensions into that form.

/// Σ over `r`: `[outer, r, inner] -> [outer, inner]`.
pub fn sum(x: &[f32], outer: usize, r: usize, inner: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; outer * inner];
    if inner == 1 {
        for (o, row) in out.iter_mut().zip(x.chunks_exact(r.max(1))) {
            *o = sum_row(row);
        }
        if r == 0 {
            out.iter_mut().for_each(|o| *o = 0.0);
        }
        return out;
    }
    for (o, block) in out.chunks_exact_mut(inner).zip(x.chunks_exact(r * inner)) {
        for row in block.chunks_exact(inner) {
            for (a, &v) in o.iter_mut().zip(row) {
                *a += v;
            }
        }
    }
    out
}

/// Sum of a contiguous row with 8 independent accumulators: vectorises, and
/// the split sums lose less precision than one running total.
pub(super) fn sum_row(row: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = row.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    let s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    s + tail
}

/// Max over `r` and the position (in `0..r`) of the first maximum.
/// NaN wins (it propagates), like PyTorch.
pub fn max_with_index(x: &[f32], outer: usize, r: usize, inner: usize) -> (Vec<f32>, Vec<usize>) {
    assert!(r > 0, "max: cannot reduce over an empty dimension");
    let mut vals = vec![f32::NEG_INFINITY; outer * inner];
    let mut idx = vec![0usize; outer * inner];
    for o in 0..outer {
        let block = &x[o * r * inner..(o + 1) * r * inner];
        let (v, ix) = (
            &mut vals[o * inner..(o + 1) * inner],
            &mut idx[o * inner..(o + 1) * inner],
        );
        v.copy_from_slice(&block[..inner]);
        for k in 1..r {
            for (j, &e) in block[k * inner..(k + 1) * inner].iter().enumerate() {
                if e > v[j] || (e.is_nan() && !v[j].is_nan()) {
                    v[j] = e;
                    ix[j] = k;
                }
            }
        }
    }
    (vals, idx)
}

/// Positions of the maxima over `r`, as f32 (tensors hold f32 only).
pub fn argmax(x: &[f32], outer: usize, r: usize, inner: usize) -> Vec<f32> {
    max_with_index(x, outer, r, inner)
        .1
        .into_iter()
        .map(|i| i as f32)
        .collect()
}

/// Softmax (or log-softmax) over `r`. Subtracting the maximum first keeps
/// `exp` from overflowing: inputs of 1e4 are fine.
pub fn softmax(x: &[f32], outer: usize, r: usize, inner: usize, log: bool) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    if inner == 1 {
        for (o, row) in out.chunks_exact_mut(r.max(1)).zip(x.chunks_exact(r.max(1))) {
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            // The polynomial exp in a loop of its own vectorises; libm's
            // expf was a call per element (2.5% of a ViT step).
            for (o, &v) in o.iter_mut().zip(row) {
                *o = super::math::exp(v - m);
            }
            let s = o.iter().fold(0.0f32, |s, &e| s + e);
            if log {
                let ls = s.ln();
                for (o, &v) in o.iter_mut().zip(row) {
                    *o = v - m - ls;
                }
            } else {
                let inv = 1.0 / s;
                o.iter_mut().for_each(|o| *o *= inv);
            }
        }
        return out;
    }
    let (m, _) = max_with_index(x, outer, r, inner);
    for o in 0..outer {
        let (blk, ob) = (o * r * inner, &mut out[o * r * inner..(o + 1) * r * inner]);
        let mo = &m[o * inner..(o + 1) * inner];
        let mut s = vec![0.0f32; inner];
        for k in 0..r {
            for j in 0..inner {
                let e = super::math::exp(x[blk + k * inner + j] - mo[j]);
                ob[k * inner + j] = e;
                s[j] += e;
            }
        }
        for k in 0..r {
            for j in 0..inner {
                let e = &mut ob[k * inner + j];
                *e = if log {
                    x[blk + k * inner + j] - mo[j] - s[j].ln()
                } else {
                    *e / s[j]
                };
            }
        }
    }
    out
}
