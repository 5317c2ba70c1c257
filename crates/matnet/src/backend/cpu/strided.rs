//! Walking strided layouts row by row. Adjacent dimensions that are laid out
//! back to back are merged first, so a contiguous tensor is one long row and
//! a bias broadcast over a batch is `N` rows of `D` with a 0 stride.

use super::{SendPtr, threads};
use crate::layout::Layout;

/// Shape and per-operand strides after merging mergeable dimensions.
fn coalesce<const N: usize>(
    dims: &[usize],
    strides: [&[usize]; N],
) -> (Vec<usize>, [Vec<usize>; N]) {
    let mut d: Vec<usize> = Vec::with_capacity(dims.len());
    let mut s: [Vec<usize>; N] = std::array::from_fn(|_| Vec::with_capacity(dims.len()));
    for (i, &n) in dims.iter().enumerate() {
        if n == 1 {
            continue;
        }
        let mergeable = !d.is_empty() && (0..N).all(|k| s[k][s[k].len() - 1] == strides[k][i] * n);
        if mergeable {
            *d.last_mut().unwrap() *= n;
            for k in 0..N {
                *s[k].last_mut().unwrap() = strides[k][i];
            }
        } else {
            d.push(n);
            for k in 0..N {
                s[k].push(strides[k][i]);
            }
        }
    }
    if d.is_empty() {
        d.push(1);
        for sk in s.iter_mut() {
            sk.push(0);
        }
    }
    (d, s)
}

/// Calls `f(row, bases, inner_strides, len)` for every innermost row of the
/// given same-shaped layouts, `row` counting rows in row-major order.
pub fn for_each_row<const N: usize>(
    layouts: [&Layout; N],
    f: impl FnMut(usize, [usize; N], [usize; N], usize),
) {
    if let Some(rows) = Rows::new(layouts) {
        rows.walk(0..rows.count(), f);
    }
}

/// [`for_each_row`] with the rows split between the pool's threads when
/// there are enough elements to pay for the hand-off. Every row has the
/// same length, so row `r` of a contiguous output starts at `r · len`.
pub fn par_for_each_row<const N: usize>(
    layouts: [&Layout; N],
    f: impl Fn(usize, [usize; N], [usize; N], usize) + Sync,
) {
    let Some(rows) = Rows::new(layouts) else {
        return;
    };
    let (count, threads) = (rows.count(), threads::num_threads());
    if threads <= 1 || layouts[0].shape().numel() < 4 * super::PAR_CHUNK {
        rows.walk(0..count, f);
        return;
    }
    let per = count.div_ceil(threads);
    threads::parallel_for(threads, threads, &|t| {
        rows.walk((t * per).min(count)..((t + 1) * per).min(count), &f)
    });
}

/// Sums of consecutive runs of `r` elements of a view in row-major order
/// (a view permuted so the summed dimensions come last): `out[o]` is the
/// sum of elements `o·r .. (o + 1)·r`, read in place, outputs split between
/// threads. `None` when a merged row would straddle two outputs.
pub fn sum_runs(src: &[f32], l: &Layout, r: usize) -> Option<Vec<f32>> {
    let rows = Rows::new([l])?;
    let inner = *rows.dims.last()?;
    if r == 0 || !r.is_multiple_of(inner) {
        return None;
    }
    let per_out = r / inner;
    let outs = rows.count() / per_out;
    let mut out = vec![0.0f32; outs];
    let op = SendPtr(out.as_mut_ptr());
    let tasks = if l.shape().numel() < 4 * super::PAR_CHUNK {
        1
    } else {
        threads::num_threads().min(outs)
    };
    let per = outs.div_ceil(tasks.max(1));
    threads::parallel_for(tasks, threads::num_threads(), &|t| {
        let (lo, hi) = ((t * per).min(outs), ((t + 1) * per).min(outs));
        // SAFETY: tasks own disjoint ranges of `out`, which outlives the call.
        let o = unsafe { op.slice(lo, hi) };
        rows.walk(lo * per_out..hi * per_out, |row, [b], [st], n| {
            let v = if st == 1 {
                super::reduce::sum_row(&src[b..b + n])
            } else {
                (0..n).map(|j| src[b + j * st]).sum()
            };
            o[row / per_out - lo] += v;
        });
    });
    Some(out)
}

