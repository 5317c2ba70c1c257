//! The `matnet` binary on bad input: one clear error line, a non-zero exit,
//! never a panic.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{dataset, fails, gz, idx, matnet};

use matnet::Tensor;

fn train_on(dir: &Path) -> Output {
    matnet(&[
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--epochs",
        "1",
        "--quiet",
        "--out",
        dir.join("run").to_str().unwrap(),
    ])
}

#[test]
fn no_arguments_tells_a_new_user_what_to_run() {
    let out = matnet(&[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("matnet train") && text.contains("--data DIR"),
        "{text}"
    );
    let help = matnet(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("First steps"));
}

#[test]
fn truncated_gzip() {
    let dir = dataset("trunc", |d| {
        let p = d.join("train-labels-idx1-ubyte.gz");
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    });
    let line = fails(&train_on(&dir));
    assert!(line.contains("train-labels-idx1-ubyte.gz"), "{line}");
}

#[test]
fn wrong_magic() {
    let dir = dataset("magic", |d| {
        let mut bytes = idx(&[40, 28, 28], &vec![0u8; 40 * 784]);
        bytes[2] = 0x0d; // float data: not what MNIST holds
        bytes[0] = 7;
        std::fs::write(d.join("train-images-idx3-ubyte.gz"), gz(&bytes)).unwrap();
    });
    let line = fails(&train_on(&dir));
    assert!(
        line.contains("train-images-idx3-ubyte.gz") && line.contains("magic"),
        "{line}"
    );
}

#[test]
fn label_count_differs_from_image_count() {
    let dir = dataset("count", |d| {
        let labels: Vec<u8> = (0..39).map(|i| (i % 10) as u8).collect();
        std::fs::write(
            d.join("train-labels-idx1-ubyte.gz"),
            gz(&idx(&[39], &labels)),
        )
        .unwrap();
    });
    let line = fails(&train_on(&dir));
    assert!(line.contains("40") && line.contains("39"), "{line}");
}

#[test]
fn header_claiming_four_billion_images() {
    let dir = dataset("huge", |d| {
        std::fs::write(
            d.join("train-images-idx3-ubyte.gz"),
            gz(&idx(&[u32::MAX, 28, 28], &[0u8; 784])),
        )
        .unwrap();
    });
    let line = fails(&train_on(&dir));
    assert!(line.contains("train-images-idx3-ubyte.gz"), "{line}");
}

#[test]
fn empty_file() {
    let dir = dataset("empty", |d| {
        std::fs::write(d.join("t10k-labels-idx1-ubyte.gz"), b"").unwrap()
    });
    let line = fails(&train_on(&dir));
    assert!(line.contains("t10k-labels-idx1-ubyte.gz"), "{line}");
}

#[test]
fn too_few_images_for_the_recipe() {
    // Valid files, but fewer training images than the validation split needs.
    let line = fails(&train_on(&dataset("small", |_| {})));
    assert!(line.contains("only 40 images"), "{line}");
}

#[test]
fn bad_arguments() {
    let dir = dataset("args", |_| {});
    let d = dir.to_str().unwrap();
    for (flag, value) in [
        ("--lr", "-1"),
        ("--lr", "NaN"),
        ("--epochs", "0"),
        ("--batch-size", "0"),
        ("--dropout", "1.5"),
    ] {
        let line = fails(&matnet(&["train", "--data", d, &format!("{flag}={value}")]));
        assert!(line.contains(flag), "{flag}: {line}");
    }
    for (args, flag) in [
        (&["--shift", "3"][..], "--shift"),
        (&["--rotate", "5"][..], "--rotate"),
        (&["--augment", "--rotate", "200"][..], "--rotate"),
        (&["--augment", "--rotate", "NaN"][..], "--rotate"),
        (&["--augment", "--rotate=-1"][..], "--rotate"),
    ] {
        let mut all = vec!["train", "--data", d];
        all.extend(args);
        let line = fails(&matnet(&all));
        assert!(line.contains(flag), "{args:?}: {line}");
    }
    let missing = fails(&matnet(&["train", "--data", "/nonexistent/matnet-data"]));
    assert!(missing.contains("/nonexistent/matnet-data"), "{missing}");
}

const MLP_CONFIG: &str = r#"{"arch":"mlp","rows":28,"cols":28,"classes":10,"hidden":[16],"dropout":0.0,"dataset":"mnist","normalize":"unit"}"#;

fn checkpoint(tag: &str, tensors: Vec<(String, Tensor)>) -> PathBuf {
    checkpoint_with(tag, MLP_CONFIG, tensors)
}

fn checkpoint_with(tag: &str, config: &str, tensors: Vec<(String, Tensor)>) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "matnet-cli-{tag}-{}.safetensors",
        std::process::id()
    ));
    let meta = BTreeMap::from([(matnet::io::CONFIG_KEY.to_string(), config.to_string())]);
    matnet::io::checkpoint::save(&path, &tensors, &meta).unwrap();
    path
}

