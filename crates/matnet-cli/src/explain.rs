//! `matnet explain`: the matrix operations of one training step, in order,
//! with shapes, formulas, FLOPs and each one's share of the measured time.

use std::collections::HashMap;

use matnet::autograd::OpKind;
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

fn name(names: &HashMap<TensorId, String>, id: &TensorId) -> String {
    names.get(id).cloned().unwrap_or("?".into())
}

/// Input `k` of an event as `name[shape]`.
fn arg(names: &HashMap<TensorId, String>, e: &OpEvent, k: usize) -> String {
    let (id, s) = &e.inputs[k];
    format!("{}{}", name(names, id), dims(s))
}

/// `Aᵀ` for `A`, and `A` for `Aᵀ`.
fn toggle_t(s: &str) -> String {
    s.strip_suffix('ᵀ')
        .map(str::to_string)
        .unwrap_or(format!("{s}ᵀ"))
}

/// Convolution's GEMM work, `2·(output)·(C/g·kh·kw)`, per pass (forward, or
/// either gradient); for a transposed convolution the input plays the
/// output's role.
fn conv_flops(e: &OpEvent, transposed: bool) -> f64 {
    let w = e.inputs[1].1.dims();
    let per_out = (w[1] * w[2] * w[3]) as f64;
    let outputs = if transposed {
        &e.inputs[0].1
    } else {
        &e.output.1
    };
    2.0 * outputs.numel() as f64 * per_out
}

/// The LSTM layer's work per pass: `2·T·N·4H·H` for the recurrent products
/// plus its gate arithmetic.
fn lstm_flops(e: &OpEvent) -> f64 {
    let (x, w) = (e.inputs[0].1.dims(), e.inputs[1].1.dims());
    let (t, n, g) = (x[0], x[1], x[2]);
    (2 * t * n * g * w[1] + 10 * t * n * g / 4) as f64
}

/// A forward event's matrix form (output named `o`) and its FLOPs. One arm
/// per op kind and no catch-all: a new op does not compile until it is
/// described here.
fn forward_line(names: &HashMap<TensorId, String>, e: &OpEvent, o: &str) -> (String, f64) {
    let numel = e.output.1.numel() as f64;
    let a = arg(names, e, 0);
    let b = || arg(names, e, 1);
    let op = e.op;
    match op {
        OpKind::Matmul => (
            format!("{o} = {a} · {}", b()),
            matmul_flops(&e.inputs[0].1, &e.inputs[1].1),
        ),
        OpKind::Add => (format!("{o} = {a} + {}", b()), numel),
        OpKind::Sub => (format!("{o} = {a} - {}", b()), numel),
        OpKind::Mul => (format!("{o} = {a} ⊙ {}", b()), numel),
        OpKind::Div => (format!("{o} = {a} / {}", b()), numel),
        OpKind::Where => (
            format!("{o} = where({a}, {}, {})", b(), arg(names, e, 2)),
            numel,
        ),
        OpKind::Permute | OpKind::Reshape | OpKind::BroadcastTo => {
            (format!("{o} = {op} of {a} (a view, no copy)"), 0.0)
        }
        OpKind::Sum | OpKind::Max => (format!("{o} = {op}({a})"), e.inputs[0].1.numel() as f64),
        OpKind::Softmax | OpKind::LogSoftmax => {
            (format!("{o} = {op}({a}) along each row"), 5.0 * numel)
        }
        OpKind::Conv2d => {
            // The bias, when there is one, is added in the same op.
            let (bias, adds) = match e.inputs.len() {
                3 => (format!(" + {} per channel", arg(names, e, 2)), numel),
                _ => (String::new(), 0.0),
            };
            (
                format!("{o} = {} · im2col({a}){bias}, one image at a time", b()),
                conv_flops(e, false) + adds,
            )
        }
        OpKind::ConvTranspose2d => (
            format!("{o} = col2im({}ᵀ · {a}), one image at a time", b()),
            conv_flops(e, true),
        ),
        OpKind::LstmLayer => {
            // Inputs xp, W_hh, h0, c0 and the gate bias when there is one.
            let (bias, adds) = match e.inputs.get(4) {
                Some(_) => (
                    format!(" + {}", arg(names, e, 4)),
                    e.inputs[0].1.numel() as f64,
                ),
                None => (String::new(), 0.0),
            };
            (
                format!(
                    "{o} = LSTM over time: a_t = {a}_t{bias} + h_(t-1)·{}ᵀ, gates, c_t, h_t",
                    b()
                ),
                lstm_flops(e) + adds,
            )
        }
        // One output value per element, counted as one FLOP each.
        OpKind::Neg
        | OpKind::Exp
        | OpKind::Log
        | OpKind::Sqrt
        | OpKind::Sqr
        | OpKind::Abs
        | OpKind::Relu
        | OpKind::Sigmoid
        | OpKind::Tanh
        | OpKind::Gelu
        | OpKind::Affine
        | OpKind::Powf
        | OpKind::Clamp
        | OpKind::LeakyRelu
        | OpKind::LstmCell => (format!("{o} = {op}({a})"), numel),
        // Data movement: one element moved per output value, counted alike so
        // copies show up in the total.
        OpKind::Narrow
        | OpKind::Cat
        | OpKind::Copy
        | OpKind::Gather
        | OpKind::IndexSelect
        | OpKind::Im2col
        | OpKind::Col2im
        | OpKind::MaxPool2d
        | OpKind::MaxUnpool2d => (format!("{o} = {op}({a})"), numel),
    }
}

