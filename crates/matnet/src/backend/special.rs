//! Scalar special functions for the reference backend, in f64 (no
//! standard-library `erf` exists to fall back on). The CPU backend evaluates
//! the same formulas in f32, vectorised (`cpu::math::normal_cdf`).

/// Standard normal CDF through erfc, Chebyshev-fitted with relative error
/// below 1.2e-7 (evaluated in f64, then rounded).
pub(crate) fn normal_cdf(x: f32) -> f32 {
    (0.5 * erfc(-(x as f64) * std::f64::consts::FRAC_1_SQRT_2)) as f32
}

/// d/dx of GELU `x·Φ(x)`: `Φ(x) + x·φ(x)`.
pub(crate) fn gelu_derivative(x: f32) -> f32 {
    let pdf = (-0.5 * x * x).exp() * 0.398_942_3;
    normal_cdf(x) + x * pdf
}

/// The complementary error function (Numerical Recipes' `erfcc`).
pub(crate) fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 { r } else { 2.0 - r }
}
