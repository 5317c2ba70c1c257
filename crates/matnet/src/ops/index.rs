//! Indexing: `gather`, `index_select` and their adjoints, `one_hot`.
//! Index tensors hold f32 values that must be whole numbers in range (tensors
//! are f32 only; integers are exact up to 2²⁴).

use crate::autograd::Op;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// Converts index values, panicking with the op name on a bad one.
fn indices(index: &Tensor, bound: usize, op: &str) -> Vec<usize> {
    index
        .to_vec()
        .into_iter()
        .map(|v| {
            assert!(
                v >= 0.0 && v.fract() == 0.0 && (v as usize) < bound,
                "{op}: index {v} out of range 0..{bound}"
            );
            v as usize
        })
        .collect()
}

/// Calls `f(position, offset_in_full)` for every element of a tensor of
/// shape `sub` (row-major position), where `offset_in_full` is the row-major
/// offset of the same coordinates in a tensor of shape `full`, skipping `dim`.
fn for_each_coord(sub: &[usize], full: &[usize], dim: usize, mut f: impl FnMut(usize, usize)) {
    let strides = Shape::from(full).contiguous_strides();
    let n: usize = sub.iter().product();
    let mut coord = vec![0usize; sub.len()];
    let mut off = 0usize;
    for p in 0..n {
        f(p, off);
        for k in (0..sub.len()).rev() {
            coord[k] += 1;
            if k != dim {
                off += strides[k];
            }
            if coord[k] < sub[k] {
                break;
            }
            if k != dim {
                off -= coord[k] * strides[k];
            }
            coord[k] = 0;
        }
    }
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
    pub fn gather(&self, dim: isize, index: &Tensor) -> Tensor {
        let d = self.shape().axis(dim, "gather");
        check_gather_shapes(self, d, index, "gather");
        let idx = indices(index, self.dims()[d], "gather");
        let stride = self.shape().contiguous_strides()[d];
        let mut out = vec![0.0f32; idx.len()];
        self.with_data(|x| {
            for_each_coord(index.dims(), self.dims(), d, |p, off| {
                out[p] = x[off + idx[p] * stride]
            });
        });
        Tensor::from_parts(
            out,
            index.shape().clone(),
            Some(Op::Gather(self.clone(), d, index.clone())),
        )
    }

    /// The adjoint of `gather`: a copy of `self` with `src` added at the
    /// gathered positions (`src` has `index`'s shape). No gradient is recorded.
    pub fn scatter_add(&self, dim: usize, index: &Tensor, src: &Tensor) -> Tensor {
        check_gather_shapes(self, dim, index, "scatter_add");
        assert_eq!(
            index.shape(),
            src.shape(),
            "scatter_add: index {:?} and source {:?} differ",
            index.shape(),
            src.shape()
        );
        let idx = indices(index, self.dims()[dim], "scatter_add");
        let stride = self.shape().contiguous_strides()[dim];
        let mut out = self.to_vec();
        src.with_data(|s| {
            for_each_coord(index.dims(), self.dims(), dim, |p, off| {
                out[off + idx[p] * stride] += s[p]
            });
        });
        Tensor::from_parts(out, self.shape().clone(), None)
    }

    /// Slices along `dim` picked by a 1-D `index`: `[.., D, ..] -> [.., L, ..]`.
    /// (An embedding lookup is `table.index_select(0, &ids)`.)
    pub fn index_select(&self, dim: isize, index: &Tensor) -> Tensor {
        let d = self.shape().axis(dim, "index_select");
        assert_eq!(
            index.rank(),
            1,
            "index_select: index shape {:?} is not 1-D",
            index.shape()
        );
        let idx = indices(index, self.dims()[d], "index_select");
        let outer: usize = self.dims()[..d].iter().product();
        let inner: usize = self.dims()[d + 1..].iter().product();
        let dn = self.dims()[d];
        let mut out = Vec::with_capacity(outer * idx.len() * inner);
        self.with_data(|x| {
            for o in 0..outer {
                for &i in &idx {
                    let s = (o * dn + i) * inner;
                    out.extend_from_slice(&x[s..s + inner]);
                }
            }
        });
        let mut dims = self.dims().to_vec();
        dims[d] = idx.len();
        Tensor::from_parts(
            out,
            Shape::new(dims),
            Some(Op::IndexSelect(self.clone(), d, index.clone())),
        )
    }

    /// The adjoint of `index_select`: a copy of `self` with the slices of
    /// `src` added at rows `index` along `dim`. No gradient is recorded.
    pub fn index_add(&self, dim: usize, index: &Tensor, src: &Tensor) -> Tensor {
        let idx = indices(index, self.dims()[dim], "index_add");
        let mut expect = self.dims().to_vec();
        expect[dim] = idx.len();
        assert_eq!(
            src.dims(),
            &expect[..],
            "index_add: source shape {:?} does not match {:?}",
            src.shape(),
            expect
        );
        let outer: usize = self.dims()[..dim].iter().product();
        let inner: usize = self.dims()[dim + 1..].iter().product();
        let dn = self.dims()[dim];
        let mut out = self.to_vec();
        src.with_data(|s| {
            for o in 0..outer {
                for (l, &i) in idx.iter().enumerate() {
                    let dst = (o * dn + i) * inner;
                    let from = (o * idx.len() + l) * inner;
                    for (a, &b) in out[dst..dst + inner].iter_mut().zip(&s[from..from + inner]) {
                        *a += b;
                    }
                }
            }
        });
        Tensor::from_parts(out, self.shape().clone(), None)
    }

    /// One-hot encoding of integer labels: `[..] -> [.., num_classes]`.
    pub fn one_hot(&self, num_classes: usize) -> Tensor {
        let idx = indices(self, num_classes, "one_hot");
        let mut out = vec![0.0f32; idx.len() * num_classes];
        for (r, &c) in idx.iter().enumerate() {
            out[r * num_classes + c] = 1.0;
        }
        let mut dims = self.dims().to_vec();
        dims.push(num_classes);
        Tensor::from_parts(out, Shape::new(dims), None)
    }
}
