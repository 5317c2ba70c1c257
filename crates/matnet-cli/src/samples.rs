//! Reading sets of 28×28 grey images from what generative models write: an
//! IDX file (bytes or f32, gzipped or not), a folder of PNGs, or one PNG grid.
//!
//! Every problem is an error naming the file and what is wrong; nothing the
//! size of the data is allocated before the file has shown it holds it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail, ensure};
use matnet::data::png::PNG_SIGNATURE;
use matnet::data::{GreyImage, IdxValues, read_idx_values, read_png};

/// Image side the scorer reads.
pub const SIDE: usize = 28;
const PIXELS: usize = SIDE * SIDE;

/// A grid layout: rows and columns of cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub rows: usize,
    pub cols: usize,
}

impl std::str::FromStr for Grid {
    type Err = String;

    fn from_str(s: &str) -> Result<Grid, String> {
        let bad = || format!("grid '{s}' should be ROWSxCOLS, e.g. 8x8");
        let (r, c) = s.split_once(['x', 'X', '×']).ok_or_else(bad)?;
        let rows: usize = r.trim().parse().map_err(|_| bad())?;
        let cols: usize = c.trim().parse().map_err(|_| bad())?;
        if rows == 0 || cols == 0 || rows > 1000 || cols > 1000 {
            return Err(format!("grid '{s}': rows and columns must be 1 to 1000"));
        }
        Ok(Grid { rows, cols })
    }
}

/// Images as intensities in `[0, 1]`, `n · 784` values, row-major.
pub struct Samples {
    pub pixels: Vec<f32>,
    pub count: usize,
    /// What was read, for the report (`IDX u8`, `12 PNGs`, `PNG grid 8×8`).
    pub format: String,
}

/// Reads the images at `path`: a folder of `.png` files (sorted by name), a
/// PNG (a grid with `grid`), or an IDX file.
pub fn read_samples(path: &Path, grid: Option<Grid>) -> anyhow::Result<Samples> {
    let meta = fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if meta.is_dir() {
        ensure!(
            grid.is_none(),
            "{}: --grid takes one PNG file, not a folder",
            path.display()
        );
        return read_png_folder(path);
    }
    if starts_with_png_magic(path)? {
        let img = read_png(path)?;
        return match grid {
            Some(g) => split_grid(path, &img, g),
            None => {
                let (w, h) = (img.width, img.height);
                ensure!(
                    (w, h) == (SIDE, SIDE),
                    "{}: a {w}×{h} PNG; a single sample must be {SIDE}×{SIDE} (pass --grid ROWSxCOLS for a grid of digits)",
                    path.display()
                );
                Ok(Samples {
                    pixels: unit(&img.pixels),
                    count: 1,
                    format: "PNG".into(),
                })
            }
        };
    }
    ensure!(
        grid.is_none(),
        "{}: --grid needs a PNG file, this is not one",
        path.display()
    );
    read_idx_samples(path)
}

fn starts_with_png_magic(path: &Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let mut f = fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let got = f
        .read(&mut head)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(got == 8 && head == PNG_SIGNATURE)
}

/// Grey levels as intensities in `[0, 1]`.
pub fn unit(bytes: &[u8]) -> Vec<f32> {
    bytes.iter().map(|&b| (b as f64 / 255.0) as f32).collect()
}

fn read_png_folder(dir: &Path) -> anyhow::Result<Samples> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list the folder", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect();
    ensure!(
        !files.is_empty(),
        "{}: no .png files in the folder",
        dir.display()
    );
    files.sort();
    let mut pixels = Vec::with_capacity(files.len() * PIXELS);
    for f in &files {
        let img = read_png(f)?;
        let (w, h) = (img.width, img.height);
        ensure!(
            (w, h) == (SIDE, SIDE),
            "{}: {w}×{h} pixels, every sample must be {SIDE}×{SIDE}",
            f.display()
        );
        pixels.extend(unit(&img.pixels));
    }
    Ok(Samples {
        pixels,
        count: files.len(),
        format: format!("folder of {} PNGs", files.len()),
    })
}

