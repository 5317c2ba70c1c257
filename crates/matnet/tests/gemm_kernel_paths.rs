//! Every GEMM kernel (portable, AVX2, AVX-512) forced through
//! `sgemm_with_kernel` against an f64-accumulated reference on odd shapes
//! and layouts. A kernel the CPU lacks is skipped with a printed note.

use matnet::backend::kernels::{
    GemmKernel, PackedB, naive_sgemm, sgemm_packed_b, sgemm_with_kernel,
};

/// Deterministic xorshift fill in [-1, 1).
fn fill(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// One product: shapes, operand transposes, C layout and mode.
#[derive(Clone, Copy, Debug)]
struct Case {
    m: usize,
    n: usize,
    k: usize,
    /// A stored k×m row-major, used transposed.
    ta: bool,
    /// B stored n×k row-major, used transposed.
    tb: bool,
    /// C column-major instead of row-major.
    c_col: bool,
    /// Extra padding on the leading dimensions of A, B and C (strided views).
    pad: usize,
    accumulate: bool,
    threads: usize,
}

/// The operands of `t` (deterministic fills), their strides, C's
/// strides, C before the product, and C computed by `kernel`.
struct Computed {
    a: Vec<f32>,
    b: Vec<f32>,
    strides: [isize; 6],
    c0: Vec<f32>,
    c: Vec<f32>,
}

fn compute(kernel: GemmKernel, t: Case) -> Computed {
    let Case { m, n, k, pad, .. } = t;
    // Operands live in padded buffers: leading dimension = logical + pad.
    let (a_rows, a_ld) = if t.ta { (k, m + pad) } else { (m, k + pad) };
    let (b_rows, b_ld) = if t.tb { (n, k + pad) } else { (k, n + pad) };
    let a = fill(a_rows * a_ld, (m * 31 + k * 7 + 1) as u64);
    let b = fill(b_rows * b_ld, (n * 17 + k * 3 + 2) as u64);
    let (rsa, csa) = if t.ta {
        (1, a_ld as isize)
    } else {
        (a_ld as isize, 1)
    };
    let (rsb, csb) = if t.tb {
        (1, b_ld as isize)
    } else {
        (b_ld as isize, 1)
    };
    let (c_len, rsc, csc) = if t.c_col {
        ((m + pad) * n, 1, (m + pad) as isize)
    } else {
        (m * (n + pad), (n + pad) as isize, 1)
    };
    let c0 = fill(c_len, (m + n + k) as u64);
    let mut c = if t.accumulate {
        c0.clone()
    } else {
        // Without accumulate C must never be read: NaN would leak through.
        vec![f32::NAN; c_len]
    };
    // SAFETY: buffers hold every element the strides above address.
    unsafe {
        sgemm_with_kernel(
            kernel,
            m,
            n,
            k,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            c.as_mut_ptr(),
            rsc,
            csc,
            t.accumulate,
            t.threads,
        )
    };
    Computed {
        a,
        b,
        strides: [rsa, csa, rsb, csb, rsc, csc],
        c0,
        c,
    }
}

fn check(kernel: GemmKernel, t: Case) {
    let Case { m, n, k, pad, .. } = t;
    let Computed {
        a,
        b,
        strides: [rsa, csa, rsb, csb, rsc, csc],
        c0,
        c,
    } = compute(kernel, t);
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            let mut mag = 0.0f64;
            for p in 0..k {
                let x = a[(i as isize * rsa + p as isize * csa) as usize] as f64
                    * b[(p as isize * rsb + j as isize * csb) as usize] as f64;
                s += x;
                mag += x.abs();
            }
            let at = (i as isize * rsc + j as isize * csc) as usize;
            if t.accumulate {
                s += c0[at] as f64;
                mag += (c0[at] as f64).abs();
            }
            let got = c[at] as f64;
            let tol = 1e-5 * (mag + 1.0) * (k as f64).sqrt().max(1.0);
            assert!(
                (got - s).abs() <= tol,
                "{} kernel, {t:?}: C[{i},{j}] = {got}, expected {s} (tol {tol})",
                kernel.name()
            );
        }
    }
    // Padding between C elements must be untouched.
    if t.pad > 0 {
        for (idx, v) in c.iter().enumerate() {
            let (i, j) = if t.c_col {
                (idx % (m + pad), idx / (m + pad))
            } else {
                (idx / (n + pad), idx % (n + pad))
            };
            if i >= m || j >= n {
                let expected = if t.accumulate { c0[idx] } else { f32::NAN };
                assert!(
                    v.to_bits() == expected.to_bits(),
                    "{} kernel, {t:?}: padding at {idx} overwritten",
                    kernel.name()
                );
            }
        }
    }
}