/// The gradient of input `k` of a backward event (the node's gradient is
/// `g`) and its FLOPs. One arm per op kind and no catch-all, as
/// [`forward_line`].
fn backward_part(
    names: &HashMap<TensorId, String>,
    e: &OpEvent,
    k: usize,
    g: &str,
) -> (String, f64) {
    let numel = e.output.1.numel() as f64;
    let gk = format!("grad_{}", name(names, &e.inputs[k].0));
    let op = e.op;
    match op {
        OpKind::Matmul => {
            let (a, b) = (&e.inputs[0], &e.inputs[1]);
            if k == 0 {
                let bt = transposed(&b.1);
                let text = format!(
                    "{gk}{} = {g} · {}{}",
                    dims(&a.1),
                    toggle_t(&name(names, &b.0)),
                    dims(&bt)
                );
                (text, matmul_flops(&e.output.1, &bt))
            } else {
                let at = transposed(&a.1);
                let text = format!(
                    "{gk}{} = {}{} · {g}",
                    dims(&b.1),
                    toggle_t(&name(names, &a.0)),
                    dims(&at)
                );
                (text, matmul_flops(&at, &e.output.1))
            }
        }
        OpKind::Mul => (format!("{gk} = {g} ⊙ {}", arg(names, e, 1 - k)), numel),
        OpKind::Add | OpKind::Sub => {
            let minus = if k == 1 && op == OpKind::Sub { "-" } else { "" };
            let summed = if e.inputs[k].1 != e.output.1 {
                " summed over broadcast dims"
            } else {
                ""
            };
            (format!("{gk} = {minus}{g}{summed}"), numel)
        }
        OpKind::Relu => (format!("{gk} = {g} ⊙ 1[{} > 0]", arg(names, e, 0)), numel),
        OpKind::LogSoftmax => (format!("{gk} = {g} - softmax ⊙ Σ_row {g}"), 4.0 * numel),
        OpKind::Permute | OpKind::Reshape | OpKind::BroadcastTo => {
            (format!("{gk} = {op} of {g}"), 0.0)
        }
        OpKind::Conv2d => match k {
            0 => (
                format!("{gk} = col2im(Wᵀ · {g}) (conv_transpose2d)"),
                conv_flops(e, false),
            ),
            1 => (
                format!("{gk} = Σ_images {g} · im2col(x)ᵀ"),
                conv_flops(e, false),
            ),
            _ => (
                format!("{gk} = Σ_images,pixels {g} (in the weight gradient's pass)"),
                numel,
            ),
        },
        OpKind::ConvTranspose2d => match k {
            0 => (
                format!("{gk} = W · im2col({g}) (conv2d)"),
                conv_flops(e, true),
            ),
            _ => (
                format!("{gk} = Σ_images x · im2col({g})ᵀ"),
                conv_flops(e, true),
            ),
        },
        OpKind::LstmLayer => match k {
            0 => (
                format!("{gk} = gate gradients, swept back over time from {g}"),
                lstm_flops(e),
            ),
            1 => (
                format!("{gk} = Σ_t g_a_tᵀ · h_(t-1), one product"),
                lstm_flops(e),
            ),
            4 => (
                format!("{gk} = Σ_t Σ_rows g_a_t (the bias)"),
                e.inputs[0].1.numel() as f64,
            ),
            _ => (format!("{gk} = state gradient at t = 0"), 0.0),
        },
        // The rule's elementwise work, one FLOP per output element.
        OpKind::Div
        | OpKind::Where
        | OpKind::Neg
        | OpKind::Exp
        | OpKind::Log
        | OpKind::Sqrt
        | OpKind::Sqr
        | OpKind::Abs
        | OpKind::Sigmoid
        | OpKind::Tanh
        | OpKind::Gelu
        | OpKind::Affine
        | OpKind::Powf
        | OpKind::Clamp
        | OpKind::LeakyRelu
        | OpKind::Sum
        | OpKind::Max
        | OpKind::Softmax
        | OpKind::LstmCell
        | OpKind::Narrow
        | OpKind::Cat
        | OpKind::Copy
        | OpKind::Gather
        | OpKind::IndexSelect
        | OpKind::Im2col
        | OpKind::Col2im
        | OpKind::MaxPool2d
        | OpKind::MaxUnpool2d => (format!("{gk} = {op}' rule applied to {g}"), numel),
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
        // Views keep their input's name (a transpose toggles `ᵀ`); every
        // other result gets the next t<i>.
        let name = match (e.op, parent) {
            (OpKind::Permute, Some(p)) => toggle_t(&p),
            (OpKind::Reshape | OpKind::BroadcastTo, Some(p)) => p,
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
        let (text, flops) = match e.phase {
            Phase::Forward => {
                let out = name_of(&mut names, e);
                forward_line(&names, e, &format!("{out}{}", dims(&e.output.1)))
            }
            Phase::Backward => {
                let g = format!("grad_{}{}", name(&names, &e.output.0), dims(&e.output.1));
                let parts: Vec<(String, f64)> = (e.grads.iter().enumerate())
                    .filter(|&(_, &has)| has)
                    .map(|(k, _)| backward_part(&names, e, k, &g))
                    .collect();
                let text: Vec<&str> = parts.iter().map(|(t, _)| t.as_str()).collect();
                // fold from +0.0: `Sum` starts at -0.0, which prints as "-0".
                (
                    text.join("; "),
                    parts.iter().fold(0.0, |acc, (_, f)| acc + f),
                )
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A made-up event of `kind` with plausible shapes, every input with a
    /// gradient.
    fn event(kind: OpKind, phase: Phase) -> OpEvent {
        let shapes: Vec<Vec<usize>> = match kind {
            OpKind::Matmul => vec![vec![2, 3], vec![3, 4], vec![2, 4]],
            OpKind::Conv2d => vec![vec![1, 1, 4, 4], vec![2, 1, 3, 3], vec![1, 2, 2, 2]],
            OpKind::ConvTranspose2d => {
                vec![vec![1, 2, 2, 2], vec![2, 1, 3, 3], vec![1, 1, 4, 4]]
            }
            OpKind::LstmLayer => vec![
                vec![2, 1, 8],
                vec![8, 2],
                vec![1, 2],
                vec![1, 2],
                vec![2, 1, 4],
            ],
            OpKind::Where => vec![vec![2, 3]; 4],
            _ => vec![vec![2, 3]; 3],
        };
        let mut ids: Vec<(TensorId, Shape)> = shapes
            .into_iter()
            .map(|s| (Tensor::zeros([1]).id(), Shape::new(s)))
            .collect();
        let output = ids.pop().unwrap();
        OpEvent {
            phase,
            op: kind,
            grads: vec![phase == Phase::Backward; ids.len()],
            inputs: ids,
            output,
            seconds: 0.0,
        }
    }

    #[test]
    fn every_kind_has_a_forward_line_and_gradients() {
        for &kind in OpKind::ALL {
            let names = HashMap::new();
            let e = event(kind, Phase::Forward);
            let (text, flops) = forward_line(&names, &e, "y[2×3]");
            assert!(text.starts_with("y[2×3] = "), "{kind}: {text}");
            assert!(flops.is_finite() && flops >= 0.0, "{kind}: {flops}");
            let e = event(kind, Phase::Backward);
            for k in 0..e.inputs.len() {
                let (text, flops) = backward_part(&names, &e, k, "grad_y");
                assert!(text.starts_with("grad_? = ") || text.starts_with("grad_?["));
                assert!(flops.is_finite() && flops >= 0.0, "{kind}: {flops}");
            }
        }
    }

    #[test]
    fn fused_ops_count_their_gemm_flops() {
        let names = HashMap::new();
        let forward = |k| forward_line(&names, &event(k, Phase::Forward), "y").1;
        // 2·(matmul output 2·4)·k=3; conv: 2·(1·2·2·2)·(1·3·3); transposed: the
        // input plays the output; LSTM: 2·T·N·4H·H + 10·T·N·H with T=2, N=1, H=2.
        assert_eq!(forward(OpKind::Matmul), 48.0);
        assert_eq!(forward(OpKind::Conv2d), 144.0);
        assert_eq!(forward(OpKind::ConvTranspose2d), 144.0);
        assert_eq!(forward(OpKind::LstmLayer), 2.0 * 2.0 * 8.0 * 2.0 + 40.0);
        let e = event(OpKind::LstmLayer, Phase::Backward);
        let back: Vec<f64> = (0..4)
            .map(|k| backward_part(&names, &e, k, "g").1)
            .collect();
        assert_eq!(back, [104.0, 104.0, 0.0, 0.0]);
    }
}
