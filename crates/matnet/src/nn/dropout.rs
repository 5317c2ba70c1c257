use std::cell::RefCell;

use super::Module;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// Inverted dropout: in training each element is zeroed with probability
/// `p` and the survivors scaled by `1/(1-p)` (a Hadamard product with a random
/// mask); in evaluation it is the identity.
///
/// # Shapes
/// any -> same.
pub struct Dropout {
    p: f32,
    training: bool,
    // The mask generator advances on every forward call, which takes `&self`.
    rng: RefCell<Rng>,
}

impl Dropout {
    /// Dropout with drop probability `p` in `[0, 1)` and its own seeded generator.
    pub fn new(p: f32, seed: u64) -> Dropout {
        assert!(
            (0.0..1.0).contains(&p),
            "Dropout: probability {p} is not in [0, 1)"
        );
        Dropout {
            p,
            training: true,
            rng: RefCell::new(Rng::new(seed)),
        }
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Tensor {
        if !self.training || self.p == 0.0 {
            return x.clone();
        }
        let scale = 1.0 / (1.0 - self.p);
        let mut rng = self.rng.borrow_mut();
        let mask: Vec<f32> = (0..x.numel())
            .map(|_| if rng.uniform() >= self.p { scale } else { 0.0 })
            .collect();
        x.mul(&Tensor::from_vec_on(mask, x.shape().clone(), x.device()))
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn describe(&self) -> String {
        format!("Dropout(p={})", self.p)
    }

    fn for_each_rng(&self, f: &mut dyn FnMut(&mut Rng)) {
        f(&mut self.rng.borrow_mut());
    }
}