/// Runs `f` for each kernel this CPU has, printing the ones it lacks.
fn each_kernel(f: impl Fn(GemmKernel)) {
    for kernel in GemmKernel::ALL {
        if kernel.available() {
            f(kernel);
        } else {
            println!(
                "{}: skipped: no {}",
                kernel.name(),
                kernel.required_feature()
            );
        }
    }
}

/// Small deterministic PRNG for sampling shapes.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn plain(m: usize, n: usize, k: usize) -> Case {
    Case {
        m,
        n,
        k,
        ta: false,
        tb: false,
        c_col: false,
        pad: 0,
        accumulate: false,
        threads: 1,
    }
}

#[test]
fn every_m_and_n_up_to_70() {
    each_kernel(|kernel| {
        for m in 1..=70 {
            for n in 1..=70 {
                let k = 1 + (m * 7 + n * 3) % 37;
                check(kernel, plain(m, n, k));
            }
        }
    });
}

#[test]
fn every_k_up_to_70_and_deep_k() {
    each_kernel(|kernel| {
        for k in (1..=70).chain([255, 256, 257, 300, 511, 513, 600]) {
            check(kernel, plain(13, 33, k));
            check(kernel, plain(25, 47, k));
        }
    });
}

#[test]
fn sampled_transposes_strides_and_modes() {
    each_kernel(|kernel| {
        let mut rng = Lcg(kernel as u64 + 7);
        for _ in 0..300 {
            let t = Case {
                m: 1 + rng.below(70),
                n: 1 + rng.below(70),
                k: 1 + rng.below(600),
                ta: rng.below(2) == 1,
                tb: rng.below(2) == 1,
                c_col: rng.below(3) == 0,
                pad: [0, 0, 3, 17][rng.below(4)],
                accumulate: rng.below(2) == 1,
                threads: 1 + rng.below(3),
            };
            check(kernel, t);
        }
    });
}

#[test]
fn block_edges_with_threads() {
    // Shapes around each kernel's MR/NR/KC/MC so full, ragged and
    // multi-block paths (and the packed-A/B decisions) are all taken.
    each_kernel(|kernel| {
        for &(m, n, k) in &[
            (12, 32, 256),
            (13, 33, 257),
            (97, 65, 300),
            (200, 131, 520),
            (385, 70, 129),
            (70, 1, 600),
            (1, 70, 600),
            (64, 10, 784),
            // Both operands packed on every thread, k blocks with a
            // ragged tail of 3 (SIMD packers: 8 columns at a time).
            (300, 400, 259),
            // More than two MC blocks of A on each of the two threads
            // (A-panel-major tiles on AVX-512) and two B blocks of 1024
            // columns, the last one ragged.
            (1560, 1030, 40),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                for accumulate in [false, true] {
                    let t = Case {
                        ta,
                        tb,
                        accumulate,
                        threads: 2,
                        ..plain(m, n, k)
                    };
                    check(kernel, t);
                }
            }
        }
    });
}

