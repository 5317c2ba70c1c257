//! `matnet train --model joint`: the joint recognise-and-generate model of
//! the seed report's §5, trained as the GANs are (same options, per-epoch
//! grids with one row per digit, GIF, `metrics.csv`, chart, one checkpoint)
//! plus the class head's test accuracy after every epoch.

use std::collections::BTreeMap;
use std::ops::AddAssign;
use std::path::{Path, PathBuf};

use matnet::data::{Dataset, DatasetKind, Normalize, Split};
use matnet::models::{
    GanTraining, Generator, Joint, JointConfig, JointDStep, JointTrainer, JointTraining,
};
use matnet::train::Player;
use matnet::train::evaluate;
use matnet::{Module, Rng, Tensor};
use plotters::style::{BLACK, BLUE, MAGENTA, RGBColor};
use serde::{Deserialize, Serialize};

use crate::adversarial::{self, Contest, EpochRow, checked_options};
use crate::chart::{Panel, Series, plot_panels};
use crate::evaluate::print_report;
use crate::gan_train::{self, Means as GanMeans};
use crate::train::TrainArgs;

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
    /// joint: D's class head learns from real images only; G is still
    /// trained to make its samples read as the class asked for (an
    /// auxiliary classifier that also learns generated samples rewards G
    /// for easily classified, less varied digits).
    #[arg(long)]
    #[serde(default)]
    pub real_class_only: bool,
    /// joint: D gets a twin class head that learns the class asked of each
    /// generated sample, its class head real images only, and G is trained
    /// to read as its class to the one and not to the other (TAC-GAN: the
    /// class loss without its pull toward less varied digits).
    #[arg(long)]
    #[serde(default)]
    pub twin_class_head: bool,
    /// joint: the weight λ of the reconstruction loss in G's objective
    /// (0.01: at 1 the loss blurs G, FID 96 against 6.9 after 6 epochs;
    /// README, joint model).
    #[arg(long, value_name = "λ", default_value_t = 0.01)]
    #[serde(default = "one")]
    pub rec_weight: f32,
    /// joint: run the reconstruction term on every N-th G step only,
    /// weighted N·λ there (lazy regularisation: a quarter of its cost at 4,
    /// the same expected gradient).
    #[arg(long, value_name = "N", default_value_t = 4)]
    #[serde(default = "every_step")]
    pub rec_every: usize,
}

/// How often runs saved before `--rec-every` existed ran the reconstruction
/// term: on every G step.
fn every_step() -> usize {
    1
}

/// The weight of runs saved before `--rec-weight` existed: they trained
/// with λ = 1, the default then.
fn one() -> f32 {
    1.0
}

/// The GAN's step figures plus the class head's accuracies (per D step)
/// and the reconstruction loss (per G step that ran the module).
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
struct Means {
    gan: GanMeans,
    real_acc: f64,
    fake_acc: f64,
    rec_loss: f64,
    rec_steps: usize,
}

impl Means {
    /// The class head's mean accuracy on real and on generated batches.
    fn acc(&self) -> [f64; 2] {
        let n = self.gan.d_steps.max(1) as f64;
        [self.real_acc / n, self.fake_acc / n]
    }

    fn rec(&self) -> f64 {
        self.rec_loss / self.rec_steps.max(1) as f64
    }
}

impl AddAssign for Means {
    fn add_assign(&mut self, o: Means) {
        self.gan += o.gan;
        self.real_acc += o.real_acc;
        self.fake_acc += o.fake_acc;
        self.rec_loss += o.rec_loss;
        self.rec_steps += o.rec_steps;
    }
}

/// The joint model and its players, the last discriminator step, and the
/// test set the class head is scored on after every epoch.
struct JointContest {
    model: Joint,
    trainer: JointTrainer,
    last: Option<JointDStep>,
    test: Dataset,
}

impl Contest for JointContest {
    type Means = Means;
    /// The class head's test accuracy.
    type Extra = f32;

    fn d_step(&mut self, real: &Tensor, labels: &Tensor, noise: &mut Rng) -> matnet::Result<Means> {
        let ds = self.trainer.d_step(&self.model, real, labels, noise)?;
        let m = Means {
            gan: GanMeans::d_step(ds.loss, ds.d_real, ds.d_fake),
            real_acc: ds.real_accuracy as f64,
            fake_acc: ds.fake_accuracy as f64,
            ..Means::default()
        };
        self.last = Some(ds);
        Ok(m)
    }

