//! Fused LSTM kernels: the cell (gate nonlinearities and state update in one
//! pass) and a whole layer over time with its hand-written backward.
//!
//! Composed from tensor ops, the cell was ~15 small ops forward and ~25
//! backward per time step, each allocating and dispatching for `N·H`
//! elements; the worker thread idled 40% of an LSTM training step (perf).
//! Fusing only the cell left the per-step `grad_W_hh` products (28 small
//! GEMMs and their accumulation) and the slicing of the sequence; the layer
//! kernel runs the recurrence in place and computes `grad_W_hh` as one
//! product over all `T·N` rows after the backward sweep.

use super::gemm::PackedB;
use super::math::{sigmoid, tanh};
use super::{SendPtr, gemm, threads, vec_written_by};
// Re-exported from its old home so existing imports keep compiling.
pub use crate::params::LstmDims;

/// True when the CPU runs the AVX2+FMA builds of the cell loops (8 lanes for
/// the polynomial `exp`/`tanh` instead of SSE2's 4).
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// True when the CPU runs the AVX-512 build of the forward cell (16 lanes).
fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2() && std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Cell forward over rows: gate pre-activations `a` (rows of `4H`,
/// `[a_i a_f a_g a_o]`), previous cell state (row `r` at `c_prev[r·stride..]`)
/// → rows `[h | c]` of `2H` in `hc`, with
/// `c = σ(a_f)⊙c_prev + σ(a_i)⊙tanh(a_g)`, `h = σ(a_o)⊙tanh(c)`. The
/// pre-activations in `a` are replaced by the gate values `[i f g o]`, so
/// the backward pass needs one `tanh` per element instead of five
/// transcendental functions.
#[inline(always)]
fn cell_rows_saving<const L: usize>(
    a: &mut [f32],
    c_prev: &[f32],
    stride: usize,
    hc: &mut [f32],
    hidden: usize,
) {
    for (r, (a, hc)) in a
        .chunks_exact_mut(4 * hidden)
        .zip(hc.chunks_exact_mut(2 * hidden))
        .enumerate()
    {
        let cp = &c_prev[r * stride..][..hidden];
        let (a_i, rest) = a.split_at_mut(hidden);
        let (a_f, rest) = rest.split_at_mut(hidden);
        let (a_g, a_o) = rest.split_at_mut(hidden);
        let (h, c) = hc.split_at_mut(hidden);
        // L lanes at a time through local arrays: with six slices in
        // play, the plain loop stayed scalar (alias checks), the arrays
        // vectorise.
        let lanes = hidden / L * L;
        for j in (0..lanes).step_by(L) {
            let load = |x: &[f32]| -> [f32; L] { x[j..j + L].try_into().expect("L lanes") };
            let (pi, pf, pg, po, pc) = (load(a_i), load(a_f), load(a_g), load(a_o), load(cp));
            let (mut gi, mut gf, mut gg, mut go, mut cn, mut hn) = (
                [0.0f32; L],
                [0.0; L],
                [0.0; L],
                [0.0; L],
                [0.0; L],
                [0.0; L],
            );
            for k in 0..L {
                gi[k] = sigmoid(pi[k]);
                gf[k] = sigmoid(pf[k]);
                gg[k] = tanh(pg[k]);
                go[k] = sigmoid(po[k]);
                cn[k] = gf[k] * pc[k] + gi[k] * gg[k];
                hn[k] = go[k] * tanh(cn[k]);
            }
            a_i[j..j + L].copy_from_slice(&gi);
            a_f[j..j + L].copy_from_slice(&gf);
            a_g[j..j + L].copy_from_slice(&gg);
            a_o[j..j + L].copy_from_slice(&go);
            c[j..j + L].copy_from_slice(&cn);
            h[j..j + L].copy_from_slice(&hn);
        }
        for j in lanes..hidden {
            let (i, f, g, o) = (
                sigmoid(a_i[j]),
                sigmoid(a_f[j]),
                tanh(a_g[j]),
                sigmoid(a_o[j]),
            );
            let cn = f * cp[j] + i * g;
            c[j] = cn;
            h[j] = o * tanh(cn);
            (a_i[j], a_f[j], a_g[j], a_o[j]) = (i, f, g, o);
        }
    }
}

/// Cell backward over rows from the gate values saved by
/// [`cell_rows_saving`], the new cell state rows `c_new` (stride `2H`) and
/// the previous ones, given the gradient rows `[g_h | g_c]` of its output:
/// gate gradients (rows of `4H`) and `g_c_prev` (rows of `H`). With
/// `t = tanh(c)`:
///
/// ```text
/// g_c'  = g_c + g_h ⊙ o ⊙ (1 − t²)
/// g_a_i = g_c' ⊙ g ⊙ i(1 − i)      g_a_f = g_c' ⊙ c_prev ⊙ f(1 − f)
/// g_a_g = g_c' ⊙ i ⊙ (1 − g²)      g_a_o = g_h ⊙ t ⊙ o(1 − o)
/// g_c_prev = g_c' ⊙ f
/// ```
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn cell_rows_backward_saved<const L: usize>(
    act: &[f32],
    c_prev: &[f32],
    stride: usize,
    c_new: &[f32],
    grad: &[f32],
    g_a: &mut [f32],
    g_c_prev: &mut [f32],
    hidden: usize,
) {
    for (r, ((a, g), (ga, gcp))) in act
        .chunks_exact(4 * hidden)
        .zip(grad.chunks_exact(2 * hidden))
        .zip(
            g_a.chunks_exact_mut(4 * hidden)
                .zip(g_c_prev.chunks_exact_mut(hidden)),
        )
        .enumerate()
    {
        let cp = &c_prev[r * stride..][..hidden];
        let cn = &c_new[r * 2 * hidden..][..hidden];
        let (i, rest) = a.split_at(hidden);
        let (f, rest) = rest.split_at(hidden);
        let (gg, o) = rest.split_at(hidden);
        let (g_h, g_c) = g.split_at(hidden);
        let (ga_i, rest) = ga.split_at_mut(hidden);
        let (ga_f, rest) = rest.split_at_mut(hidden);
        let (ga_g, ga_o) = rest.split_at_mut(hidden);
        // One element's gradients; the same expression for the lanes and
        // the tail, so every width gives the same bits.
        let step = |i: f32, f: f32, g: f32, o: f32, cp: f32, cn: f32, g_h: f32, g_c: f32| {
            let t = tanh(cn);
            let gc = g_c + g_h * o * (1.0 - t * t);
            (
                gc * g * i * (1.0 - i),
                gc * cp * f * (1.0 - f),
                gc * i * (1.0 - g * g),
                g_h * t * o * (1.0 - o),
                gc * f,
            )
        };
        // L lanes at a time through local arrays, as in the forward cell:
        // with eleven slices in play, the plain loop vectorised only behind
        // alias checks, at half the width.
        let lanes = hidden / L * L;
        for j in (0..lanes).step_by(L) {
            let load = |x: &[f32]| -> [f32; L] { x[j..j + L].try_into().expect("L lanes") };
            let (vi, vf, vg, vo) = (load(i), load(f), load(gg), load(o));
            let (vcp, vcn, vgh, vgc) = (load(cp), load(cn), load(g_h), load(g_c));
            let mut out = [[0.0f32; L]; 5];
            for k in 0..L {
                let r = step(vi[k], vf[k], vg[k], vo[k], vcp[k], vcn[k], vgh[k], vgc[k]);
                (out[0][k], out[1][k], out[2][k], out[3][k], out[4][k]) = r;
            }
            ga_i[j..j + L].copy_from_slice(&out[0]);
            ga_f[j..j + L].copy_from_slice(&out[1]);
            ga_g[j..j + L].copy_from_slice(&out[2]);
            ga_o[j..j + L].copy_from_slice(&out[3]);
            gcp[j..j + L].copy_from_slice(&out[4]);
        }
        for j in lanes..hidden {
            (ga_i[j], ga_f[j], ga_g[j], ga_o[j], gcp[j]) =
                step(i[j], f[j], gg[j], o[j], cp[j], cn[j], g_h[j], g_c[j]);
        }
    }
}

/// One cell step: `[N, 4H]` gates and `[N, H]` state → `[N, 2H]` rows `[h | c]`.
pub fn lstm_cell_forward(gates: &[f32], c_prev: &[f32], hidden: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; c_prev.len() * 2];
    cell_rows_saving_fast(&mut gates.to_vec(), c_prev, hidden, &mut out, hidden);
    out
}

