//! Improved precision and recall of a generative model (Kynkäänniemi et al.
//! 2019): each set's manifold is the union of balls around its points, each
//! ball reaching the point's k-th nearest neighbour in the same set.

use crate::{Tensor, no_grad};

/// Rows per block of the pairwise distance matrix: `512 × N` f32 values
/// (20 MB for N = 10,000) at a time instead of all `N × M`.
const BLOCK: usize = 512;

/// `(precision, recall)` of the `fake` points against the `real` ones:
/// precision is the share of fake points inside the real manifold (how many
/// samples look real), recall the share of real points inside the fake
/// manifold (how much of the real variety the samples cover). Both lie in
/// `[0, 1]`; a point lies inside a manifold when its distance to one of the
/// manifold's points is at most that point's k-NN radius.
///
/// Squared distances are `‖a‖² + ‖b‖² − 2·a·bᵀ`, one matrix product per
/// block, after moving both sets by the mean of `real` (smaller norms, less
/// cancellation in f32).
///
/// # Shapes
/// `real [N, D]`, `fake [M, D]`, with `N, M > k`.
///
/// # Panics
/// When the shapes disagree or a set has no more than `k` points.
pub fn precision_recall(real: &Tensor, fake: &Tensor, k: usize) -> (f64, f64) {
    assert!(
        real.rank() == 2 && fake.rank() == 2 && real.dims()[1] == fake.dims()[1],
        "precision_recall: real {:?} and fake {:?} must be [N, D] and [M, D]",
        real.shape(),
        fake.shape()
    );
    assert!(
        k > 0 && real.dims()[0] > k && fake.dims()[0] > k,
        "precision_recall: k = {k} needs more than k points in each set, got {} real and {} fake",
        real.dims()[0],
        fake.dims()[0]
    );
    let _g = no_grad();
    let centre = real.mean(&[0], true);
    let (real, fake) = (
        real.sub(&centre).contiguous(),
        fake.sub(&centre).contiguous(),
    );
    let real_radii = knn_radii(&real, k);
    let fake_radii = knn_radii(&fake, k);
    (
        share_inside(&fake, &real, &real_radii),
        share_inside(&real, &fake, &fake_radii),
    )
}

/// Squared distances `[rows of a, rows of b]` for rows `start..end` of `a`.
fn squared_distances(
    a: &Tensor,
    b: &Tensor,
    b_norms: &Tensor,
    start: usize,
    end: usize,
) -> Vec<f32> {
    let block = a.narrow(0, start, end - start);
    let a_norms = block.sqr().sum(&[1], true); // [B, 1]
    let cross = block.matmul(&b.transpose(0, 1)); // [B, M]
    a_norms
        .add(&b_norms.reshape([1, b.dims()[0]]))
        .sub(&cross.mul_scalar(2.0))
        .to_vec()
}

/// Squared distance from each point to its k-th nearest other point.
fn knn_radii(x: &Tensor, k: usize) -> Vec<f32> {
    let n = x.dims()[0];
    let norms = x.sqr().sum(&[1], false);
    let mut radii = Vec::with_capacity(n);
    let mut row_buf = Vec::with_capacity(n);
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let d = squared_distances(x, x, &norms, start, end);
        for (r, row) in d.chunks_exact(n).enumerate() {
            row_buf.clear();
            // The point itself is not its own neighbour.
            row_buf.extend(
                row.iter()
                    .enumerate()
                    .filter(|&(j, _)| j != start + r)
                    .map(|(_, &v)| v.max(0.0)),
            );
            let (_, kth, _) = row_buf.select_nth_unstable_by(k - 1, f32::total_cmp);
            radii.push(*kth);
        }
    }
    radii
}

/// Share of the rows of `x` within `radii[j]` of some row `j` of `centres`.
fn share_inside(x: &Tensor, centres: &Tensor, radii: &[f32]) -> f64 {
    let (n, m) = (x.dims()[0], centres.dims()[0]);
    let norms = centres.sqr().sum(&[1], false);
    let mut inside = 0usize;
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let d = squared_distances(x, centres, &norms, start, end);
        inside += d
            .chunks_exact(m)
            .filter(|row| row.iter().zip(radii).any(|(&d, &r)| d <= r))
            .count();
    }
    inside as f64 / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    #[test]
    fn identical_sets_have_full_precision_and_recall() {
        let x = Tensor::randn([600, 5], 0.0, 1.0, &mut Rng::new(1));
        assert_eq!(precision_recall(&x, &x, 3), (1.0, 1.0));
    }

    #[test]
    fn disjoint_sets_have_none() {
        let x = Tensor::randn([300, 4], 0.0, 1.0, &mut Rng::new(2));
        let y = Tensor::randn([200, 4], 0.0, 1.0, &mut Rng::new(3)).add_scalar(50.0);
        assert_eq!(precision_recall(&x, &y, 3), (0.0, 0.0));
    }

    #[test]
    fn half_real_samples_of_one_mode_give_half_precision_and_half_recall() {
        // Real: two well separated clusters of 500. Fake: copies of the
        // first cluster (mode collapse) plus 500 points far from both.
        // Precision: the copies are inside, the far points outside: 1/2.
        // Recall: the first cluster is covered, the second is not: 1/2.
        let a = Tensor::randn([500, 3], 0.0, 1.0, &mut Rng::new(4));
        let b = Tensor::randn([500, 3], 0.0, 1.0, &mut Rng::new(5)).add_scalar(20.0);
        let far = Tensor::randn([500, 3], 0.0, 1.0, &mut Rng::new(6)).add_scalar(-100.0);
        let real = Tensor::cat(&[a.clone(), b], 0);
        let fake = Tensor::cat(&[a, far], 0);
        assert_eq!(precision_recall(&real, &fake, 3), (0.5, 0.5));
    }

    #[test]
    fn radius_is_the_kth_neighbour_excluding_the_point() {
        // Points on a line at 0, 1, 3, 7: the 2nd nearest of 0 is 3 (d² = 9), of 3 it is 0.
        let x = Tensor::from_vec(vec![0.0, 1.0, 3.0, 7.0], [4, 1]);
        assert_eq!(knn_radii(&x, 2), vec![9.0, 4.0, 9.0, 36.0]);
    }
}
