//! `matnet inspect`: pictures of a network for one image. For a
//! convolutional network: what its first layer looks for (the filters) and
//! what every convolution responds to (the feature maps). For a vision
//! transformer: each layer's attention maps, `softmax(Q·Kᵀ/√d)` per head.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use image::{ImageOutputFormat, Rgb, RgbImage};
use matnet::nn::{Module, Sequential};
use matnet::{Tensor, no_grad};

use matnet::models::{Classifier, Net, Vit, load_classifier};

use crate::predict::{argmax, image_input};

#[derive(clap::Args)]
pub struct InspectArgs {
    /// A checkpoint written by `matnet train` for a model with convolutions
    /// (lenet, cnn, joint: its recogniser's stem) or a vision transformer (vit).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The image to run through the network: a PNG, prepared as `matnet predict` does.
    #[arg(long)]
    pub image: PathBuf,
    /// Directory for the PNGs (created if needed; files of the same names are replaced).
    #[arg(long)]
    pub out: PathBuf,
}

/// Each grid cell is upscaled by a whole factor to about this many pixels.
const CELL_PIXELS: usize = 64;
/// The 1-pixel lines between cells: a blue no grey level can be mistaken for.
const SEPARATOR: Rgb<u8> = Rgb([40, 80, 160]);

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let model = load_classifier(&args.checkpoint)?;
    if let Net::Vit(vit) = &model.net {
        return inspect_vit(&args, &model, vit);
    }
    let arch = model.config.arch.name();
    // The joint model's convolutions are its recogniser's stem, which reads
    // images scaled to [-1, 1].
    let (layers, signed) = match &model.net {
        Net::Joint(j) => (Some(&j.discriminator.stem), true),
        net => (net.layers(), false),
    };
    // A layer with a 4-D `weight` is a convolution ([C_out, C_in, kh, kw]);
    // the layers are trait objects, and their parameters are the one thing
    // the public API says about what they are.
    let convs = layers.map(conv_layers).unwrap_or_default();
    let (Some(seq), Some((first, weight))) = (layers, convs.first()) else {
        bail!("inspect: model '{arch}' has no convolutional layers");
    };
    let _g = no_grad();
    let (pixels, x) = prepare(&args, &model)?;
    let outputs = seq.forward_all(&if signed {
        x.affine(2.0, -1.0)
    } else {
        x.clone()
    });
    report(&args, arch, &model.logits(&x));
    let (rows, cols) = (model.config.rows, model.config.cols);
    write_input(&args, &pixels, rows, cols)?;

    let describe = |i: usize| seq.layers()[i].describe();
    let d = weight.dims();
    let (c_out, c_in, kh, kw) = (d[0], d[1], d[2], d[3]);
    let values = weight.to_vec();
    let kernels: Vec<&[f32]> = values.chunks_exact(kh * kw).collect();
    // One row per output channel when there are several input channels.
    let columns = if c_in > 1 { c_in } else { square_side(c_out) };
    let path = args.out.join("filters.png");
    let (w, h) = write_grid(&path, &kernels, kh, kw, columns)?;
    println!(
        "  {}  {} filters of layer {first} {}, {kh}×{kw} each ({w}×{h} px)",
        path.display(),
        c_out * c_in,
        describe(*first)
    );

    for (k, (i, _)) in convs.iter().enumerate() {
        let y = &outputs[*i];
        let &[_, c, mh, mw] = y.dims() else {
            bail!(
                "inspect: layer {i} gave shape {:?}, not [1, C, H, W]",
                y.dims()
            );
        };
        let values = y.to_vec();
        let maps: Vec<&[f32]> = values.chunks_exact(mh * mw).collect();
        let path = args.out.join(format!("conv{}_maps.png", k + 1));
        let (w, h) = write_grid(&path, &maps, mh, mw, square_side(c))?;
        println!(
            "  {}  {c} feature maps of layer {i} {}, {mh}×{mw} each ({w}×{h} px)",
            path.display(),
            describe(*i)
        );
    }
    Ok(())
}

