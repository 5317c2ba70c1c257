//! The training loop every adversarial model shares (`gan`, `dcgan`,
//! `joint`): shuffled batches, `--d-steps` discriminator steps per
//! generator step, the chart's running means, `--max-minutes`, a grid (and
//! with `--epoch-samples` an IDX file) per epoch, and the training state
//! saved at each epoch's end and every `--save-every` minutes, from which
//! `--resume` continues bit for bit. With `--g-ema`, a moving average of the
//! generator's weights follows every generator step; the grids and the
//! final checkpoint come from the average, the training state keeps both.
//! What differs between the models (their steps, figures and state) is a
//! [`Contest`].

use std::ops::AddAssign;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, anyhow, ensure};
use image::GrayImage;
use matnet::data::{Dataset, Normalize, batches};
use matnet::io::TrainingState;
use matnet::models::{GanConfig, Generator};
use matnet::train::{Ema, Player};
use matnet::{Module, Rng, Tensor};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::generate::{generate, grid, save_gif, save_png, to_images, write_idx};
use crate::state::Saver;
use crate::train::{TrainArgs, bar};

/// Seeds the fixed noise of the per-epoch grids apart from training.
const GRID_SEED: u64 = 0x6121D;
/// Seeds the noise of the per-epoch sample files.
const SAMPLES_SEED: u64 = 0x5A3F1E;
/// Seeds the training noise apart from the shuffling.
const NOISE_SEED: u64 = 0x2015E;
/// Generator steps averaged into one point of the chart.
pub const CHART_EVERY: usize = 25;

/// One adversarial model with its trainer, as [`train`] drives it.
pub trait Contest {
    /// Step figures summed over a stretch of training (an epoch, a point of
    /// the chart); each step returns its own, added in.
    type Means: Copy + Default + AddAssign + Serialize + DeserializeOwned;
    /// What an epoch's row holds besides its means (joint: test accuracy).
    type Extra: Clone + Serialize + DeserializeOwned;

    /// One discriminator step on a real batch scaled to [-1, 1]; keeps what
    /// the next generator step needs.
    fn d_step(
        &mut self,
        real: &Tensor,
        labels: &Tensor,
        noise: &mut Rng,
    ) -> matnet::Result<Self::Means>;
    /// Generator step number `step` (from 0, over the whole run, resumed
    /// runs included) against the last discriminator step.
    fn g_step(&mut self, step: usize) -> matnet::Result<Self::Means>;
    /// The discriminator and generator steps counted in `m`.
    fn steps(m: &Self::Means) -> (usize, usize);
    /// The progress bar's message.
    fn status(m: &Self::Means) -> String;
    /// The epoch's figures beyond its means, the model in evaluation mode.
    fn extra(&self) -> Self::Extra;
    /// The epoch's figures as the line `epoch N:` prints them.
    fn line(m: &Self::Means, extra: &Self::Extra) -> String;
    /// The generator, for the grids.
    fn generator(&self) -> &Generator;
    /// The whole model and its two players (D's, then G's): what the
    /// training state holds, the model under [`Contest::NAME`].
    fn parts(&mut self) -> (&mut dyn Module, &mut Player, &mut Player);
    /// The model's name in the training state.
    const NAME: &'static str;
}

/// One row of `metrics.csv`: an epoch's means, its extra figures and the
/// wall time at its end.
#[derive(Clone, Serialize, Deserialize)]
pub struct EpochRow<M, E> {
    pub epoch: usize,
    pub means: M,
    pub extra: E,
    pub seconds: f64,
}

/// Where a run stands, saved in its training state: `done` epochs finished
/// and `step` batches into the next (its shuffling stream saved as it was
/// at that epoch's start), the counters, the chart's points and the rows.
#[derive(Serialize, Deserialize)]
#[serde(bound = "M: Serialize + DeserializeOwned, E: Serialize + DeserializeOwned")]
struct Progress<M, E> {
    done: usize,
    step: usize,
    d_count: usize,
    g_count: usize,
    means: M,
    window: M,
    points: Vec<(usize, M)>,
    history: Vec<EpochRow<M, E>>,
    elapsed: f64,
}

/// What a finished (or time-limited) run measured.
pub struct Run<C: Contest> {
    pub history: Vec<EpochRow<C::Means, C::Extra>>,
    /// Means over every [`CHART_EVERY`] generator steps, by step count.
    pub points: Vec<(usize, C::Means)>,
    /// Generator steps taken.
    pub g_count: usize,
}

