//! Gather/scatter along one axis and row selection, on contiguous buffers
//! with positions already checked by the op.

use crate::shape::Shape;

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

/// `out[p] = x[coords of p with dim replaced by idx[p]]`, shaped like the index.
pub fn gather(x: &[f32], dims: &[usize], dim: usize, idx: &[usize], idims: &[usize]) -> Vec<f32> {
    let stride = Shape::from(dims).contiguous_strides()[dim];
    let mut out = vec![0.0f32; idx.len()];
    for_each_coord(idims, dims, dim, |p, off| out[p] = x[off + idx[p] * stride]);
    out
}

/// The adjoint of [`gather`]: `out[...] += src[p]` at the gathered positions.
pub fn scatter_add(
    out: &mut [f32],
    dims: &[usize],
    dim: usize,
    idx: &[usize],
    idims: &[usize],
    src: &[f32],
) {
    let stride = Shape::from(dims).contiguous_strides()[dim];
    for_each_coord(idims, dims, dim, |p, off| {
        out[off + idx[p] * stride] += src[p]
    });
}

/// The slices `idx` of `x` along `dim`.
pub fn index_select(x: &[f32], dims: &[usize], dim: usize, idx: &[usize]) -> Vec<f32> {
    let outer: usize = dims[..dim].iter().product();
    let inner: usize = dims[dim + 1..].iter().product();
    let dn = dims[dim];
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in idx {
            let s = (o * dn + i) * inner;
            out.extend_from_slice(&x[s..s + inner]);
        }
    }
    out
}

/// The adjoint of [`index_select`]: slice `l` of `src` added at slice `idx[l]`.
pub fn index_add(out: &mut [f32], dims: &[usize], dim: usize, idx: &[usize], src: &[f32]) {
    let outer: usize = dims[..dim].iter().product();
    let inner: usize = dims[dim + 1..].iter().product();
    let dn = dims[dim];
    for o in 0..outer {
        for (l, &i) in idx.iter().enumerate() {
            let dst = (o * dn + i) * inner;
            let from = (o * idx.len() + l) * inner;
            for (a, &b) in out[dst..dst + inner]
                .iter_mut()
                .zip(&src[from..from + inner])
            {
                *a += b;
            }
        }
    }
}
