//! Multi-layer perceptrons: the seed report's column-convention network and
//! the usual row-convention MLP.

use crate::backend::kernels::{DenseReluDense, Samples, dense_relu_dense_grads, num_threads};
use crate::data::UnitPixels;
use crate::nn::{Dropout, Init, Linear, Module, Relu, Sequential, prefixed};
use crate::{Device, Error, Gradients, Result, Rng, Tensor};

use super::ModelConfig;

/// The seed report's network, samples as columns:
/// `Z₁ = W₁·X + b₁`, `A₁ = ReLU(Z₁)`, `Z₂ = W₂·A₁ + b₂`, softmax over each column.
/// `X` is `[784, N]`: the transpose of the `[N, 784]` batch, taken as a view.
/// Weights keep PyTorch's `[D_out, D_in]` layout, which is exactly the
/// column-convention `W` of the report.
///
/// # Shapes
/// `[N, rows·cols] -> [N, classes]` (logits; softmax is applied in the loss).
pub struct SeedMlp {
    l1: Linear,
    l2: Linear,
}

impl SeedMlp {
    /// `Dense(rows·cols → hidden[0])`, `Dense(hidden[0] → classes)`, every
    /// weight and bias from `U(±0.5)` as in the report.
    pub fn new(cfg: &ModelConfig, rng: &mut Rng) -> Result<SeedMlp> {
        let &[h] = cfg.hidden.as_slice() else {
            return Err(Error::Invalid(format!(
                "seed-mlp has exactly one hidden layer, got {:?}",
                cfg.hidden
            )));
        };
        let u = Init::Uniform(-0.5, 0.5);
        Ok(SeedMlp {
            l1: Linear::with_init(cfg.rows * cfg.cols, h, u, u, rng),
            l2: Linear::with_init(h, cfg.classes, u, u, rng),
        })
    }
}

impl SeedMlp {
    /// Loss, accuracy and the gradient of every parameter for one
    /// cross-entropy step on `x` `[N, D]` with class indices `labels` `[N]`,
    /// from the CPU backend's fused kernel, which reads `X` once where the
    /// composed graph reads it twice (see `backend/cpu/dense_relu_dense/`).
    /// The same numbers as `cross_entropy(&self.forward(x), labels)` and its
    /// backward pass, up to float rounding (summation order).
    ///
    /// `None` when the kernel does not apply (a tensor off the CPU device, or
    /// shapes the network does not take): then use the composed graph.
    pub fn fused_grads(&self, x: &Tensor, labels: &Tensor) -> Option<FusedStep> {
        self.fused(x, None, labels)
    }

    /// [`SeedMlp::fused_grads`] on `x.images()`, the kernel streaming the
    /// grey-level bytes instead of the f32 values (a quarter of the memory);
    /// the same bits as from the f32 images (tested).
    pub fn fused_grads_pixels(&self, x: &UnitPixels, labels: &Tensor) -> Option<FusedStep> {
        self.fused(x.images(), Some(x.levels()), labels)
    }

    /// `levels`, when given, are the grey levels of `x`'s values.
    fn fused(&self, x: &Tensor, levels: Option<&[u8]>, labels: &Tensor) -> Option<FusedStep> {
        let (w1, w2) = (&self.l1.weight, &self.l2.weight);
        let (b1, b2) = (self.l1.bias.as_ref()?, self.l2.bias.as_ref()?);
        let (h, d, c) = (w1.dims()[0], w1.dims()[1], w2.dims()[0]);
        let on_cpu = [x, labels, w1, b1, w2, b2]
            .iter()
            .all(|t| t.device() == Device::Cpu);
        if !on_cpu || x.dims() != [labels.numel(), d] || labels.rank() != 1 {
            return None;
        }
        let g = x.with_data(|x| {
            labels.with_data(|labels| {
                w1.with_data(|w1| {
                    b1.with_data(|b1| {
                        w2.with_data(|w2| {
                            b2.with_data(|b2| {
                                let net = DenseReluDense {
                                    w1,
                                    b1,
                                    w2,
                                    b2,
                                    d,
                                    h,
                                    c,
                                };
                                let x = match levels {
                                    Some(levels) => Samples::Levels(levels),
                                    None => Samples::F32(x),
                                };
                                dense_relu_dense_grads(&net, x, labels, num_threads())
                            })
                        })
                    })
                })
            })
        });
        let mut grads = Gradients::default();
        for (p, v) in [
            (w1, g.grad_w1),
            (b1, g.grad_b1),
            (w2, g.grad_w2),
            (b2, g.grad_b2),
        ] {
            grads.insert(
                p.id(),
                Tensor::from_vec_on(v, p.shape().clone(), Device::Cpu),
            );
        }
        Some(FusedStep {
            loss: g.loss,
            accuracy: g.correct as f32 / labels.numel().max(1) as f32,
            grads,
        })
    }
}

/// What [`SeedMlp::fused_grads`] computes.
pub struct FusedStep {
    /// Mean cross-entropy.
    pub loss: f32,
    /// Fraction of samples classified correctly (before the update).
    pub accuracy: f32,
    /// Gradients of the four parameters.
    pub grads: Gradients,
}

impl Module for SeedMlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        let cols = x.t(); // [784, N], no copy
        let bias = |l: &Linear| l.bias.as_ref().expect("seed-mlp has biases").unsqueeze(1);
        let a1 = self.l1.weight.matmul(&cols).add(&bias(&self.l1)).relu(); // [10, N]
        let z2 = self.l2.weight.matmul(&a1).add(&bias(&self.l2)); // [10, N]
        z2.t() // logits as rows [N, 10]
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed(0, self.l1.named_parameters());
        p.extend(prefixed(2, self.l2.named_parameters()));
        p
    }

    fn describe(&self) -> String {
        format!(
            "SeedMlp[columns: W1 {:?}, ReLU, W2 {:?}, Softmax]",
            self.l1.weight.dims(),
            self.l2.weight.dims()
        )
    }
}

/// `Linear, ReLU[, Dropout]` per hidden width, then `Linear(→ classes)`;
/// Kaiming-uniform weights and zero biases in the hidden layers. Dropout
/// layer `i` draws from its own stream seeded `seed + 1000 + i`.
///
/// # Shapes
/// `[N, rows·cols] -> [N, classes]`.
pub fn mlp(cfg: &ModelConfig, seed: u64, rng: &mut Rng) -> Sequential {
    let mut seq = Sequential::new();
    let mut d = cfg.rows * cfg.cols;
    for (i, &h) in cfg.hidden.iter().enumerate() {
        seq = seq
            .append(Linear::with_init(
                d,
                h,
                Init::KaimingUniform,
                Init::Zeros,
                rng,
            ))
            .append(Relu);
        if cfg.dropout > 0.0 {
            seq = seq.append(Dropout::new(
                cfg.dropout,
                seed.wrapping_add(1000 + i as u64),
            ));
        }
        d = h;
    }
    seq.append(Linear::new(d, cfg.classes, rng))
}
