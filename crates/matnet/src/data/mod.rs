//! Datasets: the IDX file format, MNIST and Fashion-MNIST, where their files
//! live, and downloading MNIST.

pub mod download;
pub mod idx;
pub mod location;
pub mod mnist;

pub use download::{
    download_mnist, download_mnist_from, md5_file, verify_mnist, MNIST_FILES, MNIST_MIRRORS,
};
pub use idx::{read_idx, IdxArray};
pub use location::{default_cache_dir, find_or_explain, resolve_data_dir};
pub use mnist::{Dataset, DatasetKind, Split};
