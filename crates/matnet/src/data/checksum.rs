//! Checking files against known MD5s, and saving a stream only once its MD5
//! matches: what verifies MNIST on disk, with or without the `download`
//! feature.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::error::{Error, Result};

/// The four MNIST files: name, MD5 of the `.gz` file, MD5 of its
/// decompressed content (so raw files can be checked too).
///
/// Computed from the verified copies; the `.gz` sums are the ones published
/// with the original files.
pub const MNIST_FILES: [(&str, &str, &str); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "6bbc9ace898e44ae57da46a324031adb",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "d53e105ee54ea40749a09fcbcd1e9432",
        "a25bea736e30d166cdddb491f175f624",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "9fb629c4189551a2d022fa330f9573f3",
        "2646ac647ad5339dbf082846283269ea",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "ec29112dd5afa0611ce80d1b7f02629c",
        "27ae3e4e09519cfbb04c329615203637",
    ),
];

/// Checks the MNIST files in `dir` (each `.gz` or raw) against the known MD5s.
///
/// Errors name the first file whose checksum differs, or list the files
/// that are missing: a partial dataset does not verify.
pub fn verify_mnist(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    for (name, md5_gz, md5_raw) in MNIST_FILES {
        let base = name.trim_end_matches(".gz");
        let (path, expected) = if dir.join(name).is_file() {
            (dir.join(name), md5_gz)
        } else if dir.join(base).is_file() {
            (dir.join(base), md5_raw)
        } else {
            missing.push(format!("{base}[.gz]"));
            continue;
        };
        let got = md5_file(&path)?;
        if got != expected {
            return Err(Error::format(
                &path,
                format!(
                    "MD5 mismatch: expected {expected}, got {got}: not the original MNIST file; \
                     delete it and run `matnet download mnist`"
                ),
            ));
        }
    }
    if !missing.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: MNIST files missing: {}",
            dir.display(),
            missing.join(", ")
        )));
    }
    Ok(())
}

/// The MD5 of a file's bytes, as 32 lowercase hex digits.
pub fn md5_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Md5::new();
    io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, e))?;
    Ok(hex(&hasher.finalize()))
}

/// Copies `src` to `dest` atomically if its MD5 is `expected_md5`.
///
/// The bytes go to a temporary file beside `dest` while being hashed; on a
/// match it is synced and renamed over `dest`, otherwise deleted, so `dest`
/// only ever holds a complete, verified file. `progress` receives the byte
/// count so far.
pub fn save_verified(
    src: &mut impl Read,
    dest: &Path,
    expected_md5: &str,
    mut progress: impl FnMut(u64),
) -> Result<()> {
    let tmp = temp_path(dest);
    let result = (|| {
        let mut file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut hasher = Md5::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::Download(format!(
                        "read failed after {total} bytes: {e}"
                    )));
                }
            };
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(|e| Error::io(&tmp, e))?;
            total += n as u64;
            progress(total);
        }
        let got = hex(&hasher.finalize());
        if got != expected_md5 {
            return Err(Error::Download(format!(
                "MD5 mismatch: expected {expected_md5}, got {got} ({total} bytes)"
            )));
        }
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))
    })();
    if result.is_err() {
        // Best effort: the error being returned matters more than this one.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `dir/.name.<pid>.part`: hidden, beside the target so the rename stays on
/// one file system, and distinct per process.
fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.{}.part", std::process::id()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
