//! Where tensor data lives and the primitives that work on it.
//!
//! A backend is a buffer type implementing [`BackendStorage`]: the list of
//! primitives below is everything `ops/`, `optim/` and `nn/` ever ask of a
//! backend. Every tensor op is one of them or a composition of them, and
//! every gradient rule is written with tensor ops, so a backend that
//! implements this list runs and trains every model.
//!
//! `Storage` is an enum rather than a generic parameter so that layers,
//! optimizers and the CLI never name a backend; the backend list in
//! `dispatch!` (below) is the one place that maps a [`Device`] to its
//! backend type, and every `Storage` method expands over it.
//!
//! Adding a backend `foo`: a folder `backend/foo/` with a type implementing
//! [`BackendStorage`] (the compiler lists any primitive it lacks: none has a
//! default), `pub mod foo;` here, a `Device::Foo` variant (`device.rs`: the
//! enum and its name in `Display`), a `Storage::Foo` variant, and
//! one entry `(Foo, foo::FooStorage)` in the list inside `dispatch!`.

pub mod cpu;
mod kinds;
pub mod reference;
mod special;

pub use kinds::{BinaryKind, CmpKind, OptimRule, ReduceKind, UnaryKind};

use crate::device::Device;
use crate::layout::Layout;
use crate::params::{ConvGeom, ConvShape, LstmDims};

/// A strided view of a backend buffer: the buffer and how to read it
/// (shape, strides, offset). Primitives take their inputs as views, so
/// transposes, narrows and broadcasts reach them without a copy.
#[derive(Debug)]
pub struct View<'a, S> {
    /// The buffer.
    pub data: &'a S,
    /// How the view reads it.
    pub layout: &'a Layout,
}

impl<S> Clone for View<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for View<'_, S> {}

/// The primitives a backend implements. This doc comment is THE list; a new
/// backend implements exactly these (27) and nothing else. Outputs are new
/// contiguous row-major buffers unless a primitive says otherwise; inputs are
/// [`View`]s of any layout.
///
/// | family | primitives |
/// |---|---|
/// | memory (5) | `from_host`, `full`, `to_host`, `copy_strided`, `copy_into` |
/// | elementwise (3) | `unary` ([`UnaryKind`]), `binary` ([`BinaryKind`]), `where_cond` |
/// | reductions (2) | `reduce` ([`ReduceKind`]: sum, max, argmax), `softmax` (and log-softmax) |
/// | linear algebra (1) | `matmul` (batched, strided, broadcast batch) |
/// | indexing (4) | `gather`, `scatter_add`, `index_select`, `index_add` |
/// | convolution (7) | `conv2d`, `conv_transpose2d`, `conv2d_weight_grad`, `im2col`, `col2im`, `max_pool2d`, `max_unpool2d` |
/// | recurrent (4) | `lstm_cell`, `lstm_cell_backward`, `lstm_layer`, `lstm_layer_backward` |
/// | optimizers (1) | `optim_step` ([`OptimRule`]: SGD, Adam, AdamW) |
///
/// Besides these, `len` and `host_slice` are bookkeeping (no computation;
/// `is_empty` is derived from `len`).
///
/// Index tensors (gather, scatter, select, unpool) hold f32 whole numbers
/// that the caller has already checked to be in range.
pub trait BackendStorage: Sized + std::fmt::Debug + Send + Sync {
    // ----- bookkeeping ------------------------------------------------------

    /// Number of f32 values held.
    fn len(&self) -> usize;

    /// True when the buffer holds no values.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer as a host slice when it lives in host memory (`None` for
    /// device memory): lets `with_data` read without a copy.
    fn host_slice(&self) -> Option<&[f32]>;

    // ----- memory -----------------------------------------------------------

    /// A buffer holding `data` (an upload from the host).
    fn from_host(data: Vec<f32>) -> Self;

    /// `n` values all equal to `v`.
    fn full(n: usize, v: f32) -> Self;

