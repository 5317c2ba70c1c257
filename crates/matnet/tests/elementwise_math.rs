//! The vectorisable `exp`, `sigmoid`, `tanh` and GELU against f64 references.

use matnet::backend::kernels::math;

/// Worst relative error (with an absolute floor `tiny`) over `xs`.
fn worst(xs: &[f32], f: fn(f32) -> f32, reference: fn(f64) -> f64, tiny: f64) -> (f64, f32) {
    let mut w = (0.0, 0.0);
    for &x in xs {
        let want = reference(x as f64);
        let got = f(x) as f64;
        let err = (got - want).abs() / want.abs().max(tiny);
        if err > w.0 {
            w = (err, x);
        }
    }
    w
}

fn grid(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    (0..=n)
        .map(|i| lo + (hi - lo) * i as f32 / n as f32)
        .collect()
}

#[test]
fn exp_is_within_two_ulp() {
    let xs = grid(-87.0, 88.5, 400_000);
    let (err, at) = worst(&xs, math::exp, f64::exp, 0.0);
    println!("exp: worst relative error {err:.2e} at {at}");
    assert!(err < 2.5e-7, "exp: relative error {err:e} at x = {at}");
    assert_eq!(math::exp(0.0), 1.0);
    assert_eq!(math::exp(100.0), f32::INFINITY);
    assert_eq!(math::exp(-100.0), 0.0);
    assert!(math::exp(f32::NAN).is_nan());
}

#[test]
fn sigmoid_and_tanh_match_f64() {
    let xs = grid(-30.0, 30.0, 400_000);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let (err, at) = worst(&xs, math::sigmoid, sig, 0.0);
    println!("sigmoid: worst relative error {err:.2e} at {at}");
    assert!(err < 5e-7, "sigmoid: relative error {err:e} at x = {at}");
    // tanh near 0 is relative-accurate too (no cancellation).
    let mut xs = grid(-20.0, 20.0, 400_000);
    xs.extend(grid(-1e-3, 1e-3, 10_000));
    let (err, at) = worst(&xs, math::tanh, f64::tanh, 0.0);
    println!("tanh: worst relative error {err:.2e} at {at}");
    assert!(err < 5e-7, "tanh: relative error {err:e} at x = {at}");
    assert_eq!(math::tanh(50.0), 1.0);
    assert_eq!(math::tanh(-50.0), -1.0);
    assert!(math::sigmoid(-200.0) == 0.0 && math::sigmoid(200.0) == 1.0);
}

/// `erfc` in f64: the power series of `erf` below 2, Lentz's continued
/// fraction above (both to about 1e-15 here).
fn erfc64(z: f64) -> f64 {
    if z < 0.0 {
        return 2.0 - erfc64(-z);
    }
    if z < 2.0 {
        let (mut term, mut sum, mut n) = (z, z, 0.0);
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -z * z / n;
            sum += term / (2.0 * n + 1.0);
        }
        return 1.0 - 2.0 / std::f64::consts::PI.sqrt() * sum;
    }
    // erfc z = e^{−z²}/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + …)))).
    let mut f = z;
    for k in (1..200).rev() {
        f = z + (k as f64 / 2.0) / f;
    }
    (-z * z).exp() / std::f64::consts::PI.sqrt() / f
}

fn phi64(x: f64) -> f64 {
    0.5 * erfc64(-x / std::f64::consts::SQRT_2)
}

/// GELU's normal CDF (and so GELU and its derivative), in f32 through the
/// vectorisable `exp`, against f64 over [-9, 9]: relative error below 1e-6
/// down to Φ(−9) ≈ 1e-19, and the derivative within 3e-7.
#[test]
fn normal_cdf_and_gelu_match_f64() {
    let xs = grid(-9.0, 9.0, 200_000);
    for (name, f, reference) in [
        (
            "normal_cdf",
            math::normal_cdf as fn(f32) -> f32,
            phi64 as fn(f64) -> f64,
        ),
        ("gelu", math::gelu, |x| x * phi64(x)),
    ] {
        let (err, at) = worst(&xs, f, reference, 1e-30);
        println!("{name}: worst relative error {err:.2e} at {at}");
        assert!(err < 1e-6, "{name}: relative error {err:e} at x = {at}");
    }
    let d = |x: f64| phi64(x) + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let (err, at) = worst(&xs, math::gelu_derivative, d, 1.0);
    println!("gelu_derivative: worst error {err:.2e} at {at}");
    assert!(err < 3e-7, "gelu_derivative: error {err:e} at x = {at}");
}
