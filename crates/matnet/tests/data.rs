//! The data module: IDX parsing (good and bad files), MNIST datasets, the data
//! directory lookup, checksums and downloads (against a local server), batching,
//! and the real MNIST / Fashion-MNIST files when they are on this machine.
//!
//! Fixture files are written into a fresh temporary directory per test.

// The cases live in tests/data/*.rs; the shared fixture helpers are below.
mod data {
    mod checksum;
    #[cfg(feature = "download")]
    mod download;
    mod idx;
    mod loader;
    mod mnist;
    mod real;
}

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

/// An IDX file: magic `00 00 ty ndims`, big-endian dims, then `data`.
pub fn idx_bytes(ty: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, ty, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// `bytes` gzip-compressed.
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The error text of a result that must be an error.
pub fn err_text<T>(r: matnet::Result<T>, what: &str) -> String {
    match r {
        Ok(_) => panic!("{what}: expected an error, got Ok"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that `text` contains every needle, showing the text when not.
#[track_caller]
pub fn assert_mentions(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "expected {n:?} in error:\n  {text}");
    }
}

/// No `.part` files left behind in `dir`.
pub fn assert_no_temp_files(dir: &Path) {
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// A temporary directory, removed when dropped.
pub fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("matnet-data-")
        .tempdir()
        .unwrap()
}

/// `n` synthetic `rows × cols` images: pixel 0 holds the image index (so a
/// batch reveals which images it holds), the others a pattern; label `i % 10`.
pub fn synthetic(n: usize, rows: usize, cols: usize) -> (Vec<u8>, Vec<u8>) {
    assert!(n <= 256);
    let d = rows * cols;
    let mut images = Vec::with_capacity(n * d);
    for i in 0..n {
        images.push(i as u8);
        images.extend((1..d).map(|p| ((i * 7 + p * 13) % 256) as u8));
    }
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    (images, labels)
}

/// Writes a full synthetic dataset (train gzip-compressed, test raw) into `dir`.
pub fn write_synthetic_dataset(dir: &Path, n_train: usize, n_test: usize) {
    for (prefix, n, compress) in [("train", n_train, true), ("t10k", n_test, false)] {
        let (images, labels) = synthetic(n, 4, 3);
        let img = idx_bytes(8, &[n as u32, 4, 3], &images);
        let lab = idx_bytes(8, &[n as u32], &labels);
        let (img, lab, ext) = if compress {
            (gz(&img), gz(&lab), ".gz")
        } else {
            (img, lab, "")
        };
        write(dir, &format!("{prefix}-images-idx3-ubyte{ext}"), &img);
        write(dir, &format!("{prefix}-labels-idx1-ubyte{ext}"), &lab);
    }
}

/// The directory named by `MATNET_DATA` when it holds the four MNIST files;
/// otherwise prints why `test` is skipped and returns `None`.
pub fn real_mnist_dir(test: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("MATNET_DATA").map(PathBuf::from) else {
        println!("{test}: skipped: MATNET_DATA not set / files missing (MATNET_DATA is not set)");
        return None;
    };
    let missing: Vec<&str> = matnet::data::MNIST_FILES
        .iter()
        .map(|f| f.0)
        .filter(|name| !dir.join(name).is_file())
        .collect();
    if !missing.is_empty() {
        println!(
            "{test}: skipped: MATNET_DATA not set / files missing ({} lacks {})",
            dir.display(),
            missing.join(", ")
        );
        return None;
    }
    Some(dir)
}
