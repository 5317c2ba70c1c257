//! Matrix products: `matmul` (2-D, batched, broadcast), `dot`, `outer`, `kron`.

use super::{view, with_storages};
use crate::autograd::Op;
use crate::backend::Storage;
use crate::shape::Shape;
use crate::tensor::Tensor;

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
    let with_mat = |r: usize, c: usize| {
        let mut d = batch.dims().to_vec();
        d.extend([r, c]);
        Shape::new(d)
    };
    let la = a.layout().broadcast_to(&with_mat(m, k));
    let lb = b.layout().broadcast_to(&with_mat(k, n));
    let out = with_storages("matmul", &[a, b], |s| {
        Storage::matmul(view(s[0], &la), view(s[1], &lb))
    });
    Tensor::from_op(out, with_mat(m, n), Op::Matmul(a.clone(), b.clone()))
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
