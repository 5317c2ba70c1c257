//! Large buffers on transparent huge pages: a global allocator for
//! programs, and the scratch buffers of the matrix product.
//!
//! A matrix product walks its operands row by row and packs them in
//! panels: 12 or 16 rows at a time, each row on a different 4 KiB page
//! once rows are 4 KiB or longer, and the microkernel then reads a packed
//! block of B (1 MiB: 256 pages of 4 KiB) for every tile. The
//! second-level TLB (2048 entries, 8 MiB of 4 KiB pages) cannot cover
//! three 4-16 MiB operands plus that block; on 2 MiB pages a few dozen
//! entries do (BENCHMARKS, issue 12, eleventh session).
//!
//! Linux gives huge pages to a range only when asked (`madvise`, the
//! default "madvise" mode of transparent huge pages), and only to 2 MiB
//! aligned 2 MiB extents. So:
//! - the GEMM's per-thread packing buffer ([`ScratchBuf`]) is always a
//!   block of whole 2 MiB pages marked `MADV_HUGEPAGE`, whatever the
//!   program's allocator;
//! - [`HugePageAlloc`], a global allocator, serves every request of at
//!   least [`HUGE_MIN_BYTES`] as whole 2 MiB pages from the system
//!   allocator, marked the same way, and smaller requests unchanged.
//!   Memory the system allocator hands out fresh then faults in as huge
//!   pages; memory it recycles was already faulted in as 4 KiB pages and
//!   stays so until the kernel's background pass merges it.
//!
//! Measured on 1024² and 2048² products (1 and 2 threads): the packing
//! buffer alone 2-4% faster, with the operands from `HugePageAlloc` 5-9%.
//!
//! Elsewhere (other systems, or huge pages off) the marking does nothing
//! and only the alignment remains. `MATNET_HUGE_PAGES=0` in the
//! environment turns both off, for comparisons.
//!
//! A library cannot choose the allocator of the program that uses it; a
//! program opts in with
//!
//! ```
//! #[global_allocator]
//! static ALLOC: matnet::alloc::HugePageAlloc = matnet::alloc::HugePageAlloc;
//! # fn main() {}
//! ```
//!
//! as the `matnet` command does.

use std::alloc::{GlobalAlloc, Layout, System};

/// The huge page size that `MADV_HUGEPAGE` asks for on x86-64 and most
/// aarch64 kernels.
pub const HUGE_PAGE: usize = 2 << 20;

/// Requests of at least this many bytes are served as whole 2 MiB pages
/// marked for huge pages: a 1024×1024 matrix qualifies. With 1 MiB the
/// resident memory of a 50-epoch MLP training run crept up by 2-3%, in
/// 1-2 MiB steps; with 4 MiB it stayed flat (`bench/mlp_rss.py`).
pub const HUGE_MIN_BYTES: usize = 4 << 20;

/// The global allocator described in the [module docs](self).
pub struct HugePageAlloc;

/// `bytes` rounded up to whole huge pages, 2 MiB aligned: the marked range
/// then holds this block only, never part of a neighbour's. None for a
/// size within 2 MiB of `isize::MAX`.
fn huge_layout(bytes: usize) -> Option<Layout> {
    Layout::from_size_align(bytes.checked_next_multiple_of(HUGE_PAGE)?, HUGE_PAGE).ok()
}

/// The layout a request is served with: whole huge pages when large
/// enough (and representable), else as asked.
fn served(layout: Layout) -> Layout {
    if layout.size() >= HUGE_MIN_BYTES && layout.align() <= HUGE_PAGE && enabled() {
        huge_layout(layout.size()).unwrap_or(layout)
    } else {
        layout
    }
}

/// False when `MATNET_HUGE_PAGES=0`: every request then goes to the
/// system allocator as it is (for comparisons). Read once.
fn enabled() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0: not read yet, 1: on, 2: off.
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            // SAFETY: getenv reads the environment without allocating (an
            // allocator must not allocate); the string is NUL-terminated.
            let off = unsafe {
                let v = libc::getenv(c"MATNET_HUGE_PAGES".as_ptr());
                !v.is_null() && std::ffi::CStr::from_ptr(v).to_bytes() == b"0"
            };
            STATE.store(if off { 2 } else { 1 }, Ordering::Relaxed);
            !off
        }
    }
}

