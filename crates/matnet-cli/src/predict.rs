//! `matnet predict`: classify a PNG drawn or photographed by a user.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use image::imageops::FilterType;
use image::{GrayImage, Luma};
use matnet::Tensor;
use matnet::data::Normalize;

use matnet::models::{Classifier, load_classifier};

#[derive(clap::Args)]
pub struct PredictArgs {
    /// A checkpoint written by `matnet train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The image: a PNG of any size, colour or grey, dark digit on light or light on dark.
    pub image: PathBuf,
}

/// A PNG prepared for `model`: its `rows×cols` pixels and the input row
/// `[1, rows·cols]`, normalised as the model was trained.
pub fn image_input(path: &Path, model: &Classifier) -> anyhow::Result<(Vec<u8>, Tensor)> {
    let (rows, cols) = (model.config.rows, model.config.cols);
    let pixels = prepare_digit(path, rows, cols)?;
    let x = to_input(&pixels, model.config.normalization()?, rows * cols);
    Ok((pixels, x))
}

pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    let model = load_classifier(&args.checkpoint)?;
    let (_, x) = image_input(&args.image, &model)?;
    let probs = probabilities(&model, &x);
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let kind: matnet::data::DatasetKind = model.config.dataset.parse()?;
    let names = kind.class_names();
    println!(
        "{}: predicted {} ({:.1}%)",
        args.image.display(),
        names[order[0]],
        100.0 * probs[order[0]]
    );
    for &c in &order {
        let name = if names[c] == c.to_string() {
            ""
        } else {
            names[c]
        };
        println!("  {c} {name:<12} {:>6.2}%", 100.0 * probs[c]);
    }
    Ok(())
}

/// Class probabilities `softmax(logits)` for one input row `[1, rows·cols]`,
/// without recording a graph.
pub fn probabilities(model: &Classifier, x: &Tensor) -> Vec<f32> {
    let _g = matnet::no_grad();
    model.logits(x).softmax(-1).to_vec()
}

/// The index of the largest value (0 for an empty slice).
pub fn argmax(values: &[f32]) -> usize {
    (0..values.len())
        .max_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap_or(0)
}

/// The model input `[1, d]` for prepared grey levels, normalised as in training.
pub fn to_input(pixels: &[u8], normalize: Normalize, d: usize) -> Tensor {
    let v: Vec<f32> = pixels
        .iter()
        .map(|&p| normalize.apply(p as f32 / 255.0))
        .collect();
    Tensor::from_vec(v, [1, d])
}

/// Turns any image into a `rows×cols` digit prepared the way MNIST was:
/// grey, light digit on black, cropped to its ink, scaled to fit a 20×20 box
/// (for 28×28) keeping its aspect ratio, and placed so its centre of mass is
/// at the centre.
pub fn prepare_digit(path: &Path, rows: usize, cols: usize) -> anyhow::Result<Vec<u8>> {
    let img = image::open(path)
        .with_context(|| format!("{}: cannot read image (PNG expected)", path.display()))?;
    prepare_image(&img, rows, cols).with_context(|| path.display().to_string())
}

/// Decodes PNG bytes from an untrusted source: images over
/// `MAX_SIDE` pixels a side are refused before any pixel is decoded, so a
/// small file that claims a huge image cannot claim the memory.
pub fn decode_png(bytes: &[u8]) -> anyhow::Result<image::DynamicImage> {
    const MAX_SIDE: u32 = 4096;
    let mut limits = image::io::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(4 * MAX_SIDE as u64 * MAX_SIDE as u64);
    let mut reader =
        image::io::Reader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Png);
    reader.limits(limits);
    reader.decode().context("cannot read image (PNG expected)")
}

/// [`prepare_digit`] for an image already decoded.
pub fn prepare_image(
    img: &image::DynamicImage,
    rows: usize,
    cols: usize,
) -> anyhow::Result<Vec<u8>> {
    let img = img.to_luma8();
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        bail!("image is empty");
    }
    let px: Vec<f32> = img.pixels().map(|p| p.0[0] as f32 / 255.0).collect();
    // The border tells the background: MNIST digits are light on dark.
    let mut border: Vec<f32> = Vec::new();
    for x in 0..w as usize {
        border.push(px[x]);
        border.push(px[(h as usize - 1) * w as usize + x]);
    }
    for y in 0..h as usize {
        border.push(px[y * w as usize]);
        border.push(px[y * w as usize + w as usize - 1]);
    }
    border.sort_by(f32::total_cmp);
    let bg = border[border.len() / 2];
    let ink: Vec<f32> = if bg > 0.5 {
        px.iter()
            .map(|&v| ((bg - v) / bg.max(1e-3)).clamp(0.0, 1.0))
            .collect()
    } else {
        px.iter()
            .map(|&v| ((v - bg) / (1.0 - bg).max(1e-3)).clamp(0.0, 1.0))
            .collect()
    };
    let peak = ink.iter().cloned().fold(0.0, f32::max);
    if peak < 0.2 {
        bail!("no digit found (the image has almost no contrast)");
    }
    let on = |v: f32| v > 0.25 * peak;
    let (mut x0, mut x1, mut y0, mut y1) = (w as usize, 0, h as usize, 0);
    for y in 0..h as usize {
        for x in 0..w as usize {
            if on(ink[y * w as usize + x]) {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
    }
    let (bw, bh) = ((x1 - x0 + 1) as u32, (y1 - y0 + 1) as u32);
    let crop = GrayImage::from_fn(bw, bh, |x, y| {
        let v = ink[(y0 + y as usize) * w as usize + x0 + x as usize] / peak;
        Luma([(v * 255.0).round() as u8])
    });
    // MNIST fits the digit in a 20×20 box inside 28×28 (scaled for other sizes).
    let target = (20 * rows.min(cols) / 28).max(1) as f32;
    let scale = target / bw.max(bh) as f32;
    let (nw, nh) = (
        ((bw as f32 * scale).round() as u32).max(1),
        ((bh as f32 * scale).round() as u32).max(1),
    );
    let small = image::imageops::resize(&crop, nw, nh, FilterType::Triangle);
    // Centre of mass of the scaled digit decides where it goes.
    let (mut m, mut mx, mut my) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y, p) in small.enumerate_pixels() {
        let v = p.0[0] as f32;
        m += v;
        mx += v * x as f32;
        my += v * y as f32;
    }
    let (cx, cy) = if m > 0.0 {
        (mx / m, my / m)
    } else {
        (nw as f32 / 2.0, nh as f32 / 2.0)
    };
    let ox = (cols as f32 / 2.0 - cx).round() as i64;
    let oy = (rows as f32 / 2.0 - cy).round() as i64;
    let mut out = vec![0u8; rows * cols];
    for (x, y, p) in small.enumerate_pixels() {
        let (tx, ty) = (x as i64 + ox, y as i64 + oy);
        if (0..cols as i64).contains(&tx) && (0..rows as i64).contains(&ty) {
            out[ty as usize * cols + tx as usize] = p.0[0];
        }
    }
    Ok(out)
}
