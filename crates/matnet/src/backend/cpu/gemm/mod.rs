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
//! The microkernel is chosen once per process (see [`GemmKernel`]): the
//! AVX-512F 12×32 kernel where the CPU has it, else AVX2+FMA 6×16, else a
//! portable scalar kernel the compiler auto-vectorizes. `MATNET_KERNEL`
//! forces one of them. Another kernel only needs a `Kernel` impl and one
//! more arm in [`run_kernel`].

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod dispatch;
mod driver;
mod packing;
mod peak;
mod portable;

use dispatch::kernel_forced;
pub use dispatch::{GemmKernel, gemm_kernel, gemm_kernel_name, try_gemm_kernel};
use driver::run;
use packing::{pack_a_block, pack_b_block};
pub use peak::{fma_peak_gflops, tile_ceiling_gflops};

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
    /// Whether [`Kernel::tile`] stores a C with contiguous columns
    /// (`rsc == 1`) about as fast as one with contiguous rows, so that a
    /// product may run as `Cᵀ = Bᵀ·Aᵀ` to spare transposing B
    /// ([`Problem::swaps_transposed_b`]).
    const STORES_TRANSPOSED_C: bool = false;
    /// For products with more than two `MC` blocks of A and more than
    /// `8·NR` columns: a B block of this many columns (sized for L2), with
    /// the tiles walked A panel by A panel; 0 keeps B-panel-major order and
    /// `NC` for every product.
    const NC_A_PANEL_OUTER: usize = 0;

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
    /// B already packed (see [`PackedB`]): read from there, not from `b`.
    packed: Option<Prepacked>,
}

impl Problem {
    /// Whether a kernel with `nr`-wide tiles computes this product as
    /// `Cᵀ = Bᵀ·Aᵀ` (see `driver::run`): C narrower than a tile, A given
    /// transposed (its columns contiguous) and deep enough to pay.
    fn runs_transposed(&self, nr: usize) -> bool {
        self.n < nr && self.m >= nr && self.rsa == 1 && self.k >= 32 && self.packed.is_none()
    }

    /// Whether a kernel with `nr`-wide tiles and `kc`-deep passes that
    /// stores transposed C tiles well ([`Kernel::STORES_TRANSPOSED_C`])
    /// computes this product as `Cᵀ = Bᵀ·Aᵀ` with `Bᵀ` read in place as
    /// the new A: B given transposed (a weight read as `Wᵀ`, as in
    /// `grad_X = G·Wᵀ`), A and C in rows, A a batch of at most 256 rows.
    /// The transposing pack then moves from the k×n weight to the m×k
    /// batch, saving k·(n − m) element moves, and each pass over k stores
    /// its m×n tile sums transposed; on the AVX-512 Xeon both cost about
    /// the same per element (profile of `[64×256]·[256×784]`: packing `Wᵀ`
    /// 19% of the product before, the transposed stores 5% after), so the
    /// swap is taken when it saves more moves than it adds stores
    /// (`[256×128]·[128×784]` does not: 67k against 200k).
    fn swaps_transposed_b(&self, nr: usize, kc: usize) -> bool {
        let (m, n, k) = (self.m, self.n, self.k);
        self.rsb == 1
            && self.csb != 1
            && self.csa == 1
            && self.csc == 1
            && (nr + 1..=256).contains(&m)
            && m < n
            && k >= 32
            && k * (n - m) > m * n * k.div_ceil(kc)
            && self.packed.is_none()
    }
}

/// Where a product finds its B panels when B was packed in advance: the
/// panels for k block `pc` (depth `kc`) and column `j` (a multiple of NR)
/// start at `base + pc·n_pad + (col0 + j)·kc`.
#[derive(Clone, Copy)]
struct Prepacked {
    base: *const f32,
    n_pad: usize,
    /// The sub-problem's first column within the packed B.
    col0: usize,
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
        packed: None,
    };
    // SAFETY: forwarded from the caller.
    unsafe { multiply(&p, threads, None) };
}

