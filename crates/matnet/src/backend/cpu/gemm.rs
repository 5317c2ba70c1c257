//! Single-precision matrix multiply (GotoBLAS/BLIS structure).
//!
//! Loop nest, outermost first:
//!
//! ```text
//! jc over N in NC columns      B block  KC×NC  (packed, lives in L3)
//!   pc over K in KC            
//!     ic over M in MC rows     A block  MC×KC  (packed, lives in L2)
//!       jr over NC in NR       B micro-panel KC×NR stays in L1
//!         ir over MC in MR     A micro-panel MR×KC streams from L2
//!           microkernel: MR×NR tile of C held in registers for all of KC
//! ```
//!
//! Packing reads the operands through their strides, so transposed inputs
//! cost nothing extra in the inner loops. Small or skinny products skip
//! packing of A (the microkernel broadcasts A elements straight from the
//! strided source) and, when B rows are contiguous, of B as well: packing
//! only pays when a packed element is reused many times (on 6×16×512 it
//! cost 40% of the run time; on 96×96×256 packing either operand bought
//! nothing measurable).
//!
//! Blocks are split evenly (k = 784 → 4×196, not 3×256 + 16) and a narrow
//! C (n < 16) with A given transposed is computed as Cᵀ = Bᵀ·Aᵀ so the
//! small dimension lands on the kernel's row side, where it wastes no
//! vector lanes.
//!
//! Threads split C into disjoint column (or row) blocks, one per thread;
//! each runs this whole algorithm with its own thread-local buffers. The
//! price is that every thread packs the shared operand (A when splitting
//! columns) itself: ≤ 2/n of the work, which measured 1.9× on 256³-1024³.
//!
//! The microkernel is chosen at run time: AVX2+FMA 6×16 on x86_64 CPUs that
//! have it, otherwise a portable scalar kernel the compiler auto-vectorizes.
//! Another kernel (other MR/NR, e.g. AVX-512) only needs a `Kernel` impl
//! and one more line in [`sgemm`]'s dispatch.

use super::pool;
use std::cell::Cell;

/// A register-blocked microkernel plus the cache blocking tuned for it.
trait Kernel {
    /// Rows of C per microkernel tile.
    const MR: usize;
    /// Columns of C per microkernel tile.
    const NR: usize;
    /// Depth of one packed panel.
    const KC: usize;
    /// Rows of A packed at once (multiple of `MR`).
    const MC: usize;
    /// Columns of B packed at once (multiple of `NR`).
    const NC: usize;

    /// `C[rows×cols] (+)= A[rows×k] · B[k×NR][.., ..cols]`.
    ///
    /// A element (r, p) is at `a + r*ars + p*acs`; B row p is `NR`
    /// contiguous floats at `b + p*brs` (all `NR` must be readable, padding
    /// included); C element (r, j) is at `c + r*rsc + j*csc`. `rows <= MR`,
    /// `1 <= cols <= NR`. Without `accumulate`, C is overwritten (never read).
    ///
    /// # Safety
    /// All addresses described above must be valid; CPU features the kernel
    /// needs must be present.
    #[allow(clippy::too_many_arguments)]
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
    );

    /// Packs `kc×nc` of B (see [`pack_b_block`]). Kernels may override
    /// with a SIMD version for the layouts that need transposing.
    ///
    /// # Safety
    /// As [`pack_b_block`].
    unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rsb: isize, csb: isize, dst: *mut f32) {
        // SAFETY: forwarded.
        unsafe { pack_b_block::<Self>(kc, nc, b, rsb, csb, dst) }
    }

    /// Packs `mc×kc` of A (see [`pack_a_block`]).
    ///
    /// # Safety
    /// As [`pack_a_block`].
    unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rsa: isize, csa: isize, dst: *mut f32) {
        // SAFETY: forwarded.
        unsafe { pack_a_block::<Self>(mc, kc, a, rsa, csa, dst) }
    }
}

/// The operands of one (sub-)product. Raw pointers so sub-problems can be
/// sent to pool threads; each task writes a disjoint block of C.
#[derive(Clone, Copy)]
struct Problem {
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    accumulate: bool,
}

// SAFETY: `Problem` is only shared between the tasks of one `sgemm` call,
// which read A and B and write disjoint parts of C; the caller of `sgemm`
// guarantees the buffers outlive the call.
unsafe impl Send for Problem {}
unsafe impl Sync for Problem {}

