//! Where the dataset files live, and what to tell the user when they are not there.

use std::path::{Path, PathBuf};

use super::mnist::{DatasetKind, Split, find_file};
use crate::error::{Error, Result};

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
pub const DEBIAN_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The directory to look for `kind`'s files in, first match wins:
///
/// 1. `explicit` (the command line's `--data DIR`);
/// 2. the environment variable [`DatasetKind::env_var`]: `MATNET_DATA` for
///    MNIST, `MATNET_FASHION_DATA` for Fashion-MNIST;
/// 3. for Fashion-MNIST, [`DEBIAN_FASHION_MNIST_DIR`] when it exists;
/// 4. the user cache directory, `<cache>/matnet/<kind>` (`~/.cache/matnet/mnist`
///    on Linux), or `./data/<kind>` where the platform has none.
///
/// The directory may not exist yet: [`find_or_explain`] checks it.
pub fn resolve_data_dir(explicit: Option<&Path>, kind: DatasetKind) -> PathBuf {
    resolve_with_source(explicit, kind).0
}

/// [`resolve_data_dir`], then checks that the four files are there (each
/// `.gz` or raw). The error says which files are missing where, why matnet
/// looked there, and exactly what to do: `matnet download mnist` (or, when
/// the library's `download` feature is off, that it is off), or `--data DIR`
/// / the environment variable.
pub fn find_or_explain(explicit: Option<&Path>, kind: DatasetKind) -> Result<PathBuf> {
    find_splits_or_explain(explicit, kind, &[Split::Train, Split::Test])
}

/// [`find_or_explain`] for the files of `splits` only: evaluating needs
/// the two test files, not the training set.
pub fn find_splits_or_explain(
    explicit: Option<&Path>,
    kind: DatasetKind,
    splits: &[Split],
) -> Result<PathBuf> {
    let (dir, source) = resolve_with_source(explicit, kind);
    let wanted: Vec<String> = splits.iter().flat_map(|s| s.file_names()).collect();
    let missing: Vec<String> = wanted
        .iter()
        .filter(|base| find_file(&dir, base).is_none())
        .map(|base| format!("{base}[.gz]"))
        .collect();
    if missing.is_empty() {
        return Ok(dir);
    }
    let what = if missing.len() == wanted.len() {
        "no dataset files".to_string()
    } else {
        format!("missing {}", missing.join(", "))
    };
    Err(Error::Invalid(format!(
        "{kind} not found in {} (chosen by {source}): {what}. {}",
        dir.display(),
        advice(kind)
    )))
}

/// The default download and cache directory for `kind`.
pub fn default_cache_dir(kind: DatasetKind) -> PathBuf {
    match dirs::cache_dir() {
        Some(cache) => cache.join("matnet").join(kind.name()),
        None => PathBuf::from("data").join(kind.name()),
    }
}

/// One sentence on how to get `kind`'s files where matnet will find them.
pub(crate) fn advice(kind: DatasetKind) -> String {
    let point = format!(
        "point matnet at a directory holding the four files with --data DIR or {}=DIR",
        kind.env_var()
    );
    match kind {
        DatasetKind::Mnist if cfg!(feature = "download") => format!(
            "Run `matnet download mnist` to fetch them into {}, or {point}.",
            default_cache_dir(kind).display()
        ),
        DatasetKind::Mnist => format!(
            "This build of the matnet library has its `download` feature off, so it cannot \
             fetch them: build with the feature (on by default) and call \
             `matnet::data::download_mnist`, or run `matnet download mnist`, to fetch them \
             into {}, or {point}.",
            default_cache_dir(kind).display()
        ),
        DatasetKind::FashionMnist => format!(
            "Install them with `apt-get install dataset-fashion-mnist` (into {DEBIAN_FASHION_MNIST_DIR}), or {point}."
        ),
    }
}

/// The directory and which rule chose it, for error messages.
fn resolve_with_source(explicit: Option<&Path>, kind: DatasetKind) -> (PathBuf, String) {
    if let Some(dir) = explicit {
        return (dir.to_path_buf(), "--data".to_string());
    }
    // One variable per dataset: with a single MATNET_DATA pointing at MNIST,
    // `--dataset fashion-mnist` would silently train on digits.
    let var = kind.env_var();
    if let Some(dir) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return (PathBuf::from(dir), var.to_string());
    }
    if kind == DatasetKind::FashionMnist && Path::new(DEBIAN_FASHION_MNIST_DIR).is_dir() {
        return (
            PathBuf::from(DEBIAN_FASHION_MNIST_DIR),
            "the Debian package location".to_string(),
        );
    }
    (
        default_cache_dir(kind),
        format!("default; {var} is not set"),
    )
}