/// Checks the options every adversarial loop reads; returns the epochs, the
/// batch size and the real images' target (1 − label smoothing).
pub fn checked_options(args: &TrainArgs) -> anyhow::Result<(usize, usize, f32)> {
    let a = &args.gan;
    let epochs = args.epochs.unwrap_or(20);
    let batch_size = args.batch_size.unwrap_or(64);
    ensure!(epochs > 0, "--epochs must be at least 1");
    ensure!(batch_size > 0, "--batch-size must be at least 1");
    ensure!(a.d_steps > 0, "--d-steps must be at least 1");
    ensure!(
        a.lr_drop_factor.is_finite() && a.lr_drop_factor > 0.0,
        "--lr-drop-factor must be a positive number, got {}",
        a.lr_drop_factor
    );
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
    if let Some(d) = a.g_ema {
        ensure!(
            (0.0..1.0).contains(&d),
            "--g-ema must be in [0, 1), got {d}"
        );
    }
    if let Some(m) = a.max_minutes {
        ensure!(
            m.is_finite() && m > 0.0,
            "--max-minutes must be positive, got {m}"
        );
    }
    Ok((epochs, batch_size, 1.0 - smoothing))
}

/// Trains `c` on `data` for `epochs` epochs of `batch_size` (from `args`:
/// `--d-steps`, `--max-minutes`, `--epoch-samples`, `--seed`, `--quiet`),
/// writing grids, sample files and the training state into `out` through
/// `saver`; with `resumed`, continues from that state. Returns the figures
/// and writes the GIF; the caller writes checkpoint, metrics and chart.
#[allow(clippy::too_many_arguments)]
pub fn train<C: Contest>(
    c: &mut C,
    config: GanConfig,
    args: &TrainArgs,
    data: &Dataset,
    (epochs, batch_size): (usize, usize),
    out: &Path,
    saver: &mut Saver,
    resumed: Option<TrainingState>,
) -> anyhow::Result<Run<C>> {
    let a = &args.gan;
    let mut snapshots = Snapshots::new(config, args.seed, a.epoch_samples);
    let (mut shuffle_rng, mut noise_rng) = (Rng::new(args.seed), Rng::new(args.seed ^ NOISE_SEED));
    let deadline = a.max_minutes.map(|m| m * 60.0);
    let started = Instant::now();
    let (mut history, mut points) = (Vec::new(), Vec::new());
    let (mut window, mut d_count, mut g_count, mut stop) =
        (C::Means::default(), 0usize, 0usize, false);
    let (mut done, mut skip, mut resumed_means, mut before) = (0, 0, None, 0.0);
    if let Some(s) = &resumed {
        let p: Progress<C::Means, C::Extra> = saver.progress(s)?;
        let (model, d, g) = c.parts();
        s.load_module(C::NAME, model)?;
        s.load_player("d", d)?;
        s.load_player("g", g)?;
        (shuffle_rng, noise_rng) = (s.rng("shuffle")?, s.rng("noise")?);
        (done, skip, d_count, g_count) = (p.done, p.step, p.d_count, p.g_count);
        (window, points, history, before) = (p.window, p.points, p.history, p.elapsed);
        resumed_means = Some(p.means);
        snapshots.reload(out, done)?;
        println!("resuming at epoch {}, step {skip}", done + 1);
    }
    let mut ema = a
        .g_ema
        .map(|decay| Ema::new(c.generator(), decay))
        .transpose()?;
    if let (Some(s), Some(ema)) = (&resumed, &mut ema) {
        s.load_ema(EMA_NAME, ema)?;
    }
    let elapsed = || before + started.elapsed().as_secs_f64();
    // The training state at a step boundary (`shuffle`: the stream as at
    // the current epoch's start).
    let snapshot = |c: &mut C, ema: &Option<Ema>, shuffle: &Rng, noise: &Rng| {
        let mut s = TrainingState::new("");
        let (model, d, g) = c.parts();
        s.put_module(C::NAME, model);
        s.put_player("d", d);
        s.put_player("g", g);
        if let Some(ema) = ema {
            s.put_ema(EMA_NAME, ema);
        }
        s.put_rng("shuffle", shuffle);
        s.put_rng("noise", noise);
        s
    };
    for epoch in done + 1..=epochs {
        let (lr_d, lr_g) = a.lrs_at(epoch);
        let (_, d, g) = c.parts();
        d.set_lr(lr_d);
        g.set_lr(lr_g);
        let epoch_bar = (!args.quiet).then(|| bar(data.len() as u64, "images"));
        let mut means = resumed_means.take().unwrap_or_default();
        let epoch_rng = shuffle_rng.clone();
        let all = batches(data, batch_size, Normalize::Unit, Some(&mut shuffle_rng));
        for (i, b) in all.enumerate().skip(std::mem::take(&mut skip)) {
            let diverged =
                |e: matnet::Error| anyhow!("{e} in epoch {epoch}; try lower --lr-d/--lr-g");
            // tanh output: real images scaled from [0, 1] to [-1, 1] to match.
            let real = b.images.affine(2.0, -1.0);
            let d = c
                .d_step(&real, &b.labels, &mut noise_rng)
                .map_err(diverged)?;
            means += d;
            window += d;
            d_count += 1;
            if d_count.is_multiple_of(a.d_steps) {
                let g = c.g_step(g_count).map_err(diverged)?;
                if let Some(ema) = &mut ema {
                    ema.update(c.generator());
                }
                means += g;
                window += g;
                g_count += 1;
                if g_count.is_multiple_of(CHART_EVERY) {
                    points.push((g_count, std::mem::take(&mut window)));
                }
            }
            if let Some(bar) = &epoch_bar {
                bar.inc(b.len() as u64);
                bar.set_message(C::status(&means));
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
                saver.save(snapshot(c, &ema, &epoch_rng, &noise_rng), &progress)?;
            }
        }
        if let Some(bar) = epoch_bar {
            bar.finish_and_clear();
        }
        c.parts().0.set_training(false);
        with_average(c, &mut ema, |c| snapshots.epoch(c.generator(), out, epoch))?;
        let extra = c.extra();
        c.parts().0.set_training(true);
        let seconds = elapsed();
        let (ds, gs) = C::steps(&means);
        println!(
            "epoch {epoch:>3}: {} | {ds} D + {gs} G steps, {seconds:.1}s{}",
            C::line(&means, &extra),
            if stop { " (time limit reached)" } else { "" }
        );
        history.push(EpochRow {
            epoch,
            means,
            extra,
            seconds,
        });
        let progress = Progress {
            done: epoch,
            step: 0,
            d_count,
            g_count,
            means: C::Means::default(),
            window,
            points: points.clone(),
            history: history.clone(),
            elapsed: elapsed(),
        };
        saver.save(snapshot(c, &ema, &shuffle_rng, &noise_rng), &progress)?;
        if stop {
            break;
        }
    }
    if C::steps(&window).0 > 0 {
        points.push((g_count, window));
    }
    let seconds = elapsed();
    println!(
        "done in {seconds:.1}s: {d_count} D and {g_count} G steps, {:.2} D+G steps/s",
        g_count as f64 / seconds
    );
    c.parts().0.set_training(false);
    // The caller saves the model as it is now: with the averaged generator.
    if let Some(ema) = &mut ema {
        ema.swap(c.generator());
    }
    snapshots.gif(&out.join("progress.gif"))?;
    Ok(Run {
        history,
        points,
        g_count,
    })
}

