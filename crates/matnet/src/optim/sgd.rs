use super::{Optimizer, OptimizerState, copy_buffers, restore_buffers, update};
use crate::Result;
use crate::autograd::Gradients;
use crate::backend::OptimRule;
use crate::tensor::Tensor;

/// Stochastic gradient descent with optional momentum, Nesterov momentum and
/// L2 weight decay, following PyTorch's update:
/// `g += wd·p; v = μ·v + g; p -= lr·(nesterov ? g + μ·v : v)`.
pub struct Sgd {
    params: Vec<Tensor>,
    lr: f32,
    momentum: f32,
    nesterov: bool,
    weight_decay: f32,
    velocity: Vec<Option<Tensor>>,
}

impl Sgd {
    /// Plain gradient descent `p -= lr·g`.
    pub fn new(params: Vec<Tensor>, lr: f32) -> Sgd {
        let n = params.len();
        Sgd {
            params,
            lr,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            velocity: vec![None; n],
        }
    }

    /// Sets the momentum factor μ.
    pub fn momentum(mut self, mu: f32) -> Self {
        self.momentum = mu;
        self
    }

    /// Uses Nesterov momentum.
    pub fn nesterov(mut self, on: bool) -> Self {
        self.nesterov = on;
        self
    }

    /// L2 weight decay added to the gradient.
    pub fn weight_decay(mut self, wd: f32) -> Self {
        self.weight_decay = wd;
        self
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &Gradients) {
        let rule = OptimRule::Sgd {
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            nesterov: self.nesterov,
        };
        for (i, p) in self.params.iter().enumerate() {
            if let Some(g) = grads.get(p) {
                update(&mut self.velocity, i, p, g, rule);
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
            step: 0,
            buffers: copy_buffers(&self.velocity),
        }
    }

    fn load_state_dict(&mut self, state: &OptimizerState) -> Result<()> {
        let per_element = usize::from(self.momentum != 0.0);
        self.velocity = restore_buffers(&self.params, per_element, &state.buffers)?;
        Ok(())
    }
}
