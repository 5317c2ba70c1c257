//! `matnet train --model joint` on a tiny dataset, then every command that
//! reads its checkpoint: `eval`, `predict` and `inspect` (the class head),
//! `generate --digit` (the generator).

mod common;

use common::{dataset, fails, matnet};
use std::path::Path;

use matnet::data::read_idx;

fn ok(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn train_joint_then_eval_predict_inspect_and_generate() {
    let dir = dataset("joint", |_| {});
    let run = dir.join("run");
    let data = dir.to_str().unwrap();
    let stdout = ok(&matnet(&[
        "train",
        "--model",
        "joint",
        "--data",
        data,
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--quiet",
        "--epoch-samples",
        "20",
        "--out",
        run.to_str().unwrap(),
    ]));
    assert!(stdout.contains("class head: test accuracy"), "{stdout}");
    for f in [
        "model.safetensors",
        "epoch_001.png",
        "epoch_002.png",
        "epoch_002-idx3-ubyte.gz",
        "progress.gif",
        "chart.png",
        "metrics.csv",
    ] {
        assert!(run.join(f).is_file(), "{f} missing in {}", run.display());
    }
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,d_loss,g_loss,rec_loss,d_real,d_fake,real_acc,fake_acc,test_acc,d_steps,g_steps,seconds"
    );
    // 40 images in batches of 16: 3 steps of each player per epoch.
    assert!(
        lines[1].starts_with("1,") && lines[1].contains(",3,3,"),
        "{csv}"
    );
    let grid = image::open(run.join("epoch_002.png")).unwrap();
    assert_eq!(
        (grid.width(), grid.height()),
        (302, 302),
        "one row per digit"
    );

    let ckpt = run.join("model.safetensors");
    let c = ckpt.to_str().unwrap();
    let out = ok(&matnet(&["eval", "--checkpoint", c, "--data", data]));
    assert!(out.contains("joint on 10 test images"), "{out}");

    let digits = dir.join("sevens");
    ok(&matnet(&[
        "generate",
        "--checkpoint",
        c,
        "--digit",
        "7",
        "--count",
        "2",
        "--out",
        digits.to_str().unwrap(),
    ]));
    let seven = digits.join("00000_7.png");
    assert!(seven.is_file());
    let idx = dir.join("sevens-idx3-ubyte.gz");
    ok(&matnet(&[
        "generate",
        "--checkpoint",
        c,
        "--digit",
        "7",
        "--count",
        "5",
        "--out",
        idx.to_str().unwrap(),
    ]));
    assert_eq!(read_idx(&idx).unwrap().dims, [5, 28, 28]);

    let out = ok(&matnet(&[
        "predict",
        "--checkpoint",
        c,
        seven.to_str().unwrap(),
    ]));
    assert!(out.contains("predicted"), "{out}");

    let maps = dir.join("inspect");
    let out = ok(&matnet(&[
        "inspect",
        "--checkpoint",
        c,
        "--image",
        seven.to_str().unwrap(),
        "--out",
        maps.to_str().unwrap(),
    ]));
    assert!(out.contains("predicted as"), "{out}");
    for f in ["filters.png", "conv1_maps.png", "conv2_maps.png"] {
        assert!(maps.join(f).is_file(), "{f}: {out}");
    }

    let err = fails(&matnet(&[
        "generate",
        "--checkpoint",
        c,
        "--digit",
        "10",
        "--out",
        dir.join("x.png").to_str().unwrap(),
    ]));
    assert!(err.contains("--digit must be below 10"), "{err}");
}

/// One epoch of the joint model on the small test set in `data`, batch 20,
/// into `run`, with `extra` flags.
fn train_small(data: &Path, run: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "train",
        "--model",
        "joint",
        "--data",
        data.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "20",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ];
    args.extend(extra);
    matnet(&args)
}