/// The backward of [`lstm_cell_forward`] from the output gradient `[N, 2H]`:
/// `(grad_gates [N, 4H], grad_c_prev [N, H])`. The gate values and the new
/// state are recomputed (one forward pass) rather than stored.
pub fn lstm_cell_backward(
    gates: &[f32],
    c_prev: &[f32],
    grad: &[f32],
    hidden: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut act = gates.to_vec();
    let mut hc = vec![0.0f32; c_prev.len() * 2];
    cell_rows_saving_fast(&mut act, c_prev, hidden, &mut hc, hidden);
    let mut g_a = vec![0.0f32; gates.len()];
    let mut g_c = vec![0.0f32; c_prev.len()];
    cell_rows_backward_saved_fast(
        &act,
        c_prev,
        hidden,
        &hc[hidden..],
        grad,
        &mut g_a,
        &mut g_c,
        hidden,
    );
    (g_a, g_c)
}

/// The largest element offset of a `rows×cols` operand with strides
/// `(rs, cs)`: bounds checks before the unsafe GEMM calls.
fn last(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
}

/// The recurrent weight as the right-hand operand `B [k×n]` of every time
/// step's product (strides `(rsb, csb)` into `w`), packed once for the
/// whole sequence instead of once per step. `batch` picks the kernel, so
/// the split of the batch between threads does not change it.
fn pack_recurrent(
    batch: usize,
    (k, n): (usize, usize),
    w: &[f32],
    (rsb, csb): (usize, usize),
) -> PackedB {
    assert!(
        k == 0 || n == 0 || last(k, n, rsb, csb) < w.len(),
        "lstm gemm: recurrent weight out of bounds"
    );
    // SAFETY: every element of B is inside `w` (checked above).
    unsafe { PackedB::new(batch, k, n, w.as_ptr(), rsb as isize, csb as isize) }
}

