//! `matnet gan-score`: known answers on a tiny reference set (its own test
//! images score FID 0, precision and recall 1, in every input format), and
//! one clear error line for every kind of bad input.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::{fails, gz, idx_typed as idx, matnet};

const N_TEST: u32 = 10;

fn tmp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("matnet-gs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Distinct digit-like images: a bright block whose place and size vary.
fn pixels(n: u32, seed: u32) -> Vec<u8> {
    let mut v = vec![0u8; n as usize * 784];
    for i in 0..n as usize {
        let k = i as u32 * 7 + seed;
        let (r0, c0, h) = (4 + k % 9, 3 + (k * 5) % 11, 6 + k % 8);
        for r in r0..r0 + h {
            for c in c0..c0 + 10 {
                v[i * 784 + r as usize * 28 + c as usize] = (120 + (r * c + k) % 136) as u8;
            }
        }
    }
    v
}

/// A reference directory: 40 training and 10 test images.
fn reference(tag: &str) -> PathBuf {
    let dir = tmp(tag);
    for (prefix, n, seed) in [("train", 40u32, 100), ("t10k", N_TEST, 0)] {
        std::fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
            gz(&idx(8, &[n, 28, 28], &pixels(n, seed))),
        )
        .unwrap();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
            gz(&idx(8, &[n], &labels)),
        )
        .unwrap();
    }
    dir
}

