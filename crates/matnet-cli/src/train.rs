//! `matnet train`: the main job. Trains a model, logs per-epoch metrics,
//! evaluates on the official test set and saves checkpoint, CSV and chart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, ensure};
use indicatif::{ProgressBar, ProgressStyle};
use matnet::data::{
    Augment, Dataset, DatasetKind, Normalize, Split, UnitPixels, batches, to_tensors,
};
use matnet::models::{Arch, Classifier, ModelConfig, normalize_name};
use matnet::optim::{Adam, LrSchedule, Optimizer, Sgd};
use matnet::train::{Player, RunningMetrics, evaluate};
use matnet::{Module, Rng, Tensor};
use serde::{Deserialize, Serialize};

use crate::chart;
use crate::evaluate::print_report;
use crate::recipe::recipe;

/// Tasks `--task` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum Task {
    /// Image classification on an IDX dataset.
    Images,
    /// Reverse a sequence of digits (attention model, causal mask).
    Reverse,
}

/// Optimizers `--optimizer` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum OptKind {
    /// Plain gradient descent.
    Sgd,
    /// SGD with momentum 0.9.
    Momentum,
    /// SGD with Nesterov momentum 0.9.
    Nesterov,
    /// Adam.
    Adam,
    /// Adam with decoupled weight decay.
    Adamw,
}

/// Learning-rate schedules `--schedule` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum ScheduleKind {
    Constant,
    /// Halve every third of the run.
    Step,
    /// Cosine annealing to zero.
    Cosine,
}

// Serialized into the training state: `--resume` restores these settings.
#[derive(clap::Args, Serialize, Deserialize)]
pub struct TrainArgs {
    /// What to learn: classify images (`--model`), or `reverse`, a generated
    /// sequence task for an attention model (digits in, the same digits
    /// reversed out).
    #[arg(long, value_enum, default_value = "images")]
    pub task: Task,
    /// Architecture to train.
    #[arg(long, value_enum, default_value = "mlp")]
    pub model: Arch,
    /// reverse: digits per sequence.
    #[arg(long, default_value_t = 8)]
    pub seq_len: usize,
    /// reverse: training steps (each a fresh batch of random sequences).
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// reverse: held-out sequences for the exact-match score.
    #[arg(long, default_value_t = 2000)]
    pub held_out: usize,
    /// Dataset: mnist or fashion-mnist (any dataset in MNIST's IDX layout).
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Directory holding the four IDX files (default: $MATNET_DATA, then the cache).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Passes over the training set (seed-mlp: full-batch iterations).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per step.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Learning rate.
    #[arg(long)]
    pub lr: Option<f32>,
    /// Optimizer.
    #[arg(long, value_enum)]
    pub optimizer: Option<OptKind>,
    /// Learning-rate schedule over epochs (default: the model's recipe; cosine for mlp).
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleKind>,
    /// L2 weight decay (decoupled for adamw).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Clip the global gradient norm to this value.
    #[arg(long)]
    pub clip: Option<f32>,
    /// Hidden layer sizes, comma separated (mlp).
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Dropout probability after each hidden layer (mlp).
    #[arg(long)]
    pub dropout: Option<f32>,
    /// Seed for initialisation, shuffling and dropout: same seed, same numbers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run directory for checkpoint, metrics and chart (default: runs/<model>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Train on only the first N training images (quick experiments).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print one line per epoch instead of progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Augment training images with a random shift and rotation each time
    /// they are used (validation and test images are never changed); joint:
    /// every image D sees in training, real and generated, differentiably.
    #[arg(long)]
    pub augment: bool,
    /// With --augment: largest shift in pixels along each axis [default: 2].
    #[arg(long, value_name = "PIXELS")]
    pub shift: Option<usize>,
    /// With --augment: largest rotation in degrees, either way [default: 10].
    #[arg(long, value_name = "DEGREES")]
    pub rotate: Option<f32>,
    #[command(flatten)]
    #[serde(flatten)]
    pub gan: crate::gan_train::GanArgs,
    /// Continue the run in RUN_DIR from its saved training state, with its
    /// own settings (a flag that would change them is an error; gan, dcgan
    /// and joint runs accept a new --epochs, to extend or shorten them).
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// Save the training state (`state.safetensors`) every M minutes within
    /// an epoch, besides at each epoch's end; fractions are fine, and 0
    /// saves after every step (for tests: each save is synced to disk).
    #[arg(long, value_name = "M", default_value_t = 10.0)]
    pub save_every: f64,
    /// The flags given on the command line (set by `main`), which
    /// `--resume` checks against the saved settings.
    #[arg(skip)]
    #[serde(skip)]
    pub explicit: Vec<String>,
    #[command(flatten)]
    #[serde(flatten)]
    pub joint: crate::joint_train::JointArgs,
}