/// The separator rule: along each axis the image is `n` cells of 28 pixels
/// with gaps `g` of 0 or 1 pixel between cells, with or without a border of
/// the same width: `28·n`, `28·n + (n − 1)` or `28·n + (n + 1)` pixels.
/// Returns the offset of the first cell and the stride between cells.
fn grid_axis(len: usize, n: usize) -> Option<(usize, usize)> {
    let cells = SIDE * n;
    match len.checked_sub(cells)? {
        0 => Some((0, SIDE)),
        g if g + 1 == n => Some((0, SIDE + 1)),
        g if g == n + 1 => Some((1, SIDE + 1)),
        _ => None,
    }
}

fn split_grid(path: &Path, img: &GreyImage, g: Grid) -> anyhow::Result<Samples> {
    let (w, h) = (img.width, img.height);
    let axis = |len: usize, n: usize, what: &str| {
        grid_axis(len, n).ok_or_else(|| {
            anyhow!(
                "{}: {w}×{h} pixels do not hold {} {what} of {SIDE} pixels (allowed: {}, {} with 1-pixel gaps, or {} with gaps and a border)",
                path.display(),
                n,
                SIDE * n,
                SIDE * n + n - 1,
                SIDE * n + n + 1
            )
        })
    };
    let (x0, dx) = axis(w, g.cols, "columns")?;
    let (y0, dy) = axis(h, g.rows, "rows")?;
    let raw = &img.pixels;
    let mut pixels = Vec::with_capacity(g.rows * g.cols * PIXELS);
    for r in 0..g.rows {
        for c in 0..g.cols {
            for y in 0..SIDE {
                let start = (y0 + r * dy + y) * w + x0 + c * dx;
                pixels.extend(unit(&raw[start..start + SIDE]));
            }
        }
    }
    Ok(Samples {
        pixels,
        count: g.rows * g.cols,
        format: format!("PNG grid {}×{}", g.rows, g.cols),
    })
}

fn read_idx_samples(path: &Path) -> anyhow::Result<Samples> {
    let (dims, values) = read_idx_values(path)?;
    let per_item: usize = dims[1..].iter().product();
    ensure!(
        dims.len() >= 2 && per_item == PIXELS,
        "{}: IDX dimensions {dims:?} are not images of {SIDE}×{SIDE} (expected [N, {SIDE}, {SIDE}] or [N, {PIXELS}])",
        path.display()
    );
    let count = dims[0];
    let (pixels, format) = match values {
        IdxValues::U8(b) => (unit(&b), "IDX u8"),
        IdxValues::F32(v) => {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                bail!(
                    "{}: image {} pixel {} is {} (f32 samples must be finite intensities in [0, 1])",
                    path.display(),
                    i / PIXELS,
                    i % PIXELS,
                    v[i]
                );
            }
            if let Some(i) = v.iter().position(|x| !(0.0..=1.0).contains(x)) {
                bail!(
                    "{}: image {} pixel {} is {}, outside [0, 1] (map tanh outputs with (x + 1) / 2)",
                    path.display(),
                    i / PIXELS,
                    i % PIXELS,
                    v[i]
                );
            }
            (v, "IDX f32")
        }
    };
    Ok(Samples {
        pixels,
        count,
        format: format.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_rule() {
        assert_eq!(grid_axis(28 * 8, 8), Some((0, 28)));
        assert_eq!(grid_axis(28 * 8 + 7, 8), Some((0, 29)));
        assert_eq!(grid_axis(28 * 8 + 9, 8), Some((1, 29)));
        assert_eq!(grid_axis(28 * 8 + 3, 8), None);
        assert_eq!(grid_axis(27, 1), None);
        // One cell: no gap, or a border.
        assert_eq!(grid_axis(28, 1), Some((0, 28)));
        assert_eq!(grid_axis(30, 1), Some((1, 29)));
    }

    #[test]
    fn grid_parses() {
        assert_eq!("4x8".parse::<Grid>(), Ok(Grid { rows: 4, cols: 8 }));
        assert!("4".parse::<Grid>().is_err());
        assert!("0x3".parse::<Grid>().is_err());
    }
}
