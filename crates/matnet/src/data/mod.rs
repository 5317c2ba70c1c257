//! Datasets: the IDX file format.

pub mod idx;

pub use idx::{read_idx, IdxArray};