/// C[m×n] = A[m×k] · B[k×n]  (+ C if `accumulate`).
///
/// Element (i,p) of A is at `a.offset(i*rsa + p*csa)`, B (p,j) at
/// `b.offset(p*rsb + j*csb)`, C (i,j) at `c.offset(i*rsc + j*csc)`. Any
/// strides work, including 0 (broadcast) for A and B, so transposes are
/// expressed by swapping strides. `threads` is an upper bound on the threads
/// used (the caller's included); small products run on one thread.
///
/// When `k == 0`, C is zeroed (or left alone if `accumulate`). Without
/// `accumulate`, C is never read, so it may hold garbage (even NaN).
///
/// # Safety
/// Every element address described above, for `i < m`, `j < n`, `p < k`,
/// must be valid for reads (A, B) or reads and writes (C). Distinct (i,j)
/// must map to distinct C elements, and C must not overlap A or B.
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    accumulate: bool,
    threads: usize,
) {
    let p = Problem {
        m,
        n,
        k,
        a,
        rsa,
        csa,
        b,
        rsb,
        csb,
        c,
        rsc,
        csc,
        accumulate,
    };
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // SAFETY: forwarded from the caller.
        unsafe { zero_c(&p) };
        return;
    }
    // Tiny products: the blocked path has ~130 ns of fixed cost (dispatch,
    // buffer, ragged-tile handling); a plain loop wins below ~8³ (2³: 18 vs
    // 137 ns, 4³: 55 vs 154 ns, 8³: 392 vs 274 ns).
    if m.saturating_mul(n).saturating_mul(k) < TINY_WORK {
        // SAFETY: forwarded from the caller.
        unsafe { naive_sgemm(m, n, k, a, rsa, csa, b, rsb, csb, c, rsc, csc, accumulate) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: features checked above; pointers forwarded.
            unsafe { run::<x86::Avx2Fma6x16>(&p, threads) };
            return;
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { run::<portable::Portable4x8>(&p, threads) };
}

/// [`sgemm`] forced onto the portable (non-SIMD-intrinsics) kernel. Exists
/// so the fallback used on non-x86_64 or pre-AVX2 CPUs is tested everywhere.
///
/// # Safety
/// Same as [`sgemm`].
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm_portable(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    accumulate: bool,
    threads: usize,
) {
    let p = Problem {
        m,
        n,
        k,
        a,
        rsa,
        csa,
        b,
        rsb,
        csb,
        c,
        rsc,
        csc,
        accumulate,
    };
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // SAFETY: forwarded from the caller.
        unsafe { zero_c(&p) };
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe { run::<portable::Portable4x8>(&p, threads) };
}

/// Reference: plain i-j-p triple loop, f32 accumulation. Same layout
/// conventions as [`sgemm`].
///
/// # Safety
/// Same as [`sgemm`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn naive_sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    accumulate: bool,
) {
    for i in 0..m as isize {
        for j in 0..n as isize {
            let mut s = 0.0f32;
            for p in 0..k as isize {
                // SAFETY: caller guarantees the addresses are valid.
                unsafe { s += *a.offset(i * rsa + p * csa) * *b.offset(p * rsb + j * csb) };
            }
            // SAFETY: as above.
            unsafe {
                let cij = c.offset(i * rsc + j * csc);
                *cij = if accumulate { *cij + s } else { s };
            }
        }
    }
}

unsafe fn zero_c(p: &Problem) {
    if p.accumulate {
        return;
    }
    for i in 0..p.m as isize {
        for j in 0..p.n as isize {
            // SAFETY: caller guarantees C addresses are valid.
            unsafe { *p.c.offset(i * p.rsc + j * p.csc) = 0.0 };
        }
    }
}

/// Below this many multiply-adds `sgemm` uses the plain triple loop.
const TINY_WORK: usize = 300;

/// Below this many multiply-adds (m·n·k) a product runs on one thread.
/// Measured on the 2-core Zen 3 VM with a warm pool (hand-off ≈ 0.3 µs,
/// ≈ 3-4 µs when the worker has parked): 32³ is 30% slower on 2 threads,
/// 48³ (110k) breaks even, 64³ (262k) is ~20% faster, 96³ ~35% faster.
const PARALLEL_MIN_WORK: usize = 128 * 1024;