fn good_tensors() -> Vec<(String, Tensor)> {
    vec![
        ("0.weight".into(), Tensor::zeros([16, 784])),
        ("0.bias".into(), Tensor::zeros([16])),
        ("2.weight".into(), Tensor::zeros([10, 16])),
        ("2.bias".into(), Tensor::zeros([10])),
    ]
}

#[test]
fn checkpoint_with_missing_tensor() {
    let mut t = good_tensors();
    t.pop();
    let path = checkpoint("missing", t);
    let line = fails(&matnet(&["eval", "--checkpoint", path.to_str().unwrap()]));
    assert!(line.contains("missing tensor '2.bias'"), "{line}");
}

#[test]
fn checkpoint_with_misshaped_tensor() {
    let mut t = good_tensors();
    t[0].1 = Tensor::zeros([16, 783]);
    let path = checkpoint("shape", t);
    let png = std::env::temp_dir().join("matnet-cli-unused.png");
    let line = fails(&matnet(&[
        "predict",
        "--checkpoint",
        path.to_str().unwrap(),
        png.to_str().unwrap(),
    ]));
    assert!(
        line.contains("'0.weight' has shape [16, 783], the model expects [16, 784]"),
        "{line}"
    );
}

#[test]
fn png_that_is_not_a_png() {
    let path = checkpoint("png", good_tensors());
    let fake = std::env::temp_dir().join(format!("matnet-cli-fake-{}.png", std::process::id()));
    std::fs::write(&fake, b"this is not an image").unwrap();
    let line = fails(&matnet(&[
        "predict",
        "--checkpoint",
        path.to_str().unwrap(),
        fake.to_str().unwrap(),
    ]));
    assert!(line.contains("cannot read image"), "{line}");
}

#[test]
fn not_a_checkpoint() {
    let fake = std::env::temp_dir().join(format!(
        "matnet-cli-fake-{}.safetensors",
        std::process::id()
    ));
    std::fs::write(&fake, b"random bytes, not safetensors").unwrap();
    let line = fails(&matnet(&["eval", "--checkpoint", fake.to_str().unwrap()]));
    assert!(line.contains("safetensors"), "{line}");
}