    fn g_step(&mut self, step: usize) -> matnet::Result<Means> {
        let ds = self.last.as_ref().expect("a D step precedes every G step");
        let g = self.trainer.g_step(&self.model, ds, step)?;
        Ok(Means {
            gan: GanMeans::g_step(g.loss),
            rec_loss: g.reconstruction.unwrap_or(0.0) as f64,
            rec_steps: g.reconstruction.is_some() as usize,
            ..Means::default()
        })
    }

    fn steps(m: &Means) -> (usize, usize) {
        (m.gan.d_steps, m.gan.g_steps)
    }

    fn status(m: &Means) -> String {
        let [dl, dr, df] = m.gan.d();
        format!(
            "D loss {dl:.3} G loss {:.3} rec {:.3} D(x) {dr:.3} D(G(z)) {df:.3} acc {:.2}%",
            m.gan.g(),
            m.rec(),
            100.0 * m.acc()[0]
        )
    }

    fn extra(&self) -> f32 {
        let classes = self.model.config.classes;
        evaluate(&self.model, classes, &self.test, Normalize::Unit).accuracy
    }

    fn line(m: &Means, test_acc: &f32) -> String {
        let ([dl, dr, df], [real, fake]) = (m.gan.d(), m.acc());
        format!(
            "D loss {dl:.4} G loss {:.4} rec {:.4} D(x) {dr:.3} D(G(z)) {df:.3} | \
             class acc real {:.2}% generated {:.2}% test {:.2}%",
            m.gan.g(),
            m.rec(),
            100.0 * real,
            100.0 * fake,
            100.0 * test_acc,
        )
    }

    fn generator(&self) -> &Generator {
        &self.model.generator
    }

    const NAME: &'static str = "joint";

    fn parts(&mut self) -> (&mut dyn Module, &mut Player, &mut Player) {
        let t = &mut self.trainer;
        (&mut self.model, &mut t.d, &mut t.g)
    }
}

