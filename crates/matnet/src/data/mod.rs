//! Datasets: the IDX file format, MNIST and Fashion-MNIST, checksums,
//! downloading (the default-on `download` feature), mini-batches as tensors,
//! augmentation (random shifts and rotations), and PNG input.
//!
//! ```no_run
//! use matnet::data::{batches, find_or_explain, Dataset, DatasetKind, Normalize, Split};
//! use matnet::Rng;
//!
//! # fn main() -> matnet::Result<()> {
//! let dir = find_or_explain(None, DatasetKind::Mnist)?; // --data, MATNET_DATA, or the cache
//! let train = Dataset::load(&dir, DatasetKind::Mnist, Split::Train)?;
//! let (train, valid) = train.take(42_000).split_at(33_600);
//! let mut rng = Rng::new(0);
//! for batch in batches(&train, 64, Normalize::Standard, Some(&mut rng)) {
//!     // batch.images: [64, 784], batch.labels: [64]
//!     # let _ = batch;
//! }
//! # let _ = valid;
//! # Ok(())
//! # }
//! ```

pub mod augment;
pub mod checksum;
#[cfg(feature = "download")]
pub mod download;
pub mod idx;
pub mod loader;
pub mod location;
pub mod mnist;
pub mod png;

pub use augment::{Augment, ShiftRotate, Warp};
pub use checksum::{MNIST_FILES, md5_file, verify_mnist};
#[cfg(feature = "download")]
pub use download::{
    MNIST_MIRRORS, download_mnist, download_mnist_from, locate_or_download,
    locate_splits_or_download,
};
pub use idx::{
    IdxArray, IdxValues, idx_from_bytes, idx_values_from_bytes, read_idx, read_idx_values,
};
pub use loader::{Batch, Normalize, UnitPixels, batches, to_batch, to_tensors};
pub use location::{default_cache_dir, find_or_explain, find_splits_or_explain, resolve_data_dir};
pub use mnist::{Dataset, DatasetKind, Split};
pub use png::{GreyImage, decode_png, digit_input, prepare_digit, read_png};