/// The name of the generator's moving average in the training state.
const EMA_NAME: &str = "ema.generator";

/// Runs `f` on `c` with the averaged generator swapped in (if there is an
/// average), then swaps the raw weights back.
fn with_average<C: Contest, R>(c: &mut C, ema: &mut Option<Ema>, f: impl FnOnce(&mut C) -> R) -> R {
    if let Some(ema) = ema {
        ema.swap(c.generator());
    }
    let r = f(c);
    if let Some(ema) = ema {
        ema.swap(c.generator());
    }
    r
}

/// Records `--g-ema` in a checkpoint's metadata (`matnet.g_ema`: the decay
/// of the average its generator holds).
pub fn ema_meta(
    meta: &mut std::collections::BTreeMap<String, String>,
    a: &crate::gan_train::GanArgs,
) {
    if let Some(d) = a.g_ema {
        meta.insert("matnet.g_ema".to_string(), d.to_string());
    }
}

/// The images a run writes from its generator: a grid per epoch from one
/// fixed noise batch (so the frames of the GIF show the same digits
/// sharpening; conditional: row r asks for digit r), and with
/// `--epoch-samples` an IDX file per epoch (one noise batch too, labels
/// cycling 0-9).
struct Snapshots {
    config: GanConfig,
    fixed_z: Tensor,
    fixed_labels: Vec<usize>,
    samples: Option<(Tensor, Vec<usize>)>,
    frames: Vec<GrayImage>,
}

impl Snapshots {
    /// Draws the fixed noise from `seed`.
    fn new(config: GanConfig, seed: u64, epoch_samples: usize) -> Snapshots {
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
    fn epoch(&mut self, g: &Generator, out: &Path, epoch: usize) -> anyhow::Result<()> {
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
    fn reload(&mut self, out: &Path, epochs: usize) -> anyhow::Result<()> {
        for e in 1..=epochs {
            let path = out.join(format!("epoch_{e:03}.png"));
            let img = image::open(&path)
                .with_context(|| format!("cannot read {} to resume", path.display()))?;
            self.frames.push(img.to_luma8());
        }
        Ok(())
    }

    /// Writes the GIF of every epoch's grid to `path`.
    fn gif(&self, path: &Path) -> anyhow::Result<()> {
        save_gif(&self.frames, 500, path)
    }
}
