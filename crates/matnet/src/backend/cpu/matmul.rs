//! Batched, strided matrix products on the packed GEMM.

use super::{SendPtr, gemm, threads, vec_written_by};
use crate::layout::Layout;
use crate::shape::Shape;

/// Below this many multiply-adds per matrix, batched products run one matrix
/// per thread instead of splitting each matrix across threads.
const SMALL_GEMM: usize = 96 * 96 * 96;

/// `[B.., M, K] · [B.., K, N] -> [B.., M, N]` for two views whose batch
/// dimensions are already broadcast to the same shape. Transposed views are
/// passed to the GEMM by their strides, never copied.
pub fn matmul(a: &[f32], la: &Layout, b: &[f32], lb: &Layout) -> Vec<f32> {
    let nbd = la.shape().rank() - 2;
    let (m, k) = (la.shape().dims()[nbd], la.shape().dims()[nbd + 1]);
    let n = lb.shape().dims()[nbd + 1];
    let batch = Shape::from(&la.shape().dims()[..nbd]);
    let nb = batch.numel();
    let (rsa, csa) = (la.strides()[nbd] as isize, la.strides()[nbd + 1] as isize);
    let (rsb, csb) = (lb.strides()[nbd] as isize, lb.strides()[nbd + 1] as isize);
    let nthreads = threads::num_threads();

    // Offsets of each matrix in the batch, in batch order.
    let offsets = |l: &Layout| {
        let bl = Layout::from_parts(batch.clone(), l.strides()[..nbd].to_vec(), l.offset());
        let mut v = Vec::with_capacity(nb);
        bl.for_each_index(|i| v.push(i));
        v
    };
    let fill = |out_ptr: SendPtr| {
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // `[B, M, K] · [K, N]` with A's batch laid out like extra rows is one
        // tall product: fold it, as one big GEMM beats B small ones.
        let b_shared = lb.strides()[..nbd].iter().all(|&st| st == 0);
        let mut expect = rsa as usize * m;
        let mut a_foldable = true;
        for j in (0..nbd).rev() {
            if batch.dims()[j] != 1 && la.strides()[j] != expect {
                a_foldable = false;
            }
            expect *= batch.dims()[j];
        }
        if nb == 1 || (b_shared && a_foldable && m > 0) {
            // SAFETY: the layouts were checked against the storage sizes when built.
            unsafe {
                gemm::sgemm(
                    nb * m,
                    n,
                    k,
                    pa.add(la.offset()),
                    rsa,
                    csa,
                    pb.add(lb.offset()),
                    rsb,
                    csb,
                    out_ptr.get(),
                    n as isize,
                    1,
                    false,
                    nthreads,
                );
            }
            return;
        }
        let (oa, ob) = (offsets(la), offsets(lb));
        let (pa, pb) = (SendPtr(pa as *mut f32), SendPtr(pb as *mut f32));
        let one = |i: usize, t: usize| {
            // SAFETY: offsets come from validated layouts; each task writes its own matrix.
            unsafe {
                gemm::sgemm(
                    m,
                    n,
                    k,
                    pa.get().add(oa[i]),
                    rsa,
                    csa,
                    pb.get().add(ob[i]),
                    rsb,
                    csb,
                    out_ptr.get().add(i * m * n),
                    n as isize,
                    1,
                    false,
                    t,
                );
            }
        };
        if m * n * k <= SMALL_GEMM && nthreads > 1 {
            threads::parallel_for(nb, nthreads, &|i| one(i, 1));
        } else {
            (0..nb).for_each(|i| one(i, nthreads));
        }
    };
    // SAFETY: both branches of `fill` write every output matrix in full
    // (GEMMs without accumulate), so no element is left unwritten.
    unsafe { vec_written_by(nb * m * n, fill) }
}
