//! `matnet train --model dcgan` on a tiny dataset, then `matnet generate` in
//! its three output forms, and generate's errors.

mod common;

use std::path::Path;

use common::{dataset, fails, matnet};
use matnet::data::read_idx;
use matnet::models::{Arch, Classifier, ModelConfig};

fn ok(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `matnet generate --checkpoint CKPT ARGS...`.
fn generate(ckpt: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["generate", "--checkpoint", ckpt];
    all.extend_from_slice(args);
    matnet(&all)
}

fn train_dcgan(dir: &Path, conditional: bool) -> std::path::PathBuf {
    if conditional {
        train_dcgan_with(dir, "cond", &["--conditional"])
    } else {
        train_dcgan_with(dir, "plain", &[])
    }
}

/// Two epochs of a DCGAN on the tiny dataset in `dir`, into `dir/name`, with
/// `extra` flags; checks what the run writes and returns its checkpoint.
fn train_dcgan_with(dir: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let run = dir.join(name);
    let mut args = vec![
        "train",
        "--model",
        "dcgan",
        "--data",
        dir.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--quiet",
        "--label-smoothing",
        "--out",
        run.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let stdout = ok(&matnet(&args));
    assert!(stdout.contains("D(G(z))"), "{stdout}");
    for f in [
        "model.safetensors",
        "epoch_001.png",
        "epoch_002.png",
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
        "epoch,d_loss,g_loss,d_real,d_fake,d_steps,g_steps,seconds"
    );
    // 40 images in batches of 16: 3 steps of each player per epoch.
    assert!(
        lines[1].starts_with("1,") && lines[1].contains(",3,3,"),
        "{csv}"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    let grid = image::open(run.join("epoch_002.png")).unwrap();
    assert_eq!(
        (grid.width(), grid.height()),
        (302, 302),
        "10×10 digits of 28 px, 2 px gaps"
    );
    run.join("model.safetensors")
}

#[test]
fn train_a_dcgan_then_generate_a_grid_a_folder_and_an_idx_file() {
    let dir = dataset("gan", |_| {});
    let ckpt = train_dcgan(&dir, false);
    let c = ckpt.to_str().unwrap();

    let png = dir.join("grid.png");
    ok(&generate(
        c,
        &["--count", "12", "--out", png.to_str().unwrap()],
    ));
    let img = image::open(&png).unwrap();
    // 12 images in rows of ⌈√12⌉ = 4: 3 rows.
    assert_eq!((img.width(), img.height()), (4 * 30 + 2, 3 * 30 + 2));

    let folder = dir.join("samples");
    ok(&generate(
        c,
        &["--count", "3", "--out", folder.to_str().unwrap()],
    ));
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["00000_0.png", "00001_1.png", "00002_2.png"]);
    let one = image::open(folder.join("00001_1.png")).unwrap();
    assert_eq!((one.width(), one.height()), (32, 32));

    let idx = dir.join("fake-idx3-ubyte.gz");
    let idx_s = idx.to_str().unwrap();
    ok(&generate(
        c,
        &["--count", "7", "--seed", "3", "--out", idx_s],
    ));
    let arr = read_idx(&idx).unwrap();
    assert_eq!(arr.dims, [7, 28, 28]);
    // The same seed gives the same bytes.
    let again = dir.join("again-idx3-ubyte.gz");
    ok(&generate(
        c,
        &[
            "--count",
            "7",
            "--seed",
            "3",
            "--out",
            again.to_str().unwrap(),
        ],
    ));
    assert_eq!(read_idx(&again).unwrap().data, arr.data);

    let strip = dir.join("walk.png");
    ok(&generate(
        c,
        &[
            "--interpolate",
            "--count",
            "8",
            "--out",
            strip.to_str().unwrap(),
        ],
    ));
    let s = image::open(&strip).unwrap();
    assert_eq!((s.width(), s.height()), (8 * 30 + 2, 32));

    // Errors: one line each.
    let e = fails(&generate(
        c,
        &["--digit", "3", "--out", png.to_str().unwrap()],
    ));
    assert!(e.contains("conditional"), "{e}");
    let e = fails(&generate(
        c,
        &["--out", dir.join("x.jpg").to_str().unwrap()],
    ));
    assert!(e.contains("--out"), "{e}");
    let e = fails(&generate(
        c,
        &["--count", "0", "--out", png.to_str().unwrap()],
    ));
    assert!(e.contains("--count"), "{e}");
}

#[test]
fn a_conditional_dcgan_generates_the_digit_asked_for_and_a_classifier_is_refused() {
    let dir = dataset("cgan", |_| {});
    let ckpt = train_dcgan(&dir, true);
    let c = ckpt.to_str().unwrap();
    let idx = dir.join("sevens-idx3-ubyte.gz");
    ok(&generate(
        c,
        &[
            "--digit",
            "7",
            "--count",
            "5",
            "--out",
            idx.to_str().unwrap(),
        ],
    ));
    assert_eq!(read_idx(&idx).unwrap().dims, [5, 28, 28]);
    let e = fails(&generate(
        c,
        &["--digit", "10", "--out", idx.to_str().unwrap()],
    ));
    assert!(e.contains("--digit"), "{e}");

    // A classifier's checkpoint is not a GAN.
    let mlp = dir.join("mlp.safetensors");
    Classifier::new(ModelConfig::for_mnist(Arch::Mlp), 0)
        .unwrap()
        .save(&mlp, Default::default())
        .unwrap();
    let e = fails(&matnet(&[
        "generate",
        "--checkpoint",
        mlp.to_str().unwrap(),
        "--out",
        dir.join("x.png").to_str().unwrap(),
    ]));
    assert!(e.contains("not a GAN"), "{e}");
}

/// `--g-ema`: the checkpoint's generator is the moving average the training
/// state keeps beside the raw weights (which differ from it), the update
/// count is the number of G steps, and the metadata names the decay.
#[test]
fn g_ema_saves_the_averaged_generator_and_keeps_the_raw_one_in_the_state() {
    let dir = dataset("gan-ema", |_| {});
    let path = train_dcgan_with(&dir, "ema", &["--g-ema", "0.5"]);
    let run = path.parent().unwrap();
    let ckpt = matnet::io::checkpoint::load(&path).unwrap();
    assert_eq!(
        ckpt.metadata.get("matnet.g_ema").map(String::as_str),
        Some("0.5")
    );
    let state = matnet::io::TrainingState::load(&run.join("state.safetensors")).unwrap();
    // 40 images in batches of 16: 3 G steps per epoch.
    assert_eq!(state.steps.get("ema.generator"), Some(&6));
    let mut generator = 0;
    for (name, t) in &ckpt.tensors {
        let Some(rest) = name.strip_prefix("generator.") else {
            continue;
        };
        generator += 1;
        let avg = &state.tensors[&format!("ema.generator.{rest}")];
        let raw = &state.tensors[&format!("gan.generator.{rest}")];
        assert_eq!(t.to_vec(), avg.to_vec(), "{name}: not the average");
        if rest.ends_with("weight") {
            assert_ne!(t.to_vec(), raw.to_vec(), "{name}: the raw weights");
        }
    }
    assert!(generator > 0);
    let fails_with = |decay: &str| {
        let out = matnet(&[
            "train",
            "--model",
            "dcgan",
            "--data",
            dir.to_str().unwrap(),
            &format!("--g-ema={decay}"),
            "--out",
            dir.join("bad").to_str().unwrap(),
        ]);
        fails(&out)
    };
    for bad in ["1", "-0.1", "NaN"] {
        let err = fails_with(bad);
        assert!(err.contains("--g-ema must be in [0, 1)"), "{bad}: {err}");
    }
}
