//! Forward values and gradients of the convolution family (conv2d,
//! conv_transpose2d, pools, the BatchNorm2d layer) against PyTorch (float64)
//! on deterministic inputs. The reference file is written by
//! `golden/gen/conv.py` and committed, so these tests need no Python.

mod common;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{assert_close, json_tensor, usize_list};
use matnet::nn::{BatchNorm2d, Module};
use matnet::ops::conv::Conv2dParams;
use matnet::{Gradients, Tensor};
use serde_json::Value;

// The cases are tiny (at most a few dozen products per output), so f32
// accumulation stays well inside these; none needs a looser bound.
const RTOL: f64 = 1e-5;
const ATOL: f64 = 1e-6;

fn to_tensor(v: &Value) -> Tensor {
    let (shape, data) = json_tensor(v);
    Tensor::from_vec(data.into_iter().map(|x| x as f32).collect(), shape)
}

fn pair(args: &Value, key: &str) -> (usize, usize) {
    match usize_list(&args[key])[..] {
        [a, b] => (a, b),
        ref other => panic!("{key}: expected a pair, got {other:?}"),
    }
}

/// Compares shape and values of `got` with the reference tensor `want`.
fn check(what: &str, got: &Tensor, want: &Value) {
    let (shape, data) = json_tensor(want);
    assert_eq!(got.dims(), &shape[..], "{what}: shape");
    assert_close(what, &got.to_vec(), &data, RTOL, ATOL);
}

fn check_grad(what: &str, grads: &Gradients, t: &Tensor, want: &Value) {
    let g = grads
        .get(t)
        .unwrap_or_else(|| panic!("{what}: no gradient"));
    check(what, g, want);
}

/// `out ⊙ r` summed, differentiated; `r` is the case's fixed random weight.
fn weighted_backward(out: &Tensor, r: &Value) -> Gradients {
    out.mul(&to_tensor(r)).sum_all().backward()
}

fn conv_case(name: &str, op: &str, case: &Value) {
    let args = &case["args"];
    let inputs: Vec<Option<Tensor>> = case["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (!v.is_null()).then(|| to_tensor(v).requires_grad()))
        .collect();
    let (x, w) = (inputs[0].as_ref().unwrap(), inputs[1].as_ref().unwrap());
    let b = inputs[2].as_ref();
    let p = Conv2dParams {
        stride: pair(args, "stride"),
        padding: pair(args, "padding"),
        dilation: pair(args, "dilation"),
        groups: args["groups"].as_u64().unwrap() as usize,
        output_padding: if op == "conv2d" {
            (0, 0)
        } else {
            pair(args, "output_padding")
        },
    };
    let out = match op {
        "conv2d" => x.conv2d(w, b, p),
        _ => x.conv_transpose2d(w, b, p),
    };
    check(&format!("{name} forward"), &out, &case["output"]);
    let grads = weighted_backward(&out, &case["r"]);
    for ((input, label), want) in inputs
        .iter()
        .zip(["x", "weight", "bias"])
        .zip(case["grads"].as_array().unwrap())
    {
        if let Some(t) = input {
            check_grad(&format!("{name} grad_{label}"), &grads, t, want);
        }
    }
}

fn pool_case(name: &str, op: &str, case: &Value) {
    let args = &case["args"];
    let x = to_tensor(&case["inputs"][0]).requires_grad();
    let out = match op {
        "max_pool2d_with_indices" => {
            let (out, idx) =
                x.max_pool2d_with_indices(pair(args, "kernel_size"), pair(args, "stride"));
            let (shape, want) = json_tensor(&case["indices"]);
            assert_eq!(idx.dims(), &shape[..], "{name} indices: shape");
            let got: Vec<f64> = idx.to_vec().into_iter().map(f64::from).collect();
            assert_eq!(got, want, "{name}: indices");
            out
        }
        "avg_pool2d" => x.avg_pool2d(
            pair(args, "kernel_size"),
            pair(args, "stride"),
            pair(args, "padding"),
        ),
        "adaptive_avg_pool2d" => x.adaptive_avg_pool2d(pair(args, "output_size")),
        other => panic!("{name}: unknown pool {other}"),
    };
    check(&format!("{name} forward"), &out, &case["output"]);
    let grads = weighted_backward(&out, &case["r"]);
    check_grad(&format!("{name} grad_x"), &grads, &x, &case["grads"][0]);
}

/// One BatchNorm2d module through every recorded step (training or eval):
/// output, gradients of x, γ and β, and the running statistics after it.
fn batch_norm_case(name: &str, case: &Value) {
    let weight = to_tensor(&case["weight"]).requires_grad();
    let mut bn = BatchNorm2d::new(weight.numel());
    bn.weight = weight;
    bn.bias = to_tensor(&case["bias"]).requires_grad();
    bn.momentum = case["args"]["momentum"].as_f64().unwrap() as f32;
    bn.eps = case["args"]["eps"].as_f64().unwrap() as f32;
    for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
        let training = step["training"].as_bool().unwrap();
        let what = format!(
            "{name} step {} ({})",
            i + 1,
            if training { "train" } else { "eval" }
        );
        bn.set_training(training);
        let x = to_tensor(&step["x"]).requires_grad();
        let out = bn.forward(&x);
        check(&format!("{what} forward"), &out, &step["output"]);
        let grads = weighted_backward(&out, &step["r"]);
        let g = &step["grads"];
        check_grad(&format!("{what} grad_x"), &grads, &x, &g["x"]);
        check_grad(
            &format!("{what} grad_weight"),
            &grads,
            &bn.weight,
            &g["weight"],
        );
        check_grad(&format!("{what} grad_bias"), &grads, &bn.bias, &g["bias"]);
        check(
            &format!("{what} running_mean"),
            &bn.running_mean,
            &step["running_mean"],
        );
        check(
            &format!("{what} running_var"),
            &bn.running_var,
            &step["running_var"],
        );
    }
}

for_each_backend! {
    fn conv_family_matches_pytorch() {
        let text = include_str!("golden/conv.json");
        let root: Value = serde_json::from_str(text).expect("conv.json parses");
        let cases = root["cases"].as_array().unwrap();
        let mut per_op: BTreeMap<&str, usize> = BTreeMap::new();
        let mut failed = Vec::new();
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let op = case["op"].as_str().unwrap();
            *per_op.entry(op).or_default() += 1;
            // Run every case and list all failures at the end (each one's
            // message, with first values and max diff, is printed as it fails).
            let run = catch_unwind(AssertUnwindSafe(|| match op {
                "conv2d" | "conv_transpose2d" => conv_case(name, op, case),
                "max_pool2d_with_indices" | "avg_pool2d" | "adaptive_avg_pool2d" => {
                    pool_case(name, op, case)
                }
                "batch_norm2d" => batch_norm_case(name, case),
                other => panic!("conv.json names an op this test does not know: {other}"),
            }));
            if run.is_err() {
                failed.push(name);
            }
        }
        assert!(
            failed.is_empty(),
            "{} of {} conv golden cases failed: {failed:?}",
            failed.len(),
            cases.len()
        );
        println!("{} conv golden cases matched: {per_op:?}", cases.len());
    }
}
