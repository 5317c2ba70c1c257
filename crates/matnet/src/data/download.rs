//! Fetching MNIST from public mirrors (the `download` feature, on by
//! default: it brings the HTTP client and TLS).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::checksum::{MNIST_FILES, md5_file, save_verified};
use crate::error::{Error, Result};

/// Public mirrors of the MNIST `.gz` files, tried in order (the ones
/// torchvision uses; the original yann.lecun.com has often refused downloads).
pub const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// Downloads the four MNIST `.gz` files into `dest` (created if needed) from
/// [`MNIST_MIRRORS`].
///
/// Each file goes to a temporary file in `dest`, and is renamed to its real
/// name only once its MD5 matches [`MNIST_FILES`]; a corrupt download is
/// thrown away and the next mirror tried. Files already present with the
/// right checksum are kept. `progress(file, bytes_so_far, total)` is called
/// as data arrives (`total` is `None` when the server does not say).
///
/// When every mirror fails, the error lists the URLs tried with their errors
/// and says how to use files already on disk instead.
pub fn download_mnist(dest: &Path, progress: impl FnMut(&str, u64, Option<u64>)) -> Result<()> {
    download_mnist_from(dest, &MNIST_MIRRORS, progress)
}

/// The dataset directory as [`super::find_or_explain`] chooses it
/// (`explicit`, then the dataset's environment variable, then the cache).
/// When MNIST is missing and the user chose neither, it is downloaded into
/// the cache first (first use only): `announce` is called with that
/// directory before the download starts, `progress` as for [`download_mnist`].
/// Anything else missing is the error `find_or_explain` gives.
pub fn locate_or_download(
    explicit: Option<&Path>,
    kind: super::DatasetKind,
    announce: impl FnOnce(&Path),
    progress: impl FnMut(&str, u64, Option<u64>),
) -> Result<PathBuf> {
    use super::Split;
    locate_splits_or_download(
        explicit,
        kind,
        &[Split::Train, Split::Test],
        announce,
        progress,
    )
}

/// [`locate_or_download`] needing only the files of `splits` (evaluation
/// needs the test set alone): a directory holding them is used as it is.
pub fn locate_splits_or_download(
    explicit: Option<&Path>,
    kind: super::DatasetKind,
    splits: &[super::Split],
    announce: impl FnOnce(&Path),
    progress: impl FnMut(&str, u64, Option<u64>),
) -> Result<PathBuf> {
    use super::{DatasetKind, find_splits_or_explain, resolve_data_dir};
    let missing = match find_splits_or_explain(explicit, kind, splits) {
        Ok(dir) => return Ok(dir),
        Err(missing) => missing,
    };
    let user_chose = explicit.is_some() || std::env::var_os(kind.env_var()).is_some();
    if user_chose || kind != DatasetKind::Mnist {
        return Err(missing);
    }
    let dest = resolve_data_dir(None, kind);
    announce(&dest);
    download_mnist(&dest, progress)?;
    Ok(dest)
}

/// [`download_mnist`] from the given base URLs (each ending in `/`) instead
/// of the public mirrors: an in-house mirror, or a local server in tests.
pub fn download_mnist_from(
    dest: &Path,
    mirrors: &[&str],
    mut progress: impl FnMut(&str, u64, Option<u64>),
) -> Result<()> {
    fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        // Per read, not global: a slow but live link may take minutes for 10 MB.
        .timeout_per_read(Some(Duration::from_secs(30)))
        .user_agent(concat!("matnet/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    for (name, md5_gz, _) in MNIST_FILES {
        let target = dest.join(name);
        if target.is_file() && md5_file(&target)? == md5_gz {
            continue;
        }
        let mut failures = Vec::new();
        let mut done = false;
        for base in mirrors {
            let url = format!("{base}{name}");
            match fetch(&agent, &url) {
                Ok((body, total)) => {
                    let mut body = body;
                    let mut report = |n| progress(name, n, total);
                    match save_verified(&mut body, &target, md5_gz, &mut report) {
                        Ok(()) => {
                            done = true;
                            break;
                        }
                        Err(e) => failures.push(format!("{url}: {e}")),
                    }
                }
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        if !done {
            return Err(Error::Download(format!(
                "could not download MNIST {name} from any mirror; tried {}. If the MNIST files \
                 are already on disk, point matnet at their directory with --data DIR or \
                 MATNET_DATA=DIR, or copy them into {}",
                failures.join("; "),
                dest.display()
            )));
        }
    }
    Ok(())
}

/// Starts a GET; returns the body and its length when the server gives one.
fn fetch(agent: &ureq::Agent, url: &str) -> std::result::Result<(impl Read, Option<u64>), String> {
    let response = agent.get(url).call().map_err(|e| e.to_string())?;
    let body = response.into_body();
    let total = body.content_length();
    Ok((body.into_reader(), total))
}
