//! `matnet train --model joint`: the joint recognise-and-generate model of
//! the seed report's §5, trained as the GANs are (same options, per-epoch
//! grids with one row per digit, GIF, `metrics.csv`, chart, one checkpoint)
//! plus the class head's test accuracy after every epoch.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, anyhow};
use matnet::data::{Dataset, DatasetKind, Normalize, Split, batches};
use matnet::models::{GanTraining, Joint, JointConfig, JointTrainer, JointTraining};
use matnet::train::evaluate;
use matnet::{Module, Rng};
use plotters::style::{BLACK, BLUE, GREEN, MAGENTA, RED, RGBColor};

use crate::chart::{Panel, Series, plot_panels};
use crate::evaluate::print_report;
use crate::gan_train::{CHART_EVERY, Snapshots, checked_options};
use crate::train::{TrainArgs, bar};

/// Options of `matnet train` that only the joint model reads: each switches
/// one part off, for the ablation.
#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct JointArgs {
    /// joint: no LSTM over the feature-map rows.
    #[arg(long)]
    pub no_rnn: bool,
    /// joint: no self-attention over the feature-map rows.
    #[arg(long)]
    pub no_attention: bool,
    /// joint: no reconstruction module (encoder and re-rendering loss).
    #[arg(long)]
    pub no_reconstruction: bool,
    /// joint: the class head does not see generated samples (no class
    /// loss on them for D or G).
    #[arg(long)]
    pub no_fake_class_loss: bool,
}

/// Means of the step figures over a stretch of training.
#[derive(Clone, Copy, Default)]
struct Means {
    d_loss: f64,
    d_real: f64,
    d_fake: f64,
    real_acc: f64,
    fake_acc: f64,
    d_steps: usize,
    g_loss: f64,
    g_steps: usize,
    rec_loss: f64,
    rec_steps: usize,
}

impl Means {
    fn d(&self, f: fn(&Means) -> f64) -> f64 {
        f(self) / self.d_steps.max(1) as f64
    }

    fn g(&self) -> f64 {
        self.g_loss / self.g_steps.max(1) as f64
    }

    fn rec(&self) -> f64 {
        self.rec_loss / self.rec_steps.max(1) as f64
    }
}

/// One row of `metrics.csv`.
struct EpochRow {
    epoch: usize,
    means: Means,
    test_acc: f32,
    seconds: f64,
}

