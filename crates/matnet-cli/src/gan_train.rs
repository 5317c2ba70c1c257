//! `matnet train --model gan|dcgan`: adversarial training of a generator
//! against a discriminator, with a grid of samples per epoch, a GIF, a chart
//! of both losses and `D(x)`, `D(G(z))`, `metrics.csv` and one checkpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, anyhow, ensure};
use image::GrayImage;
use matnet::data::{Dataset, DatasetKind, Normalize, Split, batches};
use matnet::io::TrainingState;
use matnet::models::{GLoss, Gan, GanConfig, GanTrainer, GanTraining, Generator, Z_DIM};
use matnet::{Module, Rng, Tensor};
use plotters::style::{BLUE, GREEN, RED, RGBColor};
use serde::{Deserialize, Serialize};

use crate::chart::{Panel, Series, plot_panels};
use crate::generate::{generate, grid, save_gif, save_png, to_images, write_idx};
use crate::train::{TrainArgs, bar};

/// Options of `matnet train` that only GANs read.
#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct GanArgs {
    /// gan/dcgan: both players read the class label (joint: always), so `generate --digit`
    /// can ask for a digit.
    #[arg(long)]
    pub conditional: bool,
    /// gan/dcgan/joint: the generator's loss: eq. 9 as written (minimax) or the
    /// non-saturating `−log D(G(z))`.
    #[arg(long, value_enum, default_value = "non-saturating")]
    pub g_loss: GLoss,
    /// gan/dcgan/joint: one-sided label smoothing: real images' target is 1 − S
    /// (`--label-smoothing` alone: 0.1, a target of 0.9).
    #[arg(long, value_name = "S", num_args = 0..=1, default_missing_value = "0.1")]
    pub label_smoothing: Option<f32>,
    /// gan/dcgan/joint: the discriminator's Adam learning rate.
    #[arg(long, default_value_t = 2e-4)]
    pub lr_d: f32,
    /// gan/dcgan/joint: the generator's Adam learning rate.
    #[arg(long, default_value_t = 2e-4)]
    pub lr_g: f32,
    /// gan/dcgan/joint: discriminator steps per generator step.
    #[arg(long, default_value_t = 1)]
    pub d_steps: usize,
    /// Stop at the end of the step during which the run passes M minutes
    /// of wall time, still writing grids, GIF, chart, metrics and checkpoint.
    #[arg(long, value_name = "M")]
    pub max_minutes: Option<f64>,
    /// gan/dcgan/joint: at the end of each epoch also write N generated digits
    /// (the same noise every epoch, labels cycling 0-9) to
    /// `epoch_NNN-idx3-ubyte.gz`, for `matnet gan-score` epoch by epoch.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub epoch_samples: usize,
}

/// Seeds the fixed noise of the per-epoch grids apart from training.
const GRID_SEED: u64 = 0x6121D;
/// Seeds the noise of the per-epoch sample files.
const SAMPLES_SEED: u64 = 0x5A3F1E;
/// Generator steps averaged into one point of the chart.
pub const CHART_EVERY: usize = 25;

/// Means of the step figures over a stretch of training.
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
struct Means {
    d_loss: f64,
    d_real: f64,
    d_fake: f64,
    d_steps: usize,
    g_loss: f64,
    g_steps: usize,
}

impl Means {
    fn d(&self) -> [f64; 3] {
        let n = self.d_steps.max(1) as f64;
        [self.d_loss / n, self.d_real / n, self.d_fake / n]
    }

    fn g(&self) -> f64 {
        self.g_loss / self.g_steps.max(1) as f64
    }
}

/// One row of a GAN run's `metrics.csv`.
#[derive(Clone, Serialize, Deserialize)]
struct EpochRow {
    epoch: usize,
    means: Means,
    seconds: f64,
}

/// Where a GAN run stands, saved in its training state: `done` epochs
/// finished and `step` batches into the next (its shuffling stream saved as
/// it was at that epoch's start), the counters, the chart's points and the
/// rows so far.
#[derive(Serialize, Deserialize)]
struct Progress {
    done: usize,
    step: usize,
    d_count: usize,
    g_count: usize,
    means: Means,
    window: Means,
    points: Vec<(usize, Means)>,
    history: Vec<EpochRow>,
    elapsed: f64,
}

