//! `matnet train --model gan|dcgan`: adversarial training of a generator
//! against a discriminator, with a grid of samples per epoch, a GIF, a chart
//! of both losses and `D(x)`, `D(G(z))`, `metrics.csv` and one checkpoint.

use std::collections::BTreeMap;
use std::ops::AddAssign;
use std::path::{Path, PathBuf};

use anyhow::ensure;
use matnet::data::{Dataset, DatasetKind, Split};
use matnet::models::{DStep, GLoss, Gan, GanConfig, GanTrainer, GanTraining, Generator, Z_DIM};
use matnet::train::Player;
use matnet::{Module, Rng, Tensor};
use plotters::style::{BLUE, GREEN, RED, RGBColor};
use serde::{Deserialize, Serialize};

use crate::adversarial::{self, Contest, EpochRow, checked_options};
use crate::chart::{Panel, Series, plot_panels};
use crate::train::TrainArgs;

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
    /// gan/dcgan/joint: a step schedule: after epoch E, both learning rates
    /// are multiplied by --lr-drop-factor (default: constant rates).
    #[arg(long, value_name = "E")]
    #[serde(default)]
    pub lr_drop_after: Option<usize>,
    /// gan/dcgan/joint: the factor --lr-drop-after applies.
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    #[serde(default = "default_lr_drop_factor")]
    pub lr_drop_factor: f32,
    /// gan/dcgan/joint: discriminator steps per generator step.
    #[arg(long, default_value_t = 1)]
    pub d_steps: usize,
    /// gan/dcgan/joint: grids, samples and the checkpoint's generator are an
    /// exponential moving average of G's weights with this decay
    /// (`--g-ema` alone: 0.999); training steps the raw weights as before.
    #[arg(long, value_name = "DECAY", num_args = 0..=1, default_missing_value = "0.999")]
    #[serde(default)]
    pub g_ema: Option<f32>,
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

/// `--lr-drop-factor`'s default, also for runs saved before the flag.
fn default_lr_drop_factor() -> f32 {
    0.1
}

impl GanArgs {
    /// The learning rates as the run's first line states them:
    /// `lr D 0.0002 G 0.0002`, with the drop if there is one.
    pub fn lr_text(&self) -> String {
        let drop = self.lr_drop_after.map_or(String::new(), |e| {
            format!(" (×{} after epoch {e})", self.lr_drop_factor)
        });
        let ema = self
            .g_ema
            .map_or(String::new(), |d| format!(", G averaged (EMA {d})"));
        format!("lr D {} G {}{drop}{ema}", self.lr_d, self.lr_g)
    }

    /// The learning rates `(D, G)` for epoch `epoch` (1-based).
    pub fn lrs_at(&self, epoch: usize) -> (f32, f32) {
        match self.lr_drop_after {
            Some(e) if epoch > e => (
                self.lr_d * self.lr_drop_factor,
                self.lr_g * self.lr_drop_factor,
            ),
            _ => (self.lr_d, self.lr_g),
        }
    }
}

/// Means of the step figures over a stretch of training (the joint model's
/// figures extend them).
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
pub struct Means {
    d_loss: f64,
    d_real: f64,
    d_fake: f64,
    pub d_steps: usize,
    g_loss: f64,
    pub g_steps: usize,
}

impl Means {
    /// One discriminator step's figures: its loss, mean `D(x)` and `D(G(z))`.
    pub fn d_step(loss: f32, d_real: f32, d_fake: f32) -> Means {
        Means {
            d_loss: loss as f64,
            d_real: d_real as f64,
            d_fake: d_fake as f64,
            d_steps: 1,
            ..Means::default()
        }
    }

    /// One generator step's loss.
    pub fn g_step(loss: f32) -> Means {
        Means {
            g_loss: loss as f64,
            g_steps: 1,
            ..Means::default()
        }
    }

    /// Mean D loss, `D(x)` and `D(G(z))`.
    pub fn d(&self) -> [f64; 3] {
        let n = self.d_steps.max(1) as f64;
        [self.d_loss / n, self.d_real / n, self.d_fake / n]
    }

    /// Mean G loss.
    pub fn g(&self) -> f64 {
        self.g_loss / self.g_steps.max(1) as f64
    }
}

impl AddAssign for Means {
    fn add_assign(&mut self, o: Means) {
        self.d_loss += o.d_loss;
        self.d_real += o.d_real;
        self.d_fake += o.d_fake;
        self.d_steps += o.d_steps;
        self.g_loss += o.g_loss;
        self.g_steps += o.g_steps;
    }
}