/// The run's name: `joint`, with the parts switched off.
fn run_name(j: &JointArgs) -> String {
    let mut name = String::from("joint");
    for (off, tag) in [
        (j.no_rnn, "-no-rnn"),
        (j.no_attention, "-no-attention"),
        (j.no_reconstruction, "-no-reconstruction"),
        (j.no_fake_class_loss, "-no-fake-class-loss"),
    ] {
        if off {
            name.push_str(tag);
        }
    }
    name
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let (a, j) = (&args.gan, &args.joint);
    let (epochs, batch_size, real_target) = checked_options(args)?;
    let kind: DatasetKind = args.dataset.parse()?;
    let dir = crate::locate_data(args.data.as_deref(), kind)?;
    let mut train = Dataset::load(&dir, kind, Split::Train)?;
    let test = Dataset::load(&dir, kind, Split::Test)?;
    if let Some(limit) = args.limit {
        anyhow::ensure!(limit > 0, "--limit must be at least 1");
        train = train.take(limit.min(train.len()));
    }
    let config = JointConfig {
        rows: train.rows(),
        cols: train.cols(),
        classes: train.num_classes(),
        dataset: kind.to_string(),
        rnn: !j.no_rnn,
        attention: !j.no_attention,
        reconstruction: !j.no_reconstruction,
        ..JointConfig::for_mnist()
    };
    let mut model = Joint::new(config, args.seed)?;
    let settings = JointTraining {
        gan: GanTraining {
            g_loss: a.g_loss,
            real_target,
            lr_d: a.lr_d,
            lr_g: a.lr_g,
        },
        fake_class_loss: !j.no_fake_class_loss,
        ..JointTraining::default()
    };
    let mut trainer = JointTrainer::new(&model, settings);
    let name = run_name(j);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&name));
    fs::create_dir_all(&out)
        .with_context(|| format!("cannot create run directory {}", out.display()))?;
    println!(
        "training {name} ({} parameters: {}) on {} images of {kind}; {epochs} epochs, batch {batch_size}, \
         {:?} G loss, real target {real_target}, lr D {} G {}, {} D step(s) per G step, \
         class loss on generated samples: {}, seed {}",
        model.num_parameters(),
        model.describe(),
        train.len(),
        a.g_loss,
        a.lr_d,
        a.lr_g,
        a.d_steps,
        settings.fake_class_loss,
        args.seed
    );

    let mut snapshots = Snapshots::new(model.config.gan_config(), args.seed, a.epoch_samples);
    let (mut shuffle_rng, mut noise_rng) = (Rng::new(args.seed), Rng::new(args.seed ^ 0x2015E));
    let deadline = a.max_minutes.map(|m| m * 60.0);
    let started = Instant::now();
    let (mut history, mut points) = (Vec::new(), Vec::new());
    let (mut window, mut d_count, mut g_count, mut stop) =
        (Means::default(), 0usize, 0usize, false);
    let classes = model.config.classes;
    for epoch in 1..=epochs {
        let epoch_bar = (!args.quiet).then(|| bar(train.len() as u64, "images"));
        let mut means = Means::default();
        for b in batches(&train, batch_size, Normalize::Unit, Some(&mut shuffle_rng)) {
            // tanh output: real images scaled from [0, 1] to [-1, 1] to match.
            let real = b.images.affine(2.0, -1.0);
            let diverged =
                |e: matnet::Error| anyhow!("{e} in epoch {epoch}; try lower --lr-d/--lr-g");
            let ds = trainer
                .d_step(&model, &real, &b.labels, &mut noise_rng)
                .map_err(diverged)?;
            d_count += 1;
            for m in [&mut means, &mut window] {
                m.d_loss += ds.loss as f64;
                m.d_real += ds.d_real as f64;
                m.d_fake += ds.d_fake as f64;
                m.real_acc += ds.real_accuracy as f64;
                m.fake_acc += ds.fake_accuracy as f64;
                m.d_steps += 1;
            }
            if d_count.is_multiple_of(a.d_steps) {
                let g = trainer.g_step(&model, &ds).map_err(diverged)?;
                g_count += 1;
                for m in [&mut means, &mut window] {
                    m.g_loss += g.loss as f64;
                    m.g_steps += 1;
                    if let Some(r) = g.reconstruction {
                        m.rec_loss += r as f64;
                        m.rec_steps += 1;
                    }
                }
                if g_count.is_multiple_of(CHART_EVERY) {
                    points.push((g_count, window));
                    window = Means::default();
                }
            }
            if let Some(bar) = &epoch_bar {
                bar.inc(b.len() as u64);
                bar.set_message(format!(
                    "D loss {:.3} G loss {:.3} rec {:.3} D(x) {:.3} D(G(z)) {:.3} acc {:.2}%",
                    means.d(|m| m.d_loss),
                    means.g(),
                    means.rec(),
                    means.d(|m| m.d_real),
                    means.d(|m| m.d_fake),
                    100.0 * means.d(|m| m.real_acc)
                ));
            }
            if deadline.is_some_and(|d| started.elapsed().as_secs_f64() >= d) {
                stop = true;
                break;
            }
        }
        if let Some(bar) = epoch_bar {
            bar.finish_and_clear();
        }
        model.set_training(false);
        snapshots.epoch(&model.generator, &out, epoch)?;
        let test_acc = evaluate(&model, classes, &test, Normalize::Unit).accuracy;
        model.set_training(true);
        let row = EpochRow {
            epoch,
            means,
            test_acc,
            seconds: started.elapsed().as_secs_f64(),
        };
        println!(
            "epoch {epoch:>3}: D loss {:.4} G loss {:.4} rec {:.4} D(x) {:.3} D(G(z)) {:.3} | \
             class acc real {:.2}% generated {:.2}% test {:.2}% | {} D + {} G steps, {:.1}s{}",
            means.d(|m| m.d_loss),
            means.g(),
            means.rec(),
            means.d(|m| m.d_real),
            means.d(|m| m.d_fake),
            100.0 * means.d(|m| m.real_acc),
            100.0 * means.d(|m| m.fake_acc),
            100.0 * test_acc,
            means.d_steps,
            means.g_steps,
            row.seconds,
            if stop { " (time limit reached)" } else { "" }
        );
        history.push(row);
        if stop {
            break;
        }
    }
    if window.d_steps > 0 {
        points.push((g_count, window));
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "done in {secs:.1}s: {d_count} D and {g_count} G steps, {:.2} D+G steps/s",
        g_count as f64 / secs
    );

    model.set_training(false);
    let test_eval = evaluate(&model, classes, &test, Normalize::Unit);
    println!(
        "class head: test accuracy {:.2}% ({} test images)",
        100.0 * test_eval.accuracy,
        test.len()
    );
    print_report(&test_eval, test.class_names());
    let ckpt = out.join("model.safetensors");
    let mut meta = BTreeMap::new();
    meta.insert("matnet.seed".to_string(), args.seed.to_string());
    meta.insert("matnet.g_steps".to_string(), g_count.to_string());
    meta.insert(
        "matnet.fake_class_loss".to_string(),
        settings.fake_class_loss.to_string(),
    );
    meta.insert(
        "matnet.test_accuracy".to_string(),
        format!("{:.4}", test_eval.accuracy),
    );
    model.save(&ckpt, meta)?;
    let gif = out.join("progress.gif");
    snapshots.gif(&gif)?;
    let csv = out.join("metrics.csv");
    write_metrics(&csv, &history)?;
    let png = out.join("chart.png");
    plot(&png, &points, &format!("{name} on {kind}"))?;
    println!("checkpoint: {}", ckpt.display());
    println!(
        "samples:    {} (one grid per epoch, row r asks for digit r), {}",
        out.join("epoch_*.png").display(),
        gif.display()
    );
    println!("metrics:    {}", csv.display());
    println!("chart:      {}", png.display());
    Ok(())
}

