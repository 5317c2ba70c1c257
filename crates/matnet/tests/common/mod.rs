//! Shared test helpers: finite-difference gradient checks, comparisons, and
//! small checkpoints for the checkpoint tests.
#![allow(dead_code)]

use matnet::io::{self, CONFIG_KEY};
use matnet::{Rng, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Σ out ⊙ r, accumulated in f64 so the finite differences are not drowned
/// in f32 rounding.
fn weighted_sum(out: &Tensor, r: &[f32]) -> f64 {
    out.to_vec()
        .iter()
        .zip(r)
        .map(|(&o, &w)| o as f64 * w as f64)
        .sum()
}

/// Checks the autograd gradient of `sum(f(inputs) ⊙ r)` for a random `r`
/// against central differences, for every element of every input.
pub fn gradcheck(name: &str, inputs: Vec<Tensor>, f: impl Fn(&[Tensor]) -> Tensor) {
    gradcheck_with(name, &inputs, 1e-2, 2e-3, 2e-2, f)
}

/// [`gradcheck`] with explicit step and tolerances (`|a - n| <= atol + rtol·|n|`).
pub fn gradcheck_with(
    name: &str,
    inputs: &[Tensor],
    eps: f32,
    atol: f64,
    rtol: f64,
    f: impl Fn(&[Tensor]) -> Tensor,
) {
    let vars: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.contiguous().detach().requires_grad())
        .collect();
    let out = f(&vars);
    let mut rng = Rng::new(0xC0FFEE);
    let r: Vec<f32> = (0..out.numel())
        .map(|_| rng.uniform_range(-1.0, 1.0))
        .collect();
    let loss = out
        .mul(&Tensor::from_vec(r.clone(), out.shape().clone()))
        .sum_all();
    let grads = loss.backward();
    for (i, v) in vars.iter().enumerate() {
        let analytic = grads
            .get(v)
            .map(|g| g.to_vec())
            .unwrap_or_else(|| vec![0.0; v.numel()]);
        assert_eq!(
            analytic.len(),
            v.numel(),
            "{name}: gradient of input {i} has the wrong size"
        );
        let base = v.to_vec();
        let mut worst = (0.0f64, 0usize, 0.0f64, 0.0f64);
        for j in 0..base.len() {
            let eval = |delta: f32| {
                let _g = matnet::no_grad();
                let mut d = base.clone();
                d[j] += delta;
                let mut xs: Vec<Tensor> = vars.iter().map(|t| t.detach()).collect();
                xs[i] = Tensor::from_vec(d, v.shape().clone());
                weighted_sum(&f(&xs), &r)
            };
            let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps as f64);
            let a = analytic[j] as f64;
            let err = (a - numeric).abs() - (atol + rtol * numeric.abs());
            if err > worst.0 {
                worst = (err, j, a, numeric);
            }
        }
        assert!(
            worst.0 <= 0.0,
            "{name}: input {i} element {}: autograd {} vs finite difference {}",
            worst.1,
            worst.2,
            worst.3
        );
    }
}

/// Random normal tensor.
pub fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape.to_vec(), 0.0, 1.0, &mut Rng::new(seed))
}

/// Random uniform tensor in `[lo, hi)`.
pub fn uniform(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Tensor {
    Tensor::rand_uniform(shape.to_vec(), lo, hi, &mut Rng::new(seed))
}

/// Random values kept at least `gap` away from 0 (for kinked functions).
pub fn away_from_zero(shape: &[usize], gap: f32, seed: u64) -> Tensor {
    let t = randn(shape, seed);
    let v = t
        .to_vec()
        .into_iter()
        .map(|x| {
            if x.abs() < gap {
                x.signum() * gap + x
            } else {
                x
            }
        })
        .collect();
    Tensor::from_vec(v, shape.to_vec())
}

/// Asserts `|a - b| <= atol + rtol·|b|` elementwise, printing the first
/// values and the largest difference on failure.
pub fn assert_close(name: &str, got: &[f32], want: &[f64], rtol: f64, atol: f64) {
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: {} values, expected {}",
        got.len(),
        want.len()
    );
    let mut worst = (0.0f64, 0usize);
    let mut bad = false;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g as f64 - w).abs();
        if d > atol + rtol * w.abs() || g.is_nan() != w.is_nan() {
            bad = true;
        }
        if d > worst.0 {
            worst = (d, i);
        }
    }
    if bad {
        let n = got.len().min(6);
        panic!(
            "{name}: mismatch, max |diff| {:.3e} at {}\n got:  {:?}\n want: {:?}",
            worst.0,
            worst.1,
            &got[..n],
            &want[..n]
        );
    }
}

/// Shape and values of a `{"shape": [...], "data": [...]}` object from a
/// golden file written by a script under `golden/gen/`.
pub fn json_tensor(v: &serde_json::Value) -> (Vec<usize>, Vec<f64>) {
    let shape = usize_list(&v["shape"]);
    let data = v["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    (shape, data)
}

/// A JSON array of non-negative integers.
pub fn usize_list(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .expect("integer array")
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

// ----- checkpoints (checkpoint.rs, checkpoint_errors.rs) ---------------------

pub fn named(pairs: &[(&str, Tensor)]) -> Vec<(String, Tensor)> {
    pairs
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect()
}

pub fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().iter().map(|x| x.to_bits()).collect()
}

/// A two-layer MLP's parameters, PyTorch names, random values.
pub fn mlp(seed: u64) -> Vec<(String, Tensor)> {
    let mut rng = Rng::new(seed);
    named(&[
        ("fc1.weight", Tensor::randn([5, 4], 0.0, 1.0, &mut rng)),
        ("fc1.bias", Tensor::randn([5], 0.0, 1.0, &mut rng)),
        ("fc2.weight", Tensor::randn([2, 5], 0.0, 1.0, &mut rng)),
        ("fc2.bias", Tensor::randn([2], 0.0, 1.0, &mut rng)),
    ])
}

pub fn saved_mlp(dir: &Path) -> PathBuf {
    let path = dir.join("model.safetensors");
    let config = r#"{"layers":[4,5,2]}"#;
    io::save(&path, &mlp(1), &meta(&[(CONFIG_KEY, config)])).unwrap();
    path
}

/// Instantiates tests once per backend, like candle's `test_device!`:
///
/// ```ignore
/// for_each_backend! {
///     fn adds() { assert_eq!(Tensor::ones([2]).add(&Tensor::ones([2])).to_vec(), [2.0, 2.0]); }
/// }
/// ```
///
/// makes a module `adds` with tests `cpu` and `reference`, each running the
/// body with that device as the default for every constructor on its thread
/// (`Tensor::from_vec`, `randn`, layers' parameters), so the whole test runs
/// on the device under test. Attributes (`#[should_panic]`, docs) apply to
/// both tests.
#[macro_export]
macro_rules! for_each_backend {
    ($($(#[$meta:meta])* fn $name:ident() $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                fn body() $body

                $(#[$meta])*
                #[test]
                fn cpu() {
                    let _on = matnet::set_default_device(matnet::Device::Cpu);
                    body()
                }

                $(#[$meta])*
                #[test]
                fn reference() {
                    let _on = matnet::set_default_device(matnet::Device::Reference);
                    body()
                }
            }
        )*
    };
}
