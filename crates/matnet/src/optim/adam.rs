use super::{Optimizer, OptimizerState, copy_buffers, restore_buffers, update};
use crate::autograd::Gradients;
use crate::backend::OptimRule;
use crate::tensor::Tensor;
use crate::{Error, Result};

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
    /// `m` then `v` for each parameter, in one buffer.
    state: Vec<Option<Tensor>>,
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
            state: vec![None; n],
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
        let c1 = 1.0 - b1.powi(self.t);
        let c2 = 1.0 - b2.powi(self.t);
        let rule = OptimRule::Adam {
            b1,
            b2,
            step: self.lr / c1,
            inv_c2s: 1.0 / c2.sqrt(),
            eps: self.eps,
            l2: if self.decoupled {
                0.0
            } else {
                self.weight_decay
            },
            shrink: if self.decoupled {
                1.0 - self.lr * self.weight_decay
            } else {
                1.0
            },
        };
        for (i, p) in self.params.iter().enumerate() {
            if let Some(g) = grads.get(p) {
                update(&mut self.state, i, p, g, rule);
            }
        }
    }

    fn lr(&self) -> f32 {
        self.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn state_dict(&self) -> OptimizerState {
        OptimizerState {
            step: self.t as u64,
            buffers: copy_buffers(&self.state),
        }
    }

    fn load_state_dict(&mut self, state: &OptimizerState) -> Result<()> {
        let t = i32::try_from(state.step).map_err(|_| {
            Error::Invalid(format!("Adam step count {} is out of range", state.step))
        })?;
        self.state = restore_buffers(&self.params, 2, &state.buffers)?;
        self.t = t;
        Ok(())
    }
}