#[test]
fn same_seed_same_numbers_on_any_thread_count() {
    let Some(data) = std::env::var_os("MATNET_DATA")
        .filter(|d| Path::new(d).join("train-images-idx3-ubyte.gz").exists())
    else {
        println!("skipped: MATNET_DATA not set or MNIST files missing");
        return;
    };
    let run = |tag: &str, threads: &str| {
        let out = std::env::temp_dir().join(format!("matnet-cli-det-{tag}-{}", std::process::id()));
        let status = Command::new(env!("CARGO_BIN_EXE_matnet"))
            .args([
                "train", "--epochs", "1", "--limit", "2000", "--seed", "11", "--quiet",
            ])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .env("MATNET_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let ckpt = matnet::io::checkpoint::load(&out.join("model.safetensors")).unwrap();
        let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        // Column 7 is wall time; everything else must match exactly.
        let metrics: Vec<String> = csv
            .lines()
            .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
            .collect();
        (
            ckpt.tensors
                .into_iter()
                .map(|(n, t)| (n, t.to_vec()))
                .collect::<Vec<_>>(),
            metrics,
        )
    };
    let a = run("a", "2");
    let b = run("b", "2");
    let c = run("c", "1");
    assert!(a == b, "two runs with the same seed differ");
    assert!(a == c, "1 and 2 threads give different weights");
}

/// Writes an MNIST test digit as a user might draw it: dark ink on a light,
/// slightly coloured background, 5× larger, off-centre, as RGB PNG.
fn user_style_png(digit: &[u8], path: &Path) {
    let (s, w, h) = (5u32, 28 * 5 + 60, 28 * 5 + 20);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (sx, sy) = (x as i64 - 50, y as i64 - 4);
        let v = if (0..140).contains(&sx) && (0..140).contains(&sy) {
            digit[(sy as u32 / s * 28 + sx as u32 / s) as usize]
        } else {
            0
        };
        let g = 250 - (v as u32 * 230 / 255) as u8;
        image::Rgb([g, g, g.saturating_sub(12)])
    });
    img.save(path).unwrap();
}

