//! `HugePageAlloc` called directly: large blocks 2 MiB aligned, contents
//! kept across reallocations that cross the size threshold both ways,
//! zeroed blocks zero, small blocks as the system allocator serves them.

use std::alloc::{GlobalAlloc, Layout};

use matnet::alloc::{HUGE_MIN_BYTES, HUGE_PAGE, HugePageAlloc};

fn fill(p: *mut u8, len: usize, seed: u8) {
    for i in 0..len {
        // SAFETY: `p` holds `len` bytes.
        unsafe { *p.add(i) = (i as u8).wrapping_mul(31).wrapping_add(seed) };
    }
}

fn holds(p: *const u8, len: usize, seed: u8) -> bool {
    // SAFETY: `p` holds `len` bytes.
    (0..len).all(|i| unsafe { *p.add(i) } == (i as u8).wrapping_mul(31).wrapping_add(seed))
}

#[test]
fn large_blocks_are_aligned_and_reallocations_keep_contents() {
    let a = HugePageAlloc;
    let small = 1000;
    let big = HUGE_MIN_BYTES + 12_345;
    let bigger = 3 * HUGE_PAGE + 7;
    // SAFETY: each block is used within its size and freed with the
    // layout (and size) it last had.
    unsafe {
        let l = Layout::from_size_align(big, 4).unwrap();
        let p = a.alloc(l);
        assert!(!p.is_null());
        assert_eq!(p as usize % HUGE_PAGE, 0, "large block not 2 MiB aligned");
        fill(p, big, 1);
        // Large to larger.
        let p = a.realloc(p, l, bigger);
        assert_eq!(p as usize % HUGE_PAGE, 0);
        assert!(holds(p, big, 1));
        // Large to small: the first bytes survive.
        let l = Layout::from_size_align(bigger, 4).unwrap();
        let p = a.realloc(p, l, small);
        assert!(holds(p, small, 1));
        // Small to large.
        let l = Layout::from_size_align(small, 4).unwrap();
        let p = a.realloc(p, l, big);
        assert_eq!(p as usize % HUGE_PAGE, 0);
        assert!(holds(p, small, 1));
        a.dealloc(p, Layout::from_size_align(big, 4).unwrap());

        // Zeroed large block.
        let l = Layout::from_size_align(bigger, 16).unwrap();
        let z = a.alloc_zeroed(l);
        assert_eq!(z as usize % HUGE_PAGE, 0);
        assert!((0..bigger).all(|i| *z.add(i) == 0));
        a.dealloc(z, l);

        // Small blocks: the caller's alignment, contents kept by realloc.
        let l = Layout::from_size_align(small, 64).unwrap();
        let s = a.alloc(l);
        assert_eq!(s as usize % 64, 0);
        fill(s, small, 9);
        let s = a.realloc(s, l, 2 * small);
        assert_eq!(s as usize % 64, 0);
        assert!(holds(s, small, 9));
        a.dealloc(s, Layout::from_size_align(2 * small, 64).unwrap());
    }
}

#[test]
fn a_freed_large_block_comes_back_zeroed_when_asked() {
    let a = HugePageAlloc;
    let size = HUGE_MIN_BYTES + 1;
    let l = Layout::from_size_align(size, 8).unwrap();
    // SAFETY: blocks used within their size and freed with their layout.
    unsafe {
        let p = a.alloc(l);
        assert!(!p.is_null());
        std::ptr::write_bytes(p, 0xAB, size);
        a.dealloc(p, l);
        // The system allocator may hand the same block back: the zeroed
        // request must still read zeros.
        let z = a.alloc_zeroed(l);
        assert_eq!(z as usize % HUGE_PAGE, 0);
        assert!((0..size).all(|i| *z.add(i) == 0));
        // And a plain request of the same size still works after it.
        let q = a.alloc(l);
        assert!(!q.is_null() && q != z);
        a.dealloc(q, l);
        a.dealloc(z, l);
    }
}
