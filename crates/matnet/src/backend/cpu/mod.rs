//! CPU kernels. They work on raw slices plus layouts; `ops/` wraps them into
//! tensor operations with gradients.

pub mod conv;
pub mod gemm;
pub mod pool;
mod reduce;
mod strided;

pub use reduce::{argmax, max_with_index, softmax, sum};
pub use strided::{copy_strided, for_each_row, map1, map2, map3};

/// Tunes the C allocator for tensor workloads, once per process.
///
/// A training step frees and reallocates the same few buffers of hundreds of
/// KiB. glibc serves blocks above 128 KiB with fresh `mmap`s and trims the heap
/// top eagerly, so every step paid page faults and page clearing for them
/// (5% of a batch-256 MLP step, measured with perf). Raising both thresholds
/// keeps those buffers in the heap for reuse; memory stays bounded by the
/// peak working set.
pub(crate) fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; it is
            // thread-safe and has no memory-safety preconditions.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
            }
        });
    }
}

/// Elements per parallel task for elementwise kernels. Below a few such
/// chunks a second thread costs more than it gives (hand-off is ~µs).
pub const PAR_CHUNK: usize = 1 << 15;