/// [`sgemm`] on the given kernel, whatever `MATNET_KERNEL` says, and
/// without the plain-loop shortcut for tiny products, so tests reach every
/// kernel on every shape.
///
/// # Panics
/// If `kernel` is not available on this CPU (see [`GemmKernel::available`]).
///
/// # Safety
/// Same as [`sgemm`].
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm_with_kernel(
    kernel: GemmKernel,
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
    assert!(
        kernel.available(),
        "sgemm: the {} kernel needs CPU features this machine lacks",
        kernel.name()
    );
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
        packed: None,
    };
    // SAFETY: forwarded from the caller; availability asserted above.
    unsafe { multiply(&p, threads, Some(kernel)) };
}

/// The product `p` on `forced`, or on the process-wide kernel (with the
/// tiny-product shortcut) when `None`.
///
/// # Safety
/// As [`sgemm`], for the operands `p` describes; a forced kernel must be
/// available.
unsafe fn multiply(p: &Problem, threads: usize, forced: Option<GemmKernel>) {
    if p.m == 0 || p.n == 0 {
        return;
    }
    if p.k == 0 {
        // SAFETY: forwarded from the caller.
        unsafe { zero_c(p) };
        return;
    }
    if let Some(kernel) = forced {
        // SAFETY: forwarded from the caller.
        unsafe { run_kernel(kernel, p, threads) };
        return;
    }
    // Tiny products: the blocked path has ~130 ns of fixed cost (dispatch,
    // buffer, ragged-tile handling); a plain loop wins below ~8³ (2³: 18 vs
    // 137 ns, 4³: 55 vs 154 ns, 8³: 392 vs 274 ns).
    if p.m.saturating_mul(p.n).saturating_mul(p.k) < TINY_WORK {
        // SAFETY: forwarded from the caller.
        unsafe {
            naive_sgemm(
                p.m,
                p.n,
                p.k,
                p.a,
                p.rsa,
                p.csa,
                p.b,
                p.rsb,
                p.csb,
                p.c,
                p.rsc,
                p.csc,
                p.accumulate,
            )
        };
        return;
    }
    // SAFETY: forwarded; `kernel_for` only returns available kernels.
    unsafe { run_kernel(kernel_for(p), p, threads) };
}

/// The default kernel for one product's shape. The 12×32 AVX-512 tile pads
/// skinny products more than the 6×16 AVX2 one, and its B packing has no
/// SIMD path for panels narrower than 32: with it as the only kernel, LeNet
/// training (conv products with 6 or 16 output channels, 25-column weight
/// gradients) ran at 0.82× the AVX2 build, with B packing at 23% of the
/// profile against 5%. Such products stay on AVX2 unless `MATNET_KERNEL`
/// forces a kernel.
///
/// The shape that counts is the one the AVX-512 kernel would multiply: a
/// product it runs transposed (`grad_W_ih` of an LSTM reading 28-pixel
/// rows, `[512×1792]·[1792×28]`) is a wide one, 28 rows by 512 columns.
fn kernel_for(p: &Problem) -> GemmKernel {
    let best = gemm_kernel();
    let skinny = |m: usize, n: usize| m < 24 || n < 32;
    let wide_as_run =
        || p.runs_transposed(GemmKernel::Avx512.register_columns()) && !skinny(p.n, p.m);
    if best == GemmKernel::Avx512
        && skinny(p.m, p.n)
        && !wide_as_run()
        && !kernel_forced()
        && GemmKernel::Avx2.available()
    {
        GemmKernel::Avx2
    } else {
        best
    }
}

/// What [`on_kernel`] does with a product.
#[derive(Clone, Copy)]
enum Action {
    /// Multiply on up to this many threads.
    Multiply(usize),
    /// Pack all of B into this buffer (see [`PackedB`]), and store the
    /// depth of its k blocks here.
    PackB(*mut f32, *mut usize),
}

/// Runs `p` on `kernel` (or packs its B).
///
/// # Safety
/// As [`sgemm`]; `kernel` must be available on this CPU; a `PackB` buffer
/// must hold `ceil(n/NR)·NR·k` floats for the kernel's NR.
unsafe fn on_kernel(kernel: GemmKernel, p: &Problem, action: Action) {
    unsafe fn act<K: Kernel>(p: &Problem, action: Action) {
        // SAFETY: forwarded.
        unsafe {
            match action {
                Action::Multiply(threads) => run::<K>(p, threads),
                Action::PackB(dst, kc) => *kc = driver::pack_all_b::<K>(p, dst),
            }
        }
    }
    // SAFETY (all arms): forwarded; the caller checked availability.
    match kernel {
        GemmKernel::Portable => unsafe { act::<portable::Portable4x8>(p, action) },
        #[cfg(target_arch = "x86_64")]
        GemmKernel::Avx2 => unsafe { act::<avx2::Avx2Fma6x16>(p, action) },
        #[cfg(target_arch = "x86_64")]
        GemmKernel::Avx512 => unsafe { act::<avx512::Avx512x12x32>(p, action) },
        #[cfg(not(target_arch = "x86_64"))]
        GemmKernel::Avx2 | GemmKernel::Avx512 => {
            unreachable!("x86 kernels are never available off x86_64")
        }
    }
}

