//! `matnet inspect`: filter and feature-map pictures of a LeNet checkpoint,
//! attention pictures of a trained vit, and clean errors on bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{checkpoint, checkpoint_with, fails, good_tensors, matnet, mnist_data};

use matnet::Tensor;

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
        line.contains("fake.png") && line.contains("not a PNG file"),
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
    let Some(data) = mnist_data("train-images-idx3-ubyte.gz") else {
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
    let Some(data) = mnist_data("train-images-idx3-ubyte.gz") else {
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
