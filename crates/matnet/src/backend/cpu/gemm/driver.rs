//! The blocked loop nest: thread split, cache blocking, packing decisions.

use std::cell::Cell;

use super::super::threads as pool;
use super::{Kernel, Prepacked, Problem};
use crate::alloc::ScratchBuf;
/// Below this many multiply-adds (m·n·k) a product runs on one thread.
/// Measured on the 2-core Zen 3 VM with a warm pool (hand-off ≈ 0.3 µs,
/// ≈ 3-4 µs when the worker has parked): 32³ is 30% slower on 2 threads,
/// 48³ (110k) breaks even, 64³ (262k) is ~20% faster, 96³ ~35% faster.
const PARALLEL_MIN_WORK: usize = 128 * 1024;

/// Splits the product between threads by disjoint blocks of C, each task
/// running the serial algorithm on its block with its own packing buffers.
pub(super) unsafe fn run<K: Kernel>(p: &Problem, threads: usize) {
    // A narrow C (n < NR) wastes vector lanes (n = 10 uses 10 of 16), while
    // the M side of the kernel handles any row count without waste. Compute
    // Cᵀ = Bᵀ·Aᵀ instead when that keeps the big operand readable in place:
    // Aᵀ becomes the new B, which needs unit stride along its rows, i.e.
    // rsa == 1 (A given transposed, as in grad_W = Xᵀ·G).
    // A transposed B whose rows are the longer side (grad_X = G·Wᵀ) is
    // swapped the same way when the kernel stores transposed tiles well:
    // Bᵀ, the weight in its own rows, becomes an A read in place.
    let keep_a = K::STORES_TRANSPOSED_C && p.swaps_transposed_b(K::NR, K::KC);
    if p.runs_transposed(K::NR) || keep_a {
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
            packed: None,
        };
        // SAFETY: the same elements, addressed through swapped strides.
        unsafe { run_oriented::<K>(&t, threads, keep_a) };
        return;
    }
    // SAFETY: forwarded.
    unsafe { run_oriented::<K>(p, threads, false) };
}

/// Runs `p` as given, on up to `threads` threads; `keep_a` reads A in
/// place even where [`pack_a_wanted`] would pack it.
unsafe fn run_oriented<K: Kernel>(p: &Problem, threads: usize, keep_a: bool) {
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
    // The depth of each pass over k sets where partial sums are rounded
    // into C, so it is chosen once for the whole product: a thread's block
    // of C gets the same bits as with one thread.
    let kc = k_block::<K>(p);
    if t <= 1 {
        // SAFETY: forwarded.
        unsafe { serial::<K>(p, kc, keep_a) };
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
            s.packed = p.packed.map(|q| Prepacked {
                col0: q.col0 + lo,
                ..q
            });
        } else {
            s.m = hi - lo;
            s.a = p.a.wrapping_offset(lo as isize * p.rsa);
            s.c = p.c.wrapping_offset(lo as isize * p.rsc);
        }
        // SAFETY: sub-block of the caller's valid problem; tasks write
        // disjoint C blocks.
        unsafe { serial::<K>(&s, kc, keep_a) };
    };
    // Pinned: each block of C stays on one core from call to call.
    pool::parallel_for_pinned(t, t, &task);
}

thread_local! {
    /// Packing buffer reused by every call on this thread (pool workers are
    /// persistent, so after warm-up no call allocates). Taken out while in
    /// use, so a re-entrant call simply allocates its own. On huge pages
    /// (see [`ScratchBuf`]): 1024² and 2048² products ran 2-4% faster.
    static PACK_BUF: Cell<Option<ScratchBuf>> = const { Cell::new(None) };
}

