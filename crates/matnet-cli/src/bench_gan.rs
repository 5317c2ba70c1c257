//! `matnet bench gan`: adversarial training throughput in D+G steps per
//! second, the loop bench/torch_dcgan.py times in PyTorch.

use std::time::Instant;

use matnet::models::{Arch, Gan, GanConfig, GanTrainer, GanTraining};
use matnet::{Rng, Tensor};

#[derive(clap::Args)]
pub struct GanBench {
    /// gan or dcgan.
    #[arg(long, value_enum, default_value = "dcgan")]
    pub model: Arch,
    /// Both players read a label.
    #[arg(long)]
    pub conditional: bool,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// D+G steps per timed round (after one warm-up round).
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Timed rounds; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Print JSON instead of a line.
    #[arg(long)]
    pub json: bool,
}

/// One D step and one G step per iteration on uniform [-1, 1) "real"
/// images, non-saturating loss, both Adams at 2·10⁻⁴ (β₁ = 0.5): the same
/// work as a training step of `matnet train --model dcgan`.
pub fn run(a: &GanBench, threads: usize) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(
        a.model.is_gan(),
        "bench gan takes --model gan or dcgan, got {}",
        a.model.name()
    );
    anyhow::ensure!(
        a.batch_size >= 1 && a.steps >= 1 && a.rounds >= 1,
        "--batch-size, --steps and --rounds must be at least 1"
    );
    let gan = Gan::new(GanConfig::for_mnist(a.model, a.conditional), 0)?;
    let mut trainer = GanTrainer::new(&gan, GanTraining::default());
    let mut rng = Rng::new(0);
    let n = a.batch_size;
    let real = Tensor::rand_uniform([n, 784], -1.0, 1.0, &mut rng);
    let labels = Tensor::from_vec((0..n).map(|i| (i % 10) as f32).collect(), [n]);
    let mut round = || -> anyhow::Result<f64> {
        let t = Instant::now();
        for _ in 0..a.steps {
            let d = trainer.d_step(&gan, &real, &labels, &mut rng)?;
            trainer.g_step(&gan, &d)?;
        }
        Ok(a.steps as f64 / t.elapsed().as_secs_f64())
    };
    round()?; // warm-up
    let raw = (0..a.rounds)
        .map(|_| round())
        .collect::<anyhow::Result<Vec<f64>>>()?;
    let mut sorted = raw.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let name = a.model.name();
    if !a.json {
        println!(
            "{name} batch {n}, {threads} threads: {median:.2} D+G steps/s (rounds: {raw:.2?})"
        );
    }
    Ok(serde_json::json!({
        "model": name,
        "conditional": a.conditional,
        "batch": n,
        "threads": threads,
        "steps_per_sec": median,
        "rounds": raw,
    }))
}
