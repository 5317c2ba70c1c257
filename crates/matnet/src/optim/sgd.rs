use super::{Optimizer, Shared, par_ranges, state_for};
use crate::autograd::Gradients;
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
    velocity: Vec<Option<Vec<f32>>>,
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
        let (lr, mu, wd, nesterov) = (self.lr, self.momentum, self.weight_decay, self.nesterov);
        for (i, p) in self.params.iter().enumerate() {
            let Some(g) = grads.get(p) else { continue };
            let n = p.numel();
            let vel = (mu != 0.0).then(|| Shared(state_for(&mut self.velocity, i, n).as_mut_ptr()));
            g.with_data(|g| {
                p.update_(|w| {
                    let w = Shared(w.as_mut_ptr());
                    par_ranges(n, |s, e| {
                        // SAFETY: buffers hold n elements; ranges are disjoint.
                        let w = unsafe { w.slice(s, e) };
                        let g = &g[s..e];
                        match vel {
                            None => {
                                for (w, &g) in w.iter_mut().zip(g) {
                                    *w -= lr * (g + wd * *w);
                                }
                            }
                            Some(v) => {
                                // SAFETY: as above.
                                let v = unsafe { v.slice(s, e) };
                                for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
                                    let g = g + wd * *w;
                                    *v = mu * *v + g;
                                    *w -= lr * if nesterov { g + mu * *v } else { *v };
                                }
                            }
                        }
                    });
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
