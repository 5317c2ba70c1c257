//! `sgemm` against an f64-accumulated reference over many shapes, layouts
//! and options.

use matnet::backend::kernels::{GemmKernel, naive_sgemm, sgemm, sgemm_with_kernel};

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

#[derive(Clone, Copy, Debug, PartialEq)]
enum CLayout {
    RowMajor,
    ColMajor,
    /// Row stride 2n+3, column stride 2 (gaps between elements).
    Strided,
}

#[derive(Clone, Copy, Debug)]
struct Spec {
    m: usize,
    n: usize,
    k: usize,
    /// A stored k×m row-major and used transposed.
    ta: bool,
    /// B stored n×k row-major and used transposed.
    tb: bool,
    accumulate: bool,
    c: CLayout,
    threads: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Impl {
    Fast,
    Portable,
    Naive,
}

fn check_with(s: Spec, which: Impl) {
    let Spec { m, n, k, .. } = s;
    let a = fill(m * k, (m * 31 + k * 7 + 1) as u64);
    let b = fill(k * n, (n * 17 + k * 3 + 2) as u64);
    let (rsa, csa) = if s.ta {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let (rsb, csb) = if s.tb {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    let (rsc, csc, c_len) = match s.c {
        CLayout::RowMajor => (n as isize, 1, m * n),
        CLayout::ColMajor => (1, m as isize, m * n),
        CLayout::Strided => ((2 * n + 3) as isize, 2, m * (2 * n + 3)),
    };
    let c0 = fill(c_len.max(1), 99);
    // Without `accumulate` C must not be read: start from NaN to prove it.
    let mut c: Vec<f32> = if s.accumulate {
        c0.clone()
    } else {
        vec![f32::NAN; c_len]
    };
    let sentinel = -7.25f32;
    // Gaps in the strided layout must be left untouched.
    if s.c == CLayout::Strided {
        for (idx, v) in c.iter_mut().enumerate() {
            let (i, rem) = (idx / (2 * n + 3), idx % (2 * n + 3));
            if rem % 2 == 1 || rem / 2 >= n || i >= m {
                *v = sentinel;
            }
        }
    }
    unsafe {
        match which {
            Impl::Fast => sgemm(
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
                s.accumulate,
                s.threads,
            ),
            Impl::Portable => sgemm_with_kernel(
                GemmKernel::Portable,
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
                s.accumulate,
                s.threads,
            ),
            Impl::Naive => naive_sgemm(
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
                s.accumulate,
            ),
        }
    }
    let tol = 1e-5 * (k.max(1) as f64).sqrt();
    for i in 0..m {
        for j in 0..n {
            let mut exact = 0.0f64;
            let mut mag = 0.0f64;
            for p in 0..k {
                let x = a[(i as isize * rsa + p as isize * csa) as usize] as f64
                    * b[(p as isize * rsb + j as isize * csb) as usize] as f64;
                exact += x;
                mag += x.abs();
            }
            let ci = (i as isize * rsc + j as isize * csc) as usize;
            if s.accumulate {
                exact += c0[ci] as f64;
                mag += (c0[ci] as f64).abs();
            }
            let got = c[ci] as f64;
            assert!(
                (got - exact).abs() <= tol * mag.max(1e-30) + 1e-30,
                "{s:?} ({which_name}) C[{i},{j}] = {got}, expected {exact}",
                which_name = match which {
                    Impl::Fast => "sgemm",
                    Impl::Portable => "portable",
                    Impl::Naive => "naive",
                }
            );
        }
    }
    if s.c == CLayout::Strided {
        for (idx, v) in c.iter().enumerate() {
            let rem = idx % (2 * n + 3);
            if rem % 2 == 1 || rem / 2 >= n {
                assert_eq!(*v, sentinel, "{s:?}: wrote outside C at {idx}");
            }
        }
    }
}

fn check(s: Spec) {
    check_with(s, Impl::Fast);
}

fn spec(m: usize, n: usize, k: usize) -> Spec {
    Spec {
        m,
        n,
        k,
        ta: false,
        tb: false,
        accumulate: false,
        c: CLayout::RowMajor,
        threads: 1,
    }
}

/// Small deterministic generator for sampling shapes.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn every_small_shape_row_major() {
    for m in 1..=14 {
        for n in 1..=34 {
            for k in [1, 2, 3, 7, 16, 17] {
                check(spec(m, n, k));
            }
        }
    }
}

#[test]
fn sampled_shapes_all_variants() {
    let mut rng = Rng(0x1234_5678);
    let layouts = [CLayout::RowMajor, CLayout::ColMajor, CLayout::Strided];
    for it in 0..400 {
        let s = Spec {
            m: 1 + rng.below(70),
            n: 1 + rng.below(70),
            k: 1 + rng.below(70),
            ta: it & 1 != 0,
            tb: it & 2 != 0,
            accumulate: it & 4 != 0,
            c: layouts[rng.below(3)],
            threads: 1 + (it >> 3 & 1),
        };
        check(s);
    }
}

#[test]
fn all_transposes_and_options_at_block_edges() {
    // Sizes around the register tile (6×16), KC (256) and MC (144).
    let sizes = [127, 128, 129, 255, 300];
    let depths = [5, 129, 255, 300];
    let mut rng = Rng(42);
    for (x, &m) in sizes.iter().enumerate() {
        for (y, &n) in sizes.iter().enumerate() {
            // Each transpose combination gets every m and every n once
            // over the grid (x + y covers all residues mod 4 per row).
            let t = (x + y) % 4;
            let s = Spec {
                m,
                n,
                k: depths[rng.below(depths.len())],
                ta: t & 1 != 0,
                tb: t & 2 != 0,
                accumulate: rng.below(2) == 1,
                c: if rng.below(4) == 0 {
                    CLayout::ColMajor
                } else {
                    CLayout::RowMajor
                },
                threads: 1 + rng.below(2),
            };
            check(s);
        }
    }
}

#[test]
fn large_and_deep() {
    for (m, n, k) in [(513, 65, 300), (70, 513, 513), (129, 129, 1100)] {
        for t in 0..4 {
            check(Spec {
                ta: t & 1 != 0,
                tb: t & 2 != 0,
                threads: 1 + t % 2,
                accumulate: t == 3,
                ..spec(m, n, k)
            });
        }
    }
}

#[test]
fn skinny_shapes() {
    for (m, n, k) in [
        (10, 4200, 98),
        (10, 98, 4200),
        (4200, 10, 98),
        (98, 10, 4200),
        (4200, 98, 10),
        (1, 1000, 300),
        (1000, 1, 300),
        (300, 300, 1),
        (64, 256, 784),
        (784, 256, 64),
        // n > NC (4096): several column blocks, packed and unpacked B.
        (20, 4300, 33),
        (7, 4300, 33),
    ] {
        for t in 0..4 {
            check(Spec {
                ta: t & 1 != 0,
                tb: t & 2 != 0,
                threads: 1 + (t + m) % 2,
                ..spec(m, n, k)
            });
        }
    }
}

#[test]
fn threads_many_and_odd() {
    for threads in [3, 4, 7] {
        check(Spec {
            threads,
            ..spec(200, 190, 150)
        });
        check(Spec {
            threads,
            ..spec(7, 300, 150)
        });
    }
}

#[test]
fn zero_dims() {
    // k == 0: C zeroed unless accumulating; m or n == 0: nothing happens.
    let mut c = vec![5.0f32; 12];
    let a = [1.0f32; 4];
    unsafe {
        sgemm(
            3,
            4,
            0,
            a.as_ptr(),
            0,
            1,
            a.as_ptr(),
            4,
            1,
            c.as_mut_ptr(),
            4,
            1,
            true,
            2,
        );
    }
    assert!(c.iter().all(|&v| v == 5.0));
    unsafe {
        sgemm(
            3,
            4,
            0,
            a.as_ptr(),
            0,
            1,
            a.as_ptr(),
            4,
            1,
            c.as_mut_ptr(),
            4,
            1,
            false,
            2,
        );
    }
    assert!(c.iter().all(|&v| v == 0.0));
    let mut c = vec![5.0f32; 12];
    unsafe {
        sgemm(
            0,
            4,
            3,
            a.as_ptr(),
            3,
            1,
            a.as_ptr(),
            4,
            1,
            c.as_mut_ptr(),
            4,
            1,
            false,
            2,
        );
        sgemm(
            3,
            0,
            3,
            a.as_ptr(),
            3,
            1,
            a.as_ptr(),
            4,
            1,
            c.as_mut_ptr(),
            4,
            1,
            false,
            2,
        );
        // Dangling pointers are fine when nothing is touched.
        let d = std::ptr::NonNull::<f32>::dangling().as_ptr();
        sgemm(0, 0, 0, d, 0, 0, d, 0, 0, d, 0, 0, false, 2);
    }
    assert!(c.iter().all(|&v| v == 5.0));
    for (m, n, k) in [(3, 5, 0), (1, 1, 0), (20, 33, 0)] {
        check(spec(m, n, k));
        check(Spec {
            accumulate: true,
            c: CLayout::Strided,
            ..spec(m, n, k)
        });
    }
}

#[test]
fn broadcast_strides() {
    // Zero strides: every row of A is the same row; every column of B the
    // same column.
    let (m, n, k) = (37, 41, 29);
    let a_row = fill(k, 5);
    let b_col = fill(k, 6);
    let mut c = vec![f32::NAN; m * n];
    unsafe {
        sgemm(
            m,
            n,
            k,
            a_row.as_ptr(),
            0,
            1,
            b_col.as_ptr(),
            1,
            0,
            c.as_mut_ptr(),
            n as isize,
            1,
            false,
            2,
        );
    }
    let dot: f64 = a_row
        .iter()
        .zip(&b_col)
        .map(|(&x, &y)| x as f64 * y as f64)
        .sum();
    for &v in &c {
        assert!((v as f64 - dot).abs() < 1e-5);
    }
    // Broadcast with an unpacked (small) path and a packed (large) path.
    for (m, n, k) in [(5, 20, 9), (300, 200, 100)] {
        let a = fill(k, 7);
        let b = fill(k * n, 8);
        let mut c = vec![0.0f32; m * n];
        let mut r = vec![0.0f32; m * n];
        unsafe {
            sgemm(
                m,
                n,
                k,
                a.as_ptr(),
                0,
                1,
                b.as_ptr(),
                n as isize,
                1,
                c.as_mut_ptr(),
                n as isize,
                1,
                false,
                2,
            );
            naive_sgemm(
                m,
                n,
                k,
                a.as_ptr(),
                0,
                1,
                b.as_ptr(),
                n as isize,
                1,
                r.as_mut_ptr(),
                n as isize,
                1,
                false,
            );
        }
        for (x, y) in c.iter().zip(&r) {
            assert!((x - y).abs() <= 1e-5 * (k as f32).sqrt() * (1.0 + y.abs()));
        }
    }
}

#[test]
fn portable_kernel_matches() {
    let mut rng = Rng(77);
    for it in 0..120 {
        let s = Spec {
            m: 1 + rng.below(40),
            n: 1 + rng.below(40),
            k: 1 + rng.below(40),
            ta: it & 1 != 0,
            tb: it & 2 != 0,
            accumulate: it & 4 != 0,
            c: if it & 8 != 0 {
                CLayout::Strided
            } else {
                CLayout::RowMajor
            },
            threads: 1 + (it >> 4 & 1),
        };
        check_with(s, Impl::Portable);
    }
    for (m, n, k) in [(130, 70, 300), (7, 300, 20)] {
        check_with(
            Spec {
                threads: 2,
                tb: true,
                ..spec(m, n, k)
            },
            Impl::Portable,
        );
    }
}

#[test]
fn naive_reference_matches() {
    for t in 0..8 {
        check_with(
            Spec {
                ta: t & 1 != 0,
                tb: t & 2 != 0,
                accumulate: t & 4 != 0,
                c: CLayout::Strided,
                ..spec(13, 9, 21)
            },
            Impl::Naive,
        );
    }
}

#[test]
fn concurrent_callers() {
    // cargo runs tests on several threads; make that explicit: several user
    // threads hammering sgemm (and so the pool) at once.
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..20 {
                    check(Spec {
                        threads: 2,
                        tb: (i + t) % 2 == 0,
                        ..spec(100 + t, 120 + i, 110)
                    });
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("worker thread panicked");
    }
}
