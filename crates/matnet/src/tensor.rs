//! The `Tensor` type: an n-dimensional f32 array that remembers which
//! operation produced it, so gradients can flow back through it.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::autograd::{self, Op};
use crate::backend::{OptimRule, Storage, View};
use crate::device::{Device, default_device};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::rng::Rng;
use crate::shape::{Dim, Shape};

/// A unique identity for a tensor node, the key of [`crate::Gradients`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct TensorId(usize);

impl TensorId {
    fn next() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(1);
        TensorId(COUNTER.fetch_add(1, Ordering::Relaxed))
    }
}

pub(crate) struct TensorInner {
    id: TensorId,
    // RwLock rather than plain Arc<Vec>: optimizers update parameters in place,
    // and views (a transposed weight in a live graph) must see the new values.
    storage: Arc<RwLock<Storage>>,
    // Kept beside the storage so asking for it takes no lock.
    device: Device,
    layout: Layout,
    op: Option<Op>,
    is_variable: bool,
}

/// An n-dimensional array of f32, row-major.
///
/// Cloning is cheap (a reference count): clones share storage and identity.
/// Views (transpose, permute, narrow, broadcast, contiguous reshape) share
/// storage but are new nodes in the autograd graph.
///
/// ```
/// use matnet::Tensor;
/// let a = Tensor::from_vec(vec![1., 2., 3., 4.], [2, 2]);
/// let b = Tensor::from_vec(vec![5., 6., 7., 8.], [2, 2]);
/// assert_eq!(a.matmul(&b).to_vec(), vec![19., 22., 43., 50.]);
/// ```
#[derive(Clone)]
pub struct Tensor(Arc<TensorInner>);

impl Tensor {
    // ----- construction -------------------------------------------------------

    /// A new leaf node over a fresh contiguous buffer (no op, no profiling).
    pub(crate) fn from_storage(storage: Storage, shape: Shape) -> Tensor {
        Tensor::node_with_id(TensorId::next(), storage, shape, None)
    }

    /// The result of an op: a node over a fresh contiguous buffer that
    /// remembers `op` when gradients are enabled and some input of the op
    /// tracks gradients. Every op's result passes here, so this is where an
    /// active profile sees it.
    pub(crate) fn from_op(storage: Storage, shape: Shape, op: Op) -> Tensor {
        let id = TensorId::next();
        autograd::profile::record_forward(&op, id, &shape);
        Tensor::node_with_id(id, storage, shape, Some(op).filter(autograd::should_record))
    }

    fn node_with_id(id: TensorId, storage: Storage, shape: Shape, op: Option<Op>) -> Tensor {
        debug_assert_eq!(storage.len(), shape.numel());
        Tensor(Arc::new(TensorInner {
            id,
            device: storage.device(),
            storage: Arc::new(RwLock::new(storage)),
            layout: Layout::contiguous(shape),
            op,
            is_variable: false,
        }))
    }

    /// A leaf on the default device from host data.
    fn from_host(data: Vec<f32>, shape: Shape) -> Tensor {
        Tensor::from_host_on(data, shape, default_device())
    }

    fn from_host_on(data: Vec<f32>, shape: Shape, device: Device) -> Tensor {
        Tensor::from_storage(Storage::from_host(data, device), shape)
    }

    /// A new node that views this tensor's storage through `layout`.
    pub(crate) fn view(&self, layout: Layout, op: Op) -> Tensor {
        let id = TensorId::next();
        autograd::profile::record_forward(&op, id, layout.shape());
        Tensor(Arc::new(TensorInner {
            id,
            device: self.0.device,
            storage: self.0.storage.clone(),
            layout,
            op: Some(op).filter(autograd::should_record),
            is_variable: false,
        }))
    }

    /// A tensor from row-major data, on the default device. Panics when
    /// `data.len()` does not match the shape.
    pub fn from_vec(data: Vec<f32>, shape: impl Into<Shape>) -> Tensor {
        Tensor::from_vec_on(data, shape, default_device())
    }

