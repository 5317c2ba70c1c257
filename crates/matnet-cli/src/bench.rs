//! `matnet bench`: kernel throughput, beside a naive reference in the same run.

use std::time::Instant;

use clap::Subcommand;
use matnet::backend::kernels as gemm;
use matnet::nn::loss::cross_entropy;
use matnet::train::Player;
use matnet::{Module, Rng, Tensor};
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
    /// Training throughput of a CLI model (lenet, cnn, ...).
    Train(TrainBench),
    /// GAN training throughput in D+G steps/s; bench/torch_dcgan.py runs
    /// the same loop in PyTorch.
    Gan(crate::bench_gan::GanBench),
    /// Convolution GFLOP/s (forward, input gradient, weight gradient) for
    /// the `cnn` and LeNet-5 layer shapes at batch 64.
    Conv {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Training throughput (images/s) of a CLI model (`--model lenet`, `cnn`,
/// ...) with Adam (lr 1e-3) on MNIST-shaped synthetic data;
/// bench/torch_train.py runs the same models and loop in PyTorch.
#[derive(clap::Args)]
pub struct TrainBench {
    /// Architecture, as `matnet train --model`.
    #[arg(long, value_enum, default_value = "cnn")]
    pub model: matnet::models::Arch,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Timed epochs (after one warm-up epoch); the median is reported.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Images per epoch.
    #[arg(long, default_value_t = 6400)]
    pub images: usize,
    /// Print JSON instead of a line.
    #[arg(long)]
    pub json: bool,
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
    /// GEMM microkernel that ran (`portable`, `avx2`, `avx512`).
    kernel: &'static str,
    gflops: f64,
    /// One core's measured FMA peak at the kernel's width (none for the
    /// portable kernel).
    peak_gflops_per_core: Option<f64>,
    /// One core running the kernel's full tile on L1-resident panels.
    tile_ceiling_gflops_per_core: Option<f64>,
    naive_gflops: Option<f64>,
}

/// The machine a benchmark ran on, printed before every `bench` table and
/// stored under `"cpu"` in every `--json` output, so a figure never travels
/// without the CPU and kernel that produced it.
#[derive(Serialize)]
pub struct CpuInfo {
    /// `/proc/cpuinfo`'s "model name" (Linux), else the target architecture.
    pub model: String,
    /// SIMD features of this CPU that matnet's kernels (or PyTorch's) use.
    pub features: Vec<&'static str>,
    /// The GEMM microkernel products of 24 rows and more run on
    /// (`MATNET_KERNEL` or the best available).
    pub kernel: &'static str,
    /// Threads the kernels use (`MATNET_NUM_THREADS` or all cores).
    pub threads: usize,
}

/// Detects [`CpuInfo`]; a bad `MATNET_KERNEL` is the error.
pub fn cpu_info() -> anyhow::Result<CpuInfo> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let model = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string());
    #[allow(unused_mut)]
    let mut features = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::is_x86_feature_detected as has;
        for (name, on) in [
            ("avx2", has!("avx2")),
            ("fma", has!("fma")),
            ("avx512f", has!("avx512f")),
            ("avx512bw", has!("avx512bw")),
            ("avx512vl", has!("avx512vl")),
        ] {
            if on {
                features.push(name);
            }
        }
        // is_x86_feature_detected!("amx-tile") is unstable (Rust 1.95): the
        // kernel's flag list says whether the OS enabled AMX tiles.
        let flags = field("flags").unwrap_or_default();
        if flags.split_whitespace().any(|f| f == "amx_tile") {
            features.push("amx-tile");
        }
    }
    Ok(CpuInfo {
        model,
        features,
        kernel: gemm::try_gemm_kernel().map_err(anyhow::Error::msg)?.name(),
        threads: gemm::num_threads(),
    })
}