/// Splits the product between threads by disjoint blocks of C, each task
/// running the serial algorithm on its block with its own packing buffers.
unsafe fn run<K: Kernel>(p: &Problem, threads: usize) {
    // A narrow C (n < NR) wastes vector lanes (n = 10 uses 10 of 16), while
    // the M side of the kernel handles any row count without waste. Compute
    // Cᵀ = Bᵀ·Aᵀ instead when that keeps the big operand readable in place:
    // Aᵀ becomes the new B, which needs unit stride along its rows, i.e.
    // rsa == 1 (A given transposed, as in grad_W = Xᵀ·G).
    if p.n < K::NR && p.m >= K::NR && p.rsa == 1 && p.k >= 32 {
        let t = Problem {
            m: p.n,
            n: p.m,
            k: p.k,
            a: p.b,
            rsa: p.csb,
            csa: p.rsb,
            b: p.a,
            rsb: p.csa,
            csb: p.rsa,
            c: p.c,
            rsc: p.csc,
            csc: p.rsc,
            accumulate: p.accumulate,
        };
        // SAFETY: the same elements, addressed through swapped strides.
        unsafe { run_oriented::<K>(&t, threads) };
        return;
    }
    // SAFETY: forwarded.
    unsafe { run_oriented::<K>(p, threads) };
}

unsafe fn run_oriented<K: Kernel>(p: &Problem, threads: usize) {
    let work = p.m.saturating_mul(p.n).saturating_mul(p.k);
    let mut t = if work < PARALLEL_MIN_WORK {
        1
    } else {
        threads.max(1)
    };
    // Splitting N makes every task pack all of A (m·k extra), splitting M
    // makes every task pack all of B (k·n extra): split the dimension whose
    // duplicated operand is smaller, if it has enough register blocks.
    let n_blocks = p.n.div_ceil(K::NR);
    let m_blocks = p.m.div_ceil(K::MR);
    let split_n = (p.m <= p.n && n_blocks >= t) || m_blocks < t;
    t = t.min(if split_n { n_blocks } else { m_blocks });
    if t <= 1 {
        // SAFETY: forwarded.
        unsafe { serial::<K>(p) };
        return;
    }
    let (blocks, unit) = if split_n {
        (n_blocks, K::NR)
    } else {
        (m_blocks, K::MR)
    };
    // One task per thread: finer chunks would balance better when a core
    // is shared, but each extra N chunk re-packs all of A (12% extra work
    // on 64×784·784×256 with 4 chunks). A worker that wakes late is already
    // covered: the caller claims any task not yet taken.
    let task = |i: usize| {
        let lo = blocks * i / t * unit;
        let hi = (blocks * (i + 1) / t * unit).min(if split_n { p.n } else { p.m });
        if lo >= hi {
            return;
        }
        let mut s = *p;
        if split_n {
            s.n = hi - lo;
            s.b = p.b.wrapping_offset(lo as isize * p.csb);
            s.c = p.c.wrapping_offset(lo as isize * p.csc);
        } else {
            s.m = hi - lo;
            s.a = p.a.wrapping_offset(lo as isize * p.rsa);
            s.c = p.c.wrapping_offset(lo as isize * p.rsc);
        }
        // SAFETY: sub-block of the caller's valid problem; tasks write
        // disjoint C blocks.
        unsafe { serial::<K>(&s) };
    };
    pool::parallel_for(t, t, &task);
}

