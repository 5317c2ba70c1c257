//! Forward values and gradients of every op against PyTorch (float64) on
//! deterministic inputs. The reference file is written by `golden/gen/ops.py`
//! and committed, so these tests need no Python.

mod common;
use common::{assert_close, json_tensor, usize_list};
use matnet::Tensor;
use serde_json::Value;

fn to_tensor(v: &Value) -> Tensor {
    let (shape, data) = json_tensor(v);
    Tensor::from_vec(data.into_iter().map(|x| x as f32).collect(), shape)
}

fn dims_arg(args: &Value) -> Vec<isize> {
    match &args["dims"] {
        Value::Null => Vec::new(),
        d => d
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap() as isize)
            .collect(),
    }
}

fn run(op: &str, args: &Value, x: &[Tensor]) -> Tensor {
    let f = |k: &str| args[k].as_f64().unwrap() as f32;
    let i = |k: &str| args[k].as_i64().unwrap() as isize;
    let keepdim = args["keepdim"].as_bool().unwrap_or(false);
    match op {
        "matmul" => x[0].matmul(&x[1]),
        "dot" => x[0].dot(&x[1]),
        "outer" => x[0].outer(&x[1]),
        "kron" => x[0].kron(&x[1]),
        "transpose" => x[0].transpose(i("dim0"), i("dim1")),
        "permute" => x[0].permute(&usize_list(&args["perm"])),
        "reshape" => x[0].reshape(usize_list(&args["shape"])),
        "broadcast_to" => x[0].broadcast_to(usize_list(&args["shape"])),
        "narrow" => x[0].narrow(i("dim"), i("start") as usize, i("length") as usize),
        "cat" => Tensor::cat(x, i("dim")),
        "stack" => Tensor::stack(x, i("dim") as usize),
        "add" => x[0].add(&x[1]),
        "sub" => x[0].sub(&x[1]),
        "mul" => x[0].mul(&x[1]),
        "div" => x[0].div(&x[1]),
        "neg" => x[0].neg(),
        "exp" => x[0].exp(),
        "log" => x[0].log(),
        "sqrt" => x[0].sqrt(),
        "abs" => x[0].abs(),
        "relu" => x[0].relu(),
        "sigmoid" => x[0].sigmoid(),
        "tanh" => x[0].tanh(),
        "gelu" => x[0].gelu(),
        "powf" => x[0].powf(f("exponent")),
        "clamp" => x[0].clamp(f("min"), f("max")),
        "leaky_relu" => x[0].leaky_relu(f("slope")),
        "add_scalar" => x[0].add_scalar(f("value")),
        "mul_scalar" => x[0].mul_scalar(f("value")),
        "sum" => x[0].sum(&dims_arg(args), keepdim),
        "mean" => x[0].mean(&dims_arg(args), keepdim),
        "var" => x[0].var(
            &dims_arg(args),
            keepdim,
            args["correction"].as_u64().unwrap() as usize,
        ),
        "max" => x[0].max(i("dim"), keepdim),
        "argmax" => x[0].argmax(i("dim"), keepdim),
        "softmax" => x[0].softmax(i("dim")),
        "log_softmax" => x[0].log_softmax(i("dim")),
        "gather" => x[0].gather(i("dim"), &x[1]),
        "index_select" => x[0].index_select(i("dim"), &x[1]),
        "one_hot" => x[0].one_hot(args["num_classes"].as_u64().unwrap() as usize),
        "where" => Tensor::where_cond(&x[0], &x[1], &x[2]),
        "eq" => x[0].eq(&x[1]),
        "ne" => x[0].ne(&x[1]),
        "lt" => x[0].lt(&x[1]),
        "le" => x[0].le(&x[1]),
        "gt" => x[0].gt(&x[1]),
        "ge" => x[0].ge(&x[1]),
        other => panic!("golden file names an op this test does not know: {other}"),
    }
}

for_each_backend! {
    fn every_op_matches_pytorch() {
        let text = include_str!("golden/ops.json");
        let root: Value = serde_json::from_str(text).expect("ops.json parses");
        let cases = root["cases"].as_array().unwrap();
        let mut ops = std::collections::BTreeSet::new();
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let op = case["op"].as_str().unwrap();
            ops.insert(op);
            let diff: Vec<bool> = case["differentiable"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_bool().unwrap())
                .collect();
            let inputs: Vec<Tensor> = case["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .zip(&diff)
                .map(|(v, &d)| {
                    if d {
                        to_tensor(v).requires_grad()
                    } else {
                        to_tensor(v)
                    }
                })
                .collect();
            let out = run(op, &case["args"], &inputs);
            let (want_shape, want) = json_tensor(&case["output"]);
            assert_eq!(out.dims(), &want_shape[..], "{name}: output shape");
            // Reductions over 1,000+ elements accumulate more rounding.
            let big = inputs.iter().map(|t| t.numel()).max().unwrap_or(0) >= 1000;
            let rtol = if big { 1e-4 } else { 1e-5 };
            assert_close(&format!("{name} forward"), &out.to_vec(), &want, rtol, 1e-6);
            if case["r"].is_null() {
                continue;
            }
            let r = to_tensor(&case["r"]);
            let grads = out.mul(&r).sum_all().backward();
            for (k, g) in case["grads"].as_array().unwrap().iter().enumerate() {
                if g.is_null() {
                    continue;
                }
                let (gshape, gwant) = json_tensor(g);
                let got = grads
                    .get(&inputs[k])
                    .unwrap_or_else(|| panic!("{name}: input {k} got no gradient"));
                assert_eq!(got.dims(), &gshape[..], "{name}: gradient {k} shape");
                assert_close(
                    &format!("{name} grad {k}"),
                    &got.to_vec(),
                    &gwant,
                    rtol,
                    1e-6,
                );
            }
        }
        println!(
            "{} golden cases over {} ops matched: {:?}",
            cases.len(),
            ops.len(),
            ops
        );
    }
}