/// Runs `f` with a 64-byte aligned scratch buffer of at least `len` floats.
fn with_pack_buf<R>(len: usize, f: impl FnOnce(*mut f32) -> R) -> R {
    let mut buf = match PACK_BUF.try_with(Cell::take).ok().flatten() {
        Some(b) if b.len() >= len => b,
        small => {
            // Freed before the larger one is mapped, not after.
            drop(small);
            ScratchBuf::new(len)
        }
    };
    let r = f(buf.as_mut_ptr());
    // Ignored error: TLS already torn down (thread exit); just drop `buf`.
    let _ = PACK_BUF.try_with(|c| c.set(Some(buf)));
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

/// The depth of one pass over k for the whole product `p`. Equal blocks
/// (rounded to 8) rather than full blocks plus a sliver: k = 784 with
/// KC = 256 would otherwise end with a 16-deep pass that reloads and stores
/// all of C for almost no work. With a single B panel (n <= NR) the panel
/// is reused by every A tile from L2 anyway, and deeper passes mean fewer,
/// longer contiguous reads of A rows: 33600×784·784×10 went from 5.5 to
/// 10 flop/cycle with k unblocked.
fn k_block<K: Kernel>(p: &Problem) -> usize {
    let kc_target = if p.n <= K::NR { 4 * K::KC } else { K::KC };
    balanced(p.k, kc_target, 8)
}

/// Packs all of `p`'s B as [`serial`] would, block by block, into `dst`:
/// k blocks of the depth [`k_block`] picks, each with the panels of every
/// column (the layout [`Prepacked`] describes).
///
/// # Safety
/// B readable as `p` describes; `dst` holds `ceil(n/NR)·NR·k` floats.
/// Returns the depth of the k blocks.
pub(super) unsafe fn pack_all_b<K: Kernel>(p: &Problem, dst: *mut f32) -> usize {
    let kcb = k_block::<K>(p);
    let n_pad = p.n.div_ceil(K::NR) * K::NR;
    for pc in (0..p.k).step_by(kcb) {
        let kc = (p.k - pc).min(kcb);
        let b = p.b.wrapping_offset(pc as isize * p.rsb);
        // SAFETY: inside B and inside `dst` (pc·n_pad + n_pad·kc ≤ n_pad·k).
        unsafe { K::pack_b(kc, p.n, b, p.rsb, p.csb, dst.add(pc * n_pad)) };
    }
    kcb
}

/// One thread's product `p` (all of it, or its block of C), in passes of
/// `kcb` over k; A read in place if `keep_a`.
unsafe fn serial<K: Kernel>(p: &Problem, kcb: usize, keep_a: bool) {
    let pack_a = !keep_a && pack_a_wanted::<K>(p);
    let pack_b = p.packed.is_some() || pack_b_wanted::<K>(p);
    // m and n split into equal blocks too, rounded to the register tile.
    let mcb = balanced(p.m, K::MC, K::MR);
    // More than two blocks of A and more than 8 B panels for each A panel
    // to meet: walk the tiles A panel by A panel, with a B block that fits
    // L2 (see `Kernel::NC_A_PANEL_OUTER`). Measured on the AVX-512 kernel:
    // 1024² and 2048² 3-6% faster; 512², a 784×256·256×128 product and a
    // ViT training step (1024 token rows, n ≤ 256) 1-2% slower.
    let a_outer = K::NC_A_PANEL_OUTER > 0 && p.m > 2 * K::MC && p.n > 8 * K::NR;
    let nc_max_cols = if a_outer { K::NC_A_PANEL_OUTER } else { K::NC };
    let ncb = balanced(p.n, nc_max_cols, K::NR);
    let kc_max = p.k.min(kcb);
    let nc_max = p.n.min(ncb).div_ceil(K::NR) * K::NR;
    let mc_max = p.m.min(mcb).div_ceil(K::MR) * K::MR;
    let a_len = if pack_a { mc_max * kc_max } else { 0 };
    // Unpacked B still packs its ragged last panel; packed in advance, B
    // needs no buffer.
    let b_len = if p.packed.is_some() {
        0
    } else if pack_b {
        nc_max * kc_max
    } else {
        K::NR * kc_max
    };
    let a_len_padded = a_len.div_ceil(16) * 16;
    let plan = Plan {
        pack_a,
        pack_b,
        a_outer,
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
    /// Tiles in A-panel-major order (see [`serial_with_buf`]).
    a_outer: bool,
    kc: usize,
    mc: usize,
    nc: usize,
}

unsafe fn serial_with_buf<K: Kernel>(p: &Problem, plan: &Plan, abuf: *mut f32, bbuf: *mut f32) {
    let (mr, nr) = (K::MR, K::NR);
    let Plan {
        pack_a,
        pack_b,
        a_outer,
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
            // The packed panels of this block: packed in advance, or now.
            let mut panels = bbuf as *const f32;
            // SAFETY (all blocks): addresses inside the caller's problem or
            // inside the buffers sized in `serial`.
            if let Some(q) = p.packed {
                panels = q.base.wrapping_add(pc * q.n_pad + (q.col0 + jc) * kc);
            } else if pack_b {
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
                // One register tile: C[ir.., jr..] of this block.
                let tile = |jr: usize, ir: usize| {
                    let cols = (nc - jr).min(nr);
                    let (b_pan, brs) = if pack_b {
                        (panels.wrapping_add(jr * kc), nr as isize)
                    } else if cols < nr {
                        (bbuf as *const f32, nr as isize)
                    } else {
                        (b_blk.wrapping_add(jr), p.rsb)
                    };
                    let rows = (mc - ir).min(mr);
                    let (a_pan, ars, acs) = if pack_a {
                        (abuf.wrapping_add(ir * kc) as *const f32, 1, mr as isize)
                    } else {
                        (a_blk.wrapping_offset(ir as isize * p.rsa), p.rsa, p.csa)
                    };
                    let c_tile = c_blk.wrapping_offset(ir as isize * p.rsc + jr as isize * p.csc);
                    unsafe {
                        K::tile(
                            kc, a_pan, ars, acs, b_pan, brs, c_tile, p.rsc, p.csc, rows, cols,
                            accumulate,
                        )
                    };
                };
                // B-panel-major (each B micro-panel stays in L1 while the
                // A block streams from L2), or with `a_outer` A-panel-major
                // (each A micro-panel stays in L1 while the B block streams
                // from L2). The same tiles either way, so the same bits.
                if a_outer {
                    for ir in (0..mc).step_by(mr) {
                        for jr in (0..nc).step_by(nr) {
                            tile(jr, ir);
                        }
                    }
                } else {
                    for jr in (0..nc).step_by(nr) {
                        for ir in (0..mc).step_by(mr) {
                            tile(jr, ir);
                        }
                    }
                }
            }
        }
    }
}
