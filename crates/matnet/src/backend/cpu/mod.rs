//! The optimised CPU backend: [`CpuStorage`] implements the primitives on
//! kernels that work on raw slices plus layouts (packed GEMM, SIMD math, a
//! thread pool).

pub mod conv;
pub mod dense_relu_dense;
pub mod gemm;
mod index;
pub mod math;
mod matmul;
mod optim;
pub mod pooling;
pub mod recurrent;
mod reduce;
mod storage;
mod strided;
pub mod threads;

pub use storage::CpuStorage;

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

/// A vector of `n` floats that `fill` writes completely through the pointer
/// it is given, without zeroing it first: zeroing buffers that are about to
/// be overwritten was 7% of a `cnn` training step (perf).
///
/// # Safety
/// `fill` must write all `n` elements (through raw pointers or
/// `MaybeUninit`, never reading them) before it returns.
pub(crate) unsafe fn vec_written_by(n: usize, fill: impl FnOnce(SendPtr)) -> Vec<f32> {
    let mut v = Vec::<f32>::with_capacity(n);
    fill(SendPtr(v.as_mut_ptr()));
    // SAFETY: the caller guarantees that `fill` initialised all n elements.
    unsafe { v.set_len(n) };
    v
}

/// A raw pointer that pool tasks may share. Every use hands tasks disjoint
/// parts of one buffer (or read-only access) and keeps the buffer alive until
/// `parallel_for` returns.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);
// SAFETY: see the type's doc: tasks never touch the same element mutably.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
impl SendPtr {
    /// The pointer itself.
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }

    /// The sub-slice `start..end`.
    ///
    /// # Safety
    /// The range is in bounds and initialised, and no other live slice
    /// overlaps it.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, start: usize, end: usize) -> &mut [f32] {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), end - start) }
    }

    /// The sub-slice `start..end` of memory that may not be initialised yet.
    ///
    /// # Safety
    /// The range is in bounds of the allocation and no other live slice
    /// overlaps it.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn uninit_slice(
        &self,
        start: usize,
        end: usize,
    ) -> &mut [std::mem::MaybeUninit<f32>] {
        // SAFETY: guaranteed by the caller; MaybeUninit needs no initialisation.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start).cast(), end - start) }
    }
}
