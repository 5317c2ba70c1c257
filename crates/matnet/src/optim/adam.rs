use super::{Optimizer, state_for};
use crate::autograd::Gradients;
use crate::tensor::Tensor;

/// Adam, and AdamW with decoupled weight decay.
///
/// `m = β₁m + (1-β₁)g`, `v = β₂v + (1-β₂)g²`,
/// `p -= lr · m̂ / (√v̂ + ε)` with bias-corrected `m̂`, `v̂`. Adam's weight decay
/// is L2 (added to `g`); AdamW's is `p -= lr·wd·p`, separate from the moments.
pub struct Adam {
    params: Vec<Tensor>,
    lr: f32,
    betas: (f32, f32),
    eps: f32,
    weight_decay: f32,
    decoupled: bool,
    t: i32,
    m: Vec<Option<Vec<f32>>>,
    v: Vec<Option<Vec<f32>>>,
}

impl Adam {
    /// Adam with PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8).
    pub fn new(params: Vec<Tensor>, lr: f32) -> Adam {
        let n = params.len();
        Adam {
            params,
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            t: 0,
            m: vec![None; n],
            v: vec![None; n],
        }
    }

    /// AdamW: Adam with decoupled weight decay `wd` (PyTorch default 0.01).
    pub fn adamw(params: Vec<Tensor>, lr: f32, wd: f32) -> Adam {
        let mut a = Adam::new(params, lr);
        a.weight_decay = wd;
        a.decoupled = true;
        a
    }

    /// Sets β₁, β₂.
    pub fn betas(mut self, b1: f32, b2: f32) -> Self {
        self.betas = (b1, b2);
        self
    }

    /// Sets ε.
    pub fn eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }

    /// L2 weight decay (for plain Adam; AdamW takes it in [`Adam::adamw`]).
    pub fn weight_decay(mut self, wd: f32) -> Self {
        self.weight_decay = wd;
        self
    }
}

impl Optimizer for Adam {
    fn step(&mut self, grads: &Gradients) {
        self.t += 1;
        let (b1, b2) = self.betas;
        let (lr, eps, wd, decoupled) = (self.lr, self.eps, self.weight_decay, self.decoupled);
        let c1 = 1.0 - b1.powi(self.t);
        let c2 = 1.0 - b2.powi(self.t);
        let step = lr / c1;
        let c2s = c2.sqrt();
        for (i, p) in self.params.iter().enumerate() {
            let Some(g) = grads.get(p) else { continue };
            let n = p.numel();
            let m = state_for(&mut self.m, i, n);
            let v = state_for(&mut self.v, i, n);
            g.with_data(|g| {
                p.update_(|w| {
                    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
                    {
                        let g = if decoupled {
                            *w -= lr * wd * *w;
                            g
                        } else {
                            g + wd * *w
                        };
                        *m = b1 * *m + (1.0 - b1) * g;
                        *v = b2 * *v + (1.0 - b2) * g * g;
                        *w -= step * *m / (v.sqrt() / c2s + eps);
                    }
                })
            });
        }
    }

    fn lr(&self) -> f32 {
        self.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }
}
