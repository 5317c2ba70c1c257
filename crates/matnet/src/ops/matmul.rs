//! Matrix products: `matmul` (2-D, batched, broadcast), `dot`, `outer`, `kron`.

use super::with_slices;
use crate::autograd::Op;
use crate::backend::cpu::{SendPtr, gemm, threads as pool};
use crate::layout::Layout;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// Below this many multiply-adds per matrix, batched products run one matrix
/// per thread instead of splitting each matrix across threads.
const SMALL_GEMM: usize = 96 * 96 * 96;

impl Tensor {
    /// Matrix product with PyTorch's `matmul` rules.
    ///
    /// # Shapes
    /// - `[M, K] · [K, N] -> [M, N]`
    /// - batched, batch dims broadcast: `[B, M, K] · [B, K, N] -> [B, M, N]`,
    ///   `[B, M, K] · [K, N] -> [B, M, N]`
    /// - a 1-D operand is a row (left) or column (right) vector, and that
    ///   dimension is removed from the result; `[K] · [K] -> []`.
    ///
    /// Transposed views are passed to the kernel by their strides, never copied.
    /// Backward: `grad_A = grad_C · Bᵀ`, `grad_B = Aᵀ · grad_C`.
    ///
    /// ```
    /// use matnet::Tensor;
    /// let a = Tensor::from_vec(vec![1., 2., 3., 4.], [2, 2]);
    /// let b = Tensor::from_vec(vec![5., 6., 7., 8.], [2, 2]);
    /// assert_eq!(a.matmul(&b).to_vec2(), vec![vec![19., 22.], vec![43., 50.]]);
    /// ```
    pub fn matmul(&self, rhs: &Tensor) -> Tensor {
        match (self.rank(), rhs.rank()) {
            (0, _) | (_, 0) => panic!(
                "matmul: shapes {:?} and {:?}: both operands need at least one dimension",
                self.shape(),
                rhs.shape()
            ),
            (1, 1) => {
                let k = self.numel();
                assert_eq!(
                    k,
                    rhs.numel(),
                    "matmul: shapes {:?} and {:?}: lengths differ",
                    self.shape(),
                    rhs.shape()
                );
                matmul_nd(&self.reshape([1, k]), &rhs.reshape([k, 1])).reshape([])
            }
            (1, _) => self.unsqueeze(0).matmul(rhs).squeeze(-2),
            (_, 1) => self.matmul(&rhs.unsqueeze(1)).squeeze(-1),
            _ => matmul_nd(self, rhs),
        }
    }

    /// Dot product of two vectors: `Σ aᵢ bᵢ`.
    pub fn dot(&self, rhs: &Tensor) -> Tensor {
        assert!(
            self.rank() == 1 && rhs.rank() == 1,
            "dot: shapes {:?} and {:?} are not both vectors",
            self.shape(),
            rhs.shape()
        );
        self.matmul(rhs)
    }

    /// Outer product `a bᵀ` of two vectors: `[M] ⊗ [N] -> [M, N]`.
    pub fn outer(&self, rhs: &Tensor) -> Tensor {
        assert!(
            self.rank() == 1 && rhs.rank() == 1,
            "outer: shapes {:?} and {:?} are not both vectors",
            self.shape(),
            rhs.shape()
        );
        self.unsqueeze(1).mul(&rhs.unsqueeze(0))
    }

    /// Kronecker product of two matrices: block `(i, j)` of the result is
    /// `A[i][j] · B`.
    ///
    /// # Shapes
    /// `[M, N] ⊗ [P, Q] -> [M·P, N·Q]`
    pub fn kron(&self, rhs: &Tensor) -> Tensor {
        assert!(
            self.rank() == 2 && rhs.rank() == 2,
            "kron: shapes {:?} and {:?} are not both matrices",
            self.shape(),
            rhs.shape()
        );
        let (m, n) = (self.dims()[0], self.dims()[1]);
        let (p, q) = (rhs.dims()[0], rhs.dims()[1]);
        // [M,1,N,1] ⊙ [1,P,1,Q] -> [M,P,N,Q], which row-major is exactly the block matrix.
        self.reshape([m, 1, n, 1])
            .mul(&rhs.reshape([1, p, 1, q]))
            .reshape([m * p, n * q])
    }
}