/// Same-shaped layouts after merging dimensions: rows of `dims[last]`.
struct Rows<const N: usize> {
    dims: Vec<usize>,
    strides: [Vec<usize>; N],
    offsets: [usize; N],
}

impl<const N: usize> Rows<N> {
    /// `None` for an empty shape.
    fn new(layouts: [&Layout; N]) -> Option<Rows<N>> {
        let dims = layouts[0].shape().dims();
        if dims.contains(&0) {
            return None;
        }
        let (dims, strides) = coalesce::<N>(dims, std::array::from_fn(|k| layouts[k].strides()));
        Some(Rows {
            dims,
            strides,
            offsets: std::array::from_fn(|k| layouts[k].offset()),
        })
    }

    fn count(&self) -> usize {
        self.dims[..self.dims.len() - 1].iter().product()
    }

    /// `f` for the rows `rows`, in order.
    fn walk(
        &self,
        rows: std::ops::Range<usize>,
        mut f: impl FnMut(usize, [usize; N], [usize; N], usize),
    ) {
        let (d, s) = (&self.dims, &self.strides);
        let r = d.len();
        let inner = d[r - 1];
        let inner_strides: [usize; N] = std::array::from_fn(|k| s[k][r - 1]);
        // The multi-index and bases of the first row.
        let mut idx = vec![0usize; r - 1];
        let mut rest = rows.start;
        for k in (0..r - 1).rev() {
            idx[k] = rest % d[k];
            rest /= d[k];
        }
        let mut base: [usize; N] = std::array::from_fn(|j| {
            self.offsets[j] + (0..r - 1).map(|k| idx[k] * s[j][k]).sum::<usize>()
        });
        for row in rows {
            f(row, base, inner_strides, inner);
            let mut k = r - 1;
            loop {
                if k == 0 {
                    break;
                }
                k -= 1;
                idx[k] += 1;
                for (j, b) in base.iter_mut().enumerate() {
                    *b += s[j][k];
                }
                if idx[k] < d[k] {
                    break;
                }
                for (j, b) in base.iter_mut().enumerate() {
                    *b -= idx[k] * s[j][k];
                }
                idx[k] = 0;
            }
        }
    }
}

/// The elements of a strided view, row-major.
pub fn copy_strided(src: &[f32], l: &Layout) -> Vec<f32> {
    if l.is_contiguous() {
        return src[l.offset()..l.offset() + l.shape().numel()].to_vec();
    }
    let mut out = Vec::with_capacity(l.shape().numel());
    for_each_row([l], |_, [b], [s], n| {
        if s == 1 {
            out.extend_from_slice(&src[b..b + n]);
        } else {
            out.extend((0..n).map(|j| src[b + j * s]));
        }
    });
    out
}

/// `f` applied to every element of a view, as a new contiguous buffer.
pub fn map1(src: &[f32], l: &Layout, f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    if l.is_contiguous() {
        let x = &src[l.offset()..l.offset() + l.shape().numel()];
        // SAFETY: `x[start..]` is at least as long as every chunk.
        return unsafe {
            par_fill(x.len(), |start, o| {
                for (o, &v) in o.iter_mut().zip(&x[start..]) {
                    o.write(f(v));
                }
            })
        };
    }
    let mut v = copy_strided(src, l);
    par_chunks(&mut v, |_, o| {
        for o in o.iter_mut() {
            *o = f(*o);
        }
    });
    v
}

