//! Portable kernel for targets without AVX2/FMA: plain Rust the compiler
//! vectorizes with whatever SIMD the target baseline has (SSE2 on x86_64,
//! NEON on aarch64). 4×8 keeps 32 accumulators, which fits 8 SSE/NEON
//! registers.

use super::Kernel;
use super::packing::scatter_tile;

pub(super) struct Portable4x8;

const MR: usize = 4;
const NR: usize = 8;

impl Kernel for Portable4x8 {
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 256;
    const MC: usize = 128;
    const NC: usize = 2048;

    unsafe fn tile(
        k: usize,
        a: *const f32,
        ars: isize,
        acs: isize,
        b: *const f32,
        brs: isize,
        c: *mut f32,
        rsc: isize,
        csc: isize,
        rows: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let mut acc = [[0.0f32; NR]; MR];
        for p in 0..k as isize {
            // SAFETY: kernel contract (B rows hold NR readable floats,
            // A has `rows` readable rows).
            let bp: [f32; NR] = unsafe { *(b.offset(p * brs) as *const [f32; NR]) };
            for (r, acc_r) in acc.iter_mut().enumerate().take(rows) {
                let av = unsafe { *a.offset(r as isize * ars + p * acs) };
                for j in 0..NR {
                    acc_r[j] += av * bp[j];
                }
            }
        }
        // SAFETY: kernel contract.
        unsafe {
            scatter_tile(
                acc.as_ptr() as *const f32,
                NR,
                c,
                rsc,
                csc,
                rows,
                cols,
                accumulate,
            )
        };
    }
}