/// The training state of `gan` and both players (`shuffle`: the stream as
/// at the current epoch's start).
fn snapshot(gan: &Gan, trainer: &GanTrainer, shuffle: &Rng, noise: &Rng) -> TrainingState {
    let mut s = TrainingState::new("");
    s.put_module("gan", gan);
    s.put_player("d", &trainer.d);
    s.put_player("g", &trainer.g);
    s.put_rng("shuffle", shuffle);
    s.put_rng("noise", noise);
    s
}

/// Checks the options both adversarial loops read; returns the epochs, the
/// batch size and the real images' target (1 − label smoothing).
pub fn checked_options(args: &TrainArgs) -> anyhow::Result<(usize, usize, f32)> {
    let a = &args.gan;
    let epochs = args.epochs.unwrap_or(20);
    let batch_size = args.batch_size.unwrap_or(64);
    ensure!(epochs > 0, "--epochs must be at least 1");
    ensure!(batch_size > 0, "--batch-size must be at least 1");
    ensure!(a.d_steps > 0, "--d-steps must be at least 1");
    for (name, lr) in [("--lr-d", a.lr_d), ("--lr-g", a.lr_g)] {
        ensure!(
            lr.is_finite() && lr > 0.0,
            "{name} must be a positive number, got {lr}"
        );
    }
    let smoothing = a.label_smoothing.unwrap_or(0.0);
    ensure!(
        (0.0..0.5).contains(&smoothing),
        "--label-smoothing must be in [0, 0.5), got {smoothing}"
    );
    if let Some(m) = a.max_minutes {
        ensure!(
            m.is_finite() && m > 0.0,
            "--max-minutes must be positive, got {m}"
        );
    }
    Ok((epochs, batch_size, 1.0 - smoothing))
}

/// The images a run writes from its generator: a grid per epoch from one
/// fixed noise batch (so the frames of the GIF show the same digits
/// sharpening; conditional: row r asks for digit r), and with
/// `--epoch-samples` an IDX file per epoch (one noise batch too, labels
/// cycling 0-9).
pub struct Snapshots {
    config: GanConfig,
    fixed_z: Tensor,
    fixed_labels: Vec<usize>,
    samples: Option<(Tensor, Vec<usize>)>,
    frames: Vec<GrayImage>,
}

impl Snapshots {
    /// Draws the fixed noise from `seed`.
    pub fn new(config: GanConfig, seed: u64, epoch_samples: usize) -> Snapshots {
        let classes = config.classes;
        let grid_n = if config.conditional {
            classes * 10
        } else {
            100
        };
        let fixed_z = config.noise(grid_n, &mut Rng::new(seed ^ GRID_SEED));
        let fixed_labels = (0..grid_n).map(|i| (i / 10) % classes).collect();
        let samples = (epoch_samples > 0).then(|| {
            let n = epoch_samples;
            let z = config.noise(n, &mut Rng::new(seed ^ SAMPLES_SEED));
            (z, (0..n).map(|i| i % classes).collect::<Vec<usize>>())
        });
        Snapshots {
            config,
            fixed_z,
            fixed_labels,
            samples,
            frames: Vec::new(),
        }
    }

    /// Writes `epoch_NNN.png` (and `epoch_NNN-idx3-ubyte.gz`) into `out`
    /// from `g`, which should be in evaluation mode.
    pub fn epoch(&mut self, g: &Generator, out: &Path, epoch: usize) -> anyhow::Result<()> {
        let c = &self.config;
        let size = c.rows * c.cols;
        let images = to_images(&generate(g, c, &self.fixed_z, &self.fixed_labels), size);
        if let Some((z, labels)) = &self.samples {
            let path = out.join(format!("epoch_{epoch:03}-idx3-ubyte.gz"));
            let samples = to_images(&generate(g, c, z, labels), size);
            write_idx(&path, &samples, c.rows, c.cols, true)?;
        }
        let frame = grid(&images, c.rows, c.cols, 10);
        save_png(&frame, &out.join(format!("epoch_{epoch:03}.png")))?;
        self.frames.push(frame);
        Ok(())
    }

    /// Takes the grids of the first `epochs` epochs back from `out` (a
    /// resumed run's GIF starts with the frames written before).
    pub fn reload(&mut self, out: &Path, epochs: usize) -> anyhow::Result<()> {
        for e in 1..=epochs {
            let path = out.join(format!("epoch_{e:03}.png"));
            let img = image::open(&path)
                .with_context(|| format!("cannot read {} to resume", path.display()))?;
            self.frames.push(img.to_luma8());
        }
        Ok(())
    }

