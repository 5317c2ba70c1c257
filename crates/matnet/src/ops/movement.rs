//! Reshape, permute/transpose, narrow, broadcast (all views when possible),
//! and cat/stack (copies).

use super::{view, with_storages};
use crate::autograd::Op;
use crate::backend::Storage;
use crate::shape::{Dim, Shape};
use crate::tensor::Tensor;

impl Tensor {
    /// The same elements under a new shape (same element count). A view when
    /// the tensor is contiguous, otherwise a copy first (like PyTorch's `reshape`).
    pub fn reshape(&self, shape: impl Into<Shape>) -> Tensor {
        let shape = shape.into();
        assert_eq!(
            shape.numel(),
            self.numel(),
            "reshape: cannot view shape {:?} ({} elements) as {:?} ({} elements)",
            self.shape(),
            self.numel(),
            shape,
            shape.numel()
        );
        if self.shape() == &shape {
            return self.clone();
        }
        match self.layout().reshape(&shape) {
            Some(layout) => self.view(layout, Op::Reshape(self.clone())),
            None => self.contiguous().reshape(shape),
        }
    }

    /// Flattens dimensions `dim..` into one: `[N, C, H, W].flatten_from(1) -> [N, C·H·W]`.
    pub fn flatten_from(&self, dim: usize) -> Tensor {
        assert!(
            dim <= self.rank(),
            "flatten_from: dim {dim} out of range for shape {:?}",
            self.shape()
        );
        let mut d = self.dims()[..dim].to_vec();
        d.push(self.dims()[dim..].iter().product());
        self.reshape(d)
    }

    /// Inserts a size-1 dimension at `dim` (a view).
    pub fn unsqueeze(&self, dim: impl Dim) -> Tensor {
        let dim = self.shape().new_axis(dim, "unsqueeze");
        let mut d = self.dims().to_vec();
        d.insert(dim, 1);
        self.reshape(d)
    }

    /// Removes a size-1 dimension `dim`.
    pub fn squeeze(&self, dim: impl Dim) -> Tensor {
        let a = self.shape().axis(dim, "squeeze");
        assert_eq!(
            self.dims()[a],
            1,
            "squeeze: dim {a} of shape {:?} is not 1",
            self.shape()
        );
        let mut d = self.dims().to_vec();
        d.remove(a);
        self.reshape(d)
    }

