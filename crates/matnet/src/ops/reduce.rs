//! Sums, means, maxima, variance and (log-)softmax over chosen axes.

use crate::autograd::Op;
use crate::backend::cpu;
use crate::shape::Shape;
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

/// Runs `kernel(data, outer, r, inner)` with the reduced axes brought into the
/// middle of a contiguous `[outer, r, inner]` view. Reduced axes that are
/// already adjacent need no copy; others are permuted to the end first.
fn with_reduce_view<R>(
    t: &Tensor,
    dims: &[usize],
    kernel: impl FnOnce(&[f32], usize, usize, usize) -> R,
) -> R {
    let d = t.dims();
    let adjacent = dims.windows(2).all(|w| w[1] == w[0] + 1);
    if adjacent && !dims.is_empty() {
        let (first, last) = (dims[0], dims[dims.len() - 1]);
        let outer = d[..first].iter().product();
        let r = d[first..=last].iter().product();
        let inner = d[last + 1..].iter().product();
        return t.with_data(|x| kernel(x, outer, r, inner));
    }
    let kept: Vec<usize> = (0..t.rank()).filter(|i| !dims.contains(i)).collect();
    let perm: Vec<usize> = kept.iter().chain(dims).copied().collect();
    let outer = kept.iter().map(|&i| d[i]).product();
    let r = dims.iter().map(|&i| d[i]).product();
    let data = cpu::copy_strided(t.storage().as_slice(), &t.layout().permute(&perm));
    kernel(&data, outer, r, 1)
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
        let data = with_reduce_view(self, dims, cpu::sum);
        let shape = self.shape().reduced(dims, keepdim);
        Tensor::from_parts(data, shape, Some(Op::Sum(self.clone(), dims.to_vec())))
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
    pub fn max(&self, dim: isize, keepdim: bool) -> Tensor {
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
        let data = with_reduce_view(self, dims, |x, o, r, i| cpu::max_with_index(x, o, r, i).0);
        let shape = self.shape().reduced(dims, keepdim);
        Tensor::from_parts(data, shape, Some(Op::Max(self.clone(), dims.to_vec())))
    }

    /// Index of the maximum along `dim` (as f32 values; no gradient).
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Tensor {
        let d = self.shape().axis(dim, "argmax");
        assert!(
            self.dims()[d] > 0,
            "argmax: dimension {d} of shape {:?} is empty",
            self.shape()
        );
        let data = with_reduce_view(self, &[d], cpu::argmax);
        Tensor::from_parts(data, self.shape().reduced(&[d], keepdim), None)
    }

    /// Softmax along `dim`: `exp(x - max) / Σ exp(x - max)`, so rows sum to 1
    /// and large inputs do not overflow.
    pub fn softmax(&self, dim: isize) -> Tensor {
        let d = self.shape().axis(dim, "softmax");
        let data = with_reduce_view(self, &[d], |x, o, r, i| cpu::softmax(x, o, r, i, false));
        Tensor::from_parts(
            data,
            self.shape().clone(),
            Some(Op::Softmax(self.clone(), d)),
        )
    }

    /// `log(softmax(x))` along `dim`, computed as `x - max - log Σ exp(x - max)`.
    pub fn log_softmax(&self, dim: isize) -> Tensor {
        let d = self.shape().axis(dim, "log_softmax");
        let data = with_reduce_view(self, &[d], |x, o, r, i| cpu::softmax(x, o, r, i, true));
        Tensor::from_parts(
            data,
            self.shape().clone(),
            Some(Op::LogSoftmax(self.clone(), d)),
        )
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
