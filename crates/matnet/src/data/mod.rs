//! Datasets: the IDX file format, MNIST and Fashion-MNIST, and where their
//! files live.

pub mod idx;
pub mod location;
pub mod mnist;

pub use idx::{read_idx, IdxArray};
pub use location::{default_cache_dir, find_or_explain, resolve_data_dir};
pub use mnist::{Dataset, DatasetKind, Split};