/// The run's name: `joint`, with the parts switched off.
fn run_name(j: &JointArgs) -> String {
    let mut name = String::from("joint");
    for (off, tag) in [
        (j.no_rnn, "-no-rnn"),
        (j.no_attention, "-no-attention"),
        (j.no_reconstruction, "-no-reconstruction"),
        (j.no_fake_class_loss, "-no-fake-class-loss"),
        (j.real_class_only, "-real-class-only"),
        (j.twin_class_head, "-twin"),
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
    let augment = crate::train::augment_options(args)?;
    let kind: DatasetKind = args.dataset.parse()?;
    let dir = crate::locate_data(args.data.as_deref(), kind)?;
    let mut train = Dataset::load(&dir, kind, Split::Train)?;
    let test = Dataset::load(&dir, kind, Split::Test)?;
    if let Some(limit) = args.limit {
        anyhow::ensure!(limit > 0, "--limit must be at least 1");
        train = train.take(limit.min(train.len()));
    }
    crate::train::check_shift(&augment, &train)?;
    let config = JointConfig {
        rows: train.rows(),
        cols: train.cols(),
        classes: train.num_classes(),
        dataset: kind.to_string(),
        rnn: !j.no_rnn,
        attention: !j.no_attention,
        reconstruction: !j.no_reconstruction,
        twin: j.twin_class_head,
        ..JointConfig::for_mnist()
    };
    anyhow::ensure!(
        j.rec_weight.is_finite() && j.rec_weight >= 0.0,
        "--rec-weight must be a number ≥ 0, got {}",
        j.rec_weight
    );
    anyhow::ensure!(j.rec_every > 0, "--rec-every must be at least 1");
    anyhow::ensure!(
        !(j.real_class_only && j.no_fake_class_loss),
        "--real-class-only keeps G's class loss on generated samples, which \
         --no-fake-class-loss removes: give one of them"
    );
    anyhow::ensure!(
        !(j.twin_class_head && (j.real_class_only || j.no_fake_class_loss)),
        "--twin-class-head trains the class heads on generated samples its own way \
         (the class head on real images only, the twin on samples): leave out {}",
        if j.real_class_only {
            "--real-class-only"
        } else {
            "--no-fake-class-loss"
        }
    );
    let model = Joint::new(config, args.seed)?;
    let settings = JointTraining {
        gan: GanTraining {
            g_loss: a.g_loss,
            real_target,
            lr_d: a.lr_d,
            lr_g: a.lr_g,
        },
        fake_class_loss: !j.no_fake_class_loss,
        real_class_only: j.real_class_only,
        reconstruction_weight: j.rec_weight,
        reconstruction_every: j.rec_every,
        // D sees images in [-1, 1]: black is -1.
        augment: augment.map(|a| a.with_fill(-1.0)),
    };
    let trainer = JointTrainer::new(&model, settings);
    let name = run_name(j);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&name));
    let (mut saver, resumed) = crate::state::Saver::open(&out, args)?;
    println!(
        "training {name} ({} parameters: {}) on {} images of {kind}; {epochs} epochs, batch {batch_size}, \
         {:?} G loss, real target {real_target}, {}, {} D step(s) per G step, \
         class loss on generated samples: {}, reconstruction weight {} every {}, {}, seed {}",
        model.num_parameters(),
        model.describe(),
        train.len(),
        a.g_loss,
        a.lr_text(),
        a.d_steps,
        match (
            settings.fake_class_loss,
            settings.real_class_only,
            j.twin_class_head
        ) {
            (false, _, _) => "none",
            (true, _, true) => "twin head for D, G against both heads (TAC-GAN)",
            (true, false, false) => "D and G",
            (true, true, false) => "G only (D's class head learns real images only)",
        },
        settings.reconstruction_weight,
        match settings.reconstruction_every {
            1 => "G step".to_string(),
            n => format!("{n} G steps"),
        },
        augment.map_or("no augmentation".to_string(), |a| format!(
            "D sees every image moved ({a})"
        )),
        args.seed
    );

    let config = model.config.gan_config();
    let mut c = JointContest {
        model,
        trainer,
        last: None,
        test,
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
    let (model, test) = (c.model, c.test);
    let classes = model.config.classes;
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
    meta.insert("matnet.g_steps".to_string(), run.g_count.to_string());
    adversarial::ema_meta(&mut meta, &args.gan);
    meta.insert(
        "matnet.fake_class_loss".to_string(),
        settings.fake_class_loss.to_string(),
    );
    meta.insert(
        "matnet.real_class_only".to_string(),
        settings.real_class_only.to_string(),
    );
    meta.insert(
        "matnet.test_accuracy".to_string(),
        format!("{:.4}", test_eval.accuracy),
    );
    model.save(&ckpt, meta)?;
    let gif = out.join("progress.gif");
    let csv = out.join("metrics.csv");
    write_metrics(&csv, &run.history)?;
    let png = out.join("chart.png");
    plot(&png, &run.points, &format!("{name} on {kind}"))?;
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

/// The GAN's panels with the reconstruction loss, and the class head's.
fn plot(path: &Path, points: &[(usize, Means)], title: &str) -> anyhow::Result<()> {
    let series = |name, color: RGBColor, f: fn(&Means) -> f64| Series {
        name,
        color,
        points: points
            .iter()
            .map(|(s, m)| (*s as f32, f(m) as f32))
            .collect(),
    };
    let rec = series("reconstruction", MAGENTA, |m| m.rec());
    let mut panels = gan_train::panels(points, |m| &m.gan, vec![rec]);
    panels.push(Panel {
        y_desc: "class head accuracy",
        series: vec![
            series("real batch", BLACK, |m| m.acc()[0]),
            series("generated, as asked", BLUE, |m| m.acc()[1]),
        ],
    });
    plot_panels(path, title, "generator step", &panels)
}

fn write_metrics(path: &Path, rows: &[EpochRow<Means, f32>]) -> anyhow::Result<()> {
    crate::chart::write_csv(
        path,
        "epoch,d_loss,g_loss,rec_loss,d_real,d_fake,real_acc,fake_acc,test_acc,d_steps,g_steps,seconds",
        rows.iter().map(|r| {
            let m = &r.means;
            let ([dl, dr, df], [real, fake]) = (m.gan.d(), m.acc());
            format!(
                "{},{dl:.6},{:.6},{:.6},{dr:.6},{df:.6},{real:.6},{fake:.6},{:.6},{},{},{:.3}",
                r.epoch,
                m.gan.g(),
                m.rec(),
                r.extra,
                m.gan.d_steps,
                m.gan.g_steps,
                r.seconds
            )
        }),
    )
}
