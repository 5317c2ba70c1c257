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

/// Binary cross-entropy of probabilities `p` against targets `y` in `[0, 1]`,
/// averaged over every element, as PyTorch's `F.binary_cross_entropy`:
/// `-mean(y · max(log p, -100) + (1 - y) · max(log(1 - p), -100))`.
///
/// The floor at -100 keeps `p = 0` or `p = 1` finite (loss 100 per wrong
/// element, as in PyTorch). Where it applies (`p` or `1 - p` below the
/// smallest normal f32) the gradient is 0; PyTorch divides by
/// `max(p(1 - p), 1e-12)` there instead. Prefer
/// [`binary_cross_entropy_with_logits`] when the scores are available.
///
/// # Shapes
/// `p` and `target` of the same shape (any) -> scalar.
pub fn binary_cross_entropy(p: &Tensor, target: &Tensor) -> Tensor {
    assert_eq!(
        p.shape(),
        target.shape(),
        "binary_cross_entropy: probabilities {:?} and targets {:?} differ in shape",
        p.shape(),
        target.shape()
    );
    let pos = target.mul(&floored_log(p));
    let neg = target
        .affine(-1.0, 1.0)
        .mul(&floored_log(&p.affine(-1.0, 1.0)));
    pos.add(&neg).mean_all().neg()
}

/// `max(log p, -100)` with a finite gradient everywhere.
fn floored_log(p: &Tensor) -> Tensor {
    // log of the clamped value keeps 1/p finite (clamp's gradient is 0 below
    // the floor, and 0 · ∞ would be NaN); `where` then puts PyTorch's -100
    // where p is below the smallest normal f32, whose log is -87.3.
    let log = p.clamp(f32::MIN_POSITIVE, f32::INFINITY).log();
    let tiny = p.lt_scalar(f32::MIN_POSITIVE);
    Tensor::where_cond(&tiny, &Tensor::full(p.shape().clone(), -100.0), &log)
}

/// Binary cross-entropy on raw scores `z` (logits) against targets `y`,
/// averaged over every element, as PyTorch's
/// `F.binary_cross_entropy_with_logits`. Equal to
/// `binary_cross_entropy(sigmoid(z), y)` but computed in the stable form
/// `mean(max(z, 0) - z·y + log(1 + e^(-|z|)))`, exact for any `|z|`: no
/// exponential of a positive number is ever taken.
///
/// # Shapes
/// `logits` and `target` of the same shape (any) -> scalar.
pub fn binary_cross_entropy_with_logits(logits: &Tensor, target: &Tensor) -> Tensor {
    assert_eq!(
        logits.shape(),
        target.shape(),
        "binary_cross_entropy_with_logits: logits {:?} and targets {:?} differ in shape",
        logits.shape(),
        target.shape()
    );
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
