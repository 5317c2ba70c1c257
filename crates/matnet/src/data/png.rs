//! PNG input: decoding a user's image to grey levels and preparing it as an
//! MNIST digit, as `matnet predict`, `inspect` and `gan-score` read PNGs.
//!
//! The size a PNG claims in its header is checked against the file's own
//! length before any pixel buffer is allocated: deflate expands at most
//! 1032:1, so a 100-byte file claiming 50 000 × 50 000 pixels is an error,
//! never a 2.5 GB allocation.

use std::io::Cursor;
use std::path::Path;

use image::codecs::png::PngDecoder;
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, Luma};

use super::Normalize;
use crate::{Error, Result, Tensor};

/// The eight bytes every PNG file starts with.
pub const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// Deflate's largest expansion: one 258-byte match per two bits at best.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Most pixels read from one PNG (a 48-megapixel phone photo fits).
pub const MAX_PIXELS: u64 = 1 << 26;

/// A grey-level image: `height` rows of `width` bytes, 0 black to 255 white.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GreyImage {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// The grey levels, row-major; `pixels.len() == width · height`.
    pub pixels: Vec<u8>,
}

/// Reads the PNG at `path` as grey levels (colour is converted by luminance,
/// alpha dropped). Errors name the file and what is wrong.
pub fn read_png(path: &Path) -> Result<GreyImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_png(path, &bytes)
}

/// [`read_png`] on the contents of a file already in memory; `name` is the
/// file name the errors give.
pub fn decode_png(name: &Path, bytes: &[u8]) -> Result<GreyImage> {
    if !bytes.starts_with(&PNG_SIGNATURE) {
        return Err(Error::format(
            name,
            "not a PNG file: it does not start with the PNG signature 89 50 4e 47 0d 0a 1a 0a",
        ));
    }
    if let Some((w, h, row_bytes)) = ihdr(bytes) {
        let pixels = w * h;
        let packed = h.saturating_mul(row_bytes);
        if pixels > MAX_PIXELS {
            return Err(Error::format(
                name,
                format!("the PNG claims {w}×{h} pixels, more than the {MAX_PIXELS} matnet reads"),
            ));
        }
        if packed > MAX_DEFLATE_RATIO * bytes.len() as u64 {
            return Err(Error::format(
                name,
                format!(
                    "the PNG claims {w}×{h} pixels ({packed} bytes of image data), more than \
                     its {} bytes can hold compressed (at most {MAX_DEFLATE_RATIO}:1): \
                     truncated or corrupt",
                    bytes.len()
                ),
            ));
        }
    }
    check_palette(name, bytes)?;
    // A malformed IHDR is left to the decoder, whose message says what is wrong.
    let bad = |e: image::ImageError| Error::format(name, format!("cannot decode the PNG: {e}"));
    let decoder = PngDecoder::new(Cursor::new(bytes)).map_err(bad)?;
    let img = DynamicImage::from_decoder(decoder)
        .map_err(bad)?
        .into_luma8();
    let (width, height) = (img.width() as usize, img.height() as usize);
    if width == 0 || height == 0 {
        return Err(Error::format(name, "the PNG is empty (0 pixels)"));
    }
    Ok(GreyImage {
        width,
        height,
        pixels: img.into_raw(),
    })
}

/// Rejects a PLTE chunk that is not 1 to 256 RGB entries, and a palette
/// image's tRNS chunk with more entries than its palette: the PNG decoder
/// (png 0.17) checks neither and indexes out of bounds on both (found by the
/// fuzzer, `tests/fuzz/regressions/png/`). Other chunks are left to the decoder.
fn check_palette(name: &Path, bytes: &[u8]) -> Result<()> {
    const COLOUR_TYPE_AT: usize = 8 + 8 + 9;
    let indexed = bytes.get(COLOUR_TYPE_AT) == Some(&3);
    let mut entries = None;
    let mut at = PNG_SIGNATURE.len();
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        match &head[4..8] {
            b"PLTE" if !len.is_multiple_of(3) || !(3..=3 * 256).contains(&len) => {
                return Err(Error::format(
                    name,
                    format!(
                        "corrupt PNG palette: the PLTE chunk holds {len} bytes, \
                         expected 1 to 256 RGB entries (a multiple of 3 up to 768)"
                    ),
                ));
            }
            b"PLTE" => entries = Some(len / 3),
            b"tRNS" if indexed && entries.is_some_and(|n| len > n) => {
                return Err(Error::format(
                    name,
                    format!(
                        "corrupt PNG transparency: the tRNS chunk has {len} entries, \
                         the palette only {}",
                        entries.unwrap_or(0)
                    ),
                ));
            }
            b"IDAT" | b"IEND" => return Ok(()),
            _ => {}
        }
        // Length, type, data and CRC.
        at = at.saturating_add(12).saturating_add(len);
    }
    Ok(())
}

