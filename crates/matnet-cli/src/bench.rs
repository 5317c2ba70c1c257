//! `matnet bench`: kernel throughput, beside a naive reference in the same run.

use std::time::Instant;

use clap::Subcommand;
use matnet::backend::cpu::gemm;
use matnet::{Rng, Tensor};
use serde::Serialize;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Matrix-product GFLOP/s (2·m·n·k / time) for square sizes and the MNIST
    /// MLP training shapes, beside a naive triple loop.
    Matmul {
        /// Thread counts to measure, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        threads: Vec<usize>,
        /// Print JSON (for bench/torch_matmul.py --matnet) instead of a table.
        #[arg(long)]
        json: bool,
        /// Skip the naive loop reference.
        #[arg(long)]
        no_naive: bool,
        /// Only the product with this name (e.g. square_512, mlp1_gw).
        #[arg(long)]
        only: Option<String>,
    },
    /// Training throughput (images/s) of an MLP 784-256-128-10 with SGD on
    /// MNIST-shaped synthetic data; bench/torch_mlp.py runs the same loop in PyTorch.
    Mlp {
        /// Batch sizes, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "64,256")]
        batch_sizes: Vec<usize>,
        /// Timed epochs per batch size (after one warm-up epoch); the median is reported.
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Images per epoch.
        #[arg(long, default_value_t = 60_000)]
        images: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// One product: C[m×n] = op(A)·op(B), `ta`/`tb` when the operand is a
/// transposed view (passed to the kernel by strides).
#[derive(Clone, Serialize)]
struct Case {
    name: String,
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
}

fn cases() -> Vec<Case> {
    let mut v: Vec<Case> = [64, 128, 256, 512, 1024, 2048]
        .into_iter()
        .map(|s| Case {
            name: format!("square_{s}"),
            m: s,
            k: s,
            n: s,
            ta: false,
            tb: false,
        })
        .collect();
    // Y = X·W for a batch X [B×784] and W [784×H]; the gradients are
    // grad_W = Xᵀ·G (A transposed) and grad_X = G·Wᵀ (B transposed).
    for (tag, b, h) in [("mlp1", 64, 256), ("mlp2", 256, 128)] {
        v.push(Case {
            name: format!("{tag}_fwd"),
            m: b,
            k: 784,
            n: h,
            ta: false,
            tb: false,
        });
        v.push(Case {
            name: format!("{tag}_gw"),
            m: 784,
            k: b,
            n: h,
            ta: true,
            tb: false,
        });
        v.push(Case {
            name: format!("{tag}_gx"),
            m: b,
            k: h,
            n: 784,
            ta: false,
            tb: true,
        });
    }
    v
}

#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    case: Case,
    threads: usize,
    gflops: f64,
    naive_gflops: Option<f64>,
}

/// Median seconds per call over enough calls to fill ~0.3 s.
fn time_it(mut f: impl FnMut()) -> f64 {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || start.elapsed().as_secs_f64() < 0.3 {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Matmul {
            threads,
            json,
            no_naive,
            only,
        } => bench_matmul(threads, json, no_naive, only.as_deref()),
        BenchCommand::Mlp {
            batch_sizes,
            epochs,
            images,
            json,
        } => bench_mlp(&batch_sizes, epochs, images, json),
    }
}

#[derive(Serialize)]
struct MlpRow {
    batch: usize,
    threads: usize,
    images_per_sec: f64,
    epochs: Vec<f64>,
}