impl GemmKernel {
    /// Columns of C per microkernel tile (the width of a packed B panel).
    fn register_columns(self) -> usize {
        match self {
            GemmKernel::Portable => portable::Portable4x8::NR,
            #[cfg(target_arch = "x86_64")]
            GemmKernel::Avx2 => avx2::Avx2Fma6x16::NR,
            #[cfg(target_arch = "x86_64")]
            GemmKernel::Avx512 => avx512::Avx512x12x32::NR,
            #[cfg(not(target_arch = "x86_64"))]
            GemmKernel::Avx2 | GemmKernel::Avx512 => 1,
        }
    }
}

/// Runs `p` on `kernel`.
///
/// # Safety
/// As [`sgemm`]; `kernel` must be available on this CPU.
unsafe fn run_kernel(kernel: GemmKernel, p: &Problem, threads: usize) {
    // SAFETY: forwarded.
    unsafe { on_kernel(kernel, p, Action::Multiply(threads)) }
}

/// A right-hand operand B packed once into a kernel's panels, for many
/// products `A_i·B` that share it, as an RNN's recurrent weight is shared
/// by its time steps: [`sgemm_packed_b`] then skips the packing pass that
/// [`sgemm`] makes on every call. Packing only copies, so the products
/// have the same bits as [`sgemm`]'s on the unpacked B.
pub struct PackedB {
    kernel: GemmKernel,
    k: usize,
    n: usize,
    n_pad: usize,
    /// Depth of the k blocks (the last may be shallower).
    kc: usize,
    data: Vec<f32>,
    /// Where the 64-byte aligned panels start in `data`.
    start: usize,
}

impl PackedB {
    /// Packs `B [k×n]`, element (p, j) at `b.offset(p*rsb + j*csb)`, for
    /// products with about `m` rows (`m` picks the kernel as [`sgemm`]
    /// would for such a product).
    ///
    /// # Safety
    /// Every element address of B described above must be valid for reads.
    pub unsafe fn new(
        m: usize,
        k: usize,
        n: usize,
        b: *const f32,
        rsb: isize,
        csb: isize,
    ) -> PackedB {
        let p = b_problem(m.max(1), k, n, b, rsb, csb);
        // SAFETY: forwarded; `kernel_for` picks available kernels.
        unsafe { PackedB::pack(kernel_for(&p), &p) }
    }

    /// [`PackedB::new`] for `kernel`'s panels, whatever `MATNET_KERNEL`
    /// says, so tests reach every kernel.
    ///
    /// # Panics
    /// If `kernel` is not available on this CPU.
    ///
    /// # Safety
    /// As [`PackedB::new`].
    #[doc(hidden)]
    pub unsafe fn with_kernel(
        kernel: GemmKernel,
        k: usize,
        n: usize,
        b: *const f32,
        rsb: isize,
        csb: isize,
    ) -> PackedB {
        assert!(
            kernel.available(),
            "PackedB: the {} kernel needs CPU features this machine lacks",
            kernel.name()
        );
        // SAFETY: forwarded; availability asserted above.
        unsafe { PackedB::pack(kernel, &b_problem(1, k, n, b, rsb, csb)) }
    }

    /// Packs `p`'s B for `kernel`.
    ///
    /// # Safety
    /// B readable as `p` describes; `kernel` available.
    unsafe fn pack(kernel: GemmKernel, p: &Problem) -> PackedB {
        let (k, n) = (p.k, p.n);
        let nr = kernel.register_columns();
        let n_pad = n.div_ceil(nr) * nr;
        const ALIGN: usize = 16; // floats = 64 bytes
        let mut data = vec![0.0f32; n_pad * k + ALIGN];
        let start = data.as_ptr().align_offset(ALIGN * 4).min(ALIGN);
        let mut kc = k;
        if n > 0 && k > 0 {
            let dst = data[start..].as_mut_ptr();
            // SAFETY: B readable per the caller; `dst` holds the n_pad·k
            // floats `pack_all_b` writes.
            unsafe { on_kernel(kernel, p, Action::PackB(dst, &mut kc)) };
        }
        PackedB {
            kernel,
            k,
            n,
            n_pad,
            kc,
            data,
            start,
        }
    }