/// Width, height and the bytes of one filtered row (filter byte included)
/// from the IHDR chunk, which must come first; `None` when it is malformed.
fn ihdr(bytes: &[u8]) -> Option<(u64, u64, u64)> {
    let chunk = bytes.get(8..8 + 8 + 13)?;
    if &chunk[4..8] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([chunk[i], chunk[i + 1], chunk[i + 2], chunk[i + 3]]);
    let (w, h) = (u64::from(be(8)), u64::from(be(12)));
    let (depth, colour) = (u64::from(chunk[16]), chunk[17]);
    let channels = match colour {
        0 | 3 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        _ => return None,
    };
    Some((w, h, 1 + (w * channels * depth).div_ceil(8)))
}

/// Prepares any image as a `rows×cols` digit the way MNIST was: light digit
/// on black, cropped to its ink, scaled to fit a 20×20 box (for 28×28)
/// keeping its aspect ratio, and placed so its centre of mass is at the
/// centre. The background (light or dark) is read off the border. `name`
/// names the image in errors (an image with no contrast holds no digit).
pub fn prepare_digit(name: &Path, img: &GreyImage, rows: usize, cols: usize) -> Result<Vec<u8>> {
    let (w, h) = (img.width, img.height);
    assert_eq!(
        img.pixels.len(),
        w * h,
        "prepare_digit: {w}×{h} image with {} pixels",
        img.pixels.len()
    );
    assert!(
        rows > 0 && cols > 0,
        "prepare_digit: target size {rows}×{cols}"
    );
    if w == 0 || h == 0 {
        return Err(Error::format(name, "the image is empty (0 pixels)"));
    }
    let px: Vec<f32> = img.pixels.iter().map(|&p| p as f32 / 255.0).collect();
    let mut border: Vec<f32> = Vec::with_capacity(2 * (w + h));
    for x in 0..w {
        border.push(px[x]);
        border.push(px[(h - 1) * w + x]);
    }
    for y in 0..h {
        border.push(px[y * w]);
        border.push(px[y * w + w - 1]);
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
    drop(px);
    let peak = ink.iter().cloned().fold(0.0, f32::max);
    if peak < 0.2 {
        return Err(Error::format(
            name,
            "no digit found (the image has almost no contrast)",
        ));
    }
    let on = |v: f32| v > 0.25 * peak;
    let (mut x0, mut x1, mut y0, mut y1) = (w, 0, h, 0);
    for y in 0..h {
        for x in 0..w {
            if on(ink[y * w + x]) {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
    }
    let (bw, bh) = ((x1 - x0 + 1) as u32, (y1 - y0 + 1) as u32);
    let crop = GrayImage::from_fn(bw, bh, |x, y| {
        let v = ink[(y0 + y as usize) * w + x0 + x as usize] / peak;
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

/// The model input `[1, rows·cols]` for prepared grey levels, normalised as
/// in training.
///
/// # Shapes
/// `pixels` of length `D = rows·cols` -> `[1, D]`.
pub fn digit_input(pixels: &[u8], normalize: Normalize) -> Tensor {
    let v: Vec<f32> = pixels
        .iter()
        .map(|&p| normalize.apply(p as f32 / 255.0))
        .collect();
    Tensor::from_vec(v, [1, pixels.len()])
}