/// Matrix product of operands of rank ≥ 2.
fn matmul_nd(a: &Tensor, b: &Tensor) -> Tensor {
    let (ra, rb) = (a.rank(), b.rank());
    let (m, k) = (a.dims()[ra - 2], a.dims()[ra - 1]);
    let (k2, n) = (b.dims()[rb - 2], b.dims()[rb - 1]);
    assert_eq!(
        k,
        k2,
        "matmul: shapes {:?} and {:?}: inner dimensions {k} and {k2} differ",
        a.shape(),
        b.shape()
    );
    let batch = Shape::try_broadcast(
        &Shape::from(&a.dims()[..ra - 2]),
        &Shape::from(&b.dims()[..rb - 2]),
    )
    .unwrap_or_else(|| {
        panic!(
            "matmul: shapes {:?} and {:?} cannot be broadcast together (batch dimensions)",
            a.shape(),
            b.shape()
        )
    });
    let nb = batch.numel();
    let with_mat = |r: usize, c: usize| {
        let mut d = batch.dims().to_vec();
        d.extend([r, c]);
        Shape::new(d)
    };
    let la = a.layout().broadcast_to(&with_mat(m, k));
    let lb = b.layout().broadcast_to(&with_mat(k, n));
    let out_shape = with_mat(m, n);
    let nbd = batch.rank();
    let (rsa, csa) = (la.strides()[nbd] as isize, la.strides()[nbd + 1] as isize);
    let (rsb, csb) = (lb.strides()[nbd] as isize, lb.strides()[nbd + 1] as isize);
    let threads = pool::num_threads();

    // Offsets of each matrix in the batch, in batch order.
    let offsets = |l: &Layout| {
        let bl = Layout::from_parts(batch.clone(), l.strides()[..nbd].to_vec(), l.offset());
        let mut v = Vec::with_capacity(nb);
        bl.for_each_index(|i| v.push(i));
        v
    };
    let fill = |out_ptr: SendPtr| {
        with_slices(&[a, b], |s| {
            let (pa, pb) = (s[0].as_ptr(), s[1].as_ptr());
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
                        threads,
                    );
                }
                return;
            }
            let (oa, ob) = (offsets(&la), offsets(&lb));
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
            if m * n * k <= SMALL_GEMM && threads > 1 {
                pool::parallel_for(nb, threads, &|i| one(i, 1));
            } else {
                (0..nb).for_each(|i| one(i, threads));
            }
        })
    };
    // SAFETY: both branches of `fill` write every output matrix in full
    // (GEMMs without accumulate), so no element is left unwritten.
    let out = unsafe { crate::backend::cpu::vec_written_by(out_shape.numel(), fill) };
    Tensor::from_parts(out, out_shape, Some(Op::Matmul(a.clone(), b.clone())))
}

/// Gradients of `C = A·B` (rank ≥ 2): `grad_A = grad_C·Bᵀ`, `grad_B = Aᵀ·grad_C`,
/// each summed over broadcast batch dimensions; only those asked for.
///
/// A 2-D operand that is a transposed view (a Linear layer's `Wᵀ`) gets its
/// gradient in the same transposed layout, computed as `(grad_B)ᵀ = grad_Cᵀ·A`
/// straight into contiguous memory: the transpose in its backward then
/// yields a contiguous `grad_W` with no copy anywhere.
pub(crate) fn matmul_grads(
    a: &Tensor,
    b: &Tensor,
    g: &Tensor,
    need_a: bool,
    need_b: bool,
) -> (Option<Tensor>, Option<Tensor>) {
    let ga = need_a.then(|| {
        if is_transposed_matrix(a) && b.rank() == 2 {
            b.matmul(&g.t()).t() // (grad_A)ᵀ = B·grad_Cᵀ
        } else {
            g.matmul(&b.transpose(-2, -1)).sum_to(a.shape())
        }
    });
    let gb = need_b.then(|| {
        if is_transposed_matrix(b) && a.rank() == 2 {
            g.t().matmul(a).t() // (grad_B)ᵀ = grad_Cᵀ·A
        } else if b.rank() == 2 && a.rank() > 2 {
            // Shared weights: fold the batch into rows, one GEMM `Aᵀ[K×BM] · G[BM×N]`.
            let (k, n) = (a.dim(-1), b.dim(-1));
            let a2 = a.reshape([a.numel() / k.max(1), k]);
            let g2 = g.reshape([g.numel() / n.max(1), n]);
            if is_transposed_matrix(b) {
                g2.t().matmul(&a2).t()
            } else {
                a2.t().matmul(&g2)
            }
        } else {
            a.transpose(-2, -1).matmul(g).sum_to(b.shape())
        }
    });
    (ga, gb)
}

/// A 2-D view whose transpose is contiguous (column-major storage).
fn is_transposed_matrix(t: &Tensor) -> bool {
    t.rank() == 2 && !t.is_contiguous() && t.t().is_contiguous()
}
