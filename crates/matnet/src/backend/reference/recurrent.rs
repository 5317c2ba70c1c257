//! The LSTM cell and layer, forward and backward, written out step by step
//! in f64 from the equations (gate order i, f, g, o as PyTorch):
//!
//! ```text
//! i = σ(a_i)  f = σ(a_f)  g = tanh(a_g)  o = σ(a_o)
//! c = f⊙c_prev + i⊙g      h = o⊙tanh(c)
//! ```

use super::elementwise::sigmoid;
use crate::params::LstmDims;

/// One cell over `[N, 4H]` pre-activations: the `[N, 2H]` rows `[h | c]` and
/// the gate values `[N, 4H]` (`i f g o`).
pub(super) fn cell(a: &[f32], c_prev: &[f32], h: usize) -> (Vec<f32>, Vec<f32>) {
    let n = c_prev.len() / h.max(1);
    let mut out = vec![0.0f32; n * 2 * h];
    let mut gates = vec![0.0f32; n * 4 * h];
    for r in 0..n {
        for j in 0..h {
            let pre = |k: usize| a[r * 4 * h + k * h + j] as f64;
            let (i, f, g, o) = (
                sigmoid(pre(0)),
                sigmoid(pre(1)),
                pre(2).tanh(),
                sigmoid(pre(3)),
            );
            let c = f * c_prev[r * h + j] as f64 + i * g;
            out[r * 2 * h + j] = (o * c.tanh()) as f32;
            out[r * 2 * h + h + j] = c as f32;
            for (k, v) in [i, f, g, o].into_iter().enumerate() {
                gates[r * 4 * h + k * h + j] = v as f32;
            }
        }
    }
    (out, gates)
}

/// The cell's backward from gate values `act`, `c_prev`, the new state `c`
/// and the gradients `gh`, `gc` reaching `h` and `c`: per element
/// `(grad_a [i f g o], grad_c_prev)`.
fn cell_grads(act: [f64; 4], c_prev: f64, c: f64, gh: f64, gc: f64) -> ([f64; 4], f64) {
    let [i, f, g, o] = act;
    let tc = c.tanh();
    let gc = gc + gh * o * (1.0 - tc * tc);
    let ga = [
        gc * g * i * (1.0 - i),
        gc * c_prev * f * (1.0 - f),
        gc * i * (1.0 - g * g),
        gh * tc * o * (1.0 - o),
    ];
    (ga, gc * f)
}

/// Gradients `([N, 4H], [N, H])` of [`cell`]'s inputs from `grad [N, 2H]`.
pub(super) fn cell_backward(
    a: &[f32],
    c_prev: &[f32],
    grad: &[f32],
    h: usize,
) -> (Vec<f32>, Vec<f32>) {
    let (out, act) = cell(a, c_prev, h);
    let n = c_prev.len() / h.max(1);
    let mut ga = vec![0.0f32; n * 4 * h];
    let mut gcp = vec![0.0f32; n * h];
    for r in 0..n {
        for j in 0..h {
            let gate = |k: usize| act[r * 4 * h + k * h + j] as f64;
            let (g_a, g_c) = cell_grads(
                [gate(0), gate(1), gate(2), gate(3)],
                c_prev[r * h + j] as f64,
                out[r * 2 * h + h + j] as f64,
                grad[r * 2 * h + j] as f64,
                grad[r * 2 * h + h + j] as f64,
            );
            for (k, v) in g_a.into_iter().enumerate() {
                ga[r * 4 * h + k * h + j] = v as f32;
            }
            gcp[r * h + j] = g_c as f32;
        }
    }
    (ga, gcp)
}

/// `h_prev [N, H] · W_hhᵀ` (summed in f64) added to `a [N, 4H]`.
fn add_recurrent(a: &mut [f32], h_prev: &[f32], w: &[f32], n: usize, h: usize) {
    for r in 0..n {
        for q in 0..4 * h {
            let s: f64 = (0..h)
                .map(|p| h_prev[r * h + p] as f64 * w[q * h + p] as f64)
                .sum();
            // Rounded like the product it is, then added (as `xp + h·W_hhᵀ`).
            a[r * 4 * h + q] += s as f32;
        }
    }
}

