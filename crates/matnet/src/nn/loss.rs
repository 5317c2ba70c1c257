//! Loss functions. Labels are class indices stored as f32 (`[N]`).

use crate::tensor::Tensor;

/// Mean squared error `mean((ŷ - y)²)`.
pub fn mse_loss(pred: &Tensor, target: &Tensor) -> Tensor {
    pred.sub(target).sqr().mean_all()
}

/// Cross-entropy of raw scores against class indices:
/// `-mean_n log softmax(logits)[n, label_n]`. The log-softmax is one fused,
/// overflow-free kernel; its gradient is `(softmax - onehot) / N`.
///
/// # Shapes
/// logits `[N, C]`, labels `[N]` -> scalar.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Tensor {
    nll_loss(&logits.log_softmax(-1), labels)
}

/// Negative log-likelihood of log-probabilities `[N, C]` at labels `[N]`.
pub fn nll_loss(log_probs: &Tensor, labels: &Tensor) -> Tensor {
    assert!(
        log_probs.rank() == 2 && labels.rank() == 1 && labels.dims()[0] == log_probs.dims()[0],
        "nll_loss: log-probabilities {:?} and labels {:?} do not match ([N, C] and [N])",
        log_probs.shape(),
        labels.shape()
    );
    log_probs.gather(1, &labels.unsqueeze(1)).mean_all().neg()
}

/// Binary cross-entropy of probabilities `p` against targets in `[0, 1]`:
/// `-mean(y log p + (1 - y) log(1 - p))`, with `p` clamped away from 0 and 1.
pub fn binary_cross_entropy(p: &Tensor, target: &Tensor) -> Tensor {
    let p = p.clamp(1e-7, 1.0 - 1e-7);
    let pos = target.mul(&p.log());
    let neg = target.affine(-1.0, 1.0).mul(&p.affine(-1.0, 1.0).log());
    pos.add(&neg).mean_all().neg()
}

/// Binary cross-entropy on raw scores, in the stable form
/// `mean(max(z, 0) - z·y + log(1 + e^(-|z|)))`.
pub fn binary_cross_entropy_with_logits(logits: &Tensor, target: &Tensor) -> Tensor {
    let softplus_neg_abs = logits.abs().neg().exp().add_scalar(1.0).log();
    logits
        .relu()
        .sub(&logits.mul(target))
        .add(&softplus_neg_abs)
        .mean_all()
}

/// L2 penalty `λ/2 · Σ ||W||²` over the given parameters, to add to a loss.
pub fn l2_penalty(params: &[Tensor], lambda: f32) -> Tensor {
    params
        .iter()
        .map(|p| p.sqr().sum_all())
        .reduce(|a, b| a.add(&b))
        .unwrap_or_else(|| Tensor::scalar(0.0))
        .mul_scalar(0.5 * lambda)
}

/// Fraction of rows whose largest score is at the label.
pub fn accuracy(logits: &Tensor, labels: &Tensor) -> f32 {
    let pred = logits.argmax(-1, false).to_vec();
    let lab = labels.to_vec();
    let hits = pred.iter().zip(&lab).filter(|(p, l)| p == l).count();
    hits as f32 / lab.len().max(1) as f32
}