/// The header line every `bench` subcommand prints before its table.
fn print_cpu(cpu: &CpuInfo) {
    println!(
        "cpu: {} [{}], gemm kernel {}, {} threads",
        cpu.model,
        cpu.features.join(" "),
        cpu.kernel,
        cpu.threads
    );
}

/// Prints `result` as JSON with the machine under `"cpu"`: an object gains
/// the field, a list of rows becomes `{"cpu": ..., "rows": [...]}`.
fn print_json(cpu: &CpuInfo, result: impl Serialize) -> anyhow::Result<()> {
    let cpu = serde_json::to_value(cpu)?;
    let out = match serde_json::to_value(result)? {
        serde_json::Value::Object(mut m) => {
            m.insert("cpu".to_string(), cpu);
            serde_json::Value::Object(m)
        }
        rows => serde_json::json!({ "cpu": cpu, "rows": rows }),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
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
    let cpu = cpu_info()?;
    let json = match &cmd {
        BenchCommand::Matmul { json, .. }
        | BenchCommand::Mlp { json, .. }
        | BenchCommand::Conv { json } => *json,
        BenchCommand::Train(a) => a.json,
        BenchCommand::Gan(a) => a.json,
    };
    if !json {
        print_cpu(&cpu);
    }
    let result = match cmd {
        BenchCommand::Matmul {
            threads,
            no_naive,
            only,
            ..
        } => bench_matmul(threads, json, no_naive, only.as_deref())?,
        BenchCommand::Mlp {
            batch_sizes,
            epochs,
            images,
            ..
        } => bench_mlp(&batch_sizes, epochs, images, json)?,
        BenchCommand::Train(args) => bench_train(&args)?,
        BenchCommand::Gan(args) => crate::bench_gan::run(&args, cpu.threads)?,
        BenchCommand::Conv { .. } => bench_conv(json)?,
    };
    if json {
        print_json(&cpu, result)?;
    }
    Ok(())
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
) -> anyhow::Result<serde_json::Value> {
    use matnet::nn::{Linear, Module, Relu, Sequential};
    use matnet::optim::Sgd;
    anyhow::ensure!(
        epochs >= 1 && images >= 1,
        "--epochs and --images must be at least 1"
    );
    anyhow::ensure!(
        batch_sizes.iter().all(|&b| b >= 1),
        "--batch-sizes values must be at least 1"
    );
    let mut rng = Rng::new(0);
    let (x, y) = synthetic_mnist(images, &mut rng);
    let threads = matnet::backend::kernels::num_threads();
    let mut rows = Vec::new();
    for &b in batch_sizes {
        let net = Sequential::new()
            .append(Linear::new(784, 256, &mut rng))
            .append(Relu)
            .append(Linear::new(256, 128, &mut rng))
            .append(Relu)
            .append(Linear::new(128, 10, &mut rng));
        let mut player = Player::new(net.parameters(), |p| Box::new(Sgd::new(p, 0.01)));
        let (median, raw) = throughput(&|x| net.forward(x), &mut player, &x, &y, b, epochs)?;
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
    Ok(serde_json::to_value(rows)?)
}

/// `images` uniform [0, 1) MNIST-shaped rows `[images, 784]` and random labels.
fn synthetic_mnist(images: usize, rng: &mut Rng) -> (Tensor, Tensor) {
    let x = Tensor::rand_uniform([images, 784], 0.0, 1.0, rng);
    let y = Tensor::from_vec(
        (0..images).map(|_| rng.below(10) as f32).collect(),
        [images],
    );
    (x, y)
}

/// One warm-up epoch, then `epochs` timed ones over contiguous batches of
/// `x` (views, no copies): forward, then the library's training step
/// (cross-entropy, backward, optimizer step). Returns the median images/s
/// and every epoch's figure.
fn throughput(
    forward: &dyn Fn(&Tensor) -> Tensor,
    player: &mut Player,
    x: &Tensor,
    y: &Tensor,
    batch: usize,
    epochs: usize,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let images = x.dims()[0];
    let mut epoch = || -> anyhow::Result<f64> {
        let t = Instant::now();
        let mut start = 0;
        while start < images {
            let n = batch.min(images - start);
            let logits = forward(&x.narrow(0, start, n));
            player.step(&cross_entropy(&logits, &y.narrow(0, start, n)))?;
            start += n;
        }
        Ok(images as f64 / t.elapsed().as_secs_f64())
    };
    epoch()?; // warm-up
    let raw = (0..epochs)
        .map(|_| epoch())
        .collect::<anyhow::Result<Vec<f64>>>()?;
    let mut sorted = raw.clone();
    sorted.sort_by(f64::total_cmp);
    Ok((sorted[sorted.len() / 2], raw))
}

/// The same loop as bench/torch_train.py for one CLI model, Adam lr 1e-3,
/// training mode (dropout active).
fn bench_train(a: &TrainBench) -> anyhow::Result<serde_json::Value> {
    use matnet::models::{Classifier, ModelConfig};
    use matnet::optim::Adam;
    anyhow::ensure!(
        a.epochs >= 1 && a.images >= 1 && a.batch_size >= 1,
        "--epochs, --images and --batch-size must be at least 1"
    );
    let mut rng = Rng::new(0);
    let (x, y) = synthetic_mnist(a.images, &mut rng);
    let config = ModelConfig::for_mnist(a.model);
    let model = Classifier::new(config, 0)?;
    let mut player = Player::new(model.net.parameters(), |p| Box::new(Adam::new(p, 1e-3)));
    let (median, raw) = throughput(
        &|x| model.logits(x),
        &mut player,
        &x,
        &y,
        a.batch_size,
        a.epochs,
    )?;
    let threads = matnet::backend::kernels::num_threads();
    if !a.json {
        println!(
            "{} batch {}, {threads} threads: {median:.0} images/s (epochs: {raw:.0?})",
            a.model.name(),
            a.batch_size
        );
    }
    Ok(serde_json::json!({
        "model": a.model.name(),
        "batch": a.batch_size,
        "threads": threads,
        "images_per_sec": median,
        "epochs": raw,
    }))
}

/// Per-layer convolution kernels: `2·N·O·(C/g)·kh·kw·OH·OW` flops per pass
/// for the forward pass, the input gradient and the weight gradient.
fn bench_conv(json: bool) -> anyhow::Result<serde_json::Value> {
    use matnet::backend::kernels as conv;
    use matnet::ops::conv::{Conv2dParams, ConvGeom, ConvShape};
    let mut rng = Rng::new(0);
    // (name, [N, C, H, W], [O, kh], padding, stride); the DCGAN
    // discriminator's layers are also its generator's transposed ones
    // (whose forward pass is grad_x here).
    let layers = [
        ("cnn.conv1", [64, 1, 28, 28], [32, 3], 0, 1),
        ("cnn.conv2", [64, 32, 26, 26], [64, 3], 0, 1),
        ("lenet.conv1", [64, 1, 28, 28], [6, 5], 2, 1),
        ("lenet.conv2", [64, 6, 14, 14], [16, 5], 0, 1),
        ("dcgan.conv1", [64, 1, 28, 28], [64, 4], 1, 2),
        ("dcgan.conv2", [64, 64, 14, 14], [128, 4], 1, 2),
    ];
    if !json {
        println!(
            "{:<12} {:>16} {:>8} {:>9} {:>9} {:>9}   (GFLOP/s, {} threads)",
            "layer",
            "input",
            "kernel",
            "fwd",
            "grad_x",
            "grad_w",
            matnet::backend::kernels::num_threads()
        );
    }
    let mut rows = Vec::new();
    for (name, [n, c, h, w], [o, k], pad, stride) in layers {
        let p = Conv2dParams {
            padding: (pad, pad),
            stride: (stride, stride),
            ..Default::default()
        };
        let s = ConvShape {
            n,
            c,
            o,
            groups: 1,
            geom: ConvGeom::new((h, w), (k, k), &p),
        };
        let x = Tensor::randn([n * c * h * w], 0.0, 1.0, &mut rng).to_vec();
        let wt = Tensor::randn([o * c * k * k], 0.0, 0.1, &mut rng).to_vec();
        let gy = Tensor::randn([n * o * s.col_len()], 0.0, 1.0, &mut rng).to_vec();
        let flops = 2.0 * (n * o * s.col_rows() * s.col_len()) as f64;
        let g = |secs: f64| flops / secs / 1e9;
        let fwd = g(time_it(|| {
            std::hint::black_box(conv::conv2d_forward(&x, &wt, None, &s));
        }));
        let gx = g(time_it(|| {
            std::hint::black_box(conv::conv2d_backward_data(&gy, &wt, &s));
        }));
        let gw = g(time_it(|| {
            std::hint::black_box(conv::conv2d_backward_weight(&x, &gy, &s, false));
        }));
        if !json {
            println!(
                "{name:<12} {:>16} {:>8} {fwd:>9.1} {gx:>9.1} {gw:>9.1}",
                format!("{:?}", [n, c, h, w]),
                format!("{o}×{k}×{k}")
            );
        }
        rows.push(serde_json::json!({
            "layer": name, "input": [n, c, h, w], "out_channels": o, "kernel": k,
            "fwd_gflops": fwd, "grad_x_gflops": gx, "grad_w_gflops": gw,
        }));
    }
    Ok(serde_json::Value::Array(rows))
}

fn bench_matmul(
    threads: Vec<usize>,
    json: bool,
    no_naive: bool,
    only: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(
        threads.iter().all(|&t| t >= 1),
        "--threads values must be at least 1"
    );
    let mut rng = Rng::new(0);
    let mut rows = Vec::new();
    // Read once per process (MATNET_KERNEL or CPU detection); a forced
    // kernel the CPU lacks panics here, before any timing.
    let gemm_kernel = gemm::try_gemm_kernel().map_err(anyhow::Error::msg)?;
    let kernel = gemm_kernel.name();
    // One core's multiply-add peak at the kernel's width, measured now (the
    // clock it runs at is this moment's): each product's share of it.
    let peak = gemm::fma_peak_gflops(gemm_kernel, 3);
    // The microkernel alone on L1-resident panels: what a product can reach.
    let ceiling = gemm::tile_ceiling_gflops(gemm_kernel, 3);
    if !json {
        if let Some(p) = peak {
            println!("one core's FMA peak at this width: {p:.1} GFLOP/s (independent FMA chains)");
        }
        if let Some(t) = ceiling {
            let share = peak.map_or(String::new(), |p| {
                format!(" = {:.0}% of that peak", 100.0 * t / p)
            });
            println!("the {kernel} tile alone on L1-resident panels: {t:.1} GFLOP/s{share}");
        }
        println!(
            "{:<12} {:>16} {:>3} {:>10} {:>7} {:>10} {:>8}",
            "name", "m×k×n", "thr", "GFLOP/s", "% peak", "naive", "ratio"
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
                let share = peak.map_or("-".to_string(), |p| {
                    format!("{:.0}%", 100.0 * gflops / (p * t as f64))
                });
                println!(
                    "{:<12} {:>16} {:>3} {:>10.1} {:>7} {:>10} {:>8}",
                    c.name,
                    format!("{}×{}×{}", c.m, c.k, c.n),
                    t,
                    gflops,
                    share,
                    naive_s,
                    ratio
                );
            }
            rows.push(Row {
                case: c.clone(),
                threads: t,
                kernel,
                gflops,
                peak_gflops_per_core: peak,
                tile_ceiling_gflops_per_core: ceiling,
                naive_gflops,
            });
        }
    }
    Ok(serde_json::to_value(rows)?)
}