/// `C (+)= A·B` for `A [m×k]` given by strides and `B` packed by
/// [`pack_recurrent`].
#[allow(clippy::too_many_arguments)]
fn gemm_packed(
    m: usize,
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    threads: usize,
) {
    let (k, n) = b.dims();
    assert!(
        (m == 0 || n == 0 || k == 0)
            || (last(m, k, rsa, csa) < a.len() && last(m, n, ldc, 1) < c.len()),
        "lstm gemm: operand out of bounds"
    );
    // SAFETY: every element address is in bounds (checked above) and C does
    // not overlap A (distinct slices).
    unsafe {
        gemm::sgemm_packed_b(
            m,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b,
            c.as_mut_ptr(),
            ldc as isize,
            1,
            accumulate,
            threads,
        )
    }
}

/// `C (+)= A·B` for row-major `A [m×k]` (row stride `lda`) and `B` given by
/// strides; a thin wrapper so the recurrence reads as matrix algebra.
#[allow(clippy::too_many_arguments)]
fn gemm(
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    threads: usize,
) {
    assert!(
        (m == 0 || n == 0 || k == 0)
            || (last(m, k, rsa, csa) < a.len()
                && last(k, n, rsb, csb) < b.len()
                && last(m, n, ldc, 1) < c.len()),
        "lstm gemm: operand out of bounds"
    );
    // SAFETY: every element address is in bounds (checked above) and C does
    // not overlap A or B (distinct slices).
    unsafe {
        gemm::sgemm(
            m,
            n,
            k,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            c.as_mut_ptr(),
            ldc as isize,
            1,
            accumulate,
            threads,
        )
    }
}

