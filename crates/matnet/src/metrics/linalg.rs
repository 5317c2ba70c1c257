//! Small dense symmetric linear algebra in f64, for the statistics of
//! feature sets (covariances are `D × D` with `D` below a few hundred).
//!
//! Matrices are row-major `Vec<f64>` of `n · n` values.

/// Eigen-decomposition `A = V · diag(values) · Vᵀ` of a symmetric matrix.
#[derive(Clone, Debug)]
pub struct SymmetricEigen {
    /// The eigenvalues, in the order of the columns of `vectors`.
    pub values: Vec<f64>,
    /// Row-major `n × n`; column `k` is the unit eigenvector of `values[k]`.
    pub vectors: Vec<f64>,
}

/// Jacobi sweeps past which the solver gives up converging further (cyclic
/// Jacobi converges quadratically: 6 to 10 sweeps are typical).
const MAX_SWEEPS: usize = 100;

/// Eigenvalues and eigenvectors of the symmetric `n × n` matrix `a` by the
/// cyclic Jacobi method: rotations `A ← Jᵀ·A·J` zero one off-diagonal pair
/// at a time until the off-diagonal mass is below `1e-15` of the total.
///
/// Chosen over a crate (nalgebra) because it is 60 lines, has no
/// dependencies, and Jacobi is accurate to the last digits even for the tiny
/// eigenvalues of a nearly singular covariance, which is what a matrix
/// square root needs; `O(n³)` per sweep is nothing at `n = 84`.
///
/// # Panics
/// When `a` does not hold `n · n` values.
pub fn symmetric_eigen(a: &[f64], n: usize) -> SymmetricEigen {
    assert_eq!(
        a.len(),
        n * n,
        "symmetric_eigen: {} values for an {n}×{n} matrix",
        a.len()
    );
    let mut a = a.to_vec();
    let mut v = identity(n);
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _ in 0..MAX_SWEEPS {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        if off <= 1e-30 * total || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation angle that zeroes a[p][q] (the smaller of the
                // two solutions, for stability).
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (kp, kq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * kp - s * kq;
                    a[k * n + q] = s * kp + c * kq;
                }
                for k in 0..n {
                    let (pk, qk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * pk - s * qk;
                    a[q * n + k] = s * pk + c * qk;
                }
                for k in 0..n {
                    let (kp, kq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * kp - s * kq;
                    v[k * n + q] = s * kp + c * kq;
                }
            }
        }
    }
    SymmetricEigen {
        values: (0..n).map(|i| a[i * n + i]).collect(),
        vectors: v,
    }
}

/// The symmetric square root `A^½ = V · diag(√λ) · Vᵀ` of a symmetric
/// positive semi-definite matrix; eigenvalues below zero (rounding noise of
/// a singular matrix) count as zero.
pub fn sqrt_psd(a: &[f64], n: usize) -> Vec<f64> {
    let e = symmetric_eigen(a, n);
    let roots: Vec<f64> = e.values.iter().map(|&l| l.max(0.0).sqrt()).collect();
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = (0..n)
                .map(|k| e.vectors[i * n + k] * roots[k] * e.vectors[j * n + k])
                .sum();
        }
    }
    out
}

/// `A · B` for row-major `n × n` matrices.
pub fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                out[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    out
}

/// The `n × n` identity.
pub fn identity(n: usize) -> Vec<f64> {
    let mut m = vec![0.0; n * n];
    (0..n).for_each(|i| m[i * n + i] = 1.0);
    m
}

/// The sum of the diagonal.
pub fn trace(a: &[f64], n: usize) -> f64 {
    (0..n).map(|i| a[i * n + i]).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    fn random_symmetric(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let x = rng.uniform_range(-1.0, 1.0) as f64;
                a[i * n + j] = x;
                a[j * n + i] = x;
            }
        }
        a
    }

    #[test]
    fn two_by_two_has_the_known_eigenvalues() {
        let e = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        let mut v = e.values.clone();
        v.sort_by(f64::total_cmp);
        assert!(
            (v[0] - 1.0).abs() < 1e-14 && (v[1] - 3.0).abs() < 1e-14,
            "{v:?}"
        );
    }

    #[test]
    fn decomposition_reconstructs_the_matrix_with_orthonormal_vectors() {
        for (n, seed) in [(1, 1), (5, 2), (30, 3)] {
            let a = random_symmetric(n, seed);
            let e = symmetric_eigen(&a, n);
            let vt_v = {
                let vt: Vec<f64> = (0..n * n).map(|i| e.vectors[(i % n) * n + i / n]).collect();
                matmul(&vt, &e.vectors, n)
            };
            let eye = identity(n);
            for i in 0..n * n {
                assert!((vt_v[i] - eye[i]).abs() < 1e-12, "VᵀV ≠ I at {i}");
            }
            for i in 0..n {
                for j in 0..n {
                    let r: f64 = (0..n)
                        .map(|k| e.vectors[i * n + k] * e.values[k] * e.vectors[j * n + k])
                        .sum();
                    assert!((r - a[i * n + j]).abs() < 1e-12, "n={n} ({i},{j})");
                }
            }
        }
    }

    #[test]
    fn square_root_squares_back_and_ignores_rounding_negatives() {
        let n = 12;
        let b = random_symmetric(n, 7);
        let spd = matmul(&b, &b, n); // BᵀB = B² for symmetric B: PSD
        let r = sqrt_psd(&spd, n);
        let back = matmul(&r, &r, n);
        for i in 0..n * n {
            assert!(
                (back[i] - spd[i]).abs() < 1e-10,
                "{i}: {} vs {}",
                back[i],
                spd[i]
            );
        }
        // A rank-one matrix: the zero eigenvalues may come out as -1e-17.
        let u = [1.0, 2.0, 2.0];
        let rank1: Vec<f64> = (0..9).map(|i| u[i / 3] * u[i % 3]).collect();
        let r = sqrt_psd(&rank1, 3);
        assert!(r.iter().all(|x| x.is_finite()));
        // (uuᵀ)^½ = uuᵀ / |u|.
        for i in 0..9 {
            assert!((r[i] - rank1[i] / 3.0).abs() < 1e-12);
        }
    }
}