    /// The elements of a view, row-major, on the host (a read-back).
    fn to_host(x: View<'_, Self>) -> Vec<f32>;

    /// The elements of a view as a new contiguous buffer.
    fn copy_strided(x: View<'_, Self>) -> Self;

    /// Writes `src` into the elements of `dst` that `dst_layout` views (same
    /// shape as `src`); other elements are left alone. `cat` and `assign_`.
    fn copy_into(dst: &mut Self, dst_layout: &Layout, src: View<'_, Self>);

    // ----- elementwise ------------------------------------------------------

    /// `f(x)` for every element.
    fn unary(x: View<'_, Self>, op: UnaryKind) -> Self;

    /// `f(a, b)` for two views of the same shape (broadcasting is already in
    /// their strides).
    fn binary(a: View<'_, Self>, b: View<'_, Self>, op: BinaryKind) -> Self;

    /// `cond != 0 ? a : b` over three views of the same shape.
    fn where_cond(cond: View<'_, Self>, a: View<'_, Self>, b: View<'_, Self>) -> Self;

    // ----- reductions -------------------------------------------------------

    /// Reduces over the sorted, distinct axes `dims`; the result has the
    /// view's shape without those axes (no axes: a copy).
    fn reduce(x: View<'_, Self>, dims: &[usize], op: ReduceKind) -> Self;

    /// Softmax (or with `log`, log-softmax) along axis `dim`, max-shifted
    /// so large inputs do not overflow; same shape as the view.
    fn softmax(x: View<'_, Self>, dim: usize, log: bool) -> Self;

    // ----- linear algebra ---------------------------------------------------

    /// Batched matrix product. `a` views `[B.., M, K]` and `b` views
    /// `[B.., K, N]` with the same batch dimensions (broadcast batches have
    /// stride 0); the result is `[B.., M, N]`.
    fn matmul(a: View<'_, Self>, b: View<'_, Self>) -> Self;

    // ----- indexing ---------------------------------------------------------

    /// `out[.., j, ..] = x[.., index[.., j, ..], ..]` along `dim`; the
    /// result has the index's shape (`torch.gather`).
    fn gather(x: View<'_, Self>, dim: usize, index: View<'_, Self>) -> Self;

    /// A copy of `x` with `src` (shaped like `index`) added at the gathered
    /// positions: the adjoint of `gather`.
    fn scatter_add(
        x: View<'_, Self>,
        dim: usize,
        index: View<'_, Self>,
        src: View<'_, Self>,
    ) -> Self;

    /// The slices of `x` along `dim` picked by the 1-D `index`.
    fn index_select(x: View<'_, Self>, dim: usize, index: View<'_, Self>) -> Self;

    /// A copy of `x` with slice `l` of `src` added at slice `index[l]` along
    /// `dim`: the adjoint of `index_select`.
    fn index_add(x: View<'_, Self>, dim: usize, index: View<'_, Self>, src: View<'_, Self>)
    -> Self;

    // ----- convolution ------------------------------------------------------

    /// `[N, C, H, W] ⋆ [O, C/groups, kh, kw] (+ bias [O]) -> [N, O, OH, OW]`.
    fn conv2d(
        x: View<'_, Self>,
        w: View<'_, Self>,
        bias: Option<View<'_, Self>>,
        s: &ConvShape,
    ) -> Self;

    /// The adjoint of `conv2d` in its input: `[N, O, OH, OW] -> [N, C, H, W]`.
    fn conv_transpose2d(gy: View<'_, Self>, w: View<'_, Self>, s: &ConvShape) -> Self;

    /// The weight gradient of `conv2d`: `Σ_i gy[i] · cols(x[i])ᵀ`,
    /// `[O, C/groups, kh, kw]`, and with `bias` the bias gradient too:
    /// `gy` summed over images and pixels, `[O]`.
    fn conv2d_weight_grad(
        x: View<'_, Self>,
        gy: View<'_, Self>,
        s: &ConvShape,
        bias: bool,
    ) -> (Self, Option<Self>);

    /// `[N, C, H, W] -> [N, C·kh·kw, OH·OW]` (zero padding).
    fn im2col(x: View<'_, Self>, g: &ConvGeom) -> Self;

    /// The adjoint of `im2col`, summing overlaps: `[N, C·kh·kw, OH·OW] -> [N, C, H, W]`.
    fn col2im(cols: View<'_, Self>, c: usize, g: &ConvGeom) -> Self;

    /// Max over each window of the `H×W` planes of `[N, C, H, W]`: values
    /// and the flat in-plane index `h·W + w` of the first maximum (a NaN
    /// wins), both `[N, C, OH, OW]`.
    fn max_pool2d(x: View<'_, Self>, g: &ConvGeom) -> (Self, Self);

    /// The adjoint of taking the pooled elements: `[N, C, OH, OW]` values
    /// added at in-plane positions `idx` (same shape) of a zero `[N, C, hw]`
    /// buffer.
    fn max_unpool2d(x: View<'_, Self>, idx: View<'_, Self>, hw: usize) -> Self;

    // ----- recurrent --------------------------------------------------------

    /// The LSTM cell from gates `[N, 4H]` (order i, f, g, o) and `c_prev`
    /// `[N, H]`: `[h | c]`, `[N, 2H]`.
    fn lstm_cell(gates: View<'_, Self>, c_prev: View<'_, Self>) -> Self;

    /// Gradients `([N, 4H], [N, H])` of `lstm_cell`'s inputs from the output
    /// gradient `g` `[N, 2H]`.
    fn lstm_cell_backward(
        gates: View<'_, Self>,
        c_prev: View<'_, Self>,
        g: View<'_, Self>,
    ) -> (Self, Self);

    /// A whole LSTM layer from input projections `xp` `[T, N, 4H]`, `W_hh`
    /// `[4H, H]`, the gate bias `[4H]` if any (added to `xp` first) and the
    /// initial state `[N, H]` twice: every step's `[h_t | c_t]`
    /// (`[T, N, 2H]`) and the gate values `σ(i), σ(f), tanh(g), σ(o)`
    /// (`[T, N, 4H]`) that `lstm_layer_backward` takes.
    fn lstm_layer(
        xp: View<'_, Self>,
        w_hh: View<'_, Self>,
        bias: Option<View<'_, Self>>,
        h0: View<'_, Self>,
        c0: View<'_, Self>,
        d: LstmDims,
    ) -> (Self, Self);

    /// Gradients of `lstm_layer`'s `(xp, W_hh, h0, c0)` from its saved gate
    /// values, its output and the output gradient, and with `bias` the
    /// bias gradient (the gate gradients summed over every step and row).
    #[allow(clippy::too_many_arguments)]
    fn lstm_layer_backward(
        w_hh: View<'_, Self>,
        h0: View<'_, Self>,
        c0: View<'_, Self>,
        gates: View<'_, Self>,
        out: View<'_, Self>,
        g: View<'_, Self>,
        d: LstmDims,
        bias: bool,
    ) -> ([Self; 4], Option<Self>);

    // ----- optimizers -------------------------------------------------------

    /// One optimizer update in place of the contiguous elements of `param`
    /// at `param_layout`, from `grad` (same shape), with per-element state
    /// `state` (`rule.state_per_element()·n` values, updated in place).
    fn optim_step(
        param: &mut Self,
        param_layout: &Layout,
        grad: View<'_, Self>,
        state: &mut Self,
        rule: &OptimRule,
    );
}

/// A tensor's data buffer, on one of the devices.
#[derive(Debug)]
pub enum Storage {
    /// The optimised CPU backend.
    Cpu(cpu::CpuStorage),
    /// The reference backend.
    Reference(reference::RefStorage),
}

/// THE list of backends: each `Device` variant with its `Storage` variant
/// and buffer type. Adding a backend adds one entry here; every dispatch
/// below expands over this list, so no other match names a backend.
macro_rules! dispatch {
    ($($args:tt)*) => {
        dispatch_over!([(Cpu, cpu::CpuStorage) (Reference, reference::RefStorage)] $($args)*)
    };
}

/// The dispatch forms, each expanded over the backend list:
///
/// - `device $d; B, wrap => body`: `B` the backend type of device `$d`,
///   `wrap` the `Storage` variant that holds it;
/// - `storage $s; x, dev => body`: `x` the backend buffer inside `&Storage`
///   `$s`, `dev` its device;
/// - `$op; (v1, v2, ..); (m1, ..); B, wrap => body`: by the first view's
///   storage, each `View<Storage>` `vi` and `&mut Storage` `mi` rebound to
///   the backend's own type (the op has already checked that all are on
///   one device; a mismatch here panics naming `$op`).
macro_rules! dispatch_over {
    ([$(($var:ident, $ty:ty))*] device $d:expr; $B:ident, $wrap:ident => $body:expr) => {
        match $d {
            $(Device::$var => {
                #[allow(dead_code)]
                type $B = $ty;
                #[allow(unused_variables)]
                let $wrap = Storage::$var;
                $body
            })*
        }
    };
    ([$(($var:ident, $ty:ty))*] storage $s:expr; $x:ident, $dev:ident => $body:expr) => {
        match $s {
            $(Storage::$var($x) => {
                #[allow(unused_variables)]
                let $dev = Device::$var;
                $body
            })*
        }
    };
    ([$(($var:ident, $ty:ty))*] $op:expr; $first:ident $vs:tt; $ms:tt; $B:ident, $wrap:ident => $body:expr) => {
        match $first.data {
            $(Storage::$var(_) => dispatch_over!(@arm $var, $ty; $op; $vs; $ms; $B, $wrap => $body),)*
        }
    };
    (@arm $var:ident, $ty:ty; $op:expr; ($($v:ident),*); ($($m:ident),*); $B:ident, $wrap:ident => $body:expr) => {{
        #[allow(dead_code)]
        type $B = $ty;
        #[allow(unused_variables)]
        let $wrap = Storage::$var;
        $(
            let $v = View {
                data: match $v.data {
                    Storage::$var(s) => s,
                    other => mismatch($op, other.device(), Device::$var),
                },
                layout: $v.layout,
            };
        )*
        $(
            let $m = match $m {
                Storage::$var(s) => s,
                other => mismatch($op, other.device(), Device::$var),
            };
        )*
        $body
    }};
}

fn mismatch(op: &str, a: Device, b: Device) -> ! {
    panic!("{op}: tensors on different devices ({a} and {b})")
}

/// The primitives on `Storage`, each forwarded by `dispatch!` to the
/// backend of its inputs' device.
impl Storage {
    /// The device this buffer lives on.
    pub fn device(&self) -> Device {
        dispatch!(storage self; _s, device => device)
    }

    /// Number of f32 values held.
    pub fn len(&self) -> usize {
        dispatch!(storage self; s, _d => s.len())
    }

    /// True when the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The host slice of a buffer in host memory.
    pub fn host_slice(&self) -> Option<&[f32]> {
        dispatch!(storage self; s, _d => s.host_slice())
    }

    pub(crate) fn from_host(data: Vec<f32>, device: Device) -> Storage {
        dispatch!(device device; B, wrap => wrap(B::from_host(data)))
    }

    pub(crate) fn full(n: usize, v: f32, device: Device) -> Storage {
        dispatch!(device device; B, wrap => wrap(B::full(n, v)))
    }

    pub(crate) fn to_host(x: View<'_, Storage>) -> Vec<f32> {
        dispatch!("to_vec"; x (x); (); B, wrap => B::to_host(x))
    }

    pub(crate) fn copy_strided(x: View<'_, Storage>) -> Storage {
        dispatch!("contiguous"; x (x); (); B, wrap => wrap(B::copy_strided(x)))
    }

    pub(crate) fn copy_into(dst: &mut Storage, dst_layout: &Layout, src: View<'_, Storage>) {
        dispatch!("copy_into"; src (src); (dst); B, wrap => B::copy_into(dst, dst_layout, src))
    }

    pub(crate) fn unary(x: View<'_, Storage>, op: UnaryKind) -> Storage {
        dispatch!("unary"; x (x); (); B, wrap => wrap(B::unary(x, op)))
    }

    pub(crate) fn binary(a: View<'_, Storage>, b: View<'_, Storage>, op: BinaryKind) -> Storage {
        dispatch!("binary"; a (a, b); (); B, wrap => wrap(B::binary(a, b, op)))
    }

    pub(crate) fn where_cond(
        c: View<'_, Storage>,
        a: View<'_, Storage>,
        b: View<'_, Storage>,
    ) -> Storage {
        dispatch!("where"; c (c, a, b); (); B, wrap => wrap(B::where_cond(c, a, b)))
    }

    pub(crate) fn reduce(x: View<'_, Storage>, dims: &[usize], op: ReduceKind) -> Storage {
        dispatch!("reduce"; x (x); (); B, wrap => wrap(B::reduce(x, dims, op)))
    }

    pub(crate) fn softmax(x: View<'_, Storage>, dim: usize, log: bool) -> Storage {
        dispatch!("softmax"; x (x); (); B, wrap => wrap(B::softmax(x, dim, log)))
    }

    pub(crate) fn matmul(a: View<'_, Storage>, b: View<'_, Storage>) -> Storage {
        dispatch!("matmul"; a (a, b); (); B, wrap => wrap(B::matmul(a, b)))
    }

    pub(crate) fn gather(x: View<'_, Storage>, dim: usize, i: View<'_, Storage>) -> Storage {
        dispatch!("gather"; x (x, i); (); B, wrap => wrap(B::gather(x, dim, i)))
    }

    pub(crate) fn scatter_add(
        x: View<'_, Storage>,
        dim: usize,
        i: View<'_, Storage>,
        src: View<'_, Storage>,
    ) -> Storage {
        dispatch!("scatter_add"; x (x, i, src); (); B, wrap => wrap(B::scatter_add(x, dim, i, src)))
    }

    pub(crate) fn index_select(x: View<'_, Storage>, dim: usize, i: View<'_, Storage>) -> Storage {
        dispatch!("index_select"; x (x, i); (); B, wrap => wrap(B::index_select(x, dim, i)))
    }

    pub(crate) fn index_add(
        x: View<'_, Storage>,
        dim: usize,
        i: View<'_, Storage>,
        src: View<'_, Storage>,
    ) -> Storage {
        dispatch!("index_add"; x (x, i, src); (); B, wrap => wrap(B::index_add(x, dim, i, src)))
    }

    pub(crate) fn conv2d(
        x: View<'_, Storage>,
        w: View<'_, Storage>,
        bias: Option<View<'_, Storage>>,
        s: &ConvShape,
    ) -> Storage {
        match bias {
            None => dispatch!("conv2d"; x (x, w); (); B, wrap => wrap(B::conv2d(x, w, None, s))),
            Some(b) => {
                dispatch!("conv2d"; x (x, w, b); (); B, wrap => wrap(B::conv2d(x, w, Some(b), s)))
            }
        }
    }

    pub(crate) fn conv_transpose2d(
        gy: View<'_, Storage>,
        w: View<'_, Storage>,
        s: &ConvShape,
    ) -> Storage {
        dispatch!("conv_transpose2d"; gy (gy, w); (); B, wrap => wrap(B::conv_transpose2d(gy, w, s)))
    }

    pub(crate) fn conv2d_weight_grad(
        x: View<'_, Storage>,
        gy: View<'_, Storage>,
        s: &ConvShape,
        bias: bool,
    ) -> (Storage, Option<Storage>) {
        dispatch!("conv2d_weight_grad"; x (x, gy); (); B, wrap => {
            let (gw, gb) = B::conv2d_weight_grad(x, gy, s, bias);
            (wrap(gw), gb.map(wrap))
        })
    }

    pub(crate) fn im2col(x: View<'_, Storage>, g: &ConvGeom) -> Storage {
        dispatch!("im2col"; x (x); (); B, wrap => wrap(B::im2col(x, g)))
    }

    pub(crate) fn col2im(x: View<'_, Storage>, c: usize, g: &ConvGeom) -> Storage {
        dispatch!("col2im"; x (x); (); B, wrap => wrap(B::col2im(x, c, g)))
    }

    pub(crate) fn max_pool2d(x: View<'_, Storage>, g: &ConvGeom) -> (Storage, Storage) {
        dispatch!("max_pool2d"; x (x); (); B, wrap => {
            let (v, i) = B::max_pool2d(x, g);
            (wrap(v), wrap(i))
        })
    }

    pub(crate) fn max_unpool2d(x: View<'_, Storage>, i: View<'_, Storage>, hw: usize) -> Storage {
        dispatch!("max_unpool2d"; x (x, i); (); B, wrap => wrap(B::max_unpool2d(x, i, hw)))
    }

    pub(crate) fn lstm_cell(a: View<'_, Storage>, c: View<'_, Storage>) -> Storage {
        dispatch!("lstm_cell"; a (a, c); (); B, wrap => wrap(B::lstm_cell(a, c)))
    }

    pub(crate) fn lstm_cell_backward(
        a: View<'_, Storage>,
        c: View<'_, Storage>,
        g: View<'_, Storage>,
    ) -> (Storage, Storage) {
        dispatch!("lstm_cell"; a (a, c, g); (); B, wrap => {
            let (ga, gc) = B::lstm_cell_backward(a, c, g);
            (wrap(ga), wrap(gc))
        })
    }

    pub(crate) fn lstm_layer(
        [xp, w, h0, c0]: [View<'_, Storage>; 4],
        bias: Option<View<'_, Storage>>,
        d: LstmDims,
    ) -> (Storage, Storage) {
        match bias {
            None => dispatch!("lstm_layer"; xp (xp, w, h0, c0); (); B, wrap => {
                let (out, gates) = B::lstm_layer(xp, w, None, h0, c0, d);
                (wrap(out), wrap(gates))
            }),
            Some(b) => dispatch!("lstm_layer"; xp (xp, w, b, h0, c0); (); B, wrap => {
                let (out, gates) = B::lstm_layer(xp, w, Some(b), h0, c0, d);
                (wrap(out), wrap(gates))
            }),
        }
    }

    pub(crate) fn lstm_layer_backward(
        [w, h0, c0, gates, out, g]: [View<'_, Storage>; 6],
        d: LstmDims,
        bias: bool,
    ) -> ([Storage; 4], Option<Storage>) {
        dispatch!("lstm_layer"; w (w, h0, c0, gates, out, g); (); B, wrap => {
            let (grads, gb) = B::lstm_layer_backward(w, h0, c0, gates, out, g, d, bias);
            (grads.map(wrap), gb.map(wrap))
        })
    }

    pub(crate) fn optim_step(
        param: &mut Storage,
        param_layout: &Layout,
        grad: View<'_, Storage>,
        state: &mut Storage,
        rule: &OptimRule,
    ) {
        dispatch!("optimizer step"; grad (grad); (param, state); B, wrap => {
            B::optim_step(param, param_layout, grad, state, rule)
        })
    }
}

/// The CPU backend's kernels for benchmarks and kernel tests (GEMM, the
/// thread pool, convolution, fast math), under a name that does not tie
/// callers to the `cpu` module's layout.
pub mod kernels {
    pub use super::cpu::conv::{conv2d_backward_data, conv2d_backward_weight, conv2d_forward};
    pub use super::cpu::dense_relu_dense::{
        DenseReluDense, DenseReluDenseGrads, Samples, dense_relu_dense_grads, grey_level,
    };
    pub use super::cpu::gemm::{
        GemmKernel, PackedB, fma_peak_gflops, gemm_kernel, gemm_kernel_name, naive_sgemm, sgemm,
        sgemm_packed_b, sgemm_with_kernel, tile_ceiling_gflops, try_gemm_kernel,
    };
    pub use super::cpu::math;
    pub use super::cpu::threads::{num_threads, parallel_for, parallel_for_pinned};
}
