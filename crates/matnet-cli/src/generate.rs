//! `matnet generate`: digits from a GAN checkpoint, as a PNG grid, a folder
//! of PNGs or an IDX file; and the image writers `matnet train` uses for a
//! GAN run's per-epoch grids and GIF.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, GrayImage, Luma, RgbaImage};
use matnet::models::{GanConfig, Generator, load_generator};
use matnet::{Rng, Tensor};

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// A GAN or joint-model checkpoint (`matnet train --model gan|dcgan|joint`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Images to generate [default: 64; with --interpolate, 10 steps].
    #[arg(long)]
    pub count: Option<usize>,
    /// Conditional models: generate this digit (default: 0-9 in turn).
    #[arg(long)]
    pub digit: Option<usize>,
    /// Seed of the noise: same seed, same images.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write: a directory (one PNG per image), FILE.png (a grid),
    /// or FILE-idx3-ubyte.gz (an IDX file, as MNIST's, for `gan-score`).
    #[arg(long)]
    pub out: PathBuf,
    /// Walk in a straight line between two noise vectors instead of drawing
    /// independent ones (a strip, when --out is a .png).
    #[arg(long)]
    pub interpolate: bool,
}

/// Images generated at once: bounds the activations held in memory.
const CHUNK: usize = 500;

/// The three forms `--out` takes.
enum Out {
    Dir(PathBuf),
    Png(PathBuf),
    Idx { path: PathBuf, gzip: bool },
}

fn out_kind(out: &Path) -> anyhow::Result<Out> {
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with("idx3-ubyte.gz") || name.ends_with("idx3-ubyte") {
        Ok(Out::Idx {
            path: out.to_path_buf(),
            gzip: name.ends_with(".gz"),
        })
    } else if name.ends_with(".png") {
        Ok(Out::Png(out.to_path_buf()))
    } else if out.extension().is_none() && !out.is_file() {
        Ok(Out::Dir(out.to_path_buf()))
    } else {
        bail!(
            "--out {}: expected a directory, FILE.png or FILE-idx3-ubyte.gz",
            out.display()
        )
    }
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let out = out_kind(&args.out)?;
    let (cfg, generator) = load_generator(&args.checkpoint)?;
    let cfg = &cfg;
    if let Some(d) = args.digit {
        ensure!(
            cfg.conditional,
            "--digit needs a conditional model; {} was trained without --conditional",
            args.checkpoint.display()
        );
        ensure!(
            d < cfg.classes,
            "--digit must be below {}, got {d}",
            cfg.classes
        );
    }
    let count = args.count.unwrap_or(if args.interpolate { 10 } else { 64 });
    ensure!(count > 0, "--count must be at least 1");
    ensure!(
        count <= 1_000_000,
        "--count must be at most 1000000, got {count}"
    );
    let mut rng = Rng::new(args.seed);
    let z = if args.interpolate {
        let ends = cfg.noise(2, &mut rng).to_vec();
        let (a, b) = ends.split_at(cfg.z_dim);
        let steps = (count.max(2) - 1) as f32;
        let ts: Vec<f32> = (0..count).map(|i| i as f32 / steps).collect();
        lerp(a, b, &ts)
    } else {
        cfg.noise(count, &mut rng)
    };
    let labels: Vec<usize> = (0..count)
        .map(|i| match args.digit {
            Some(d) => d,
            None if args.interpolate => 0,
            None => i % cfg.classes,
        })
        .collect();
    let pixels = generate(&generator, cfg, &z, &labels);
    let (rows, cols) = (cfg.rows, cfg.cols);
    let images = to_images(&pixels, rows * cols);
    match out {
        Out::Png(path) => {
            let per_row = if args.interpolate {
                count
            } else {
                (count as f64).sqrt().ceil() as usize
            };
            save_png(&grid(&images, rows, cols, per_row), &path)?;
            println!("wrote a grid of {count} images to {}", path.display());
        }
        Out::Dir(dir) => {
            fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            for (i, img) in images.iter().enumerate() {
                let path = dir.join(format!("{i:05}_{}.png", labels[i]));
                save_png(&grid(std::slice::from_ref(img), rows, cols, 1), &path)?;
            }
            println!("wrote {count} PNGs to {}", dir.display());
        }
        Out::Idx { path, gzip } => {
            write_idx(&path, &images, rows, cols, gzip)?;
            println!("wrote {count} images to {}", path.display());
        }
    }
    Ok(())
}