#[test]
fn ablation_flags_remove_their_parts() {
    let dir = dataset("joint-ablation", |_| {});
    let stdout = ok(&train_small(
        &dir,
        &dir.join("run"),
        &[
            "--no-rnn",
            "--no-attention",
            "--no-reconstruction",
            "--no-fake-class-loss",
        ],
    ));
    assert!(
        stdout
            .starts_with("training joint-no-rnn-no-attention-no-reconstruction-no-fake-class-loss"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("LSTM") && !stdout.contains("MultiheadAttention"),
        "{stdout}"
    );
    assert!(!stdout.contains("| E:"), "{stdout}");
    assert!(
        stdout.contains("class loss on generated samples: none"),
        "{stdout}"
    );
}

/// The values of every tensor of the run's checkpoint whose name contains
/// `part`.
fn weights(run: &Path, part: &str) -> Vec<Vec<f32>> {
    let c = matnet::io::checkpoint::load(&run.join("model.safetensors")).unwrap();
    c.tensors
        .into_iter()
        .filter(|(n, _)| n.contains(part))
        .map(|(_, t)| t.to_vec())
        .collect()
}

/// `--rec-weight` sets λ, the reconstruction loss's weight in G's
/// objective: stated in the run's first line, changing the trained weights,
/// and refused when negative or not a number.
#[test]
fn rec_weight_sets_the_reconstruction_loss_weight() {
    let dir = dataset("joint-rec-weight", |_| {});
    let train = |tag: &str, weight: &str| {
        let run = dir.join(tag);
        let out = train_small(&dir, &run, &[&format!("--rec-weight={weight}")]);
        (out, run)
    };
    let out = train_small(&dir, &dir.join("default"), &[]);
    assert!(
        ok(&out).contains("reconstruction weight 0.01 every 4 G steps,"),
        "the default λ and schedule"
    );
    let (out, one) = train("one", "1");
    assert!(ok(&out).contains("reconstruction weight 1 every 4 G steps,"));
    let (out, tenth) = train("tenth", "0.1");
    assert!(ok(&out).contains("reconstruction weight 0.1 every 4 G steps,"));
    assert!(
        weights(&one, "generator") != weights(&tenth, "generator"),
        "the generator trained to the same weights with λ = 1 and λ = 0.1"
    );
    for bad in ["-1", "NaN"] {
        let err = fails(&train("bad", bad).0);
        assert!(
            err.contains("--rec-weight must be a number ≥ 0"),
            "{bad}: {err}"
        );
    }
}

/// `--rec-every N` runs the reconstruction term on every N-th G step: stated
/// in the run's first line, changing the trained weights (two G steps: on
/// both against on the first only), refused at 0.
#[test]
fn rec_every_sets_how_often_the_reconstruction_term_runs() {
    let dir = dataset("joint-rec-every", |_| {});
    let train = |tag: &str, every: &str| {
        let run = dir.join(tag);
        (train_small(&dir, &run, &["--rec-every", every]), run)
    };
    let (out, each) = train("each", "1");
    assert!(ok(&out).contains("reconstruction weight 0.01 every G step,"));
    let (out, second) = train("second", "2");
    assert!(ok(&out).contains("reconstruction weight 0.01 every 2 G steps,"));
    assert!(
        weights(&each, "generator") != weights(&second, "generator"),
        "the generator trained to the same weights with --rec-every 1 and 2"
    );
    let err = fails(&train("zero", "0").0);
    assert!(err.contains("--rec-every must be at least 1"), "{err}");
}

/// `--real-class-only`: stated in the run's first line and its name, D
/// then learns different weights; refused beside `--no-fake-class-loss`.
#[test]
fn real_class_only_keeps_the_class_loss_on_samples_for_g_alone() {
    let dir = dataset("joint-real-class-only", |_| {});
    let both = dir.join("both");
    let real_only = dir.join("real-only");
    assert!(
        ok(&train_small(&dir, &both, &[])).contains("class loss on generated samples: D and G,")
    );
    let out = ok(&train_small(&dir, &real_only, &["--real-class-only"]));
    assert!(
        out.starts_with("training joint-real-class-only")
            && out.contains(
                "class loss on generated samples: G only (D's class head learns real images only),"
            ),
        "{out}"
    );
    assert!(
        weights(&both, "discriminator") != weights(&real_only, "discriminator"),
        "D trained to the same weights with and without --real-class-only"
    );
    let err = fails(&train_small(
        &dir,
        &dir.join("bad"),
        &["--real-class-only", "--no-fake-class-loss"],
    ));
    assert!(err.contains("give one of them"), "{err}");
}

/// `--augment` moves every image D sees (real and generated): stated in
/// the run's first line, changing what both players learn, its shift
/// checked against the image size; the GANs refuse it.
#[test]
fn augment_moves_what_the_discriminator_sees() {
    let dir = dataset("joint-augment", |_| {});
    let plain = dir.join("plain");
    let moved = dir.join("moved");
    assert!(ok(&train_small(&dir, &plain, &[])).contains("no augmentation,"));
    let out = ok(&train_small(&dir, &moved, &["--augment"]));
    assert!(
        out.contains("D sees every image moved (shifts up to 2 px, rotations up to 10°)"),
        "{out}"
    );
    for part in ["discriminator", "generator"] {
        assert!(
            weights(&plain, part) != weights(&moved, part),
            "the {part} trained to the same weights with and without --augment"
        );
    }
    let err = fails(&train_small(
        &dir,
        &dir.join("bad"),
        &["--augment", "--shift", "28"],
    ));
    assert!(err.contains("--shift must be smaller"), "{err}");
    let d = dir.to_str().unwrap();
    let err = fails(&matnet(&[
        "train",
        "--model",
        "dcgan",
        "--data",
        d,
        "--augment",
        "--epochs",
        "1",
    ]));
    assert!(
        err.contains("--augment, --shift and --rotate apply to"),
        "{err}"
    );
}