/// The `[h | c]` half `k` (0 or 1) of output rows `[N, 2H]`, as `[N, H]`.
fn half(rows: &[f32], n: usize, h: usize, k: usize) -> Vec<f32> {
    (0..n * h)
        .map(|p| rows[(p / h) * 2 * h + k * h + p % h])
        .collect()
}

/// A layer over `T` steps: outputs `[T, N, 2H]` and gate values `[T, N, 4H]`.
pub(super) fn layer(
    xp: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    h0: &[f32],
    c0: &[f32],
    d: LstmDims,
) -> (Vec<f32>, Vec<f32>) {
    let (n, h) = (d.n, d.h);
    let (mut hs, mut cs) = (h0.to_vec(), c0.to_vec());
    let (mut out, mut gates) = (Vec::new(), Vec::new());
    for t in 0..d.t {
        let mut a = xp[t * n * 4 * h..][..n * 4 * h].to_vec();
        if let Some(b) = bias {
            // Rounded like the f32 sum it stands for (`xp + b`).
            for (a, &b) in a.iter_mut().zip(b.iter().cycle()) {
                *a += b;
            }
        }
        add_recurrent(&mut a, &hs, w, n, h);
        let (o, g) = cell(&a, &cs, h);
        hs = half(&o, n, h, 0);
        cs = half(&o, n, h, 1);
        out.extend(o);
        gates.extend(g);
    }
    (out, gates)
}

/// Gradients `(xp, W_hh, h0, c0)` of [`layer`] by a backward sweep in time,
/// and the bias gradient (every step's gate gradients summed, in f64).
pub(super) fn layer_backward(
    [w, h0, c0]: [&[f32]; 3],
    gates: &[f32],
    out: &[f32],
    g_out: &[f32],
    d: LstmDims,
) -> ([Vec<f32>; 4], Vec<f32>) {
    let (n, h) = (d.n, d.h);
    let mut g_xp = vec![0.0f32; d.t * n * 4 * h];
    let mut g_b = vec![0.0f64; 4 * h];
    let mut g_w = vec![0.0f64; 4 * h * h];
    let (mut gh_next, mut gc_next) = (vec![0.0f64; n * h], vec![0.0f64; n * h]);
    for t in (0..d.t).rev() {
        let step = |k: usize| half(&out[t * n * 2 * h..][..n * 2 * h], n, h, k);
        let (h_prev, c_prev) = if t == 0 {
            (h0.to_vec(), c0.to_vec())
        } else {
            let prev = &out[(t - 1) * n * 2 * h..][..n * 2 * h];
            (half(prev, n, h, 0), half(prev, n, h, 1))
        };
        let c = step(1);
        let mut ga = vec![0.0f64; n * 4 * h];
        for r in 0..n {
            for j in 0..h {
                let gate = |k: usize| gates[(t * n + r) * 4 * h + k * h + j] as f64;
                let e = r * h + j;
                let (g_a, g_c) = cell_grads(
                    [gate(0), gate(1), gate(2), gate(3)],
                    c_prev[e] as f64,
                    c[e] as f64,
                    g_out[(t * n + r) * 2 * h + j] as f64 + gh_next[e],
                    g_out[(t * n + r) * 2 * h + h + j] as f64 + gc_next[e],
                );
                for (k, v) in g_a.into_iter().enumerate() {
                    ga[r * 4 * h + k * h + j] = v;
                }
                gc_next[e] = g_c;
            }
        }
        // g_h_{t−1} = g_a · W_hh;  g_W_hh += g_aᵀ · h_{t−1}.
        for r in 0..n {
            for p in 0..h {
                gh_next[r * h + p] = (0..4 * h)
                    .map(|q| ga[r * 4 * h + q] * w[q * h + p] as f64)
                    .sum();
            }
        }
        for q in 0..4 * h {
            for p in 0..h {
                g_w[q * h + p] += (0..n)
                    .map(|r| ga[r * 4 * h + q] * h_prev[r * h + p] as f64)
                    .sum::<f64>();
            }
        }
        for (k, v) in ga.into_iter().enumerate() {
            g_xp[t * n * 4 * h + k] = v as f32;
            g_b[k % (4 * h)] += v;
        }
    }
    let to32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
    ([g_xp, to32(g_w), to32(gh_next), to32(gc_next)], to32(g_b))
}