/// The same loop as bench/torch_mlp.py: contiguous batches sliced from one
/// pre-generated tensor (views, no copies), forward, cross-entropy,
/// backward, SGD step.
fn bench_mlp(
    batch_sizes: &[usize],
    epochs: usize,
    images: usize,
    json: bool,
) -> anyhow::Result<()> {
    use matnet::nn::loss::cross_entropy;
    use matnet::nn::{Linear, Module, Relu, Sequential};
    use matnet::optim::{Optimizer, Sgd};
    anyhow::ensure!(
        epochs >= 1 && images >= 1,
        "--epochs and --images must be at least 1"
    );
    anyhow::ensure!(
        batch_sizes.iter().all(|&b| b >= 1),
        "--batch-sizes values must be at least 1"
    );
    let mut rng = Rng::new(0);
    let x = Tensor::rand_uniform([images, 784], 0.0, 1.0, &mut rng);
    let y = Tensor::from_vec(
        (0..images).map(|_| rng.below(10) as f32).collect(),
        [images],
    );
    let threads = matnet::backend::cpu::pool::num_threads();
    let mut rows = Vec::new();
    for &b in batch_sizes {
        let net = Sequential::new()
            .append(Linear::new(784, 256, &mut rng))
            .append(Relu)
            .append(Linear::new(256, 128, &mut rng))
            .append(Relu)
            .append(Linear::new(128, 10, &mut rng));
        let mut opt = Sgd::new(net.parameters(), 0.01);
        let mut epoch = || {
            let t = Instant::now();
            let mut start = 0;
            while start < images {
                let n = b.min(images - start);
                let logits = net.forward(&x.narrow(0, start, n));
                let loss = cross_entropy(&logits, &y.narrow(0, start, n));
                opt.step(&loss.backward());
                start += n;
            }
            images as f64 / t.elapsed().as_secs_f64()
        };
        epoch(); // warm-up
        let raw: Vec<f64> = (0..epochs).map(|_| epoch()).collect();
        let mut sorted = raw.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        if !json {
            println!("batch {b:>4}, {threads} threads: {median:>8.0} images/s (epochs: {raw:.0?})");
        }
        rows.push(MlpRow {
            batch: b,
            threads,
            images_per_sec: median,
            epochs: raw,
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(())
}

fn bench_matmul(
    threads: Vec<usize>,
    json: bool,
    no_naive: bool,
    only: Option<&str>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        threads.iter().all(|&t| t >= 1),
        "--threads values must be at least 1"
    );
    let mut rng = Rng::new(0);
    let mut rows = Vec::new();
    if !json {
        println!(
            "{:<12} {:>16} {:>3} {:>10} {:>10} {:>8}",
            "name", "m×k×n", "thr", "GFLOP/s", "naive", "ratio"
        );
    }
    let selected: Vec<Case> = cases()
        .into_iter()
        .filter(|c| only.is_none_or(|o| c.name == o))
        .collect();
    anyhow::ensure!(
        !selected.is_empty(),
        "no product named {:?}",
        only.unwrap_or("")
    );
    for c in selected {
        // Stored shapes: a transposed operand is kept as its transpose, row-major.
        let a = Tensor::randn([c.m * c.k], 0.0, 1.0, &mut rng).to_vec();
        let b = Tensor::randn([c.k * c.n], 0.0, 1.0, &mut rng).to_vec();
        let mut out = vec![0.0f32; c.m * c.n];
        let (rsa, csa) = if c.ta {
            (1, c.m as isize)
        } else {
            (c.k as isize, 1)
        };
        let (rsb, csb) = if c.tb {
            (1, c.k as isize)
        } else {
            (c.n as isize, 1)
        };
        let flops = 2.0 * (c.m * c.n * c.k) as f64;
        // The naive loop gets plain row-major operands (its best case); one
        // run is enough once a product takes seconds.
        let naive_gflops = (!no_naive && c.m * c.n * c.k <= 1 << 30).then(|| {
            let (ar, br) = (vec![1.0f32; c.m * c.k], vec![1.0f32; c.k * c.n]);
            let mut cr = vec![0.0f32; c.m * c.n];
            let t = Instant::now();
            // SAFETY: row-major buffers of exactly m·k, k·n and m·n values.
            unsafe {
                gemm::naive_sgemm(
                    c.m,
                    c.n,
                    c.k,
                    ar.as_ptr(),
                    c.k as isize,
                    1,
                    br.as_ptr(),
                    c.n as isize,
                    1,
                    cr.as_mut_ptr(),
                    c.n as isize,
                    1,
                    false,
                )
            };
            std::hint::black_box(&cr);
            flops / t.elapsed().as_secs_f64() / 1e9
        });
        for &t in &threads {
            let secs = time_it(|| unsafe {
                // SAFETY: buffers sized m·k, k·n, m·n for the strides above.
                gemm::sgemm(
                    c.m,
                    c.n,
                    c.k,
                    a.as_ptr(),
                    rsa,
                    csa,
                    b.as_ptr(),
                    rsb,
                    csb,
                    out.as_mut_ptr(),
                    c.n as isize,
                    1,
                    false,
                    t,
                )
            });
            let gflops = flops / secs / 1e9;
            if !json {
                let naive_s = naive_gflops.map_or("-".to_string(), |g| format!("{g:.2}"));
                let ratio = naive_gflops.map_or("-".to_string(), |g| format!("{:.0}×", gflops / g));
                println!(
                    "{:<12} {:>16} {:>3} {:>10.1} {:>10} {:>8}",
                    c.name,
                    format!("{}×{}×{}", c.m, c.k, c.n),
                    t,
                    gflops,
                    naive_s,
                    ratio
                );
            }
            rows.push(Row {
                case: c.clone(),
                threads: t,
                gflops,
                naive_gflops,
            });
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(())
}