fn score_json(samples: &Path, reference: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "gan-score",
        samples.to_str().unwrap(),
        "--reference",
        reference.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = matnet(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints JSON")
}

fn assert_identical_to_reference(v: &Value, what: &str) {
    let s = &v["samples"];
    assert_eq!(s["images"], N_TEST as u64, "{what}");
    assert!(s["fid"].as_f64().unwrap() < 1e-3, "{what}: {s}");
    assert_eq!(s["precision"], 1.0, "{what}");
    assert_eq!(s["recall"], 1.0, "{what}");
    let shares: f64 = s["class_shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .sum();
    assert!((shares - 1.0).abs() < 1e-9, "{what}");
    assert_eq!(v["feature_dim"], 84);
}

/// Writes the test images as a `rows × cols` PNG grid with `gap` pixels
/// between cells and `border` around them.
fn write_grid(path: &Path, px: &[u8], rows: u32, cols: u32, gap: u32, border: u32) {
    let w = 2 * border + cols * 28 + (cols - 1) * gap;
    let h = 2 * border + rows * 28 + (rows - 1) * gap;
    let mut img = image::GrayImage::from_pixel(w, h, image::Luma([255]));
    for i in 0..rows * cols {
        let (x0, y0) = (
            border + (i % cols) * (28 + gap),
            border + (i / cols) * (28 + gap),
        );
        for p in 0..784u32 {
            let v = px[(i * 784 + p) as usize];
            img.put_pixel(x0 + p % 28, y0 + p / 28, image::Luma([v]));
        }
    }
    img.save(path).unwrap();
}

#[test]
fn the_reference_images_score_as_identical_in_every_format() {
    let refdir = reference("known");
    let px = pixels(N_TEST, 0);
    let dir = tmp("known-samples");

    let raw = dir.join("samples-idx3-ubyte");
    std::fs::write(&raw, idx(8, &[N_TEST, 28, 28], &px)).unwrap();
    let v = score_json(&raw, &refdir, &["--digit", "3"]);
    assert_identical_to_reference(&v, "IDX u8");
    assert!(v["samples"]["digit_share"].as_f64().is_some());
    // The baseline: 10 of the 40 training images, scored the same way.
    assert_eq!(v["baseline"]["images"], N_TEST as u64);
    assert!(v["baseline"]["fid"].as_f64().unwrap() > 0.0);

    let floats: Vec<u8> = px
        .iter()
        .flat_map(|&b| (b as f32 / 255.0).to_be_bytes())
        .collect();
    let f32_gz = dir.join("samples-f32.idx.gz");
    std::fs::write(&f32_gz, gz(&idx(0x0d, &[N_TEST, 784], &floats))).unwrap();
    assert_identical_to_reference(&score_json(&f32_gz, &refdir, &[]), "IDX f32 gz");

    let folder = dir.join("pngs");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..N_TEST as usize {
        let img = image::GrayImage::from_raw(28, 28, px[i * 784..(i + 1) * 784].to_vec()).unwrap();
        img.save(folder.join(format!("{i:03}.png"))).unwrap();
    }
    assert_identical_to_reference(&score_json(&folder, &refdir, &[]), "PNG folder");

    for (gap, border) in [(0, 0), (1, 0), (1, 1)] {
        let grid = dir.join(format!("grid-{gap}-{border}.png"));
        write_grid(&grid, &px, 2, 5, gap, border);
        let v = score_json(&grid, &refdir, &["--grid", "2x5"]);
        assert_identical_to_reference(&v, &format!("grid gap {gap} border {border}"));
    }
}

#[test]
fn text_output_has_both_columns() {
    let refdir = reference("text");
    let dir = tmp("text-samples");
    let raw = dir.join("samples.idx");
    std::fs::write(&raw, idx(8, &[6, 28, 28], &pixels(6, 3))).unwrap();
    let out = matnet(&[
        "gan-score",
        raw.to_str().unwrap(),
        "--reference",
        refdir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "FID",
        "Inception Score",
        "precision",
        "recall",
        "baseline",
        "samples",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
}

#[test]
fn bad_input_gives_one_clear_line() {
    let dir = tmp("bad");
    let refdir = reference("bad-ref");
    let run = |p: &Path, extra: &[&str]| {
        let mut args = vec![
            "gan-score",
            p.to_str().unwrap(),
            "--reference",
            refdir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        fails(&matnet(&args))
    };
    let check = |p: &Path, extra: &[&str], wants: &[&str]| {
        let e = run(p, extra);
        assert!(e.contains(&p.display().to_string()), "no file name in: {e}");
        for w in wants {
            assert!(e.contains(w), "'{w}' missing from: {e}");
        }
    };

    // A file of the wrong size: the header promises 5 images, holds 4.
    let short = dir.join("short-idx3-ubyte");
    std::fs::write(&short, idx(8, &[5, 28, 28], &[0; 4 * 784])).unwrap();
    check(&short, &[], &["truncated"]);
    // Images of the wrong size.
    let small = dir.join("small-idx3-ubyte");
    std::fs::write(&small, idx(8, &[5, 27, 27], &[0; 5 * 729])).unwrap();
    check(&small, &[], &["not images of 28×28"]);
    // A header claiming 4 billion images: an error, not an allocation.
    let huge = dir.join("huge-idx3-ubyte");
    std::fs::write(&huge, idx(8, &[u32::MAX, 28, 28], &[0; 784])).unwrap();
    check(&huge, &[], &["truncated"]);
    // Not an image at all.
    let text = dir.join("notes.txt");
    std::fs::write(&text, "these are not digits\n").unwrap();
    check(&text, &[], &["not an IDX file"]);
    // An empty folder.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    check(&empty, &[], &["no .png files"]);
    // A single image, as IDX and as PNG.
    let one = dir.join("one-idx3-ubyte");
    std::fs::write(&one, idx(8, &[1, 28, 28], &pixels(1, 0))).unwrap();
    check(&one, &[], &["1 image;", "at least 4"]);
    let png = dir.join("one.png");
    image::GrayImage::new(28, 28).save(&png).unwrap();
    check(&png, &[], &["1 image;"]);
    // A PNG that is no sample and no grid.
    let wide = dir.join("wide.png");
    image::GrayImage::new(60, 28).save(&wide).unwrap();
    check(&wide, &[], &["60×28", "--grid"]);
    check(&wide, &["--grid", "1x2"], &["do not hold 2 columns"]);
    // A folder with one PNG of the wrong size.
    let mixed = dir.join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    image::GrayImage::new(28, 28)
        .save(mixed.join("a.png"))
        .unwrap();
    image::GrayImage::new(32, 32)
        .save(mixed.join("b.png"))
        .unwrap();
    let e = run(&mixed, &[]);
    assert!(e.contains("b.png") && e.contains("32×32"), "{e}");
    // NaN pixels in a float IDX file, and values outside [0, 1].
    let mut floats = vec![0.5f32; 4 * 784];
    floats[784 + 10] = f32::NAN;
    let bytes: Vec<u8> = floats.iter().flat_map(|x| x.to_be_bytes()).collect();
    let nan = dir.join("nan-f32.idx");
    std::fs::write(&nan, idx(0x0d, &[4, 28, 28], &bytes)).unwrap();
    check(&nan, &[], &["image 1 pixel 10 is NaN"]);
    floats[784 + 10] = -1.0;
    let bytes: Vec<u8> = floats.iter().flat_map(|x| x.to_be_bytes()).collect();
    let neg = dir.join("tanh-f32.idx");
    std::fs::write(&neg, idx(0x0d, &[4, 28, 28], &bytes)).unwrap();
    check(&neg, &[], &["outside [0, 1]", "(x + 1) / 2"]);
    // A missing file.
    check(&dir.join("missing.idx"), &[], &["cannot read"]);
    // A scorer that is not the committed one.
    let fake = dir.join("scorer.safetensors");
    std::fs::write(&fake, b"not the scorer").unwrap();
    let ok = dir.join("ok-idx3-ubyte");
    std::fs::write(&ok, idx(8, &[4, 28, 28], &pixels(4, 0))).unwrap();
    let e = run(&ok, &["--scorer", fake.to_str().unwrap()]);
    assert!(
        e.contains("sha256") && e.contains("scorer.safetensors"),
        "{e}"
    );
}