#[test]
fn predict_reads_a_user_drawn_digit() {
    let Some(data) = std::env::var_os("MATNET_DATA")
        .filter(|d| Path::new(d).join("t10k-images-idx3-ubyte.gz").exists())
    else {
        println!("skipped: MATNET_DATA not set or MNIST files missing");
        return;
    };
    let dir = std::env::temp_dir().join(format!("matnet-cli-predict-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_matnet"))
        .args(["train", "--epochs", "2", "--limit", "10000", "--quiet"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let test = matnet::data::Dataset::load(
        Path::new(&data),
        matnet::data::DatasetKind::Mnist,
        matnet::data::Split::Test,
    )
    .unwrap();
    let mut right = 0;
    for i in 0..10 {
        let png = dir.join(format!("digit{i}.png"));
        user_style_png(test.image(i), &png);
        let out = matnet(&[
            "predict",
            "--checkpoint",
            dir.join("model.safetensors").to_str().unwrap(),
            png.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let predicted = text
            .split("predicted ")
            .nth(1)
            .and_then(|t| t.chars().next())
            .unwrap();
        if predicted.to_digit(10) == Some(test.label(i) as u32) {
            right += 1;
        }
    }
    // The network is ~97% accurate on MNIST itself; preprocessing must keep
    // that on re-drawn digits.
    assert!(
        right >= 9,
        "only {right}/10 re-drawn test digits recognised"
    );
}

// ----- matnet inspect ---------------------------------------------------------

const LENET_CONFIG: &str = r#"{"arch":"lenet","rows":28,"cols":28,"classes":10,"hidden":[],"dropout":0.0,"dataset":"mnist","normalize":"standard"}"#;

/// A LeNet-5 checkpoint with random weights: conv layers 1 and 4, dense
/// layers 8, 10 and 12 of the `Sequential` (0 is the reshape to an image).
fn random_lenet(tag: &str) -> PathBuf {
    let mut rng = matnet::Rng::new(5);
    let shapes: [(&str, &[usize]); 10] = [
        ("1.weight", &[6, 1, 5, 5]),
        ("1.bias", &[6]),
        ("4.weight", &[16, 6, 5, 5]),
        ("4.bias", &[16]),
        ("8.weight", &[120, 400]),
        ("8.bias", &[120]),
        ("10.weight", &[84, 120]),
        ("10.bias", &[84]),
        ("12.weight", &[10, 84]),
        ("12.bias", &[10]),
    ];
    let tensors = shapes
        .iter()
        .map(|(n, s)| (n.to_string(), Tensor::randn(s.to_vec(), 0.0, 0.2, &mut rng)))
        .collect();
    checkpoint_with(tag, LENET_CONFIG, tensors)
}

/// A dark "7" on a light 60×50 background, as a user might draw it.
fn drawn_seven(path: &Path) {
    let img = image::GrayImage::from_fn(60, 50, |x, y| {
        let bar = (8..14).contains(&y) && (15..45).contains(&x);
        let stem = (14..44).contains(&y) && {
            let cx = 44 - (y as i32 - 14) * 15 / 30;
            (x as i32 - cx).abs() <= 3
        };
        image::Luma([if bar || stem { 20 } else { 235 }])
    });
    img.save(path).unwrap();
}

fn png_size(path: &Path) -> (u32, u32) {
    image::image_dimensions(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `matnet inspect --checkpoint ckpt --image image --out out`.
fn inspect(ckpt: &Path, image: &Path, out: &Path) -> std::process::Output {
    matnet(&[
        "inspect",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--image",
        image.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

/// Runs `matnet inspect` on `ckpt` with a drawn "7" into `dir/pictures`,
/// expects success, and returns that directory and what it printed.
fn inspect_seven(ckpt: &Path, dir: &Path) -> (PathBuf, String) {
    let png = dir.join("seven.png");
    drawn_seven(&png);
    let out_dir = dir.join("pictures");
    let out = inspect(ckpt, &png, &out_dir);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out_dir, text)
}

/// Runs `matnet inspect` on `ckpt` and checks the four LeNet pictures.
fn assert_inspects_lenet(ckpt: &Path, dir: &Path) {
    let (out_dir, text) = inspect_seven(ckpt, dir);
    // Cells are upscaled by ⌊64 / side⌋ and tiled in a near-square grid
    // with 1-pixel separators: 6 filters of 5×5 at 12× in 3×2 cells,
    // 6 maps of 28×28 at 2× in 3×2, 16 maps of 10×10 at 6× in 4×4.
    for (name, size) in [
        ("input.png", (56, 56)),
        ("filters.png", (3 * 60 + 2, 2 * 60 + 1)),
        ("conv1_maps.png", (3 * 56 + 2, 2 * 56 + 1)),
        ("conv2_maps.png", (4 * 60 + 3, 4 * 60 + 3)),
    ] {
        let path = out_dir.join(name);
        assert_eq!(png_size(&path), size, "{name}");
        assert!(text.contains(&path.display().to_string()), "{name}: {text}");
    }
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "conv1_maps.png",
            "conv2_maps.png",
            "filters.png",
            "input.png"
        ]
    );
    assert!(
        text.contains("6 filters of layer 1 Conv2d(1 -> 6"),
        "{text}"
    );
    assert!(text.contains("16 feature maps of layer 4"), "{text}");
}

#[test]
fn inspect_draws_filters_and_feature_maps() {
    let dir = std::env::temp_dir().join(format!("matnet-cli-inspect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    assert_inspects_lenet(&random_lenet("inspect-lenet"), &dir);
}

#[test]
fn inspect_on_bad_input() {
    let dir = std::env::temp_dir().join(format!("matnet-cli-inspect-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("seven.png");
    drawn_seven(&png);
    let out = dir.join("pictures");
    let inspect = |ckpt: &Path, image: &Path| inspect(ckpt, image, &out);
    let missing = dir.join("no-such-model.safetensors");
    let line = fails(&inspect(&missing, &png));
    assert!(line.contains("no-such-model.safetensors"), "{line}");

    let fake = dir.join("fake.png");
    std::fs::write(&fake, b"this is not an image").unwrap();
    let line = fails(&inspect(&random_lenet("inspect-bad-lenet"), &fake));
    assert!(
        line.contains("fake.png") && line.contains("cannot read image"),
        "{line}"
    );

    let line = fails(&inspect(&checkpoint("inspect-mlp", good_tensors()), &png));
    assert_eq!(
        line,
        "error: inspect: model 'mlp' has no convolutional layers"
    );
    assert!(!out.exists(), "nothing is written on error");
}

#[test]
fn train_lenet_with_augmentation_then_inspect() {
    let Some(data) = std::env::var_os("MATNET_DATA")
        .filter(|d| Path::new(d).join("train-images-idx3-ubyte.gz").exists())
    else {
        println!("skipped: MATNET_DATA not set or MNIST files missing");
        return;
    };
    let dir = std::env::temp_dir().join(format!("matnet-cli-augment-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_matnet"))
        .args([
            "train",
            "--model",
            "lenet",
            "--epochs",
            "1",
            "--limit",
            "2000",
            "--augment",
            "--shift",
            "1",
            "--rotate",
            "8",
            "--quiet",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("shifts up to 1 px, rotations up to 8°"),
        "{text}"
    );
    let ckpt = dir.join("model.safetensors");
    let meta = matnet::io::checkpoint::load(&ckpt).unwrap().metadata;
    assert_eq!(meta["matnet.augment"], "shift 1 px, rotate 8 degrees");
    assert_inspects_lenet(&ckpt, &dir);
}

/// A briefly trained vit: `inspect` draws each layer's attention heads
/// (4 heads of 16×16, 4× upscaled, in one row) and the attention each of
/// the 4×4 patches receives.
#[test]
fn train_vit_then_inspect_attention() {
    let Some(data) = std::env::var_os("MATNET_DATA")
        .filter(|d| Path::new(d).join("train-images-idx3-ubyte.gz").exists())
    else {
        println!("skipped: MATNET_DATA not set or MNIST files missing");
        return;
    };
    let dir = std::env::temp_dir().join(format!("matnet-cli-vit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = matnet(&[
        "train",
        "--model",
        "vit",
        "--epochs",
        "1",
        "--limit",
        "1000",
        "--quiet",
        "--data",
        data.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (pictures, text) = inspect_seven(&dir.join("model.safetensors"), &dir);
    for layer in 1..=2 {
        let heads = pictures.join(format!("attention{layer}_heads.png"));
        assert_eq!(png_size(&heads), (4 * 64 + 3, 64), "{text}");
        let received = pictures.join(format!("attention{layer}_received.png"));
        assert_eq!(png_size(&received), (64, 64), "{text}");
    }
}

/// The sequence task: a causal transformer learns to reverse 8 digits and
/// decodes held-out sequences greedily; 400 steps already reverse nearly
/// all of them (the recipe's 1,000 steps are in the closing notes).
#[test]
fn train_reverse_task_learns_to_reverse() {
    let dir = std::env::temp_dir().join(format!("matnet-cli-reverse-{}", std::process::id()));
    let out = matnet(&[
        "train",
        "--task",
        "reverse",
        "--steps",
        "400",
        "--held-out",
        "200",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "held-out: 198/200 sequences reversed exactly (99.00%), ..."
    let line = text
        .lines()
        .find(|l| l.starts_with("held-out:"))
        .expect("an exact-match line");
    let exact: usize = line["held-out: ".len()..]
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(exact >= 190, "{line}");
    // The checkpoint rebuilds through the library's loader and still reverses.
    let matnet::models::Model::Reverser(model) =
        matnet::models::load(&dir.join("model.safetensors")).expect("the checkpoint loads")
    else {
        panic!("not loaded as the reverse-task model");
    };
    assert_eq!(model.config.seq_len, 8);
    let mut rng = matnet::Rng::new(99);
    let seqs: Vec<Vec<usize>> = (0..50)
        .map(|_| (0..8).map(|_| rng.below(10)).collect())
        .collect();
    let right = model
        .decode(&seqs)
        .iter()
        .zip(&seqs)
        .filter(|(d, s)| d.iter().eq(s.iter().rev()))
        .count();
    assert!(right >= 45, "the reloaded model reversed {right}/50");
}