    /// Writes the GIF of every epoch's grid to `path`.
    pub fn gif(&self, path: &Path) -> anyhow::Result<()> {
        save_gif(&self.frames, 500, path)
    }
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let (epochs, batch_size, real_target) = checked_options(args)?;
    let a = &args.gan;

    let kind: DatasetKind = args.dataset.parse()?;
    let dir = crate::locate_data(args.data.as_deref(), kind)?;
    let mut train = Dataset::load(&dir, kind, Split::Train)?;
    if let Some(limit) = args.limit {
        ensure!(limit > 0, "--limit must be at least 1");
        train = train.take(limit.min(train.len()));
    }
    let config = GanConfig {
        arch: args.model,
        conditional: a.conditional,
        z_dim: Z_DIM,
        rows: train.rows(),
        cols: train.cols(),
        classes: train.num_classes(),
        dataset: kind.to_string(),
    };
    let mut gan = Gan::new(config, args.seed)?;
    let mut trainer = GanTrainer::new(
        &gan,
        GanTraining {
            g_loss: a.g_loss,
            real_target,
            lr_d: a.lr_d,
            lr_g: a.lr_g,
        },
    );
    let name = format!(
        "{}{}",
        args.model.name(),
        if a.conditional { "-conditional" } else { "" }
    );
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&name));
    let (mut saver, resumed) = crate::state::Saver::open(&out, args)?;
    println!(
        "training {name} ({} + {} parameters: {}) on {} images of {kind}; {epochs} epochs, batch {batch_size}, \
         {:?} G loss, real target {}, lr D {} G {}, {} D step(s) per G step, seed {}",
        gan.generator.num_parameters(),
        gan.discriminator.num_parameters(),
        gan.describe(),
        train.len(),
        a.g_loss,
        real_target,
        a.lr_d,
        a.lr_g,
        a.d_steps,
        args.seed
    );

    let mut snapshots = Snapshots::new(gan.config.clone(), args.seed, a.epoch_samples);

    let (mut shuffle_rng, mut noise_rng) = (Rng::new(args.seed), Rng::new(args.seed ^ 0x2015E));
    let deadline = a.max_minutes.map(|m| m * 60.0);
    let started = Instant::now();
    let (mut history, mut points) = (Vec::new(), Vec::new());
    let (mut window, mut d_count, mut g_count, mut stop) =
        (Means::default(), 0usize, 0usize, false);
    let (mut done, mut skip, mut resumed_means, mut before) = (0, 0, None, 0.0);
    if let Some(s) = &resumed {
        let p: Progress = saver.progress(s)?;
        s.load_module("gan", &gan)?;
        s.load_player("d", &mut trainer.d)?;
        s.load_player("g", &mut trainer.g)?;
        (shuffle_rng, noise_rng) = (s.rng("shuffle")?, s.rng("noise")?);
        (done, skip, d_count, g_count) = (p.done, p.step, p.d_count, p.g_count);
        (window, points, history, before) = (p.window, p.points, p.history, p.elapsed);
        resumed_means = Some(p.means);
        snapshots.reload(&out, done)?;
        println!("resuming at epoch {}, step {skip}", done + 1);
    }
    let elapsed = || before + started.elapsed().as_secs_f64();
    for epoch in done + 1..=epochs {
        let epoch_bar = (!args.quiet).then(|| bar(train.len() as u64, "images"));
        let mut means = resumed_means.take().unwrap_or_default();
        let epoch_rng = shuffle_rng.clone();
        let all = batches(&train, batch_size, Normalize::Unit, Some(&mut shuffle_rng));
        for (i, b) in all.enumerate().skip(std::mem::take(&mut skip)) {
            // tanh output: real images scaled from [0, 1] to [-1, 1] to match.
            let real = b.images.affine(2.0, -1.0);
            let diverged =
                |e: matnet::Error| anyhow!("{e} in epoch {epoch}; try lower --lr-d/--lr-g");
            let ds = trainer
                .d_step(&gan, &real, &b.labels, &mut noise_rng)
                .map_err(diverged)?;
            d_count += 1;
            for m in [&mut means, &mut window] {
                m.d_loss += ds.loss as f64;
                m.d_real += ds.d_real as f64;
                m.d_fake += ds.d_fake as f64;
                m.d_steps += 1;
            }
            if d_count.is_multiple_of(a.d_steps) {
                let g = trainer.g_step(&gan, &ds).map_err(diverged)?;
                g_count += 1;
                for m in [&mut means, &mut window] {
                    m.g_loss += g as f64;
                    m.g_steps += 1;
                }
                if g_count.is_multiple_of(CHART_EVERY) {
                    points.push((g_count, window));
                    window = Means::default();
                }
            }
            if let Some(bar) = &epoch_bar {
                bar.inc(b.len() as u64);
                let [dl, dr, df] = means.d();
                bar.set_message(format!(
                    "D loss {dl:.3} G loss {:.3} D(x) {dr:.3} D(G(z)) {df:.3}",
                    means.g()
                ));
            }
            if deadline.is_some_and(|d| elapsed() >= d) {
                stop = true;
                break;
            }
            if saver.due() {
                let progress = Progress {
                    done: epoch - 1,
                    step: i + 1,
                    d_count,
                    g_count,
                    means,
                    window,
                    points: points.clone(),
                    history: history.clone(),
                    elapsed: elapsed(),
                };
                saver.save(snapshot(&gan, &trainer, &epoch_rng, &noise_rng), &progress)?;
            }
        }
        if let Some(bar) = epoch_bar {
            bar.finish_and_clear();
        }
        gan.set_training(false);
        snapshots.epoch(&gan.generator, &out, epoch)?;
        gan.set_training(true);
        let row = EpochRow {
            epoch,
            means,
            seconds: elapsed(),
        };
        let [dl, dr, df] = means.d();
        println!(
            "epoch {epoch:>3}: D loss {dl:.4} G loss {:.4} D(x) {dr:.3} D(G(z)) {df:.3} | {} D + {} G steps, {:.1}s{}",
            means.g(),
            means.d_steps,
            means.g_steps,
            row.seconds,
            if stop { " (time limit reached)" } else { "" }
        );
        history.push(row);
        let progress = Progress {
            done: epoch,
            step: 0,
            d_count,
            g_count,
            means: Means::default(),
            window,
            points: points.clone(),
            history: history.clone(),
            elapsed: elapsed(),
        };
        saver.save(
            snapshot(&gan, &trainer, &shuffle_rng, &noise_rng),
            &progress,
        )?;
        if stop {
            break;
        }
    }
    if window.d_steps > 0 {
        points.push((g_count, window));
    }
    let secs = elapsed();
    println!(
        "done in {secs:.1}s: {d_count} D and {g_count} G steps, {:.2} D+G steps/s",
        g_count as f64 / secs
    );

    gan.set_training(false);
    let ckpt = out.join("model.safetensors");
    let mut meta = BTreeMap::new();
    meta.insert("matnet.seed".to_string(), args.seed.to_string());
    meta.insert("matnet.g_steps".to_string(), g_count.to_string());
    gan.save(&ckpt, meta)?;
    let gif = out.join("progress.gif");
    snapshots.gif(&gif)?;
    let csv = out.join("metrics.csv");
    write_metrics(&csv, &history)?;
    let png = out.join("chart.png");
    plot_gan(&png, &points, &format!("{name} on {kind}"))?;
    println!("checkpoint: {}", ckpt.display());
    println!(
        "samples:    {} (one grid per epoch), {}",
        out.join("epoch_*.png").display(),
        gif.display()
    );
    println!("metrics:    {}", csv.display());
    println!("chart:      {}", png.display());
    Ok(())
}

