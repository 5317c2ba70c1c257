//! Strides and offset over a storage buffer. Transpose, permute, narrow,
//! broadcast and (contiguous) reshape only build a new `Layout`; no data moves.

use crate::shape::Shape;

/// How a tensor's logical elements map onto its storage: element
/// `(i0, i1, ...)` lives at `offset + Σ ik·strides[k]`. A stride of 0 repeats
/// an element (broadcasting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Shape,
    strides: Vec<usize>,
    offset: usize,
}

impl Layout {
    /// The row-major layout of a fresh buffer.
    pub fn contiguous(shape: Shape) -> Self {
        let strides = shape.contiguous_strides();
        Layout {
            shape,
            strides,
            offset: 0,
        }
    }

    /// A layout from explicit parts (kernels that walk sub-layouts).
    pub(crate) fn from_parts(shape: Shape, strides: Vec<usize>, offset: usize) -> Self {
        Layout {
            shape,
            strides,
            offset,
        }
    }

    /// The logical shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// Stride of each dimension, in elements.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Index of the first element in storage.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// True when the elements are stored row-major without gaps, so the data
    /// is the slice `storage[offset..offset + numel]`.
    pub fn is_contiguous(&self) -> bool {
        let mut acc = 1;
        for (&d, &s) in self.shape.dims().iter().zip(&self.strides).rev() {
            if d != 1 && s != acc {
                return false;
            }
            acc *= d;
        }
        true
    }

    /// Swaps the order of dimensions: output dim `i` is input dim `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Layout {
        let dims = self.shape.dims();
        let mut seen = vec![false; dims.len()];
        assert!(
            perm.len() == dims.len()
                && perm
                    .iter()
                    .all(|&p| p < dims.len() && !std::mem::replace(&mut seen[p], true)),
            "permute: {perm:?} is not a permutation of the dimensions of shape {:?}",
            self.shape
        );
        Layout {
            shape: Shape::new(perm.iter().map(|&p| dims[p]).collect::<Vec<_>>()),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        }
    }

    /// Elements `start..start + len` of dimension `dim`.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Layout {
        let d = self.shape.dims()[dim];
        assert!(
            start + len <= d,
            "narrow: range {start}..{} out of bounds for dim {dim} of shape {:?}",
            start + len,
            self.shape
        );
        let mut dims = self.shape.dims().to_vec();
        dims[dim] = len;
        Layout {
            shape: Shape::new(dims),
            strides: self.strides.clone(),
            offset: self.offset + start * self.strides[dim],
        }
    }

    /// A view of this layout broadcast to `target` (leading dims added, size-1
    /// dims repeated with stride 0).
    pub fn broadcast_to(&self, target: &Shape) -> Layout {
        assert!(
            self.shape.broadcasts_to(target),
            "broadcast_to: shape {:?} cannot be broadcast to {:?}",
            self.shape,
            target
        );
        let extra = target.rank() - self.shape.rank();
        let mut strides = vec![0; target.rank()];
        for (i, s) in strides.iter_mut().enumerate().skip(extra) {
            let k = i - extra;
            *s = if self.shape.dims()[k] == 1 && target.dims()[i] != 1 {
                0
            } else {
                self.strides[k]
            };
        }
        Layout {
            shape: target.clone(),
            strides,
            offset: self.offset,
        }
    }

    /// The same elements under a new shape, when that needs no copy (the
    /// layout is contiguous). Returns `None` otherwise.
    pub fn reshape(&self, shape: &Shape) -> Option<Layout> {
        if !self.is_contiguous() {
            return None;
        }
        let mut l = Layout::contiguous(shape.clone());
        l.offset = self.offset;
        Some(l)
    }

    /// Calls `f(storage_index)` for every element in row-major logical order.
    /// The innermost dimension runs as a tight loop.
    pub fn for_each_index(&self, mut f: impl FnMut(usize)) {
        let dims = self.shape.dims();
        if dims.contains(&0) {
            return;
        }
        if dims.is_empty() {
            f(self.offset);
            return;
        }
        let r = dims.len();
        let (inner, inner_stride) = (dims[r - 1], self.strides[r - 1]);
        let mut idx = vec![0usize; r - 1];
        let mut base = self.offset;
        loop {
            for j in 0..inner {
                f(base + j * inner_stride);
            }
            // Odometer increment over the outer dimensions.
            let mut k = r - 1;
            loop {
                if k == 0 {
                    return;
                }
                k -= 1;
                idx[k] += 1;
                base += self.strides[k];
                if idx[k] < dims[k] {
                    break;
                }
                base -= idx[k] * self.strides[k];
                idx[k] = 0;
            }
        }
    }
}
