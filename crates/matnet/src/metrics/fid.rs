//! The Fréchet distance between two feature sets, each summarised as a
//! Gaussian: FID (Heusel et al. 2017) when the features come from a fixed
//! classifier.

use super::linalg::{matmul, sqrt_psd, trace};
use crate::Tensor;

/// The mean and covariance of a feature set, in f64.
#[derive(Clone, Debug)]
pub struct Gaussian {
    /// Feature dimension `D`.
    pub dim: usize,
    /// `μ`, `D` values.
    pub mean: Vec<f64>,
    /// `C`, row-major `D × D`, with the unbiased `1 / (N − 1)` normalisation
    /// (as `numpy.cov` and the reference FID code).
    pub cov: Vec<f64>,
}

impl Gaussian {
    /// The sample mean and covariance of the rows of `features`.
    ///
    /// # Shapes
    /// `features [N, D]`, `N ≥ 2`.
    ///
    /// # Panics
    /// When `features` is not a matrix of at least two rows.
    pub fn fit(features: &Tensor) -> Gaussian {
        assert!(
            features.rank() == 2 && features.dims()[0] >= 2,
            "Gaussian::fit: features {:?} must be [N, D] with N ≥ 2",
            features.shape()
        );
        let (n, d) = (features.dims()[0], features.dims()[1]);
        let x: Vec<f64> = features.to_vec().into_iter().map(f64::from).collect();
        let mut mean = vec![0.0; d];
        for row in x.chunks_exact(d) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = vec![0.0; d * d];
        let mut centred = vec![0.0; d];
        for row in x.chunks_exact(d) {
            centred
                .iter_mut()
                .zip(row.iter().zip(&mean))
                .for_each(|(c, (v, m))| *c = v - m);
            for i in 0..d {
                let ci = centred[i];
                // Upper triangle only; mirrored below.
                for j in i..d {
                    cov[i * d + j] += ci * centred[j];
                }
            }
        }
        for i in 0..d {
            for j in i..d {
                let c = cov[i * d + j] / (n - 1) as f64;
                cov[i * d + j] = c;
                cov[j * d + i] = c;
            }
        }
        Gaussian { dim: d, mean, cov }
    }
}

/// The Fréchet (2-Wasserstein) distance between two Gaussians:
/// `‖μ₁ − μ₂‖² + tr(C₁ + C₂ − 2 (C₁^½ · C₂ · C₁^½)^½)`.
///
/// `C₁^½ · C₂ · C₁^½` is symmetric positive semi-definite, so both square
/// roots come from a symmetric eigen-decomposition (no complex parts to drop,
/// unlike `scipy.linalg.sqrtm(C₁·C₂)`), and the trace of the outer root is
/// the sum of the square roots of its eigenvalues.
///
/// # Panics
/// When the dimensions differ.
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> f64 {
    assert_eq!(
        a.dim, b.dim,
        "frechet_distance: feature dimensions {} and {} differ",
        a.dim, b.dim
    );
    let d = a.dim;
    let mean_term: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y).powi(2))
        .sum();
    let s = sqrt_psd(&a.cov, d);
    let mut m = matmul(&matmul(&s, &b.cov, d), &s, d);
    // Rounding leaves m a hair off symmetric; the solver assumes symmetry.
    for i in 0..d {
        for j in i + 1..d {
            let avg = 0.5 * (m[i * d + j] + m[j * d + i]);
            m[i * d + j] = avg;
            m[j * d + i] = avg;
        }
    }
    let cross: f64 = super::linalg::symmetric_eigen(&m, d)
        .values
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum();
    let fd = mean_term + trace(&a.cov, d) + trace(&b.cov, d) - 2.0 * cross;
    // Equal Gaussians give 0 up to rounding, which may be a hair below.
    fd.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    fn gaussian(dim: usize, mean: &[f64], var: &[f64]) -> Gaussian {
        let mut cov = vec![0.0; dim * dim];
        (0..dim).for_each(|i| cov[i * dim + i] = var[i]);
        Gaussian {
            dim,
            mean: mean.to_vec(),
            cov,
        }
    }

    #[test]
    fn identical_sets_are_at_distance_zero() {
        let x = Tensor::randn([500, 16], 0.0, 1.0, &mut Rng::new(3));
        let g = Gaussian::fit(&x);
        assert!(frechet_distance(&g, &g) < 1e-9);
    }

    #[test]
    fn diagonal_gaussians_match_the_closed_form() {
        // Commuting covariances: FD = ‖μ₁ − μ₂‖² + Σ (σ₁ − σ₂)².
        let a = gaussian(3, &[0.0, 1.0, 2.0], &[1.0, 4.0, 9.0]);
        let b = gaussian(3, &[1.0, 1.0, 0.0], &[4.0, 4.0, 1.0]);
        let want = (1.0 + 0.0 + 4.0) + (1.0 + 0.0 + 4.0);
        assert!((frechet_distance(&a, &b) - want).abs() < 1e-10);
        // The distance is symmetric.
        assert!((frechet_distance(&b, &a) - want).abs() < 1e-10);
    }

    #[test]
    fn rotating_both_gaussians_keeps_the_distance() {
        // R = rotation by 30° in the (0, 1) plane: C' = R C Rᵀ, μ' = R μ.
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let r = [c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0];
        let rt = [c, s, 0.0, -s, c, 0.0, 0.0, 0.0, 1.0];
        let rotate = |g: &Gaussian| Gaussian {
            dim: 3,
            mean: (0..3)
                .map(|i| (0..3).map(|k| r[i * 3 + k] * g.mean[k]).sum())
                .collect(),
            cov: matmul(&matmul(&r, &g.cov, 3), &rt, 3),
        };
        let a = gaussian(3, &[0.5, -1.0, 2.0], &[1.0, 0.25, 2.0]);
        let b = gaussian(3, &[0.0, 1.0, 1.0], &[3.0, 1.0, 0.5]);
        let want = frechet_distance(&a, &b);
        let got = frechet_distance(&rotate(&a), &rotate(&b));
        assert!((got - want).abs() < 1e-10, "{got} vs {want}");
    }

    #[test]
    fn shifted_samples_give_the_squared_shift() {
        // Two samples of N(0, I) and N(δ, I) in 8 dimensions: FID → |δ|² = 4
        // as N grows; with N = 20,000 the estimate is within a few percent.
        let (n, d) = (20_000, 8);
        let x = Tensor::randn([n, d], 0.0, 1.0, &mut Rng::new(1));
        let y = Tensor::randn([n, d], 0.0, 1.0, &mut Rng::new(2));
        let delta = Tensor::from_vec(vec![1.0, -1.0, 1.0, -1.0, 0.0, 0.0, 0.0, 0.0], [d]);
        let fid = frechet_distance(&Gaussian::fit(&x), &Gaussian::fit(&y.add(&delta)));
        assert!((fid - 4.0).abs() < 0.1, "{fid}");
        // Scaling: N(0, I) against N(0, 4I) is d · (2 − 1)² = 8.
        let fid = frechet_distance(&Gaussian::fit(&x), &Gaussian::fit(&y.mul_scalar(2.0)));
        assert!((fid - 8.0).abs() < 0.2, "{fid}");
    }
}
