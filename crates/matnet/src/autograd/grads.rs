use std::collections::HashMap;

use crate::tensor::{Tensor, TensorId};

/// Gradients of a scalar with respect to the variables it depends on,
/// returned by [`Tensor::backward`].
#[derive(Default)]
pub struct Gradients {
    map: HashMap<TensorId, Tensor>,
}

impl Gradients {
    /// The gradient of `t`, if it received one.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.map.get(&t.id())
    }

    /// Takes the gradient of `t` out of the map.
    pub fn remove(&mut self, t: &Tensor) -> Option<Tensor> {
        self.map.remove(&t.id())
    }

    /// Adds `g` to the gradient of `id` (`+=`, so a tensor used twice gets both
    /// contributions).
    pub(crate) fn accumulate(&mut self, id: TensorId, g: Tensor) {
        match self.map.remove(&id) {
            Some(prev) => {
                self.map.insert(id, prev.add(&g));
            }
            None => {
                self.map.insert(id, g);
            }
        }
    }

    pub(crate) fn take(&mut self, id: TensorId) -> Option<Tensor> {
        self.map.remove(&id)
    }

    /// Sets the gradient of `id` (replacing any previous one).
    pub fn insert(&mut self, id: TensorId, g: Tensor) {
        self.map.insert(id, g);
    }

    /// Number of tensors with a gradient.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no tensor received a gradient.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