/// `fn $name(args)` calling `$inner::<16>` with AVX-512F, `$inner::<8>` with
/// AVX2+FMA, else `$inner::<8>` of the baseline. The inner functions are
/// elementwise in lanes, so every path gives the same bits.
macro_rules! lane_variants {
    ($(#[$m:meta])* fn $name:ident => $inner:ident($($arg:ident: $ty:ty),*)) => {
        $(#[$m])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($arg: $ty),*) {
                    $inner::<16>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) {
                    $inner::<8>($($arg),*)
                }
                if has_avx512() {
                    // SAFETY: the features were detected.
                    return unsafe { avx512($($arg),*) };
                }
                if has_avx2() {
                    // SAFETY: the features were detected.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $inner::<8>($($arg),*)
        }
    };
}

lane_variants!(
    /// [`cell_rows_saving`] in 16 lanes with AVX-512F, 8 with AVX2+FMA, else
    /// 8 lanes of the baseline.
    fn cell_rows_saving_fast => cell_rows_saving(
        a: &mut [f32], c_prev: &[f32], stride: usize, hc: &mut [f32], hidden: usize
    )
);

lane_variants!(
    /// [`cell_rows_backward_saved`] in 16 lanes with AVX-512F, 8 with
    /// AVX2+FMA, else 8 lanes of the baseline.
    #[allow(clippy::too_many_arguments)]
    fn cell_rows_backward_saved_fast => cell_rows_backward_saved(
        act: &[f32], c_prev: &[f32], stride: usize, c_new: &[f32], grad: &[f32],
        g_a: &mut [f32], g_c_prev: &mut [f32], hidden: usize
    )
);

/// Fewest batch rows a task of the recurrence gets: below this, one task
/// runs the whole batch.
const MIN_TASK_ROWS: usize = 16;

/// Runs `f(r0, r1, threads)` once per thread on contiguous ranges of the batch rows
/// `0..n`, each range for the whole recurrence.
///
/// Rows of a batch never meet inside an LSTM layer (`h_t` of row `r` needs
/// only row `r` of `h_{t−1}`), so each task runs all `T` steps on its own
/// rows without waiting for the others. Measured before: splitting every
/// step's product and cell between the threads meant two hand-offs per step
/// (about 110 per forward and backward at T = 28) and left the worker
/// spinning for a third of an LSTM training step. A row's numbers do not
/// depend on the split: its products sum `k` in the same order for any
/// number of rows.
fn par_batch_rows(n: usize, f: &(dyn Fn(usize, usize, usize) + Sync)) {
    let all = threads::num_threads();
    let tasks = all.min(n / MIN_TASK_ROWS).max(1);
    // One task keeps every thread for its products.
    let inner = if tasks == 1 { all } else { 1 };
    threads::parallel_for(tasks, tasks, &|t| {
        f(n * t / tasks, n * (t + 1) / tasks, inner)
    });
}

/// Gate rows `xp + b` (or `xp` alone) written into `dst`, which may not be
/// initialised yet; `b` holds one row.
fn write_gate_rows(dst: &mut [std::mem::MaybeUninit<f32>], xp: &[f32], bias: Option<&[f32]>) {
    match bias {
        Some(b) => {
            for (a, x) in dst.chunks_exact_mut(b.len()).zip(xp.chunks_exact(b.len())) {
                for ((a, &x), &b) in a.iter_mut().zip(x).zip(b) {
                    a.write(x + b);
                }
            }
        }
        None => {
            for (a, &x) in dst.iter_mut().zip(xp) {
                a.write(x);
            }
        }
    }
}

/// A whole LSTM layer: input projections `xp [T, N, 4H]` (`x_t·W_ihᵀ`),
/// `W_hh [4H, H]`, the gate bias `b [4H]` if any, initial `h0`, `c0`
/// `[N, H]` → `out [T, N, 2H]` with rows `[h_t | c_t]`, and the gate
/// pre-activations `a_t = (xp_t + b) + h_{t−1}·W_hhᵀ`, turned into the gate
/// values `[i f g o]` `[T, N, 4H]` that the backward pass needs.
pub fn lstm_layer_forward(
    xp: &[f32],
    w_hh: &[f32],
    bias: Option<&[f32]>,
    h0: &[f32],
    c0: &[f32],
    d: LstmDims,
) -> (Vec<f32>, Vec<f32>) {
    let (n, h, g) = (d.n, d.h, 4 * d.h);
    assert!(
        xp.len() >= d.t * n * g
            && w_hh.len() >= g * h
            && bias.is_none_or(|b| b.len() >= g)
            && h0.len() >= n * h
            && c0.len() >= n * h,
        "lstm_layer_forward: operands shorter than T={}, N={n}, H={h}",
        d.t
    );
    // W_hhᵀ [H, 4H]: element (p, j) at W_hh[j·H + p].
    let w_t = pack_recurrent(n, (h, g), w_hh, (1, h));
    // Both outputs are written step by step by the task that owns the rows:
    // the copy of xp (plus the bias) and the zeroing of the output rows then
    // run on every thread, each on rows its cache is about to use (copied
    // and zeroed whole up front, they were 7% of an LSTM training step on
    // one thread; the bias was a pass of its own).
    let fill = |gp: SendPtr, op: SendPtr| {
        par_batch_rows(n, &|r0, r1, threads| {
            let rows = r1 - r0;
            for s in 0..d.t {
                let (ga, gb) = ((s * n + r0) * g, (s * n + r1) * g);
                let (oa, ob) = ((s * n + r0) * 2 * h, (s * n + r1) * 2 * h);
                // SAFETY: this task's rows r0..r1 of step s, disjoint from
                // every other task's, initialised here before they are
                // read; the previous step's rows were written by this task
                // and are only read.
                let (a_s, out_s) = unsafe {
                    write_gate_rows(gp.uninit_slice(ga, gb), &xp[ga..gb], bias.map(|b| &b[..g]));
                    op.uninit_slice(oa, ob)
                        .fill(std::mem::MaybeUninit::new(0.0));
                    (gp.slice(ga, gb), op.slice(oa, ob))
                };
                // h_{t−1} and c_{t−1}: the initial state, or the previous output rows.
                let (h_prev, c_prev, stride): (&[f32], &[f32], usize) = if s == 0 {
                    (&h0[r0 * h..r1 * h], &c0[r0 * h..r1 * h], h)
                } else {
                    // SAFETY: as above (step s − 1, rows r0..r1, read only).
                    let prev =
                        unsafe { op.slice(((s - 1) * n + r0) * 2 * h, ((s - 1) * n + r1) * 2 * h) };
                    (&*prev, &prev[h..], 2 * h)
                };
                // a_t += h_{t−1}·W_hhᵀ
                gemm_packed(rows, h_prev, (stride, 1), &w_t, a_s, g, true, threads);
                cell_rows_saving_fast(a_s, c_prev, stride, out_s, h);
            }
        });
    };
    let mut out = Vec::new();
    // SAFETY: `fill` writes every row of every step of both buffers (the
    // tasks cover the batch rows 0..n, each for all T steps).
    let gates = unsafe {
        vec_written_by(d.t * n * g, |gp| {
            out = vec_written_by(d.t * n * 2 * h, |op| fill(gp, op));
        })
    };
    (out, gates)
}

/// Gradients of [`lstm_layer_forward`] from the gradient `g_out [T, N, 2H]`
/// of its output rows, by a backward sweep over time:
/// `g_a_t` from the cell backward, `g_h_{t−1} += g_a_t·W_hh`; then
/// `grad_W_hh = Σ_t g_a_tᵀ·h_{t−1}` as one product over all `T·N` rows.
/// Returns `[grad_xp [T, N, 4H], grad_W_hh [4H, H], grad_h0, grad_c0]`, and
/// with `bias` the bias gradient `Σ_t Σ_r g_a_t[r]`: each row's gate
/// gradients are summed over time while the sweep has them in cache (a
/// separate pass read all `T·N·4H` again, 4% of an LSTM step), then the
/// rows in order, so the bits do not depend on the split between threads.
#[allow(clippy::too_many_arguments)]
pub fn lstm_layer_backward(
    w_hh: &[f32],
    h0: &[f32],
    c0: &[f32],
    gates: &[f32],
    out: &[f32],
    g_out: &[f32],
    d: LstmDims,
    bias: bool,
) -> ([Vec<f32>; 4], Option<Vec<f32>>) {
    let (n, h, g) = (d.n, d.h, 4 * d.h);
    assert!(
        gates.len() >= d.t * n * g
            && out.len() >= d.t * n * 2 * h
            && g_out.len() >= d.t * n * 2 * h,
        "lstm_layer_backward: operands shorter than T={}, N={n}, H={h}",
        d.t
    );
    let w = pack_recurrent(n, (g, h), w_hh, (h, 1));
    let mut g_h = vec![0.0f32; n * h];
    let mut g_c = vec![0.0f32; n * h];
    // Per batch row: its gate gradients summed over time (bias only).
    let mut row_sums = vec![0.0f32; if bias { n * g } else { 0 }];
    let (hp, cp) = (SendPtr(g_h.as_mut_ptr()), SendPtr(g_c.as_mut_ptr()));
    let sp = SendPtr(row_sums.as_mut_ptr());
    // g_a is written step by step by the task that owns the rows (zeroed
    // up front it was a serial memset of T·N·4H floats).
    let sweep = |ap: SendPtr| {
        par_batch_rows(n, &|r0, r1, threads| {
            let rows = r1 - r0;
            // SAFETY: rows r0..r1 of g_h and g_c belong to this task alone.
            let (g_h, g_c) = unsafe { (hp.slice(r0 * h, r1 * h), cp.slice(r0 * h, r1 * h)) };
            let sums: &mut [f32] = if bias {
                // SAFETY: as above, this task's rows of the row sums.
                unsafe { sp.slice(r0 * g, r1 * g) }
            } else {
                &mut []
            };
            let mut step_grad = vec![0.0f32; rows * 2 * h];
            let mut g_c_prev = vec![0.0f32; rows * h];
            for s in (0..d.t).rev() {
                // [g_h | g_c] for step s: its own output gradient plus what flows
                // back from step s + 1.
                for (r, row) in step_grad.chunks_exact_mut(2 * h).enumerate() {
                    let go = &g_out[(s * n + r0 + r) * 2 * h..][..2 * h];
                    let (gh, gc) = row.split_at_mut(h);
                    for j in 0..h {
                        gh[j] = go[j] + g_h[r * h + j];
                        gc[j] = go[h + j] + g_c[r * h + j];
                    }
                }
                let (c_prev, stride): (&[f32], usize) = if s == 0 {
                    (&c0[r0 * h..], h)
                } else {
                    (&out[((s - 1) * n + r0) * 2 * h + h..], 2 * h)
                };
                // SAFETY: this task's rows of step s, zeroed before use.
                let ga_s = unsafe {
                    let (a, b) = ((s * n + r0) * g, (s * n + r1) * g);
                    ap.uninit_slice(a, b).fill(std::mem::MaybeUninit::new(0.0));
                    ap.slice(a, b)
                };
                cell_rows_backward_saved_fast(
                    &gates[(s * n + r0) * g..(s * n + r1) * g],
                    c_prev,
                    stride,
                    &out[(s * n + r0) * 2 * h + h..],
                    &step_grad,
                    ga_s,
                    &mut g_c_prev,
                    h,
                );
                for (acc, row) in sums.chunks_exact_mut(g).zip(ga_s.chunks_exact(g)) {
                    for (a, &v) in acc.iter_mut().zip(row) {
                        *a += v;
                    }
                }
                // g_h_{t−1} = g_a_t·W_hh, g_c_{t−1} = g_c_prev.
                gemm_packed(rows, ga_s, (g, 1), &w, g_h, h, false, threads);
                g_c.copy_from_slice(&g_c_prev);
            }
        })
    };
    // SAFETY: the sweep writes every row of every step of g_a.
    let g_a = unsafe { vec_written_by(d.t * n * g, sweep) };
    // grad_W_hh = g_a_0ᵀ·h0 + Σ_{t≥1} g_a_tᵀ·h_{t−1}; the h_{t−1} rows for
    // t ≥ 1 are the first H of each output row (row stride 2H).
    let mut g_w = vec![0.0f32; g * h];
    gemm(
        (g, h, n),
        &g_a,
        (1, g),
        h0,
        (h, 1),
        &mut g_w,
        h,
        false,
        threads::num_threads(),
    );
    if d.t > 1 {
        let k = (d.t - 1) * n;
        gemm(
            (g, h, k),
            &g_a[n * g..],
            (1, g),
            out,
            (2 * h, 1),
            &mut g_w,
            h,
            true,
            threads::num_threads(),
        );
    }
    let g_b = bias.then(|| {
        let mut g_b = vec![0.0f32; g];
        for row in row_sums.chunks_exact(g) {
            for (b, &v) in g_b.iter_mut().zip(row) {
                *b += v;
            }
        }
        g_b
    });
    ([g_a, g_w, g_h, g_c], g_b)
}