/// The image as the model's input: `(pixels, [1, rows·cols])`; creates the
/// output directory.
fn prepare(args: &InspectArgs, model: &Classifier) -> anyhow::Result<(Vec<u8>, Tensor)> {
    let (pixels, x) = image_input(&args.image, model)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    Ok((pixels, x))
}

/// Prints the predicted class and its probability from the logits `[1, classes]`.
fn report(args: &InspectArgs, arch: &str, logits: &Tensor) {
    let probs = logits.softmax(-1).to_vec();
    let best = argmax(&probs);
    println!(
        "{}: {arch}, {} predicted as {best} ({:.1}%)",
        args.checkpoint.display(),
        args.image.display(),
        100.0 * probs.get(best).copied().unwrap_or(0.0)
    );
}

/// Writes `input.png`: the prepared image.
fn write_input(args: &InspectArgs, pixels: &[u8], rows: usize, cols: usize) -> anyhow::Result<()> {
    let grey: Vec<f32> = pixels.iter().map(|&p| p as f32).collect();
    let path = args.out.join("input.png");
    let (w, h) = write_grid(&path, &[&grey], rows, cols, 1)?;
    println!(
        "  {}  the {rows}×{cols} input as the model sees it ({w}×{h} px)",
        path.display()
    );
    Ok(())
}

/// A vision transformer's attention for the image: per layer, each head's
/// `P×P` matrix (row = attending patch, column = attended patch), and how
/// much attention each patch receives (averaged over heads and rows),
/// drawn on the patch grid so it lines up with the digit.
fn inspect_vit(args: &InspectArgs, model: &Classifier, vit: &Vit) -> anyhow::Result<()> {
    let _g = no_grad();
    let (pixels, x) = prepare(args, model)?;
    let (logits, maps) = vit.forward_attn(&x);
    report(args, model.config.arch.name(), &logits);
    let (rows, cols) = (model.config.rows, model.config.cols);
    write_input(args, &pixels, rows, cols)?;
    let (gh, gw) = (rows / vit.patch_size(), cols / vit.patch_size());
    for (k, a) in maps.iter().enumerate() {
        let &[_, heads, p, _] = a.dims() else {
            bail!(
                "inspect: attention of shape {:?}, not [1, H, P, P]",
                a.dims()
            );
        };
        let values = a.to_vec();
        let per_head: Vec<&[f32]> = values.chunks_exact(p * p).collect();
        let path = args.out.join(format!("attention{}_heads.png", k + 1));
        let (w, h) = write_grid(&path, &per_head, p, p, heads)?;
        println!(
            "  {}  layer {} attention, {heads} heads of {p}×{p} (row attends to column) ({w}×{h} px)",
            path.display(),
            k + 1
        );
        let received = attention_received(a).to_vec();
        let path = args.out.join(format!("attention{}_received.png", k + 1));
        let (w, h) = write_grid(&path, &[&received], gh, gw, 1)?;
        println!(
            "  {}  layer {} attention received per patch, on the {gh}×{gw} patch grid ({w}×{h} px)",
            path.display(),
            k + 1
        );
    }
    Ok(())
}

/// How much attention each patch receives, averaged over heads and
/// attending patches.
///
/// # Shapes
/// `[1, heads, P, P] -> [1, P]`.
pub fn attention_received(maps: &Tensor) -> Tensor {
    maps.mean(&[1, 2], false)
}

/// The convolutions of a stack: each one's index and weight.
pub fn conv_layers(seq: &Sequential) -> Vec<(usize, Tensor)> {
    seq.layers()
        .iter()
        .enumerate()
        .filter_map(|(i, l)| conv_weight(l.as_ref()).map(|w| (i, w)))
        .collect()
}

/// The weight of a convolution layer (4-D), or `None` for other layers.
fn conv_weight(layer: &dyn Module) -> Option<Tensor> {
    layer
        .named_parameters()
        .into_iter()
        .find(|(n, t)| n == "weight" && t.rank() == 4)
        .map(|(_, t)| t)
}

