//! One core's measured multiply-add peak at a kernel's vector width:
//! independent FMA chains (more than latency × ports, so the FMA units
//! never wait), timed flat out. `matnet bench matmul` quotes each product
//! as a share of it, a figure that travels between CPUs and clocks.

use std::time::Instant;

use super::{GemmKernel, Kernel};

/// Multiply-adds per chain between clock reads.
const ITERS: usize = 1 << 22;

/// GFLOP/s (2 per multiply-add) of the calling thread running `kernel`'s
/// vector width on independent FMA chains: the best of `rounds` timings of
/// about 0.1 s each. `None` for the portable kernel (no fixed width) or a
/// kernel this CPU cannot run.
pub fn fma_peak_gflops(kernel: GemmKernel, rounds: usize) -> Option<f64> {
    if !kernel.available() {
        return None;
    }
    let run: fn(usize) -> (f32, usize) = match kernel {
        GemmKernel::Portable => return None,
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available` checked the features each one needs.
        GemmKernel::Avx2 => |n| unsafe { x86::chains_256(n) },
        #[cfg(target_arch = "x86_64")]
        GemmKernel::Avx512 => |n| unsafe { x86::chains_512(n) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => return None,
    };
    std::hint::black_box(run(ITERS / 16)); // warm-up: clocks up, code in cache
    (0..rounds.max(1))
        .map(|_| {
            let t = Instant::now();
            let (sink, flops_per_iter) = run(ITERS);
            std::hint::black_box(sink);
            (ITERS * flops_per_iter) as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .reduce(f64::max)
}

/// GFLOP/s of the calling thread running `kernel`'s full register tile on
/// panels that stay in L1 (one k block deep, A and B packed, C one tile):
/// the microkernel's own ceiling, with no packing, cache misses or ragged
/// edges. A product can approach this figure, not the FMA peak: the tile's
/// loads share the core with its FMAs (on a Sapphire Rapids class Xeon no
/// AVX-512 tile shape's bare k loop passed 89% of the peak, and this tile
/// as called read 82-84%: `bench/tile_shapes.py`, BENCHMARKS.md). The best of `rounds` timings of about 0.1 s each;
/// `None` for a kernel this CPU cannot run.
pub fn tile_ceiling_gflops(kernel: GemmKernel, rounds: usize) -> Option<f64> {
    if !kernel.available() {
        return None;
    }
    Some(match kernel {
        GemmKernel::Portable => tile_rate::<super::portable::Portable4x8>(rounds),
        #[cfg(target_arch = "x86_64")]
        GemmKernel::Avx2 => tile_rate::<super::avx2::Avx2Fma6x16>(rounds),
        #[cfg(target_arch = "x86_64")]
        GemmKernel::Avx512 => tile_rate::<super::avx512::Avx512x12x32>(rounds),
        #[cfg(not(target_arch = "x86_64"))]
        _ => return None,
    })
}

/// [`tile_ceiling_gflops`] for one kernel (its features checked by the caller).
fn tile_rate<K: Kernel>(rounds: usize) -> f64 {
    let k = K::KC;
    let a = vec![0.5f32; K::MR * k];
    let b = vec![0.25f32; K::NR * k];
    let mut c = vec![0.0f32; K::MR * K::NR];
    let tiles = (1 << 28) / (K::MR * K::NR * k);
    let mut run = |n: usize| {
        for _ in 0..n {
            // SAFETY: packed panels of MR·k and NR·k floats, a full C tile
            // with row stride NR; the kernel's features were checked.
            unsafe {
                K::tile(
                    k,
                    a.as_ptr(),
                    1,
                    K::MR as isize,
                    b.as_ptr(),
                    K::NR as isize,
                    c.as_mut_ptr(),
                    K::NR as isize,
                    1,
                    K::MR,
                    K::NR,
                    true,
                )
            };
        }
        std::hint::black_box(&mut c);
    };
    run(tiles / 16); // warm-up
    (0..rounds.max(1))
        .map(|_| {
            let t = Instant::now();
            run(tiles);
            (tiles * K::MR * K::NR * k * 2) as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// 16 chains of 16-lane FMAs: 4-cycle latency × 2 ports needs 8.
    /// Returns a lane sum (so the work is not optimised away) and the
    /// flops per iteration.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn chains_512(n: usize) -> (f32, usize) {
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); 16];
        for _ in 0..n {
            for r in acc.iter_mut() {
                *r = _mm512_fmadd_ps(*r, a, b);
            }
        }
        let sum = acc
            .iter()
            .fold(_mm512_setzero_ps(), |s, &r| _mm512_add_ps(s, r));
        (_mm512_reduce_add_ps(sum), 16 * 16 * 2)
    }

    /// 12 chains of 8-lane FMAs (the AVX2 kernel's 12 accumulators).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn chains_256(n: usize) -> (f32, usize) {
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); 12];
        for _ in 0..n {
            for r in acc.iter_mut() {
                *r = _mm256_fmadd_ps(*r, a, b);
            }
        }
        let sum = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, &r| _mm256_add_ps(s, r));
        let mut lanes = [0.0f32; 8];
        // SAFETY: 8 floats of stack memory.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
        (lanes.iter().sum(), 12 * 8 * 2)
    }
}
