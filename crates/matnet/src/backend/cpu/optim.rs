//! Optimizer updates in place, in parallel chunks of straight-line code that
//! vectorises.

use super::{SendPtr, strided::par_ranges};
use crate::backend::OptimRule;

/// One update of `w` from `g` with state `state` (empty, `v`, or `m` then `v`).
pub fn step(w: &mut [f32], g: &[f32], state: &mut [f32], rule: &OptimRule) {
    let n = w.len();
    let wp = SendPtr(w.as_mut_ptr());
    let sp = SendPtr(state.as_mut_ptr());
    match *rule {
        OptimRule::Sgd {
            lr,
            momentum: mu,
            weight_decay: wd,
            nesterov,
        } => par_ranges(n, 2, |s, e| {
            // SAFETY: buffers hold n elements (state n or 0); ranges are disjoint.
            let w = unsafe { wp.slice(s, e) };
            let g = &g[s..e];
            if mu == 0.0 {
                for (w, &g) in w.iter_mut().zip(g) {
                    *w -= lr * (g + wd * *w);
                }
            } else {
                // SAFETY: as above.
                let v = unsafe { sp.slice(s, e) };
                for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
                    let g = g + wd * *w;
                    *v = mu * *v + g;
                    *w -= lr * if nesterov { g + mu * *v } else { *v };
                }
            }
        }),
        OptimRule::Adam {
            b1,
            b2,
            step,
            inv_c2s,
            eps,
            l2,
            shrink,
        } => par_ranges(n, 2, |s, e| {
            // SAFETY: w holds n elements, state 2n (m then v); ranges are disjoint.
            let (w, m, v) = unsafe { (wp.slice(s, e), sp.slice(s, e), sp.slice(n + s, n + e)) };
            let (g, m, v) = (&g[s..e], &mut m[..w.len()], &mut v[..w.len()]);
            for i in 0..w.len() {
                let gi = g[i] + l2 * w[i];
                m[i] = b1 * m[i] + (1.0 - b1) * gi;
                v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                w[i] = shrink * w[i] - step * m[i] / (v[i].sqrt() * inv_c2s + eps);
            }
        }),
    }
}