/// `G(z)` for noise `z` `[N, z_dim]` (and labels, if conditional), in
/// evaluation mode and without a graph, as pixels in `[-1, 1]`.
pub fn generate(g: &Generator, cfg: &GanConfig, z: &Tensor, labels: &[usize]) -> Vec<f32> {
    let _no_grad = matnet::no_grad();
    let n = z.dims()[0];
    let mut out = Vec::with_capacity(n * cfg.rows * cfg.cols);
    for start in (0..n).step_by(CHUNK) {
        let len = CHUNK.min(n - start);
        let y = Tensor::from_vec(
            labels[start..start + len]
                .iter()
                .map(|&l| l as f32)
                .collect(),
            [len],
        );
        let y = cfg.conditional.then_some(&y);
        out.extend(g.generate(&z.narrow(0, start, len), y).to_vec());
    }
    out
}

/// Points on the straight line from noise vector `a` to `b`: one row
/// `a + t·(b − a)` per `t`.
///
/// # Shapes
/// `a`, `b` `[z_dim]` -> `[ts.len(), z_dim]`.
pub fn lerp(a: &[f32], b: &[f32], ts: &[f32]) -> Tensor {
    let walk: Vec<f32> = ts
        .iter()
        .flat_map(|&t| a.iter().zip(b).map(move |(a, b)| a + t * (b - a)))
        .collect();
    Tensor::from_vec(walk, [ts.len(), a.len()])
}

/// A tanh pixel in `[-1, 1]` as a grey byte (−1 black, 1 white).
pub fn to_byte(v: f32) -> u8 {
    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

/// Generated pixels (as [`generate`] returns them) as grey images of
/// `size` bytes each.
pub fn to_images(pixels: &[f32], size: usize) -> Vec<Vec<u8>> {
    pixels
        .chunks(size)
        .map(|p| p.iter().map(|&v| to_byte(v)).collect())
        .collect()
}

/// Images in a grid of `per_row` columns, 2 black pixels between them.
pub fn grid(images: &[Vec<u8>], rows: usize, cols: usize, per_row: usize) -> GrayImage {
    const GAP: usize = 2;
    let per_row = per_row.max(1);
    let grid_rows = images.len().div_ceil(per_row).max(1);
    let w = per_row * (cols + GAP) + GAP;
    let h = grid_rows * (rows + GAP) + GAP;
    let mut img = GrayImage::new(w as u32, h as u32);
    for (i, pixels) in images.iter().enumerate() {
        let (x0, y0) = (
            GAP + (i % per_row) * (cols + GAP),
            GAP + (i / per_row) * (rows + GAP),
        );
        for (j, &p) in pixels.iter().enumerate() {
            img.put_pixel((x0 + j % cols) as u32, (y0 + j / cols) as u32, Luma([p]));
        }
    }
    img
}

/// The temporary name a file is written under before it is renamed into
/// place, so an interrupted run never leaves half a file.
fn partial(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

fn finish(tmp: &Path, path: &Path) -> anyhow::Result<()> {
    fs::rename(tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a PNG atomically.
pub fn save_png(img: &GrayImage, path: &Path) -> anyhow::Result<()> {
    let tmp = partial(path);
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .with_context(|| format!("cannot write {}", path.display()))?;
    finish(&tmp, path)
}

/// An animated GIF of `frames`, `delay_ms` each, looping forever.
pub fn save_gif(frames: &[GrayImage], delay_ms: u32, path: &Path) -> anyhow::Result<()> {
    let tmp = partial(path);
    let file =
        fs::File::create(&tmp).with_context(|| format!("cannot write {}", path.display()))?;
    let mut enc = GifEncoder::new(std::io::BufWriter::new(file));
    enc.set_repeat(Repeat::Infinite)?;
    for f in frames {
        let rgba = RgbaImage::from_fn(f.width(), f.height(), |x, y| {
            let v = f.get_pixel(x, y).0[0];
            image::Rgba([v, v, v, 255])
        });
        enc.encode_frame(Frame::from_parts(
            rgba,
            0,
            0,
            Delay::from_numer_denom_ms(delay_ms, 1),
        ))
        .with_context(|| format!("cannot write {}", path.display()))?;
    }
    drop(enc);
    finish(&tmp, path)
}

/// Writes images as an IDX file of unsigned bytes (`00 00 08 03`, then
/// N, rows, cols big-endian), gzip-compressed when `gzip`, as MNIST's.
pub fn write_idx(
    path: &Path,
    images: &[Vec<u8>],
    rows: usize,
    cols: usize,
    gzip: bool,
) -> anyhow::Result<()> {
    let mut bytes = vec![0, 0, 0x08, 3];
    for d in [images.len(), rows, cols] {
        bytes.extend((d as u32).to_be_bytes());
    }
    for img in images {
        bytes.extend(img);
    }
    let tmp = partial(path);
    let write = || -> std::io::Result<()> {
        let file = fs::File::create(&tmp)?;
        if gzip {
            let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
            gz.write_all(&bytes)?;
            gz.finish()?;
        } else {
            let mut f = file;
            f.write_all(&bytes)?;
        }
        Ok(())
    };
    write().with_context(|| format!("cannot write {}", path.display()))?;
    finish(&tmp, path)
}