/// Seeds the augmentation stream apart from shuffling and dropout, so turning
/// `--augment` on leaves the order of the batches as it was.
const AUGMENT_SEED: u64 = 0xA06_0E47;

/// One row of `metrics.csv`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f32,
    pub train_acc: f32,
    pub val_loss: f32,
    pub val_acc: f32,
    pub lr: f32,
    pub seconds: f64,
    pub images_per_sec: f64,
}

/// Where a classifier run stands, saved in its training state (the
/// shuffling stream is saved as it was at the epoch's start: resuming
/// redraws the epoch's order and skips the `step` batches already done).
#[derive(Serialize, Deserialize)]
struct Progress {
    epoch: usize,
    step: usize,
    running: RunningMetrics,
    acc_time: f64,
    history: Vec<EpochMetrics>,
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let args = crate::state::resolve(args)?;
    if args.task == Task::Reverse {
        return crate::reverse::run(
            &args,
            crate::reverse::ReverseArgs {
                len: args.seq_len,
                steps: args.steps,
                batch_size: args.batch_size.unwrap_or(64),
                lr: args.lr.unwrap_or(1e-3),
                seed: args.seed,
                held_out: args.held_out,
                out: args
                    .out
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("runs/reverse")),
            },
        );
    }
    if args.model.is_gan() {
        return crate::gan_train::run(&args);
    }
    if args.model == Arch::Joint {
        return crate::joint_train::run(&args);
    }
    let r = recipe(args.model);
    let epochs = args.epochs.unwrap_or(r.epochs);
    let lr = args.lr.unwrap_or(r.lr);
    let batch_size = args.batch_size.unwrap_or(r.batch_size);
    ensure!(epochs > 0, "--epochs must be at least 1");
    ensure!(batch_size > 0, "--batch-size must be at least 1");
    ensure!(
        lr.is_finite() && lr > 0.0,
        "--lr must be a positive number, got {lr}"
    );
    let dropout = args.dropout.unwrap_or(r.dropout);
    ensure!(
        (0.0..1.0).contains(&dropout),
        "--dropout must be in [0, 1), got {dropout}"
    );
    let augment = augment_options(&args)?;

    let kind: DatasetKind = args.dataset.parse()?;
    let dir = crate::locate_data(args.data.as_deref(), kind)?;
    let full_train = Dataset::load(&dir, kind, Split::Train)?;
    let test = Dataset::load(&dir, kind, Split::Test)?;
    let pool = match r.pool {
        Some(n) => full_train.take(n.min(full_train.len())),
        None => full_train,
    };
    ensure!(
        pool.len() > r.val,
        "the training set has only {} images",
        pool.len()
    );
    let (mut train, val) = pool.split_at(pool.len() - r.val);
    if let Some(limit) = args.limit {
        ensure!(limit > 0, "--limit must be at least 1");
        train = train.take(limit.min(train.len()));
    }

    check_shift(&augment, &train)?;
    let augment = augment.map(|a| a.with_fill(r.normalize.table()[0]));

    let config = ModelConfig {
        arch: args.model,
        rows: train.rows(),
        cols: train.cols(),
        classes: train.num_classes(),
        hidden: args
            .hidden
            .clone()
            .unwrap_or_else(|| ModelConfig::for_mnist(args.model).hidden),
        dropout,
        dataset: kind.to_string(),
        normalize: normalize_name(r.normalize).to_string(),
    };
    let mut model = Classifier::new(config, args.seed)?;
    let optimizer = args.optimizer.unwrap_or(r.optimizer);
    let wd = args.weight_decay;
    let mut player = Player::new(model.net.parameters(), |p| -> Box<dyn Optimizer> {
        match optimizer {
            OptKind::Sgd => Box::new(Sgd::new(p, lr).weight_decay(wd)),
            OptKind::Momentum => Box::new(Sgd::new(p, lr).momentum(0.9).weight_decay(wd)),
            OptKind::Nesterov => Box::new(
                Sgd::new(p, lr)
                    .momentum(0.9)
                    .nesterov(true)
                    .weight_decay(wd),
            ),
            OptKind::Adam => Box::new(Adam::new(p, lr).weight_decay(wd)),
            OptKind::Adamw => Box::new(Adam::adamw(p, lr, wd)),
        }
    })
    .clip(args.clip.or(r.clip));
    let schedule = match args.schedule.unwrap_or(r.schedule) {
        ScheduleKind::Constant => LrSchedule::Constant,
        ScheduleKind::Step => LrSchedule::Step {
            every: epochs.div_ceil(3),
            gamma: 0.5,
        },
        ScheduleKind::Cosine => LrSchedule::Cosine {
            total: epochs,
            min_lr: 0.0,
        },
    };

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(args.model.name()));
    let (mut saver, resumed) = crate::state::Saver::open(&out, &args)?;
    println!(
        "training {} ({} parameters) on {} images of {kind}, validating on {}; {} epochs, batch {}, {:?} lr {lr}, seed {}",
        model.net.describe(),
        model.net.num_parameters(),
        train.len(),
        val.len(),
        epochs,
        if batch_size >= train.len() {
            "full".to_string()
        } else {
            batch_size.to_string()
        },
        optimizer,
        args.seed
    );

    if let Some(a) = &augment {
        println!("augmenting training images: {a}");
    }

    let full_batch = batch_size >= train.len();
    // Full-batch training reuses one tensor of all images rather than
    // converting 33,600 images on every iteration.
    let full = full_batch.then(|| to_tensors(&train, r.normalize));
    // Unaugmented [0, 1] images also as bytes, which the seed network's
    // kernel streams in a quarter of the memory (`None` if they would not
    // give the same values; then the f32 images are used).
    let pixels = match &full {
        Some((x, _)) if augment.is_none() && r.normalize == Normalize::Unit => {
            UnitPixels::new(x.clone(), train.images())
        }
        _ => None,
    };
    let mut rng = Rng::new(args.seed);
    let mut aug_rng = Rng::new(args.seed ^ AUGMENT_SEED);
    let (rows, cols) = (train.rows(), train.cols());
    let mut history: Vec<EpochMetrics> = Vec::new();
    let started = Instant::now();
    let overall = (full_batch && !args.quiet).then(|| bar(epochs as u64, "iterations"));
    let (mut running, mut acc_time) = (RunningMetrics::default(), 0.0f64);
    // This run's time in training steps alone (no evaluation, no saving):
    // what a reference that times only its iterations measures.
    let mut step_secs = 0.0f64;
    let (mut first_epoch, mut skip) = (0, 0);
    if let Some(s) = &resumed {
        let p: Progress = saver.progress(s)?;
        s.load_module("model", &model.net)?;
        s.load_player("net", &mut player)?;
        (rng, aug_rng) = (s.rng("shuffle")?, s.rng("augment")?);
        (first_epoch, skip, running, acc_time) = (p.epoch, p.step, p.running, p.acc_time);
        history = p.history;
        println!("resuming at epoch {}, step {skip}", first_epoch + 1);
    }
    // The training state at a step boundary of `epoch` (`shuffle` as it was
    // at the epoch's start).
    let snapshot = |model: &Classifier, player: &Player, shuffle: &Rng, aug: &Rng| {
        let mut s = matnet::io::TrainingState::new("");
        s.put_module("model", &model.net);
        s.put_player("net", player);
        s.put_rng("shuffle", shuffle);
        s.put_rng("augment", aug);
        s
    };
    for epoch in first_epoch..epochs {
        let lr_now = schedule.lr_at(lr, epoch);
        player.set_lr(lr_now);
        let t0 = Instant::now();
        let epoch_bar = (!full_batch && !args.quiet).then(|| bar(train.len() as u64, "images"));
        let epoch_rng = rng.clone();
        let step = |model: &mut Classifier,
                    player: &mut Player,
                    running: &mut RunningMetrics,
                    x: &Tensor,
                    pixels: Option<&UnitPixels>,
                    y: &Tensor|
         -> anyhow::Result<()> {
            let m = match pixels {
                Some(p) => model.train_step_pixels(player, p, y),
                None => model.train_step(player, x, y),
            }
            .map_err(|e| anyhow!("{e} in epoch {}; try a lower --lr", epoch + 1))?;
            running.add(&m);
            if let Some(b) = &epoch_bar {
                b.inc(m.examples as u64);
                let secs = t0.elapsed().as_secs_f64();
                b.set_message(format!(
                    "loss {:.4} acc {:.2}% {:.0} img/s",
                    running.loss(),
                    100.0 * running.accuracy(),
                    running.examples() as f64 / secs
                ));
            }
            Ok(())
        };
        let (m, p, run) = (&mut model, &mut player, &mut running);
        match (&full, &pixels) {
            (Some((_, y)), Some(px)) => step(m, p, run, px.images(), Some(px), y)?,
            (Some((x, y)), None) => {
                let x = augmented(&augment, x, rows, cols, &mut aug_rng);
                step(m, p, run, &x, None, y)?
            }
            (None, _) => {
                let all = batches(&train, batch_size, r.normalize, Some(&mut rng));
                for (i, b) in all.enumerate().skip(std::mem::take(&mut skip)) {
                    let x = augmented(&augment, &b.images, rows, cols, &mut aug_rng);
                    step(m, p, run, &x, None, &b.labels)?;
                    if saver.due() {
                        let progress = Progress {
                            epoch,
                            step: i + 1,
                            running: *run,
                            acc_time: acc_time + t0.elapsed().as_secs_f64(),
                            history: history.clone(),
                        };
                        saver.save(snapshot(m, p, &epoch_rng, &aug_rng), &progress)?;
                    }
                }
            }
        }
        let epoch_secs = t0.elapsed().as_secs_f64();
        acc_time += epoch_secs;
        step_secs += epoch_secs;
        if let Some(b) = &overall {
            b.inc(1);
            b.set_message(format!(
                "loss {:.4} acc {:.2}%",
                running.loss(),
                100.0 * running.accuracy()
            ));
        }
        let log_every = if full_batch { r.log_every } else { 1 };
        if (epoch + 1) % log_every == 0 || epoch + 1 == epochs {
            model.net.set_training(false);
            let v = evaluate(&model.net, model.config.classes, &val, r.normalize);
            model.net.set_training(true);
            let m = EpochMetrics {
                epoch: epoch + 1,
                train_loss: running.loss() as f32,
                train_acc: running.accuracy() as f32,
                val_loss: v.loss,
                val_acc: v.accuracy,
                lr: lr_now,
                seconds: acc_time,
                images_per_sec: running.examples() as f64 / acc_time,
            };
            if let Some(b) = &epoch_bar {
                b.finish_and_clear();
            }
            let line = format!(
                "epoch {:>4}: train loss {:.4} acc {:.2}% | val loss {:.4} acc {:.2}% | {:.1}s, {:.0} img/s",
                m.epoch,
                m.train_loss,
                100.0 * m.train_acc,
                m.val_loss,
                100.0 * m.val_acc,
                m.seconds,
                m.images_per_sec
            );
            match &overall {
                Some(b) => b.println(line),
                None => println!("{line}"),
            }
            history.push(m);
            (running, acc_time) = (RunningMetrics::default(), 0.0);
        }
        // Every epoch's end, except in full-batch runs, whose epochs are
        // single steps of milliseconds: there the timer (and signals) decide.
        if !full_batch || saver.due() || epoch + 1 == epochs {
            let progress = Progress {
                epoch: epoch + 1,
                step: 0,
                running,
                acc_time,
                history: history.clone(),
            };
            saver.save(snapshot(&model, &player, &rng, &aug_rng), &progress)?;
        }
    }
    if let Some(b) = overall {
        b.finish_and_clear();
    }
    let train_secs = started.elapsed().as_secs_f64();

    model.net.set_training(false);
    let classes = model.config.classes;
    let train_eval = evaluate(&model.net, classes, &train, r.normalize);
    let test_eval = evaluate(&model.net, classes, &test, r.normalize);
    println!(
        "done in {train_secs:.1}s ({step_secs:.1}s of it in training steps). accuracy: train {:.2}%, validation {:.2}%, test {:.2}% ({} test images)",
        100.0 * train_eval.accuracy,
        100.0 * history.last().map_or(0.0, |m| m.val_acc),
        100.0 * test_eval.accuracy,
        test.len()
    );
    print_report(&test_eval, test.class_names());

    let ckpt = out.join("model.safetensors");
    let mut meta = BTreeMap::new();
    meta.insert("matnet.seed".to_string(), args.seed.to_string());
    if let Some(a) = &augment {
        meta.insert(
            "matnet.augment".to_string(),
            format!(
                "shift {} px, rotate {} degrees",
                a.max_shift, a.max_rotate_deg
            ),
        );
    }
    meta.insert(
        "matnet.test_accuracy".to_string(),
        format!("{:.4}", test_eval.accuracy),
    );
    // Parameters and buffers (batch norm statistics): the whole state_dict.
    model.save(&ckpt, meta)?;
    let csv = out.join("metrics.csv");
    write_metrics(&csv, &history)?;
    let png = out.join("chart.png");
    chart::plot_metrics(&png, &history, &format!("{} on {kind}", args.model.name()))?;
    println!("checkpoint: {}", ckpt.display());
    println!("metrics:    {}", csv.display());
    println!("chart:      {}", png.display());
    Ok(())
}

