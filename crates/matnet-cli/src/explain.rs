//! `matnet explain`: the matrix operations of one training step, in order,
//! with shapes, formulas, FLOPs and each one's share of the measured time.

use std::collections::HashMap;

use matnet::autograd::profile::{OpEvent, Phase, profile};
use matnet::nn::loss::cross_entropy;
use matnet::{Module, Rng, Shape, Tensor, TensorId};

use matnet::models::{Arch, Classifier, ModelConfig};

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// Architecture to explain.
    #[arg(long, value_enum, default_value = "seed-mlp")]
    pub model: Arch,
    /// Batch size (default: 33,600 for seed-mlp, as the documents train it; 64 otherwise).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Hidden sizes, comma separated (mlp).
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
}

fn dims(s: &Shape) -> String {
    let parts: Vec<String> = s.dims().iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join("×"))
}

fn si(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.2}G", x / 1e9),
        x if x >= 1e6 => format!("{:.1}M", x / 1e6),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// 2·m·k·n (times the batch) for a product of these operand shapes.
fn matmul_flops(a: &Shape, b: &Shape) -> f64 {
    let (ad, bd) = (a.dims(), b.dims());
    let m = ad[ad.len() - 2] as f64;
    let k = ad[ad.len() - 1] as f64;
    let n = bd[bd.len() - 1] as f64;
    let batch: f64 = ad[..ad.len() - 2]
        .iter()
        .chain(&bd[..bd.len() - 2])
        .map(|&d| d as f64)
        .product();
    2.0 * m * k * n * batch.max(1.0)
}

fn transposed(s: &Shape) -> Shape {
    let mut d = s.dims().to_vec();
    let r = d.len();
    d.swap(r - 2, r - 1);
    Shape::new(d)
}

/// The GEMM work of the fused ops, from their recorded shapes: convolution
/// `2·(output)·(C/g·kh·kw)` per pass; the LSTM layer `2·T·N·4H·H` for the
/// recurrent products plus its gate arithmetic.
fn fused_flops(op: &str, e: &OpEvent) -> f64 {
    let (x, w) = (&e.inputs[0].1, &e.inputs[1].1);
    let per_out = |s: &Shape| (s.dims()[1] * s.dims()[2] * s.dims()[3]) as f64;
    match op {
        "conv2d" => 2.0 * e.output.1.numel() as f64 * per_out(w),
        "conv_transpose2d" => 2.0 * x.numel() as f64 * per_out(w),
        _ => {
            let (t, n, g) = (x.dims()[0], x.dims()[1], x.dims()[2]);
            (2 * t * n * g * w.dims()[1] + 10 * t * n * g / 4) as f64
        }
    }
}

/// A fused op's forward line: its matrix form and flops.
fn fused_forward(op: &str, o: &str, a: &str, b: &str, e: &OpEvent) -> (String, f64) {
    let text = match op {
        "conv2d" => format!("{o} = {b} · im2col({a}), one image at a time"),
        "conv_transpose2d" => format!("{o} = col2im({b}ᵀ · {a}), one image at a time"),
        _ => format!("{o} = LSTM over time: a_t = {a}_t + h_(t-1)·{b}ᵀ, gates, c_t, h_t"),
    };
    (text, fused_flops(op, e))
}

/// A fused op's backward line for input `k`: the gradient's matrix form and flops.
fn fused_backward(op: &str, k: usize, gname: &str, g: &str, e: &OpEvent) -> (String, f64) {
    let f = fused_flops(op, e);
    match (op, k) {
        ("conv2d", 0) => (format!("{gname} = col2im(Wᵀ · {g}) (conv_transpose2d)"), f),
        ("conv2d", _) => (format!("{gname} = Σ_images {g} · im2col(x)ᵀ"), f),
        ("conv_transpose2d", 0) => (format!("{gname} = W · im2col({g}) (conv2d)"), f),
        ("conv_transpose2d", _) => (format!("{gname} = Σ_images x · im2col({g})ᵀ"), f),
        ("lstm_layer", 0) => (
            format!("{gname} = gate gradients, swept back over time from {g}"),
            f,
        ),
        ("lstm_layer", 1) => (format!("{gname} = Σ_t g_a_tᵀ · h_(t-1), one product"), f),
        _ => (format!("{gname} = state gradient at t = 0"), 0.0),
    }
}