    /// Like [`Tensor::from_vec`] but returns an error on a length mismatch
    /// (for data that comes from a user's file).
    pub fn try_from_vec(data: Vec<f32>, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if data.len() != shape.numel() {
            return Err(Error::Invalid(format!(
                "{} values do not fill shape {:?} ({} needed)",
                data.len(),
                shape,
                shape.numel()
            )));
        }
        Ok(Tensor::from_host(data, shape))
    }

    /// A tensor copied from a slice.
    pub fn from_slice(data: &[f32], shape: impl Into<Shape>) -> Tensor {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// A rank-0 tensor holding `v`.
    pub fn scalar(v: f32) -> Tensor {
        Tensor::from_host(vec![v], Shape::new([]))
    }

    /// A tensor filled with `v`.
    pub fn full(shape: impl Into<Shape>, v: f32) -> Tensor {
        Tensor::full_on(shape, v, default_device())
    }

    /// A tensor filled with `v` on `device`.
    pub fn full_on(shape: impl Into<Shape>, v: f32, device: Device) -> Tensor {
        let shape = shape.into();
        Tensor::from_storage(Storage::full(shape.numel(), v, device), shape)
    }

    /// A tensor from row-major data on `device` (see [`Tensor::from_vec`]).
    pub fn from_vec_on(data: Vec<f32>, shape: impl Into<Shape>, device: Device) -> Tensor {
        let shape = shape.into();
        assert_eq!(
            data.len(),
            shape.numel(),
            "from_vec: {} values do not fill shape {:?}",
            data.len(),
            shape
        );
        Tensor::from_host_on(data, shape, device)
    }

    /// A tensor of zeros on `device`.
    pub fn zeros_on(shape: impl Into<Shape>, device: Device) -> Tensor {
        Tensor::full_on(shape, 0.0, device)
    }

    /// A tensor of zeros.
    pub fn zeros(shape: impl Into<Shape>) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    /// A tensor of ones.
    pub fn ones(shape: impl Into<Shape>) -> Tensor {
        Tensor::full(shape, 1.0)
    }

    /// `[0, 1, ..., n-1]`.
    pub fn arange(n: usize) -> Tensor {
        Tensor::from_host((0..n).map(|i| i as f32).collect(), Shape::new([n]))
    }

    /// `start, start+step, ...` up to but excluding `end`.
    pub fn arange_step(start: f32, end: f32, step: f32) -> Tensor {
        assert!(
            step != 0.0 && step.is_finite(),
            "arange_step: step must be finite and non-zero"
        );
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let data: Vec<f32> = (0..n).map(|i| start + step * i as f32).collect();
        Tensor::from_host(data, Shape::new([n]))
    }

    /// The `n×n` identity matrix.
    pub fn eye(n: usize) -> Tensor {
        let mut data = vec![0.0; n * n];
        for i in 0..n {
            data[i * n + i] = 1.0;
        }
        Tensor::from_host(data, Shape::new([n, n]))
    }

    /// Uniform random values in `[lo, hi)` from `rng`.
    pub fn rand_uniform(shape: impl Into<Shape>, lo: f32, hi: f32, rng: &mut Rng) -> Tensor {
        let shape = shape.into();
        let data = (0..shape.numel())
            .map(|_| rng.uniform_range(lo, hi))
            .collect();
        Tensor::from_host(data, shape)
    }

    /// Normal random values with the given mean and standard deviation from `rng`.
    pub fn randn(shape: impl Into<Shape>, mean: f32, std: f32, rng: &mut Rng) -> Tensor {
        let shape = shape.into();
        let data = (0..shape.numel())
            .map(|_| mean + std * rng.normal())
            .collect();
        Tensor::from_host(data, shape)
    }

    /// A tensor of zeros with this tensor's shape, on its device.
    pub fn zeros_like(&self) -> Tensor {
        Tensor::full_on(self.shape(), 0.0, self.device())
    }

    /// A tensor of ones with this tensor's shape, on its device.
    pub fn ones_like(&self) -> Tensor {
        Tensor::full_on(self.shape(), 1.0, self.device())
    }

    // ----- devices ------------------------------------------------------------

    /// The device this tensor's data lives on.
    pub fn device(&self) -> Device {
        self.0.device
    }

    /// A copy of this tensor on `device` (itself when already there). The
    /// copy is a new leaf, cut from the graph; a variable stays a variable.
    pub fn to_device(&self, device: Device) -> Tensor {
        if device == self.device() {
            return self.clone();
        }
        let t = Tensor::from_host_on(self.to_vec(), self.shape().clone(), device);
        if self.is_variable() {
            t.requires_grad()
        } else {
            t
        }
    }

    // ----- autograd flags -----------------------------------------------------

    /// Marks this tensor as a trainable leaf (like PyTorch's `requires_grad_()`):
    /// returns a variable sharing this tensor's data, whose gradient
    /// [`Tensor::backward`] reports.
    pub fn requires_grad(self) -> Tensor {
        Tensor(Arc::new(TensorInner {
            id: TensorId::next(),
            device: self.0.device,
            storage: self.0.storage.clone(),
            layout: self.0.layout.clone(),
            op: None,
            is_variable: true,
        }))
    }

    /// The same data cut from the graph: gradients do not flow through it.
    pub fn detach(&self) -> Tensor {
        Tensor(Arc::new(TensorInner {
            id: TensorId::next(),
            device: self.0.device,
            storage: self.0.storage.clone(),
            layout: self.0.layout.clone(),
            op: None,
            is_variable: false,
        }))
    }

    /// True for a trainable leaf made by [`Tensor::requires_grad`].
    pub fn is_variable(&self) -> bool {
        self.0.is_variable
    }

    /// True when gradients flow through this tensor (a variable, or the
    /// result of an op on one).
    pub fn tracks_grad(&self) -> bool {
        self.0.is_variable || self.0.op.is_some()
    }

    /// The op that produced this tensor, if recorded.
    pub fn op(&self) -> Option<&Op> {
        self.0.op.as_ref()
    }

    /// This node's identity.
    pub fn id(&self) -> TensorId {
        self.0.id
    }

    // ----- inspection ---------------------------------------------------------

    /// The shape.
    pub fn shape(&self) -> &Shape {
        self.0.layout.shape()
    }

    /// The dimensions as a slice.
    pub fn dims(&self) -> &[usize] {
        self.0.layout.shape().dims()
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape().rank()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape().numel()
    }

    /// Size of dimension `d` (negative counts from the end).
    pub fn dim(&self, d: impl Dim) -> usize {
        self.dims()[self.shape().axis(d, "dim")]
    }

    /// The strides and offset of this view.
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }

