//! CPU kernels. They work on raw slices plus layouts; `ops/` wraps them into
//! tensor operations with gradients.

pub mod gemm;
pub mod pool;
mod reduce;
mod strided;

pub use reduce::{argmax, max_with_index, softmax, sum};
pub use strided::{copy_strided, for_each_row, map1, map2, map3};

/// Elements per parallel task for elementwise kernels. Below a few such
/// chunks a second thread costs more than it gives (hand-off is ~µs).
pub const PAR_CHUNK: usize = 1 << 15;