    /// `(k, n)`: the shape of B.
    pub fn dims(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// Element (p, j) of B, read from its panel.
    fn at(&self, p: usize, j: usize) -> f32 {
        let nr = self.kernel.register_columns();
        let pc = p / self.kc * self.kc;
        let kc = self.kc.min(self.k - pc);
        self.data[self.start + pc * self.n_pad + j / nr * nr * kc + (p - pc) * nr + j % nr]
    }
}

/// The problem of packing B alone (no A or C) for products of `m` rows.
fn b_problem(m: usize, k: usize, n: usize, b: *const f32, rsb: isize, csb: isize) -> Problem {
    Problem {
        m,
        n,
        k,
        a: std::ptr::null(),
        rsa: 0,
        csa: 0,
        b,
        rsb,
        csb,
        c: std::ptr::null_mut(),
        rsc: 0,
        csc: 0,
        accumulate: false,
        packed: None,
    }
}

/// `C[m×n] = A[m×k] · B[k×n]` (`+ C` if `accumulate`) as [`sgemm`], with B
/// packed in advance by [`PackedB::new`]. A and C are given by strides as
/// in [`sgemm`].
///
/// # Safety
/// As [`sgemm`] for A (`m×k`) and C (`m×n`), with `(k, n) = b.dims()`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm_packed_b(
    m: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: &PackedB,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    accumulate: bool,
    threads: usize,
) {
    let p = Problem {
        a,
        rsa,
        csa,
        c,
        rsc,
        csc,
        accumulate,
        packed: Some(Prepacked {
            base: b.data[b.start..].as_ptr(),
            n_pad: b.n_pad,
            col0: 0,
        }),
        ..b_problem(m, b.k, b.n, std::ptr::null(), 0, 0)
    };
    if p.m == 0 || p.n == 0 {
        return;
    }
    if p.k == 0 {
        // SAFETY: forwarded from the caller.
        unsafe { zero_c(&p) };
        return;
    }
    if m.saturating_mul(p.n).saturating_mul(p.k) < TINY_WORK {
        // `sgemm`'s plain loop, in the same order for the same bits.
        // SAFETY: A and C valid per the caller.
        unsafe { naive_with(&p, |q, j| b.at(q, j)) };
        return;
    }
    // SAFETY: forwarded; the panels were packed for `b.kernel`, which was
    // available when they were.
    unsafe { run_kernel(b.kernel, &p, threads) };
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
    let p = Problem {
        a,
        rsa,
        csa,
        c,
        rsc,
        csc,
        accumulate,
        ..b_problem(m, k, n, b, rsb, csb)
    };
    // SAFETY: B elements valid per the caller.
    let b_at = |q: usize, j: usize| unsafe { *b.offset(q as isize * rsb + j as isize * csb) };
    // SAFETY: A and C valid per the caller.
    unsafe { naive_with(&p, b_at) };
}

/// The plain loop over `p`'s A and C, with B's element (q, j) from `b_at`
/// (a strided operand or packed panels): one f32 sum per element of C, over
/// k in order.
///
/// # Safety
/// A and C valid as `p` describes.
unsafe fn naive_with(p: &Problem, b_at: impl Fn(usize, usize) -> f32) {
    for i in 0..p.m as isize {
        for j in 0..p.n {
            let mut s = 0.0f32;
            for q in 0..p.k {
                // SAFETY: A element (i, q), valid per the caller.
                s += unsafe { *p.a.offset(i * p.rsa + q as isize * p.csa) } * b_at(q, j);
            }
            // SAFETY: C element (i, j), valid per the caller.
            unsafe {
                let cij = p.c.offset(i * p.rsc + j as isize * p.csc);
                *cij = if p.accumulate { *cij + s } else { s };
            }
        }
    }
}

/// Below this many multiply-adds `sgemm` uses the plain triple loop.
const TINY_WORK: usize = 300;

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