/// A GAN and its two players, with the last discriminator step.
struct GanContest {
    gan: Gan,
    trainer: GanTrainer,
    last: Option<DStep>,
}

impl Contest for GanContest {
    type Means = Means;
    type Extra = ();

    fn d_step(&mut self, real: &Tensor, labels: &Tensor, noise: &mut Rng) -> matnet::Result<Means> {
        let ds = self.trainer.d_step(&self.gan, real, labels, noise)?;
        let m = Means::d_step(ds.loss, ds.d_real, ds.d_fake);
        self.last = Some(ds);
        Ok(m)
    }

    fn g_step(&mut self, _step: usize) -> matnet::Result<Means> {
        let ds = self.last.as_ref().expect("a D step precedes every G step");
        Ok(Means::g_step(self.trainer.g_step(&self.gan, ds)?))
    }

    fn steps(m: &Means) -> (usize, usize) {
        (m.d_steps, m.g_steps)
    }

    fn status(m: &Means) -> String {
        let [dl, dr, df] = m.d();
        format!(
            "D loss {dl:.3} G loss {:.3} D(x) {dr:.3} D(G(z)) {df:.3}",
            m.g()
        )
    }

    fn extra(&self) {}

    fn line(m: &Means, (): &()) -> String {
        let [dl, dr, df] = m.d();
        format!(
            "D loss {dl:.4} G loss {:.4} D(x) {dr:.3} D(G(z)) {df:.3}",
            m.g()
        )
    }

    fn generator(&self) -> &Generator {
        &self.gan.generator
    }

    const NAME: &'static str = "gan";

    fn parts(&mut self) -> (&mut dyn Module, &mut Player, &mut Player) {
        let t = &mut self.trainer;
        (&mut self.gan, &mut t.d, &mut t.g)
    }
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let (epochs, batch_size, real_target) = checked_options(args)?;
    ensure!(
        !args.augment && args.shift.is_none() && args.rotate.is_none(),
        "--augment, --shift and --rotate apply to classifiers and the joint model, not to {}",
        args.model.name()
    );
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
    let gan = Gan::new(config, args.seed)?;
    let trainer = GanTrainer::new(
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
         {:?} G loss, real target {}, {}, {} D step(s) per G step, seed {}",
        gan.generator.num_parameters(),
        gan.discriminator.num_parameters(),
        gan.describe(),
        train.len(),
        a.g_loss,
        real_target,
        a.lr_text(),
        a.d_steps,
        args.seed
    );

    let config = gan.config.clone();
    let mut c = GanContest {
        gan,
        trainer,
        last: None,
    };
    let run = adversarial::train(
        &mut c,
        config,
        args,
        &train,
        (epochs, batch_size),
        &out,
        &mut saver,
        resumed,
    )?;
    let gan = c.gan;
    let ckpt = out.join("model.safetensors");
    let mut meta = BTreeMap::new();
    meta.insert("matnet.seed".to_string(), args.seed.to_string());
    meta.insert("matnet.g_steps".to_string(), run.g_count.to_string());
    adversarial::ema_meta(&mut meta, a);
    gan.save(&ckpt, meta)?;
    let gif = out.join("progress.gif");
    let csv = out.join("metrics.csv");
    write_metrics(&csv, &run.history)?;
    let png = out.join("chart.png");
    let title = format!("{name} on {kind}");
    plot_panels(
        &png,
        &title,
        "generator step",
        &panels(&run.points, |m| m, vec![]),
    )?;
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

/// The chart's two panels (losses; mean D outputs) from the figures `f`
/// takes out of each point, with `more` added to the loss panel.
pub fn panels<P>(points: &[(usize, P)], f: impl Fn(&P) -> &Means, more: Vec<Series>) -> Vec<Panel> {
    let series = |name, color: RGBColor, g: fn(&Means) -> f64| Series {
        name,
        color,
        points: points
            .iter()
            .map(|(s, p)| (*s as f32, g(f(p)) as f32))
            .collect(),
    };
    let mut losses = vec![
        series("D loss", BLUE, |m| m.d()[0]),
        series("G loss", RED, |m| m.g()),
    ];
    losses.extend(more);
    vec![
        Panel {
            y_desc: "loss",
            series: losses,
        },
        Panel {
            y_desc: "mean D output",
            series: vec![
                series("D(x)", GREEN, |m| m.d()[1]),
                series("D(G(z))", RED, |m| m.d()[2]),
            ],
        },
    ]
}

fn write_metrics(path: &Path, rows: &[EpochRow<Means, ()>]) -> anyhow::Result<()> {
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