    /// Reorders dimensions: output dim `i` is input dim `perm[i]` (a view).
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        let layout = self.layout().permute(perm);
        self.view(layout, Op::Permute(self.clone(), perm.to_vec()))
    }

    /// Swaps two dimensions (a view; no data moves).
    pub fn transpose(&self, d0: impl Dim, d1: impl Dim) -> Tensor {
        let (a, b) = (
            self.shape().axis(d0, "transpose"),
            self.shape().axis(d1, "transpose"),
        );
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Matrix transpose `Aᵀ` of a 2-D tensor (a view).
    pub fn t(&self) -> Tensor {
        assert_eq!(
            self.rank(),
            2,
            "t: shape {:?} is not a matrix; use transpose",
            self.shape()
        );
        self.transpose(0, 1)
    }

    /// Elements `start..start + len` along `dim` (a view).
    pub fn narrow(&self, dim: impl Dim, start: usize, len: usize) -> Tensor {
        let d = self.shape().axis(dim, "narrow");
        if start == 0 && len == self.dims()[d] {
            // The whole dimension: no new node, and no pad-with-nothing in backward.
            return self.clone();
        }
        let layout = self.layout().narrow(d, start, len);
        self.view(layout, Op::Narrow(self.clone(), d, start))
    }

    /// A view repeating size-1 (and missing leading) dimensions up to `shape`.
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Tensor {
        let shape = shape.into();
        if self.shape() == &shape {
            return self.clone();
        }
        let layout = self.layout().broadcast_to(&shape);
        self.view(layout, Op::BroadcastTo(self.clone()))
    }

    /// A contiguous copy when this is a strided view; itself otherwise.
    pub fn contiguous(&self) -> Tensor {
        if self.is_contiguous() {
            return self.clone();
        }
        let data = Storage::copy_strided(view(&self.storage(), self.layout()));
        Tensor::from_op(data, self.shape().clone(), Op::Copy(self.clone()))
    }

    /// Concatenates tensors along `dim`; all other dimensions must match.
    pub fn cat(tensors: &[Tensor], dim: impl Dim) -> Tensor {
        assert!(!tensors.is_empty(), "cat: no tensors given");
        let first = &tensors[0];
        let d = first.shape().axis(dim, "cat");
        for t in tensors {
            let same = t.rank() == first.rank()
                && t.dims()
                    .iter()
                    .zip(first.dims())
                    .enumerate()
                    .all(|(i, (a, b))| i == d || a == b);
            assert!(
                same,
                "cat: shapes {:?} and {:?} differ outside dim {d}",
                first.shape(),
                t.shape()
            );
        }
        let mut dims = first.dims().to_vec();
        dims[d] = tensors.iter().map(|t| t.dims()[d]).sum();
        let shape = Shape::new(dims);
        let mut start = 0;
        let pieces: Vec<(usize, &Tensor)> = tensors
            .iter()
            .map(|t| {
                start += t.dims()[d];
                (start - t.dims()[d], t)
            })
            .collect();
        let out = placed_along("cat", &shape, d, &pieces);
        Tensor::from_op(out, shape, Op::Cat(tensors.to_vec(), d))
    }

    /// Stacks same-shaped tensors along a new dimension `dim`.
    pub fn stack(tensors: &[Tensor], dim: impl Dim) -> Tensor {
        assert!(!tensors.is_empty(), "stack: no tensors given");
        let first = tensors[0].shape();
        for t in tensors {
            assert_eq!(
                t.shape(),
                first,
                "stack: shapes {:?} and {:?} differ",
                first,
                t.shape()
            );
        }
        let dim = first.new_axis(dim, "stack");
        let parts: Vec<Tensor> = tensors.iter().map(|t| t.unsqueeze(dim)).collect();
        Tensor::cat(&parts, dim)
    }

    /// Zero-pads along `dim` so this tensor sits at `start..` of a dimension of
    /// size `full` (the adjoint of `narrow`).
    pub(crate) fn pad_dim(&self, dim: usize, start: usize, full: usize) -> Tensor {
        let len = self.dims()[dim];
        // The zero parts of the graph's `cat` are broadcast views of one
        // zero: the output is zeroed once and only this tensor is copied
        // (a `cat` of materialised zeros wrote the padding three times, 7%
        // of an LSTM step whose loss reads only the last time step).
        let zeros = |n: usize| {
            let mut d = self.dims().to_vec();
            d[dim] = n;
            Tensor::zeros_on(vec![1; d.len()], self.device()).broadcast_to(d)
        };
        let mut parts = Vec::with_capacity(3);
        if start > 0 {
            parts.push(zeros(start));
        }
        parts.push(self.clone());
        if start + len < full {
            parts.push(zeros(full - start - len));
        }
        let mut dims = self.dims().to_vec();
        dims[dim] = full;
        let shape = Shape::new(dims);
        let out = placed_along("pad", &shape, dim, &[(start, self)]);
        Tensor::from_op(out, shape, Op::Cat(parts, dim))
    }
}

/// A zeroed contiguous `shape` with each `(start, t)` copied into its slice
/// `start..start + len(t)` along `dim` (on the first piece's device).
fn placed_along(op: &str, shape: &Shape, dim: usize, pieces: &[(usize, &Tensor)]) -> Storage {
    let mut out = Storage::full(shape.numel(), 0.0, pieces[0].1.device());
    let full = crate::layout::Layout::contiguous(shape.clone());
    let refs: Vec<&Tensor> = pieces.iter().map(|&(_, t)| t).collect();
    with_storages(op, &refs, |s| {
        for (&(start, t), s) in pieces.iter().zip(s) {
            let part = full.narrow(dim, start, t.dims()[dim]);
            Storage::copy_into(&mut out, &part, view(s, t.layout()));
        }
    });
    out
}