fn plot_gan(path: &Path, points: &[(usize, Means)], title: &str) -> anyhow::Result<()> {
    let series = |name, color: RGBColor, f: fn(&Means) -> f64| Series {
        name,
        color,
        points: points
            .iter()
            .map(|(s, m)| (*s as f32, f(m) as f32))
            .collect(),
    };
    let panels = [
        Panel {
            y_desc: "loss",
            series: vec![
                series("D loss", BLUE, |m| m.d()[0]),
                series("G loss", RED, |m| m.g()),
            ],
        },
        Panel {
            y_desc: "mean D output",
            series: vec![
                series("D(x)", GREEN, |m| m.d()[1]),
                series("D(G(z))", RED, |m| m.d()[2]),
            ],
        },
    ];
    plot_panels(path, title, "generator step", &panels)
}

fn write_metrics(path: &Path, rows: &[EpochRow]) -> anyhow::Result<()> {
    crate::chart::write_csv(
        path,
        "epoch,d_loss,g_loss,d_real,d_fake,d_steps,g_steps,seconds",
        rows.iter().map(|r| {
            let [dl, dr, df] = r.means.d();
            format!(
                "{},{dl:.6},{:.6},{dr:.6},{df:.6},{},{},{:.3}",
                r.epoch,
                r.means.g(),
                r.means.d_steps,
                r.means.g_steps,
                r.seconds
            )
        }),
    )
}