/// A given transposed (its columns contiguous, as `Xᵀ` in `grad_W`) and
/// packed: row counts on both sides of the 48-row groups the AVX-512
/// packer cuts each column into, padded leading dimensions, 1 and 2
/// threads (two threads split the rows, so each packs its own groups).
#[test]
fn transposed_a_packed_in_row_groups() {
    each_kernel(|kernel| {
        for m in [47, 48, 59, 96, 107, 143, 400] {
            for (pad, threads) in [(0, 1), (3, 1), (5, 2)] {
                let t = Case {
                    ta: true,
                    pad,
                    threads,
                    ..plain(m, 160, 37)
                };
                check(kernel, t);
            }
        }
    });
}

/// The same bits on 1, 2, 3 and 4 threads: a thread's block of C is summed
/// over k in the same passes as the whole product (64×64·1024: split in
/// two, each half is a single B panel, which once chose deeper passes).
#[test]
fn same_bits_on_any_thread_count() {
    each_kernel(|kernel| {
        for &(m, n, k) in &[
            (64, 64, 1024),
            (64, 40, 1100),
            (200, 131, 520),
            (24, 300, 2000),
            (300, 24, 2000),
            // A-panel-major tiles on one thread (m > 768, n > 256), not on
            // the halves of the split (m = 400).
            (800, 300, 100),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true)] {
                let case = |threads| Case {
                    ta,
                    tb,
                    threads,
                    ..plain(m, n, k)
                };
                let one = compute(kernel, case(1)).c;
                for threads in 2..=4 {
                    let c = compute(kernel, case(threads)).c;
                    let differ = one
                        .iter()
                        .zip(&c)
                        .filter(|(x, y)| x.to_bits() != y.to_bits());
                    assert_eq!(
                        differ.count(),
                        0,
                        "{} kernel, {m}×{n}·{k} (ta {ta}, tb {tb}): {threads} threads differ from 1",
                        kernel.name()
                    );
                }
            }
        }
    });
}

#[test]
fn names_round_trip_and_default_is_available() {
    for kernel in GemmKernel::ALL {
        assert_eq!(GemmKernel::from_name(kernel.name()), Some(kernel));
    }
    assert_eq!(GemmKernel::from_name("sse"), None);
    assert!(GemmKernel::best_available().available());
    assert!(matnet::backend::kernels::gemm_kernel().available());
}

/// B packed once (`PackedB`, as the LSTM recurrence uses it) gives the same
/// bits as `sgemm` packing B itself, on every kernel, for B in both layouts,
/// several k blocks, ragged panels, any thread count and either mode.
#[test]
fn packed_b_same_bits_as_sgemm() {
    each_kernel(|kernel| {
        for &(m, n, k) in &[
            (64, 512, 128),
            (32, 128, 512),
            (7, 45, 300),
            (100, 33, 1000),
            (13, 200, 17),
        ] {
            for (ta, tb, accumulate) in [
                (false, false, false),
                (false, true, true),
                (true, true, false),
            ] {
                for threads in 1..=3 {
                    let case = Case {
                        ta,
                        tb,
                        accumulate,
                        threads,
                        pad: 3,
                        ..plain(m, n, k)
                    };
                    let Computed {
                        a,
                        b,
                        strides: [rsa, csa, rsb, csb, rsc, csc],
                        c0,
                        c: want,
                    } = compute(kernel, case);
                    let mut c = if accumulate {
                        c0
                    } else {
                        vec![f32::NAN; want.len()]
                    };
                    // SAFETY: the same buffers and strides `compute` used.
                    unsafe {
                        let packed = PackedB::with_kernel(kernel, k, n, b.as_ptr(), rsb, csb);
                        assert_eq!(packed.dims(), (k, n));
                        sgemm_packed_b(
                            m,
                            a.as_ptr(),
                            rsa,
                            csa,
                            &packed,
                            c.as_mut_ptr(),
                            rsc,
                            csc,
                            accumulate,
                            threads,
                        );
                    }
                    let differ = want
                        .iter()
                        .zip(&c)
                        .filter(|(x, y)| x.to_bits() != y.to_bits())
                        .count();
                    assert_eq!(
                        differ,
                        0,
                        "{} kernel, {m}×{n}·{k} (ta {ta}, tb {tb}, accumulate {accumulate}, {threads} threads): packed B differs",
                        kernel.name()
                    );
                }
            }
        }
    });
}

