//! The fused LSTM cell: the gate nonlinearities and the state update in
//! one pass over `[N, 4H]`, and its hand-written backward. Composed from
//! tensor ops the cell was ~15 small ops forward and ~25 backward per time
//! step, each allocating and dispatching for `N·H` elements; the worker
//! thread idled 40% of an LSTM training step waiting on them (perf).

use super::math::{sigmoid, tanh};

/// Rows of `[N, 4H]` gate pre-activations `a = [a_i a_f a_g a_o]` and the
/// previous cell state `[N, H]` → `[N, 2H]` rows `[h | c]` with
/// `c = σ(a_f)⊙c_prev + σ(a_i)⊙tanh(a_g)`, `h = σ(a_o)⊙tanh(c)`.
pub fn lstm_cell_forward(gates: &[f32], c_prev: &[f32], hidden: usize) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the features were just detected.
        return unsafe { forward_avx2(gates, c_prev, hidden) };
    }
    forward_generic(gates, c_prev, hidden)
}

/// [`forward_generic`] compiled for AVX2+FMA (8 lanes instead of SSE2's 4).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_avx2(gates: &[f32], c_prev: &[f32], hidden: usize) -> Vec<f32> {
    forward_generic(gates, c_prev, hidden)
}

#[inline(always)]
fn forward_generic(gates: &[f32], c_prev: &[f32], hidden: usize) -> Vec<f32> {
    let n = c_prev.len() / hidden.max(1);
    let mut out = vec![0.0f32; n * 2 * hidden];
    for ((a, cp), hc) in gates
        .chunks_exact(4 * hidden)
        .zip(c_prev.chunks_exact(hidden))
        .zip(out.chunks_exact_mut(2 * hidden))
    {
        let (a_i, rest) = a.split_at(hidden);
        let (a_f, rest) = rest.split_at(hidden);
        let (a_g, a_o) = rest.split_at(hidden);
        let (h, c) = hc.split_at_mut(hidden);
        for j in 0..hidden {
            let cn = sigmoid(a_f[j]) * cp[j] + sigmoid(a_i[j]) * tanh(a_g[j]);
            c[j] = cn;
            h[j] = sigmoid(a_o[j]) * tanh(cn);
        }
    }
    out
}

/// The backward of [`lstm_cell_forward`] given the gradient `[N, 2H]` of its
/// output rows `[g_h | g_c]`: the gradients of the gate pre-activations
/// `[N, 4H]` and of `c_prev` `[N, H]`. With `t = tanh(c)`:
///
/// ```text
/// g_c'  = g_c + g_h ⊙ o ⊙ (1 − t²)
/// g_a_i = g_c' ⊙ g ⊙ i(1 − i)      g_a_f = g_c' ⊙ c_prev ⊙ f(1 − f)
/// g_a_g = g_c' ⊙ i ⊙ (1 − g²)      g_a_o = g_h ⊙ t ⊙ o(1 − o)
/// g_c_prev = g_c' ⊙ f
/// ```
pub fn lstm_cell_backward(
    gates: &[f32],
    c_prev: &[f32],
    grad: &[f32],
    hidden: usize,
) -> (Vec<f32>, Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the features were just detected.
        return unsafe { backward_avx2(gates, c_prev, grad, hidden) };
    }
    backward_generic(gates, c_prev, grad, hidden)
}

/// [`backward_generic`] compiled for AVX2+FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_avx2(
    gates: &[f32],
    c_prev: &[f32],
    grad: &[f32],
    hidden: usize,
) -> (Vec<f32>, Vec<f32>) {
    backward_generic(gates, c_prev, grad, hidden)
}

#[inline(always)]
fn backward_generic(
    gates: &[f32],
    c_prev: &[f32],
    grad: &[f32],
    hidden: usize,
) -> (Vec<f32>, Vec<f32>) {
    let n = c_prev.len() / hidden.max(1);
    let mut g_gates = vec![0.0f32; n * 4 * hidden];
    let mut g_c_prev = vec![0.0f32; n * hidden];
    for ((((a, cp), g), ga), gcp) in gates
        .chunks_exact(4 * hidden)
        .zip(c_prev.chunks_exact(hidden))
        .zip(grad.chunks_exact(2 * hidden))
        .zip(g_gates.chunks_exact_mut(4 * hidden))
        .zip(g_c_prev.chunks_exact_mut(hidden))
    {
        let (a_i, rest) = a.split_at(hidden);
        let (a_f, rest) = rest.split_at(hidden);
        let (a_g, a_o) = rest.split_at(hidden);
        let (g_h, g_c) = g.split_at(hidden);
        let (ga_i, rest) = ga.split_at_mut(hidden);
        let (ga_f, rest) = rest.split_at_mut(hidden);
        let (ga_g, ga_o) = rest.split_at_mut(hidden);
        for j in 0..hidden {
            let (i, f, gg, o) = (
                sigmoid(a_i[j]),
                sigmoid(a_f[j]),
                tanh(a_g[j]),
                sigmoid(a_o[j]),
            );
            let t = tanh(f * cp[j] + i * gg);
            let gc = g_c[j] + g_h[j] * o * (1.0 - t * t);
            ga_i[j] = gc * gg * i * (1.0 - i);
            ga_f[j] = gc * cp[j] * f * (1.0 - f);
            ga_g[j] = gc * i * (1.0 - gg * gg);
            ga_o[j] = g_h[j] * t * o * (1.0 - o);
            gcp[j] = gc * f;
        }
    }
    (g_gates, g_c_prev)
}