/// The smallest `s` with `s² ≥ n`: the columns of a near-square grid.
fn square_side(n: usize) -> usize {
    (1..).find(|s| s * s >= n).unwrap_or(1)
}

/// Tiles `cells` (each `h × w` values, row-major) into a grid `columns` wide,
/// each cell upscaled by the same whole factor (nearest neighbour) and
/// separated by 1-pixel lines, and writes it as a PNG, atomically. All cells
/// share one grey scale, smallest value black and largest white, so they can
/// be compared: a dark map is a quiet one. Returns the width and height.
fn write_grid(
    path: &Path,
    cells: &[&[f32]],
    h: usize,
    w: usize,
    columns: usize,
) -> anyhow::Result<(u32, u32)> {
    let img = grid(cells, h, w, columns);
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), ImageOutputFormat::Png)
        .with_context(|| format!("{}: cannot encode PNG", path.display()))?;
    matnet::io::write_atomic(path, &png)?;
    Ok(img.dimensions())
}

fn grid(cells: &[&[f32]], h: usize, w: usize, columns: usize) -> RgbImage {
    let scale = (CELL_PIXELS / h.max(w)).max(1);
    let (ch, cw) = (h * scale, w * scale);
    let columns = columns.clamp(1, cells.len().max(1));
    let grid_rows = cells.len().div_ceil(columns).max(1);
    let width = columns * cw + columns - 1;
    let height = grid_rows * ch + grid_rows - 1;
    let (lo, hi) = cells
        .iter()
        .flat_map(|c| c.iter())
        .filter(|v| v.is_finite())
        .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    // A constant picture (or one with no finite values) is black.
    let range = if hi > lo { hi - lo } else { f32::INFINITY };
    let level = |v: f32| {
        let g = ((v - lo) / range * 255.0).round();
        if g.is_nan() {
            0
        } else {
            g.clamp(0.0, 255.0) as u8
        }
    };
    let mut img = RgbImage::from_pixel(width as u32, height as u32, SEPARATOR);
    for (k, cell) in cells.iter().enumerate() {
        let (x0, y0) = ((k % columns) * (cw + 1), (k / columns) * (ch + 1));
        for y in 0..ch {
            for x in 0..cw {
                let g = level(cell[(y / scale) * w + x / scale]);
                img.put_pixel((x0 + x) as u32, (y0 + y) as u32, Rgb([g, g, g]));
            }
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_separators_and_one_grey_scale() {
        // Three 2×2 cells, two per row: scale 32, cells 64×64.
        let a = [0.0, 1.0, 2.0, 3.0];
        let b = [3.0; 4];
        let img = grid(&[&a, &b, &a], 2, 2, 2);
        assert_eq!(img.dimensions(), (2 * 64 + 1, 2 * 64 + 1));
        assert_eq!(*img.get_pixel(64, 10), SEPARATOR);
        assert_eq!(*img.get_pixel(10, 64), SEPARATOR);
        // The empty fourth cell stays separator-coloured.
        assert_eq!(*img.get_pixel(100, 100), SEPARATOR);
        assert_eq!(*img.get_pixel(0, 0), Rgb([0, 0, 0]));
        assert_eq!(*img.get_pixel(63, 63), Rgb([255, 255, 255]));
        assert_eq!(*img.get_pixel(32, 0), Rgb([85, 85, 85]));
        assert_eq!(*img.get_pixel(65, 0), Rgb([255, 255, 255]));
        assert_eq!(*img.get_pixel(0, 65), Rgb([0, 0, 0]));
        // A constant picture is black, not a division by zero.
        let flat = grid(&[&b], 2, 2, 1);
        assert_eq!(flat.dimensions(), (64, 64));
        assert!(flat.pixels().all(|p| *p == Rgb([0, 0, 0])));
    }

    #[test]
    fn square_sides() {
        let sides: Vec<usize> = [1, 2, 4, 5, 6, 9, 10, 16, 32].map(square_side).into();
        assert_eq!(sides, [1, 2, 2, 3, 3, 3, 4, 4, 6]);
    }
}