/// Tiny products (below `sgemm`'s plain-loop shortcut) with a packed B keep
/// the plain loop's bits, as `sgemm` does: an RNN of hidden size 3 gives
/// the same numbers through the fused layer as through single steps.
#[test]
fn tiny_packed_b_products_match_the_plain_loop() {
    for &(m, n, k) in &[(2, 12, 3), (1, 1, 1), (3, 5, 7), (4, 8, 9)] {
        let a = fill(m * k, 5);
        let b = fill(n * k, 6);
        let c0 = fill(m * n, 7);
        for accumulate in [false, true] {
            let (mut want, mut got) = (c0.clone(), c0.clone());
            // SAFETY: A [m×k] row-major, B used transposed from [n×k], C [m×n].
            unsafe {
                naive_sgemm(
                    m,
                    n,
                    k,
                    a.as_ptr(),
                    k as isize,
                    1,
                    b.as_ptr(),
                    1,
                    k as isize,
                    want.as_mut_ptr(),
                    n as isize,
                    1,
                    accumulate,
                );
                let packed = PackedB::new(m, k, n, b.as_ptr(), 1, k as isize);
                sgemm_packed_b(
                    m,
                    a.as_ptr(),
                    k as isize,
                    1,
                    &packed,
                    got.as_mut_ptr(),
                    n as isize,
                    1,
                    accumulate,
                    1,
                );
            }
            let same = want
                .iter()
                .zip(&got)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{m}×{n}·{k}: {got:?} != {want:?}");
        }
    }
}

/// `G·Wᵀ` with W given in its own rows (B transposed, which the AVX-512
/// kernel runs as `(W·Gᵀ)ᵀ` with W read in place and C tiles stored
/// transposed) gives the bits of the same product with `Wᵀ` copied out
/// row-major, on every kernel, thread count and mode: the swap changes
/// where the sums are stored, not how they are summed.
#[test]
fn transposed_b_same_bits_as_copied_b() {
    each_kernel(|kernel| {
        for &(m, n, k) in &[
            (64, 784, 256),
            (256, 784, 128),
            (100, 300, 600),
            (32, 33, 40),
            (33, 1000, 64),
            (45, 460, 300),
            (45, 46, 300),
        ] {
            let g = fill(m * k, (m + k) as u64);
            let w = fill(n * k, (n * 3 + k) as u64);
            let mut wt = vec![0.0f32; k * n];
            for j in 0..n {
                for p in 0..k {
                    wt[p * n + j] = w[j * k + p];
                }
            }
            let c0 = fill(m * n, (m * n) as u64);
            for accumulate in [false, true] {
                for threads in [1, 2] {
                    let run = |b: &[f32], rsb: isize, csb: isize| {
                        let mut c = if accumulate {
                            c0.clone()
                        } else {
                            vec![f32::NAN; m * n]
                        };
                        // SAFETY: G is m×k, B k×n through its strides, C m×n.
                        unsafe {
                            sgemm_with_kernel(
                                kernel,
                                m,
                                n,
                                k,
                                g.as_ptr(),
                                k as isize,
                                1,
                                b.as_ptr(),
                                rsb,
                                csb,
                                c.as_mut_ptr(),
                                n as isize,
                                1,
                                accumulate,
                                threads,
                            )
                        };
                        c
                    };
                    let swapped = run(&w, 1, k as isize);
                    let copied = run(&wt, n as isize, 1);
                    let differ = swapped
                        .iter()
                        .zip(&copied)
                        .filter(|(x, y)| x.to_bits() != y.to_bits())
                        .count();
                    assert_eq!(
                        differ,
                        0,
                        "{} kernel, {m}×{k}·({n}×{k})ᵀ, accumulate {accumulate}, {threads} threads",
                        kernel.name()
                    );
                }
            }
        }
    });
}