pub fn run(args: ExplainArgs) -> anyhow::Result<()> {
    let default_batch = if args.model == Arch::SeedMlp {
        33_600
    } else {
        64
    };
    let n = args.batch_size.unwrap_or(default_batch);
    anyhow::ensure!(n > 0, "--batch-size must be at least 1");
    let mut config = ModelConfig::for_mnist(args.model);
    if let (Arch::Mlp, Some(h)) = (args.model, &args.hidden) {
        config.hidden = h.clone();
    }
    let model = Classifier::new(config, 0)?;
    // Shapes are what matter here, so random pixels stand in for MNIST.
    let mut rng = Rng::new(1);
    let x = Tensor::rand_uniform([n, 784], 0.0, 1.0, &mut rng);
    let labels = Tensor::from_vec((0..n).map(|_| rng.below(10) as f32).collect(), [n]);
    let step = || {
        let loss = cross_entropy(&model.logits(&x), &labels);
        loss.backward()
    };
    step(); // warm-up: caches, thread pool, page faults
    let (_, events) = profile(step);

    // Names: parameters by name, the input as in the documents (for seed-mlp the
    // batch is Xᵀ, samples as rows, and X = its transpose), results t1, t2, ...
    let mut names: HashMap<TensorId, String> = HashMap::new();
    for (name, p) in model.net.named_parameters() {
        names.insert(p.id(), name);
    }
    names.insert(
        x.id(),
        if args.model == Arch::SeedMlp {
            "Xᵀ".into()
        } else {
            "X".into()
        },
    );
    let mut counter = 0;
    let mut name_of = |names: &mut HashMap<TensorId, String>, e: &OpEvent| -> String {
        let parent = e.inputs.first().and_then(|(id, _)| names.get(id).cloned());
        let name = match (e.op, parent) {
            ("permute", Some(p)) => p
                .strip_suffix('ᵀ')
                .map(str::to_string)
                .unwrap_or(format!("{p}ᵀ")),
            ("reshape" | "broadcast_to", Some(p)) => p,
            _ => {
                counter += 1;
                format!("t{counter}")
            }
        };
        names.insert(e.output.0, name.clone());
        name
    };
    let total: f64 = events.iter().map(|e| e.seconds).sum();
    println!(
        "{}: one training step on a batch of {n} (cross-entropy loss), {} parameters",
        model.net.describe(),
        model.net.num_parameters()
    );
    println!(
        "{:<3} {:<10} {:<70} {:>9} {:>9} {:>6}",
        "#", "op", "matrices", "FLOPs", "time", "share"
    );
    let mut flops_total = 0.0;
    let mut phase = None;
    for (i, e) in events.iter().enumerate() {
        if phase != Some(e.phase) {
            phase = Some(e.phase);
            println!(
                "{}",
                if e.phase == Phase::Forward {
                    "forward"
                } else {
                    "backward (reverse order)"
                }
            );
        }
        let n_of = |names: &HashMap<TensorId, String>, k: usize| {
            let (id, s) = &e.inputs[k];
            format!(
                "{}{}",
                names.get(id).cloned().unwrap_or("?".into()),
                dims(s)
            )
        };
        let numel = e.output.1.numel() as f64;
        let (text, flops) = match e.phase {
            Phase::Forward => {
                let out = name_of(&mut names, e);
                let o = format!("{out}{}", dims(&e.output.1));
                let a = n_of(&names, 0);
                match e.op {
                    "matmul" => (
                        format!("{o} = {a} · {}", n_of(&names, 1)),
                        matmul_flops(&e.inputs[0].1, &e.inputs[1].1),
                    ),
                    "add" => (format!("{o} = {a} + {}", n_of(&names, 1)), numel),
                    "sub" => (format!("{o} = {a} - {}", n_of(&names, 1)), numel),
                    "mul" => (format!("{o} = {a} ⊙ {}", n_of(&names, 1)), numel),
                    "div" => (format!("{o} = {a} / {}", n_of(&names, 1)), numel),
                    "permute" | "reshape" | "broadcast_to" => {
                        (format!("{o} = {} of {a} (a view, no copy)", e.op), 0.0)
                    }
                    "sum" | "max" => (format!("{o} = {}({a})", e.op), e.inputs[0].1.numel() as f64),
                    "softmax" | "log_softmax" => {
                        (format!("{o} = {}({a}) along each row", e.op), 5.0 * numel)
                    }
                    "conv2d" | "conv_transpose2d" | "lstm_layer" => {
                        fused_forward(e.op, &o, &a, &n_of(&names, 1), e)
                    }
                    op => (format!("{o} = {op}({a})"), numel),
                }
            }
            Phase::Backward => {
                let g = format!(
                    "grad_{}{}",
                    names.get(&e.output.0).cloned().unwrap_or("?".into()),
                    dims(&e.output.1)
                );
                let gname = |k: usize| {
                    format!(
                        "grad_{}",
                        names.get(&e.inputs[k].0).cloned().unwrap_or("?".into())
                    )
                };
                let mut parts = Vec::new();
                let mut flops = 0.0;
                for (k, &has) in e.grads.iter().enumerate() {
                    if !has {
                        continue;
                    }
                    let part = match e.op {
                        "matmul" => {
                            let (a, b) = (&e.inputs[0], &e.inputs[1]);
                            let (an, bn) = (
                                names.get(&a.0).cloned().unwrap_or("?".into()),
                                names.get(&b.0).cloned().unwrap_or("?".into()),
                            );
                            let t = |s: &str| {
                                s.strip_suffix('ᵀ')
                                    .map(str::to_string)
                                    .unwrap_or(format!("{s}ᵀ"))
                            };
                            if k == 0 {
                                flops += matmul_flops(&e.output.1, &transposed(&b.1));
                                format!(
                                    "{}{} = {g} · {}{}",
                                    gname(0),
                                    dims(&a.1),
                                    t(&bn),
                                    dims(&transposed(&b.1))
                                )
                            } else {
                                flops += matmul_flops(&transposed(&a.1), &e.output.1);
                                format!(
                                    "{}{} = {}{} · {g}",
                                    gname(1),
                                    dims(&b.1),
                                    t(&an),
                                    dims(&transposed(&a.1))
                                )
                            }
                        }
                        "mul" => {
                            flops += numel;
                            format!("{} = {g} ⊙ {}", gname(k), n_of(&names, 1 - k))
                        }
                        "add" | "sub" => {
                            flops += numel;
                            let s = e.inputs[k].1 != e.output.1;
                            format!(
                                "{} = {}{g}{}",
                                gname(k),
                                if k == 1 && e.op == "sub" { "-" } else { "" },
                                if s { " summed over broadcast dims" } else { "" }
                            )
                        }
                        "relu" => {
                            flops += numel;
                            format!("{} = {g} ⊙ 1[{} > 0]", gname(0), n_of(&names, 0))
                        }
                        "log_softmax" => {
                            flops += 4.0 * numel;
                            format!("{} = {g} - softmax ⊙ Σ_row {g}", gname(0))
                        }
                        "permute" | "reshape" | "broadcast_to" => {
                            format!("{} = {} of {g}", gname(k), e.op)
                        }
                        "conv2d" | "conv_transpose2d" | "lstm_layer" => {
                            let (text, f) = fused_backward(e.op, k, &gname(k), &g, e);
                            flops += f;
                            text
                        }
                        op => {
                            flops += numel;
                            format!("{} = {op}' rule applied to {g}", gname(k))
                        }
                    };
                    parts.push(part);
                }
                (parts.join("; "), flops)
            }
        };
        flops_total += flops;
        println!(
            "{:<3} {:<10} {:<70} {:>9} {:>7.3}ms {:>5.1}%",
            i + 1,
            e.op,
            text,
            si(flops),
            e.seconds * 1e3,
            100.0 * e.seconds / total
        );
    }
    println!(
        "total: {} FLOPs in {:.2} ms ({:.1} GFLOP/s overall)",
        si(flops_total),
        total * 1e3,
        flops_total / total / 1e9
    );
    Ok(())
}