fn plot(path: &Path, points: &[(usize, Means)], title: &str) -> anyhow::Result<()> {
    let series = |name, color: RGBColor, f: &dyn Fn(&Means) -> f64| Series {
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
                series("D loss", BLUE, &|m| m.d(|m| m.d_loss)),
                series("G loss", RED, &|m| m.g()),
                series("reconstruction", MAGENTA, &|m| m.rec()),
            ],
        },
        Panel {
            y_desc: "mean D output",
            series: vec![
                series("D(x)", GREEN, &|m| m.d(|m| m.d_real)),
                series("D(G(z))", RED, &|m| m.d(|m| m.d_fake)),
            ],
        },
        Panel {
            y_desc: "class head accuracy",
            series: vec![
                series("real batch", BLACK, &|m| m.d(|m| m.real_acc)),
                series("generated, as asked", BLUE, &|m| m.d(|m| m.fake_acc)),
            ],
        },
    ];
    plot_panels(path, title, "generator step", &panels)
}

fn write_metrics(path: &Path, rows: &[EpochRow]) -> anyhow::Result<()> {
    crate::chart::write_csv(
        path,
        "epoch,d_loss,g_loss,rec_loss,d_real,d_fake,real_acc,fake_acc,test_acc,d_steps,g_steps,seconds",
        rows.iter().map(|r| {
            let m = &r.means;
            format!(
                "{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{},{},{:.3}",
                r.epoch,
                m.d(|m| m.d_loss),
                m.g(),
                m.rec(),
                m.d(|m| m.d_real),
                m.d(|m| m.d_fake),
                m.d(|m| m.real_acc),
                m.d(|m| m.fake_acc),
                r.test_acc,
                m.d_steps,
                m.g_steps,
                r.seconds
            )
        }),
    )
}
