//! The vectorisable `exp`, `sigmoid` and `tanh` against f64 references.

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
