//! Indexing: `gather`, `index_select` and their adjoints, `one_hot`.
//! Index tensors hold f32 values that must be whole numbers in range (tensors
//! are f32 only; integers are exact up to 2²⁴).

use super::{view, with_storages};
use crate::autograd::Op;
use crate::backend::Storage;
use crate::shape::{Dim, Shape};
use crate::tensor::Tensor;

/// Checks that every index value is a whole number in `0..bound`, panicking
/// with the op name on a bad one. The values are read back to the host: the
/// message must name the bad value, and index tensors are small.
fn check_indices(index: &Tensor, bound: usize, op: &str) {
    index.with_data(|v| {
        for &v in v {
            assert!(
                v >= 0.0 && v.fract() == 0.0 && (v as usize) < bound,
                "{op}: index {v} out of range 0..{bound}"
            );
        }
    });
}

fn check_gather_shapes(src: &Tensor, dim: usize, index: &Tensor, op: &str) {
    assert!(
        index.rank() == src.rank()
            && index
                .dims()
                .iter()
                .zip(src.dims())
                .enumerate()
                .all(|(d, (&i, &s))| d == dim || i <= s),
        "{op}: index shape {:?} does not fit source shape {:?} along dim {dim}",
        index.shape(),
        src.shape()
    );
}

impl Tensor {
    /// `out[i][j] = self[i][index[i][j]]` for `dim = 1` (and likewise for any
    /// dim), as `torch.gather`.
    ///
    /// # Shapes
    /// `index` has the rank of `self`; output has `index`'s shape.
    pub fn gather(&self, dim: impl Dim, index: &Tensor) -> Tensor {
        let d = self.shape().axis(dim, "gather");
        check_gather_shapes(self, d, index, "gather");
        check_indices(index, self.dims()[d], "gather");
        let out = with_storages("gather", &[self, index], |s| {
            Storage::gather(view(s[0], self.layout()), d, view(s[1], index.layout()))
        });
        Tensor::from_op(
            out,
            index.shape().clone(),
            Op::Gather(self.clone(), d, index.clone()),
        )
    }

    /// The adjoint of `gather`: a copy of `self` with `src` added at the
    /// gathered positions (`src` has `index`'s shape). No gradient is recorded.
    pub fn scatter_add(&self, dim: impl Dim, index: &Tensor, src: &Tensor) -> Tensor {
        let dim = self.shape().axis(dim, "scatter_add");
        check_gather_shapes(self, dim, index, "scatter_add");
        assert_eq!(
            index.shape(),
            src.shape(),
            "scatter_add: index {:?} and source {:?} differ",
            index.shape(),
            src.shape()
        );
        check_indices(index, self.dims()[dim], "scatter_add");
        let out = with_storages("scatter_add", &[self, index, src], |s| {
            Storage::scatter_add(
                view(s[0], self.layout()),
                dim,
                view(s[1], index.layout()),
                view(s[2], src.layout()),
            )
        });
        Tensor::from_storage(out, self.shape().clone())
    }

    /// Slices along `dim` picked by a 1-D `index`: `[.., D, ..] -> [.., L, ..]`.
    /// (An embedding lookup is `table.index_select(0, &ids)`.)
    pub fn index_select(&self, dim: impl Dim, index: &Tensor) -> Tensor {
        let d = self.shape().axis(dim, "index_select");
        assert_eq!(
            index.rank(),
            1,
            "index_select: index shape {:?} is not 1-D",
            index.shape()
        );
        check_indices(index, self.dims()[d], "index_select");
        let out = with_storages("index_select", &[self, index], |s| {
            Storage::index_select(view(s[0], self.layout()), d, view(s[1], index.layout()))
        });
        let mut dims = self.dims().to_vec();
        dims[d] = index.numel();
        Tensor::from_op(
            out,
            Shape::new(dims),
            Op::IndexSelect(self.clone(), d, index.clone()),
        )
    }

    /// The adjoint of `index_select`: a copy of `self` with the slices of
    /// `src` added at rows `index` along `dim`. No gradient is recorded.
    pub fn index_add(&self, dim: impl Dim, index: &Tensor, src: &Tensor) -> Tensor {
        let dim = self.shape().axis(dim, "index_add");
        check_indices(index, self.dims()[dim], "index_add");
        let mut expect = self.dims().to_vec();
        expect[dim] = index.numel();
        assert!(
            src.dims() == &expect[..],
            "index_add: source shape {:?} does not match {:?}",
            src.shape(),
            expect
        );
        let out = with_storages("index_add", &[self, index, src], |s| {
            Storage::index_add(
                view(s[0], self.layout()),
                dim,
                view(s[1], index.layout()),
                view(s[2], src.layout()),
            )
        });
        Tensor::from_storage(out, self.shape().clone())
    }

    /// One-hot encoding of integer labels: `[..] -> [.., num_classes]`,
    /// as the comparison `labels[.., None] == arange(num_classes)`.
    pub fn one_hot(&self, num_classes: usize) -> Tensor {
        check_indices(self, num_classes, "one_hot");
        let classes = Tensor::from_vec_on(
            (0..num_classes).map(|i| i as f32).collect(),
            [num_classes],
            self.device(),
        );
        self.unsqueeze(self.rank()).eq(&classes)
    }
}
