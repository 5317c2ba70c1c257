//! Scores read off a classifier's predictions: the Inception Score and the
//! share of each class.

use crate::Tensor;

/// The Inception Score (Salimans et al. 2016) of class probabilities
/// `p(y|x)`, one row per sample: `exp(mean_x KL(p(y|x) ‖ p(y)))` with
/// `p(y) = mean_x p(y|x)`, computed in f64 with `0 · log 0 = 0`.
///
/// It runs from 1 (every sample gets the same prediction, or none is
/// confident) to the number of classes (every sample is classified with
/// certainty and the classes are equally frequent).
///
/// # Shapes
/// `probs [N, C]` (rows summing to 1) -> scalar.
///
/// # Panics
/// When `probs` is not a non-empty matrix.
pub fn inception_score(probs: &Tensor) -> f64 {
    let (n, c) = matrix_dims("inception_score", probs);
    let p: Vec<f64> = probs.to_vec().into_iter().map(f64::from).collect();
    let marginal = column_means(&p, n, c);
    let kl_sum: f64 = p
        .chunks_exact(c)
        .map(|row| {
            row.iter()
                .zip(&marginal)
                .filter(|(pi, _)| **pi > 0.0)
                .map(|(pi, mi)| pi * (pi.ln() - mi.ln()))
                .sum::<f64>()
        })
        .sum();
    (kl_sum / n as f64).exp()
}

/// The share of samples whose most probable class is each class.
///
/// # Shapes
/// `probs [N, C]` (probabilities or scores) -> `C` shares summing to 1.
///
/// # Panics
/// When `probs` is not a non-empty matrix.
pub fn class_shares(probs: &Tensor) -> Vec<f64> {
    let (n, c) = matrix_dims("class_shares", probs);
    let mut counts = vec![0usize; c];
    for k in probs.argmax(-1, false).to_vec() {
        counts[k as usize] += 1;
    }
    counts.into_iter().map(|k| k as f64 / n as f64).collect()
}

fn matrix_dims(op: &str, t: &Tensor) -> (usize, usize) {
    assert!(
        t.rank() == 2 && t.dims()[0] > 0 && t.dims()[1] > 0,
        "{op}: probabilities {:?} must be a non-empty [N, C] matrix",
        t.shape()
    );
    (t.dims()[0], t.dims()[1])
}

fn column_means(p: &[f64], n: usize, c: usize) -> Vec<f64> {
    let mut m = vec![0.0; c];
    for row in p.chunks_exact(c) {
        m.iter_mut().zip(row).for_each(|(m, v)| *m += v);
    }
    m.iter_mut().for_each(|m| *m /= n as f64);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_hot_rows(labels: &[usize], c: usize) -> Tensor {
        let mut v = vec![0.0; labels.len() * c];
        labels
            .iter()
            .enumerate()
            .for_each(|(i, &l)| v[i * c + l] = 1.0);
        Tensor::from_vec(v, [labels.len(), c])
    }

    #[test]
    fn uniform_predictions_score_one() {
        let p = Tensor::full([7, 10], 0.1);
        assert!((inception_score(&p) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn confident_balanced_predictions_score_the_class_count() {
        let labels: Vec<usize> = (0..40).map(|i| i % 10).collect();
        assert!((inception_score(&one_hot_rows(&labels, 10)) - 10.0).abs() < 1e-9);
        // Confident but always the same class: no diversity, score 1.
        assert!((inception_score(&one_hot_rows(&[3; 12], 10)) - 1.0).abs() < 1e-12);
        // Confident, two classes equally often: score 2.
        assert!((inception_score(&one_hot_rows(&[1, 8, 1, 8], 10)) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn shares_count_the_argmax() {
        let s = class_shares(&one_hot_rows(&[0, 2, 2, 2], 3));
        assert_eq!(s, vec![0.25, 0.0, 0.75]);
    }
}