thread_local! {
    /// Packing buffer reused by every call on this thread (pool workers are
    /// persistent, so after warm-up no call allocates). Taken out while in
    /// use, so a re-entrant call simply allocates its own.
    static PACK_BUF: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` with a 64-byte aligned scratch buffer of at least `len` floats.
fn with_pack_buf<R>(len: usize, f: impl FnOnce(*mut f32) -> R) -> R {
    const ALIGN: usize = 16; // floats = 64 bytes
    let mut v = PACK_BUF.try_with(Cell::take).unwrap_or_default();
    if v.len() < len + ALIGN {
        v.resize(len + ALIGN, 0.0);
    }
    let ptr = v.as_mut_ptr();
    let r = f(ptr.wrapping_add(ptr.align_offset(ALIGN * 4).min(ALIGN)));
    // Ignored error: TLS already torn down (thread exit); just drop `v`.
    let _ = PACK_BUF.try_with(|c| c.set(v));
    r
}

/// Whether A should be packed. Unpacked, the kernel broadcasts A straight
/// from its strided rows; packing costs a pass over the block and pays only
/// when each A micro-panel is reused by many B panels and the block is
/// large enough for its layout (strided rows, power-of-two leading
/// dimensions) to cause cache conflicts. Measured: 48..128 × 64 × 64..256
/// products were 5-25% faster unpacked, 96×96×256 and larger 5-10% faster
/// packed; with m ≤ 12 (e.g. 10×33600·33600×784) packing cost ~40%.
fn pack_a_wanted<K: Kernel>(p: &Problem) -> bool {
    p.m > 2 * K::MR && p.n > K::NR && (p.n > 4 * K::NR || p.m > K::MC)
}

/// Whether B should be packed. B used in place needs contiguous rows
/// (`csb == 1`); an unpacked B micro-panel is re-read from its strided
/// source once per MR rows of A, so skipping the pack pays for small m,
/// where each B element is used only once or twice (6×16×512: 29 vs 18
/// flop/cycle; 10×784·784×33600: packing B, even row-wise into an
/// L2-sized block, was slower on 2 threads).
fn pack_b_wanted<K: Kernel>(p: &Problem) -> bool {
    p.csb != 1 || p.m > 2 * K::MR
}

/// Block size `<= max` (unless `unit` is larger) splitting `len` into
/// equal blocks, rounded up to a multiple of `unit`.
fn balanced(len: usize, max: usize, unit: usize) -> usize {
    let blocks = len.div_ceil(max).max(1);
    len.div_ceil(blocks).div_ceil(unit) * unit
}

unsafe fn serial<K: Kernel>(p: &Problem) {
    let pack_a = pack_a_wanted::<K>(p);
    let pack_b = pack_b_wanted::<K>(p);
    // Split each dimension into equal blocks (rounded to the register
    // tile) rather than full blocks plus a sliver: k = 784 with KC = 256
    // would otherwise end with a 16-deep pass that reloads and stores all
    // of C for almost no work.
    // With a single B panel (n <= NR) the panel is reused by every A tile
    // from L2 anyway, and deeper passes mean fewer, longer contiguous reads
    // of A rows: 33600×784·784×10 went from 5.5 to 10 flop/cycle with
    // k unblocked.
    let kc_target = if p.n <= K::NR { 4 * K::KC } else { K::KC };
    let kcb = balanced(p.k, kc_target, 8);
    let mcb = balanced(p.m, K::MC, K::MR);
    let ncb = balanced(p.n, K::NC, K::NR);
    let kc_max = p.k.min(kcb);
    let nc_max = p.n.min(ncb).div_ceil(K::NR) * K::NR;
    let mc_max = p.m.min(mcb).div_ceil(K::MR) * K::MR;
    let a_len = if pack_a { mc_max * kc_max } else { 0 };
    // Unpacked B still packs its ragged last panel.
    let b_len = if pack_b { nc_max } else { K::NR } * kc_max;
    let a_len_padded = a_len.div_ceil(16) * 16;
    let plan = Plan {
        pack_a,
        pack_b,
        kc: kcb,
        mc: mcb,
        nc: ncb,
    };
    with_pack_buf(a_len_padded + b_len, |buf| {
        let abuf = buf;
        let bbuf = buf.wrapping_add(a_len_padded);
        // SAFETY: buffer sized above; operands valid per caller.
        unsafe { serial_with_buf::<K>(p, &plan, abuf, bbuf) }
    })
}

/// Block sizes and packing decisions for one serial product.
#[derive(Clone, Copy)]
struct Plan {
    pack_a: bool,
    pack_b: bool,
    kc: usize,
    mc: usize,
    nc: usize,
}

unsafe fn serial_with_buf<K: Kernel>(p: &Problem, plan: &Plan, abuf: *mut f32, bbuf: *mut f32) {
    let (mr, nr) = (K::MR, K::NR);
    let Plan {
        pack_a,
        pack_b,
        kc: kcb,
        mc: mcb,
        nc: ncb,
    } = *plan;
    for jc in (0..p.n).step_by(ncb) {
        let nc = (p.n - jc).min(ncb);
        for pc in (0..p.k).step_by(kcb) {
            let kc = (p.k - pc).min(kcb);
            let accumulate = p.accumulate || pc > 0;
            let b_blk =
                p.b.wrapping_offset(pc as isize * p.rsb + jc as isize * p.csb);
            let full_panels = nc / nr;
            // SAFETY (all blocks): addresses inside the caller's problem or
            // inside the buffers sized in `serial`.
            if pack_b {
                unsafe { K::pack_b(kc, nc, b_blk, p.rsb, p.csb, bbuf) };
            } else if !nc.is_multiple_of(nr) {
                let tail = b_blk.wrapping_add(full_panels * nr);
                unsafe { K::pack_b(kc, nc % nr, tail, p.rsb, p.csb, bbuf) };
            }
            for ic in (0..p.m).step_by(mcb) {
                let mc = (p.m - ic).min(mcb);
                let a_blk =
                    p.a.wrapping_offset(ic as isize * p.rsa + pc as isize * p.csa);
                if pack_a {
                    unsafe { K::pack_a(mc, kc, a_blk, p.rsa, p.csa, abuf) };
                }
                let c_blk =
                    p.c.wrapping_offset(ic as isize * p.rsc + jc as isize * p.csc);
                for jr in (0..nc).step_by(nr) {
                    let cols = (nc - jr).min(nr);
                    let (b_pan, brs) = if pack_b {
                        (bbuf.wrapping_add(jr * kc) as *const f32, nr as isize)
                    } else if cols < nr {
                        (bbuf as *const f32, nr as isize)
                    } else {
                        (b_blk.wrapping_add(jr), p.rsb)
                    };
                    for ir in (0..mc).step_by(mr) {
                        let rows = (mc - ir).min(mr);
                        let (a_pan, ars, acs) = if pack_a {
                            (abuf.wrapping_add(ir * kc) as *const f32, 1, mr as isize)
                        } else {
                            (a_blk.wrapping_offset(ir as isize * p.rsa), p.rsa, p.csa)
                        };
                        let c_tile =
                            c_blk.wrapping_offset(ir as isize * p.rsc + jr as isize * p.csc);
                        unsafe {
                            K::tile(
                                kc, a_pan, ars, acs, b_pan, brs, c_tile, p.rsc, p.csc, rows, cols,
                                accumulate,
                            )
                        };
                    }
                }
            }
        }
    }
}

/// Packs `kc×nc` of B into panels of `nr` columns: panel q holds row p's
/// columns at `dst[q*kc*nr + p*nr ..][..nr]`, zero-padded to `nr`.
unsafe fn pack_b_block<K: Kernel + ?Sized>(
    kc: usize,
    nc: usize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    dst: *mut f32,
) {
    let nr = K::NR;
    for (q, j0) in (0..nc).step_by(nr).enumerate() {
        let cols = (nc - j0).min(nr);
        let src = b.wrapping_offset(j0 as isize * csb);
        let d = dst.wrapping_add(q * kc * nr);
        // SAFETY: reads inside the caller's B block, writes inside `dst`
        // which holds ceil(nc/nr)*nr*kc floats.
        unsafe {
            if csb == 1 && cols == nr {
                for p in 0..kc {
                    std::ptr::copy_nonoverlapping(src.offset(p as isize * rsb), d.add(p * nr), nr);
                }
            } else if rsb == 1 {
                // Column-contiguous B (a transposed operand): walk each
                // column contiguously; the scattered writes stay in L1.
                for j in 0..cols {
                    let s = src.offset(j as isize * csb);
                    for p in 0..kc {
                        *d.add(p * nr + j) = *s.add(p);
                    }
                }
                if cols < nr {
                    for p in 0..kc {
                        std::ptr::write_bytes(d.add(p * nr + cols), 0, nr - cols);
                    }
                }
            } else {
                for p in 0..kc {
                    let s = src.offset(p as isize * rsb);
                    for j in 0..nr {
                        *d.add(p * nr + j) = if j < cols {
                            *s.offset(j as isize * csb)
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

/// Packs `mc×kc` of A into panels of `mr` rows: panel q holds column p's
/// rows at `dst[q*kc*mr + p*mr ..][..rows]`. Rows past `mc` in the last
/// panel are left unwritten: kernels are told the real row count.
unsafe fn pack_a_block<K: Kernel + ?Sized>(
    mc: usize,
    kc: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    dst: *mut f32,
) {
    let mr = K::MR;
    for (q, i0) in (0..mc).step_by(mr).enumerate() {
        let rows = (mc - i0).min(mr);
        let src = a.wrapping_offset(i0 as isize * rsa);
        let d = dst.wrapping_add(q * kc * mr);
        // SAFETY: reads inside the caller's A block, writes inside `dst`
        // which holds ceil(mc/mr)*mr*kc floats.
        unsafe {
            if csa == 1 && rows == mr {
                // Row-major A: read MR rows in lockstep so each packed
                // column is written whole (MR is a constant here, so the
                // inner loop unrolls).
                for p in 0..kc {
                    for i in 0..mr {
                        *d.add(p * mr + i) = *src.offset(i as isize * rsa + p as isize);
                    }
                }
            } else if rsa == 1 && rows == mr {
                for p in 0..kc {
                    std::ptr::copy_nonoverlapping(src.offset(p as isize * csa), d.add(p * mr), mr);
                }
            } else if csa == 1 {
                for i in 0..rows {
                    let s = src.offset(i as isize * rsa);
                    for p in 0..kc {
                        *d.add(p * mr + i) = *s.add(p);
                    }
                }
            } else {
                for p in 0..kc {
                    let s = src.offset(p as isize * csa);
                    for i in 0..rows {
                        *d.add(p * mr + i) = *s.offset(i as isize * rsa);
                    }
                }
            }
        }
    }
}

/// Writes an MR×NR (row stride `ld`) temporary tile into C, for ragged
/// tiles and non-unit C column strides.
///
/// # Safety
/// `tmp` holds `rows` rows of `ld` floats; C addresses valid for
/// `rows × cols`.
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn scatter_tile(
    tmp: *const f32,
    ld: usize,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    for r in 0..rows {
        for j in 0..cols {
            // SAFETY: see function contract.
            unsafe {
                let v = *tmp.add(r * ld + j);
                let cij = c.offset(r as isize * rsc + j as isize * csc);
                *cij = if accumulate { *cij + v } else { v };
            }
        }
    }
}

/// Portable kernel for targets without AVX2/FMA: plain Rust the compiler
/// vectorizes with whatever SIMD the target baseline has (SSE2 on x86_64,
/// NEON on aarch64). 4×8 keeps 32 accumulators, which fits 8 SSE/NEON
/// registers.
mod portable {
    use super::{Kernel, scatter_tile};

    pub struct Portable4x8;

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
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Kernel, scatter_tile};
    use std::arch::x86_64::*;

    /// AVX2+FMA 6×16 kernel: 12 ymm accumulators + 2 for the B row + 1
    /// broadcast of A = 15 of 16 ymm registers. Per k step: 12 FMAs (6
    /// cycles on Zen 3's two FMA pipes) against 2 vector loads and 6
    /// broadcasts (8 loads, Zen 3 does 3/cycle), so the FMA pipes are the
    /// bottleneck as they should be. 12 independent accumulators cover the
    /// 4-cycle FMA latency × 2 pipes = 8 in flight with room to spare.
    pub struct Avx2Fma6x16;

    const MR: usize = 6;
    const NR: usize = 16;

    impl Kernel for Avx2Fma6x16 {
        const MR: usize = MR;
        const NR: usize = NR;
        // KC = 256: the B micro-panel (256×16 floats = 16 KiB) stays in
        // half of the 32 KiB L1d next to a 6 KiB A micro-panel, and a C
        // tile is loaded/stored once per 256 k-steps (<5% overhead). KC
        // 384/512 measured within noise at n ≥ 1024 and worse for mid sizes.
        // MC = 144: the packed A block (144×256×4 = 144 KiB) sits in the
        // 512 KiB L2 with room for the B panels streaming through; 72-240
        // all measured within ±3%. NC = 4096: the packed B block (4 MiB)
        // lives in the 32 MiB L3; it only limits very wide products.
        const KC: usize = 256;
        const MC: usize = 144;
        const NC: usize = 4096;

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
            // SAFETY: forwarded kernel contract; `sgemm` only selects this
            // kernel when AVX2 and FMA are detected.
            unsafe {
                match rows {
                    6 => tile_r::<6>(k, a, ars, acs, b, brs, c, rsc, csc, cols, accumulate),
                    5 => tile_r::<5>(k, a, ars, acs, b, brs, c, rsc, csc, cols, accumulate),
                    4 => tile_r::<4>(k, a, ars, acs, b, brs, c, rsc, csc, cols, accumulate),
                    3 => tile_r::<3>(k, a, ars, acs, b, brs, c, rsc, csc, cols, accumulate),
                    2 => tile_r::<2>(k, a, ars, acs, b, brs, c, rsc, csc, cols, accumulate),
                    1 => tile_r::<1>(k, a, ars, acs, b, brs, c, rsc, csc, cols, accumulate),
                    _ => {}
                }
            }
        }

        unsafe fn pack_b(
            kc: usize,
            nc: usize,
            b: *const f32,
            rsb: isize,
            csb: isize,
            dst: *mut f32,
        ) {
            // SAFETY: forwarded; AVX2 checked by `sgemm`.
            unsafe {
                if rsb == 1 && csb != 1 && nc >= NR && kc >= 8 {
                    pack_b_colmajor(kc, nc, b, csb, dst)
                } else {
                    super::pack_b_block::<Self>(kc, nc, b, rsb, csb, dst)
                }
            }
        }

        unsafe fn pack_a(
            mc: usize,
            kc: usize,
            a: *const f32,
            rsa: isize,
            csa: isize,
            dst: *mut f32,
        ) {
            // SAFETY: forwarded; AVX2 checked by `sgemm`.
            unsafe {
                if csa == 1 && rsa != 1 && mc >= MR && kc >= 8 {
                    pack_a_rowmajor(mc, kc, a, rsa, dst)
                } else {
                    super::pack_a_block::<Self>(mc, kc, a, rsa, csa, dst)
                }
            }
        }
    }

    /// In-register transpose of an 8×8 block: `out[j][i] = r[i][j]`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ]
    }

    /// Packs B stored column-contiguous (`rsb == 1`, a transposed operand)
    /// with 8×8 register transposes: ~4× faster than the scalar gather,
    /// which matters for G·Wᵀ where B is packed once per call and reused
    /// by only m/MR tiles.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn pack_b_colmajor(kc: usize, nc: usize, b: *const f32, csb: isize, dst: *mut f32) {
        let full = nc / NR;
        let kc8 = kc / 8 * 8;
        for q in 0..full {
            let src = b.wrapping_offset((q * NR) as isize * csb);
            let d = dst.wrapping_add(q * kc * NR);
            // SAFETY: reads B(p, j) for p < kc, j < nc; writes the panel.
            unsafe {
                for half in 0..2 {
                    let s = src.wrapping_offset((half * 8) as isize * csb);
                    for p0 in (0..kc8).step_by(8) {
                        let mut r = [_mm256_setzero_ps(); 8];
                        for (j, rj) in r.iter_mut().enumerate() {
                            *rj = _mm256_loadu_ps(s.offset(j as isize * csb).add(p0));
                        }
                        let t = transpose8(r);
                        for (i, ti) in t.iter().enumerate() {
                            _mm256_storeu_ps(d.add((p0 + i) * NR + half * 8), *ti);
                        }
                    }
                }
                for p in kc8..kc {
                    for j in 0..NR {
                        *d.add(p * NR + j) = *src.offset(j as isize * csb).add(p);
                    }
                }
            }
        }
        if !nc.is_multiple_of(NR) {
            // SAFETY: forwarded for the ragged last panel.
            unsafe {
                super::pack_b_block::<Avx2Fma6x16>(
                    kc,
                    nc % NR,
                    b.wrapping_offset((full * NR) as isize * csb),
                    1,
                    csb,
                    dst.wrapping_add(full * kc * NR),
                )
            };
        }
    }

    /// Packs row-major A (`csa == 1`): 6 rows (+2 zero rows) are
    /// transposed 8 columns at a time, and each packed column of 6 is
    /// written with one 8-wide store whose 2 extra lanes the next store
    /// overwrites.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn pack_a_rowmajor(mc: usize, kc: usize, a: *const f32, rsa: isize, dst: *mut f32) {
        let full = mc / MR;
        let kc8 = kc / 8 * 8;
        for q in 0..full {
            let src = a.wrapping_offset((q * MR) as isize * rsa);
            let d = dst.wrapping_add(q * kc * MR);
            // SAFETY: reads A(i, p) for i < mc, p < kc; writes inside the
            // panel (the last column of each group is stored as 4 + 2).
            unsafe {
                for p0 in (0..kc8).step_by(8) {
                    let mut r = [_mm256_setzero_ps(); 8];
                    for (i, ri) in r.iter_mut().enumerate().take(MR) {
                        *ri = _mm256_loadu_ps(src.offset(i as isize * rsa).add(p0));
                    }
                    let t = transpose8(r);
                    for (j, tj) in t.iter().enumerate().take(7) {
                        _mm256_storeu_ps(d.add((p0 + j) * MR), *tj);
                    }
                    let last = d.add((p0 + 7) * MR);
                    _mm_storeu_ps(last, _mm256_castps256_ps128(t[7]));
                    _mm_storel_pd(
                        last.add(4) as *mut f64,
                        _mm_castps_pd(_mm256_extractf128_ps::<1>(t[7])),
                    );
                }
                for p in kc8..kc {
                    for i in 0..MR {
                        *d.add(p * MR + i) = *src.offset(i as isize * rsa).add(p);
                    }
                }
            }
        }
        if !mc.is_multiple_of(MR) {
            // SAFETY: forwarded for the ragged last panel.
            unsafe {
                super::pack_a_block::<Avx2Fma6x16>(
                    mc % MR,
                    kc,
                    a.wrapping_offset((full * MR) as isize * rsa),
                    rsa,
                    1,
                    dst.wrapping_add(full * kc * MR),
                )
            };
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_r<const R: usize>(
        k: usize,
        a: *const f32,
        ars: isize,
        acs: isize,
        b: *const f32,
        brs: isize,
        c: *mut f32,
        rsc: isize,
        csc: isize,
        cols: usize,
        accumulate: bool,
    ) {
        // SAFETY: forwarded kernel contract.
        unsafe {
            // C is touched only after the whole k loop, far beyond what
            // out-of-order execution can look ahead; a C row that fell out
            // of cache would stall for a full miss on every tile. Prefetch
            // it now so the miss overlaps the FMAs.
            for r in 0..R {
                let cr = c.wrapping_offset(r as isize * rsc) as *const i8;
                _mm_prefetch::<_MM_HINT_T0>(cr);
                _mm_prefetch::<_MM_HINT_T0>(cr.wrapping_offset((cols as isize - 1) * csc * 4));
            }
            // B read in place (not packed) is a strided walk over rows that
            // may each sit in a different page; the hardware prefetchers
            // lose track and each tile became latency-bound (≈6 GB/s on
            // 10×784·784×33600). Prefetching the next NR panel's cache line
            // of every row while computing this one restores streaming.
            let packed_a = ars == 1 && acs == MR as isize;
            let acc = match (packed_a, brs == NR as isize) {
                (true, true) => body::<R, true, false>(k, a, ars, acs, b, brs),
                (false, true) => body::<R, false, false>(k, a, ars, acs, b, brs),
                (true, false) => body::<R, true, true>(k, a, ars, acs, b, brs),
                (false, false) => body::<R, false, true>(k, a, ars, acs, b, brs),
            };
            if cols == NR && csc == 1 {
                for (r, acc_r) in acc.iter().enumerate().take(R) {
                    let cr = c.offset(r as isize * rsc);
                    let (mut lo, mut hi) = (acc_r[0], acc_r[1]);
                    if accumulate {
                        lo = _mm256_add_ps(lo, _mm256_loadu_ps(cr));
                        hi = _mm256_add_ps(hi, _mm256_loadu_ps(cr.add(8)));
                    }
                    _mm256_storeu_ps(cr, lo);
                    _mm256_storeu_ps(cr.add(8), hi);
                }
            } else {
                let mut tmp = [0.0f32; MR * NR];
                for (r, acc_r) in acc.iter().enumerate().take(R) {
                    _mm256_storeu_ps(tmp.as_mut_ptr().add(r * NR), acc_r[0]);
                    _mm256_storeu_ps(tmp.as_mut_ptr().add(r * NR + 8), acc_r[1]);
                }
                scatter_tile(tmp.as_ptr(), NR, c, rsc, csc, R, cols, accumulate);
            }
        }
    }

    /// The k loop. `PACKED` fixes A's strides to the packed layout (1, MR)
    /// so A loads use immediate offsets instead of runtime-stride address
    /// arithmetic.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn body<const R: usize, const PACKED: bool, const PREFETCH_B: bool>(
        k: usize,
        a: *const f32,
        ars: isize,
        acs: isize,
        b: *const f32,
        brs: isize,
    ) -> [[__m256; 2]; MR] {
        let (ars, acs) = if PACKED { (1, MR as isize) } else { (ars, acs) };
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        let mut ap = a;
        let mut bp = b;
        // SAFETY: kernel contract: A rows < R and B rows < k readable.
        unsafe {
            for _ in 0..k {
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.add(8));
                if PREFETCH_B {
                    _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(NR) as *const i8);
                }
                for (r, acc_r) in acc.iter_mut().enumerate().take(R) {
                    let av = _mm256_broadcast_ss(&*ap.offset(r as isize * ars));
                    acc_r[0] = _mm256_fmadd_ps(av, b0, acc_r[0]);
                    acc_r[1] = _mm256_fmadd_ps(av, b1, acc_r[1]);
                }
                ap = ap.wrapping_offset(acs);
                bp = bp.wrapping_offset(brs);
            }
        }
        acc
    }
}