    /// True when the elements are stored row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// True when both tensors view the same buffer.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    pub(crate) fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        self.0.storage.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn storage_mut(&self) -> RwLockWriteGuard<'_, Storage> {
        self.0.storage.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls `f` with the contiguous data of this tensor on the host, copying
    /// only when the view is not contiguous or not in host memory.
    pub fn with_data<R>(&self, f: impl FnOnce(&[f32]) -> R) -> R {
        let layout = &self.0.layout;
        if layout.is_contiguous() {
            let s = self.storage();
            if let Some(host) = s.host_slice() {
                return f(&host[layout.offset()..layout.offset() + self.numel()]);
            }
        }
        f(&self.to_vec())
    }

    /// The elements in row-major order (read back to the host).
    pub fn to_vec(&self) -> Vec<f32> {
        let s = self.storage();
        Storage::to_host(View {
            data: &*s,
            layout: &self.0.layout,
        })
    }

    /// A contiguous copy in a buffer of its own (no op recorded).
    pub(crate) fn copy(&self) -> Tensor {
        let s = self.storage();
        let view = View {
            data: &*s,
            layout: self.layout(),
        };
        Tensor::from_storage(Storage::copy_strided(view), self.shape().clone())
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> f32 {
        assert_eq!(
            self.numel(),
            1,
            "item: tensor of shape {:?} has {} elements, not 1",
            self.shape(),
            self.numel()
        );
        self.to_vec()[0]
    }

    /// The rows of a matrix.
    pub fn to_vec2(&self) -> Vec<Vec<f32>> {
        assert_eq!(
            self.rank(),
            2,
            "to_vec2: shape {:?} is not a matrix",
            self.shape()
        );
        let cols = self.dims()[1];
        self.to_vec()
            .chunks(cols.max(1))
            .map(|r| r.to_vec())
            .collect()
    }

    // ----- in-place updates ---------------------------------------------------

    /// Overwrites the data of a contiguous tensor in place with a host
    /// function (not recorded by autograd). The data makes a round trip
    /// through host memory; optimizers and layers use backend primitives
    /// instead.
    pub fn update_(&self, f: impl FnOnce(&mut [f32])) {
        assert!(
            self.is_contiguous(),
            "update_: tensor of shape {:?} is a non-contiguous view",
            self.shape()
        );
        let mut data = self.to_vec();
        f(&mut data);
        self.assign_(&Tensor::from_host_on(
            data,
            self.shape().clone(),
            self.device(),
        ));
    }

    /// Copies `src` (same shape, any device, like PyTorch's `copy_`) into
    /// this tensor's data in place (not recorded by autograd). Checkpoints
    /// load into a model on any device through it.
    pub fn assign_(&self, src: &Tensor) {
        assert_eq!(
            self.shape(),
            src.shape(),
            "assign_: shapes {:?} and {:?} differ",
            self.shape(),
            src.shape()
        );
        // Reading and writing one buffer would take its lock twice.
        let src = if self.same_storage(src) {
            src.copy()
        } else {
            src.to_device(self.device())
        };
        let s = src.storage();
        let view = View {
            data: &*s,
            layout: src.layout(),
        };
        Storage::copy_into(&mut self.storage_mut(), &self.0.layout, view);
    }
}

impl Tensor {
    /// One optimizer update of this (contiguous) parameter in place from
    /// `grad`, with the rule's per-element state in `state`.
    pub(crate) fn optim_step_(&self, grad: &Tensor, state: &Tensor, rule: &OptimRule) {
        assert!(
            self.is_contiguous() && grad.shape() == self.shape(),
            "optimizer step: parameter {:?} (contiguous: {}) and gradient {:?}",
            self.shape(),
            self.is_contiguous(),
            grad.shape()
        );
        crate::ops::check_devices("optimizer step", &[self, grad, state]);
        let g = grad.storage();
        let mut s = state.storage_mut();
        Storage::optim_step(
            &mut self.storage_mut(),
            self.layout(),
            View {
                data: &*g,
                layout: grad.layout(),
            },
            &mut s,
            rule,
        );
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor{:?}", self.shape())?;
        if self.numel() <= 64 {
            write!(f, " {:?}", self.to_vec())?;
        }
        Ok(())
    }
}

/// Prints a matrix as rows (higher ranks as nested blocks), e.g.
/// `[[19, 22],` / ` [43, 50]]`. A precision (`{:.3}`) is honoured.
impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = self.to_vec();
        let cells: Vec<String> = data
            .iter()
            .map(|v| match f.precision() {
                Some(p) => format!("{v:.p$}"),
                None => format!("{v}"),
            })
            .collect();
        let width = cells.iter().map(|c| c.len()).max().unwrap_or(0);
        fn rec(
            f: &mut fmt::Formatter<'_>,
            cells: &[String],
            dims: &[usize],
            width: usize,
            depth: usize,
        ) -> fmt::Result {
            if dims.is_empty() {
                return write!(f, "{:>width$}", cells[0]);
            }
            write!(f, "[")?;
            let step = cells.len() / dims[0].max(1);
            for i in 0..dims[0] {
                if i > 0 {
                    write!(f, ",")?;
                    if dims.len() > 1 {
                        write!(f, "{}", "\n".repeat(dims.len() - 1))?;
                        write!(f, "{}", " ".repeat(depth + 1))?;
                    } else {
                        write!(f, " ")?;
                    }
                }
                rec(
                    f,
                    &cells[i * step..(i + 1) * step],
                    &dims[1..],
                    width,
                    depth + 1,
                )?;
            }
            write!(f, "]")
        }
        rec(f, &cells, self.dims(), width, 0)
    }
}