/// [`map1`] for a function applied a slice at a time, `f(x, out)` writing
/// every element of `out` from the same-length run `x` of the view (in
/// row-major order): for kernels whose per-element body is too long for
/// LLVM to inline into `map1`'s loop (see [`super::math::gelu_slice`]).
pub fn map1_slices(
    src: &[f32],
    l: &Layout,
    f: impl Fn(&[f32], &mut [std::mem::MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let owned;
    let x = if l.is_contiguous() {
        &src[l.offset()..l.offset() + l.shape().numel()]
    } else {
        owned = copy_strided(src, l);
        &owned[..]
    };
    // SAFETY: `f` writes each whole chunk; `x[s..]` is as long as every chunk.
    unsafe { par_fill(x.len(), |s, o| f(&x[s..s + o.len()], o)) }
}

/// `f(a, b)` elementwise over two views of the same (already broadcast) shape.
pub fn map2(
    a: &[f32],
    la: &Layout,
    b: &[f32],
    lb: &Layout,
    f: impl Fn(f32, f32) -> f32 + Sync,
) -> Vec<f32> {
    let n = la.shape().numel();
    if la.is_contiguous() && lb.is_contiguous() {
        let (x, y) = (
            &a[la.offset()..la.offset() + n],
            &b[lb.offset()..lb.offset() + n],
        );
        // SAFETY: `x[s..]` and `y[s..]` are at least as long as every chunk.
        return unsafe {
            par_fill(n, |s, o| {
                for ((o, &p), &q) in o.iter_mut().zip(&x[s..]).zip(&y[s..]) {
                    o.write(f(p, q));
                }
            })
        };
    }
    // SAFETY: the rows tile the output (row r at r·len), each written whole.
    unsafe {
        super::vec_written_by(n, |op| {
            par_for_each_row([la, lb], |row, [ba, bb], [sa, sb], len| {
                let o = op.uninit_slice(row * len, (row + 1) * len);
                // Specialised inner loops so the common cases vectorise.
                match (sa, sb) {
                    (1, 1) => {
                        for ((o, &p), &q) in
                            o.iter_mut().zip(&a[ba..ba + len]).zip(&b[bb..bb + len])
                        {
                            o.write(f(p, q));
                        }
                    }
                    (1, 0) => {
                        let q = b[bb];
                        for (o, &p) in o.iter_mut().zip(&a[ba..ba + len]) {
                            o.write(f(p, q));
                        }
                    }
                    (0, 1) => {
                        let p = a[ba];
                        for (o, &q) in o.iter_mut().zip(&b[bb..bb + len]) {
                            o.write(f(p, q));
                        }
                    }
                    _ => {
                        for (j, o) in o.iter_mut().enumerate() {
                            o.write(f(a[ba + j * sa], b[bb + j * sb]));
                        }
                    }
                }
            })
        })
    }
}

/// `f(a, b, c)` elementwise over three views of the same shape.
pub fn map3(
    a: &[f32],
    la: &Layout,
    b: &[f32],
    lb: &Layout,
    c: &[f32],
    lc: &Layout,
    f: impl Fn(f32, f32, f32) -> f32,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(la.shape().numel());
    for_each_row([la, lb, lc], |_, [ba, bb, bc], [sa, sb, sc], len| {
        out.extend((0..len).map(|j| f(a[ba + j * sa], b[bb + j * sb], c[bc + j * sc])));
    });
    out
}

/// Runs `f(start, end)` over `0..n` in chunks, on the thread pool when `n`
/// is large enough for a second thread to pay (a hand-off costs ~µs; a
/// 400k-weight Adam update is ~1 ms on one core).
pub(crate) fn par_ranges(n: usize, min_chunks: usize, f: impl Fn(usize, usize) + Sync) {
    let threads = threads::num_threads();
    if threads <= 1 || n < min_chunks * super::PAR_CHUNK {
        f(0, n);
        return;
    }
    let tasks = threads.min(n.div_ceil(super::PAR_CHUNK));
    let per = n.div_ceil(tasks);
    threads::parallel_for(tasks, threads, &|t| f(t * per, ((t + 1) * per).min(n)));
}

/// A vector of `n` floats, `fill(start, chunk)` writing each element of
/// disjoint chunks (in parallel when large) with no zeroing first.
///
/// # Safety
/// Every call of `fill` must write its whole chunk.
unsafe fn par_fill(
    n: usize,
    fill: impl Fn(usize, &mut [std::mem::MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    // SAFETY: the chunks cover 0..n and each is written by `fill`.
    unsafe {
        super::vec_written_by(n, |ptr| {
            par_ranges(n, 4, |start, end| fill(start, ptr.uninit_slice(start, end)))
        })
    }
}

/// `f(start, chunk)` over disjoint chunks of `out`, in parallel when large.
fn par_chunks(out: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync) {
    let ptr = SendPtr(out.as_mut_ptr());
    par_ranges(out.len(), 4, |start, end| {
        // SAFETY: tasks get disjoint ranges of `out`, which outlives the call.
        f(start, unsafe { ptr.slice(start, end) })
    });
}