/// Marks `[ptr, ptr + len)` (2 MiB aligned) for huge pages; best effort.
fn advise(ptr: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    if !ptr.is_null() {
        // SAFETY: madvise only changes paging hints of our own block; a
        // failure (huge pages not supported) is ignored.
        unsafe { libc::madvise(ptr.cast(), len, libc::MADV_HUGEPAGE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, len);
}

// SAFETY: every block is allocated and freed by `System` with the same
// layout (`served` is a pure function of the caller's layout), and the
// served layout's size and alignment satisfy the caller's.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let l = served(layout);
        // SAFETY: forwarded; `l` has a non-zero size as `layout` does.
        let p = unsafe { System.alloc(l) };
        if l.align() == HUGE_PAGE {
            advise(p, l.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if served(layout).align() != HUGE_PAGE {
            // SAFETY: forwarded; served as asked.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // `alloc` marks the block before anything touches its pages, so
        // the zeroing below already faults them in as huge pages.
        // SAFETY: forwarded.
        let p = unsafe { self.alloc(layout) };
        if !p.is_null() {
            // SAFETY: `p` holds at least `layout.size()` bytes.
            unsafe { std::ptr::write_bytes(p, 0, layout.size()) };
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout, so from
        // `System` with `served(layout)`.
        unsafe { System.dealloc(ptr, served(layout)) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees the new size is valid for the align.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let (old, new) = (served(layout), served(new_layout));
        if old.align() == layout.align() && new.align() == layout.align() {
            // Small before and after: the system allocator's own realloc.
            // SAFETY: forwarded.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: a fresh block, the overlap copied, the old block freed
        // with the layout it was allocated with.
        unsafe {
            let p = self.alloc(new_layout);
            if !p.is_null() {
                std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            p
        }
    }
}

/// A scratch buffer of floats in a block of its own: 64-byte aligned, and
/// from [`SCRATCH_HUGE_MIN_BYTES`] up 2 MiB aligned, whole 2 MiB pages,
/// marked for huge pages whichever global allocator the program uses.
/// For buffers a thread keeps and reuses, such as a matrix product's
/// packed panels: the microkernel reads a 1 MiB block of packed B for
/// every tile, 256 pages of 4 KiB against one huge page.
pub(crate) struct ScratchBuf {
    ptr: std::ptr::NonNull<f32>,
    layout: Layout,
    /// From [`map_huge`] (else from the global allocator).
    mapped: bool,
}

/// Scratch buffers from this size up go on huge pages: a 512² product
/// packs 0.75 MiB, a 1024² one 1.4 MiB. A thread holds one such buffer,
/// so rounding it up to 2 MiB costs little.
pub(crate) const SCRATCH_HUGE_MIN_BYTES: usize = 64 << 10;

// SAFETY: the buffer is owned memory with no thread affinity.
unsafe impl Send for ScratchBuf {}

impl ScratchBuf {
    /// At least `len` floats, zeroed. Aborts like `Vec` if memory runs out.
    pub(crate) fn new(len: usize) -> Self {
        let bytes = len.max(1).saturating_mul(4);
        let huge = bytes >= SCRATCH_HUGE_MIN_BYTES && enabled();
        let layout = if huge {
            huge_layout(bytes)
        } else {
            Layout::from_size_align(bytes, 64).ok()
        };
        let Some(layout) = layout else {
            panic!("scratch buffer of {len} floats exceeds the address space");
        };
        let p = if huge { map_huge(layout.size()) } else { None };
        let (p, mapped) = match p {
            Some(p) => (p, true),
            None => {
                // SAFETY: non-zero size.
                let p = unsafe { std::alloc::alloc_zeroed(layout) };
                if p.is_null() {
                    std::alloc::handle_alloc_error(layout)
                }
                (p, false)
            }
        };
        let ptr = std::ptr::NonNull::new(p.cast::<f32>()).expect("non-null block");
        ScratchBuf {
            ptr,
            layout,
            mapped,
        }
    }

    /// Capacity in floats.
    pub(crate) fn len(&self) -> usize {
        self.layout.size() / 4
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut f32 {
        self.ptr.as_ptr()
    }
}

/// A fresh anonymous mapping of `size` bytes (a multiple of 2 MiB), 2 MiB
/// aligned and marked for huge pages before anything touches it, so its
/// pages fault in huge (memory a heap allocator recycles was already
/// faulted in as 4 KiB pages, and marking it changes nothing at once).
/// Zeroed by the kernel. None where mappings are not available.
fn map_huge(size: usize) -> Option<*mut u8> {
    #[cfg(target_os = "linux")]
    {
        let span = size.checked_add(HUGE_PAGE)?;
        // SAFETY: a new private anonymous mapping; the parts outside the
        // aligned block are unmapped again and never handed out.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                span,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return None;
            }
            let base = base as usize;
            let start = base.div_ceil(HUGE_PAGE) * HUGE_PAGE;
            if start > base {
                libc::munmap(base as *mut libc::c_void, start - base);
            }
            let tail = base + span - (start + size);
            if tail > 0 {
                libc::munmap((start + size) as *mut libc::c_void, tail);
            }
            advise(start as *mut u8, size);
            Some(start as *mut u8)
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = size;
        None
    }
}

impl Drop for ScratchBuf {
    fn drop(&mut self) {
        let p = self.ptr.as_ptr();
        if self.mapped {
            // SAFETY: the block `map_huge` mapped, `layout.size()` bytes.
            #[cfg(target_os = "linux")]
            unsafe {
                libc::munmap(p.cast(), self.layout.size())
            };
        } else {
            // SAFETY: allocated in `new` with this layout.
            unsafe { std::alloc::dealloc(p.cast(), self.layout) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_buffers_are_zeroed_aligned_and_large_enough() {
        for len in [1, 1000, SCRATCH_HUGE_MIN_BYTES / 4 - 1, 300_000, 1 << 21] {
            let mut b = ScratchBuf::new(len);
            assert!(b.len() >= len);
            let p = b.as_mut_ptr();
            let align = if len * 4 >= SCRATCH_HUGE_MIN_BYTES && enabled() {
                HUGE_PAGE
            } else {
                64
            };
            assert_eq!(p as usize % align, 0, "len {len}");
            // SAFETY: the buffer holds `b.len()` floats.
            let s = unsafe { std::slice::from_raw_parts_mut(p, b.len()) };
            assert!(s.iter().all(|&x| x == 0.0));
            s.fill(1.5);
        }
    }
}