/// The `--augment`, `--shift` and `--rotate` options, checked: the
/// augmentation (filling with `0.0`), or none.
pub fn augment_options(args: &TrainArgs) -> anyhow::Result<Option<Augment>> {
    ensure!(
        args.augment || (args.shift.is_none() && args.rotate.is_none()),
        "--shift and --rotate apply only with --augment"
    );
    let rotate = args.rotate.unwrap_or(10.0);
    ensure!(
        (0.0..=180.0).contains(&rotate),
        "--rotate must be between 0 and 180 degrees, got {rotate}"
    );
    Ok(args
        .augment
        .then(|| Augment::new(args.shift.unwrap_or(2), rotate)))
}

/// Checks that `augment`'s shift is smaller than the training images.
pub fn check_shift(augment: &Option<Augment>, train: &Dataset) -> anyhow::Result<()> {
    let shift = augment.map_or(0, |a| a.max_shift);
    ensure!(
        shift < train.rows().min(train.cols()),
        "--shift must be smaller than the {}×{} images, got {shift}",
        train.rows(),
        train.cols()
    );
    Ok(())
}

/// The training images `x` with `augment` applied (drawing from `rng`), or
/// `x` itself.
fn augmented(
    augment: &Option<Augment>,
    x: &Tensor,
    rows: usize,
    cols: usize,
    rng: &mut Rng,
) -> Tensor {
    match augment {
        Some(a) => a.apply(x, rows, cols, rng),
        None => x.clone(),
    }
}

pub fn bar(len: u64, unit: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    let style = ProgressStyle::with_template(&format!("{{bar:30}} {{pos}}/{{len}} {unit} {{msg}}"))
        .expect("valid progress template");
    b.set_style(style);
    b
}

fn write_metrics(path: &Path, rows: &[EpochMetrics]) -> anyhow::Result<()> {
    chart::write_csv(
        path,
        "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,images_per_sec",
        rows.iter().map(|m| {
            format!(
                "{},{:.6},{:.6},{:.6},{:.6},{},{:.3},{:.1}",
                m.epoch,
                m.train_loss,
                m.train_acc,
                m.val_loss,
                m.val_acc,
                m.lr,
                m.seconds,
                m.images_per_sec
            )
        }),
    )
}
