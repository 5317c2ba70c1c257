//! Sums, means, maxima, variance and (log-)softmax over chosen axes.

use super::view;
use crate::autograd::Op;
use crate::backend::{ReduceKind, Storage};
use crate::shape::{Dim, Shape};
use crate::tensor::Tensor;

/// Sorted, de-duplicated axes; all axes for an empty list.
fn resolve_dims(t: &Tensor, dims: &[isize], op: &str) -> Vec<usize> {
    if dims.is_empty() {
        return (0..t.rank()).collect();
    }
    let mut d: Vec<usize> = dims.iter().map(|&a| t.shape().axis(a, op)).collect();
    d.sort_unstable();
    d.dedup();
    d
}

/// `self` reduced over sorted, distinct `dims` by one backend primitive.
fn reduce_storage(t: &Tensor, dims: &[usize], kind: ReduceKind) -> Storage {
    Storage::reduce(view(&t.storage(), t.layout()), dims, kind)
}

impl Tensor {
    /// Sum over `dims` (negative counts from the end; empty = all), keeping
    /// them as size 1 when `keepdim`.
    ///
    /// # Shapes
    /// `[N, D].sum(&[0], false) -> [D]`; with `keepdim` `-> [1, D]`.
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Tensor {
        let dims = resolve_dims(self, dims, "sum");
        self.sum_dims(&dims, keepdim)
    }

    pub(crate) fn sum_dims(&self, dims: &[usize], keepdim: bool) -> Tensor {
        let data = reduce_storage(self, dims, ReduceKind::Sum);
        let shape = self.shape().reduced(dims, keepdim);
        Tensor::from_op(data, shape, Op::Sum(self.clone(), dims.to_vec()))
    }

    /// Sum of all elements, as a scalar tensor.
    pub fn sum_all(&self) -> Tensor {
        self.sum(&[], false)
    }

    /// Mean over `dims` (empty = all).
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Tensor {
        let d = resolve_dims(self, dims, "mean");
        let n: usize = d.iter().map(|&i| self.dims()[i]).product();
        self.sum_dims(&d, keepdim).mul_scalar(1.0 / n.max(1) as f32)
    }

    /// Mean of all elements, as a scalar tensor.
    pub fn mean_all(&self) -> Tensor {
        self.mean(&[], false)
    }

    /// Variance over `dims` with Bessel's `correction` (1 = unbiased, like
    /// `torch.var`; 0 = population variance, as batch norm uses).
    pub fn var(&self, dims: &[isize], keepdim: bool, correction: usize) -> Tensor {
        let d = resolve_dims(self, dims, "var");
        let n: usize = d.iter().map(|&i| self.dims()[i]).product();
        let mean = self.sum_dims(&d, true).mul_scalar(1.0 / n.max(1) as f32);
        let dev = self.sub(&mean).sqr().sum_dims(&d, keepdim);
        dev.mul_scalar(1.0 / n.saturating_sub(correction).max(1) as f32)
    }

    /// Maximum over one axis (the gradient flows to the maximal element).
    pub fn max(&self, dim: impl Dim, keepdim: bool) -> Tensor {
        let d = self.shape().axis(dim, "max");
        self.max_dims(&[d], keepdim)
    }

    /// Maximum of all elements, as a scalar tensor.
    pub fn max_all(&self) -> Tensor {
        let d: Vec<usize> = (0..self.rank()).collect();
        self.max_dims(&d, false)
    }

    fn max_dims(&self, dims: &[usize], keepdim: bool) -> Tensor {
        assert!(
            self.numel() > 0,
            "max: tensor of shape {:?} is empty",
            self.shape()
        );
        let data = reduce_storage(self, dims, ReduceKind::Max);
        let shape = self.shape().reduced(dims, keepdim);
        Tensor::from_op(data, shape, Op::Max(self.clone(), dims.to_vec()))
    }

    /// Index of the maximum along `dim` (as f32 values; no gradient).
    pub fn argmax(&self, dim: impl Dim, keepdim: bool) -> Tensor {
        let d = self.shape().axis(dim, "argmax");
        assert!(
            self.dims()[d] > 0,
            "argmax: dimension {d} of shape {:?} is empty",
            self.shape()
        );
        let data = reduce_storage(self, &[d], ReduceKind::Argmax);
        Tensor::from_storage(data, self.shape().reduced(&[d], keepdim))
    }

    /// Softmax along `dim`: `exp(x - max) / Σ exp(x - max)`, so rows sum to 1
    /// and large inputs do not overflow.
    pub fn softmax(&self, dim: impl Dim) -> Tensor {
        let d = self.shape().axis(dim, "softmax");
        let data = Storage::softmax(view(&self.storage(), self.layout()), d, false);
        Tensor::from_op(data, self.shape().clone(), Op::Softmax(self.clone(), d))
    }

    /// `log(softmax(x))` along `dim`, computed as `x - max - log Σ exp(x - max)`.
    pub fn log_softmax(&self, dim: impl Dim) -> Tensor {
        let d = self.shape().axis(dim, "log_softmax");
        let data = Storage::softmax(view(&self.storage(), self.layout()), d, true);
        Tensor::from_op(data, self.shape().clone(), Op::LogSoftmax(self.clone(), d))
    }

    /// Sums a broadcast result back down to `shape` (the adjoint of
    /// broadcasting, used by every broadcasting op's backward rule).
    pub fn sum_to(&self, shape: &Shape) -> Tensor {
        if self.shape() == shape {
            return self.clone();
        }
        assert!(
            shape.broadcasts_to(self.shape()),
            "sum_to: shape {:?} does not broadcast to {:?}",
            shape,
            self.shape()
        );
        let extra = self.rank() - shape.rank();
        let dims: Vec<usize> = (0..self.rank())
            .filter(|&i| i < extra || (shape.dims()[i - extra] == 1 && self.dims()[i] != 1))
            .collect();
        let s = if dims.is_empty() {
            self.clone()
        } else {
            self.sum_dims(&dims, true)
        };
        s.reshape(shape)
    }
}
