use super::Module;
use crate::tensor::Tensor;

/// Layers applied in order. Parameters are named `<index>.<name>` as in
/// PyTorch's `nn.Sequential` (`0.weight`, `2.bias`).
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty stack.
    pub fn new() -> Self {
        Sequential::default()
    }

    /// Appends a layer (builder style).
    pub fn append(mut self, layer: impl Module + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends a boxed layer.
    pub fn push(&mut self, layer: Box<dyn Module>) {
        self.layers.push(layer);
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }

    /// Outputs of every layer for `x` (for inspection tools).
    pub fn forward_all(&self, x: &Tensor) -> Vec<Tensor> {
        let mut outs = Vec::with_capacity(self.layers.len());
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward(&h);
            outs.push(h.clone());
        }
        outs
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.layers.iter().fold(x.clone(), |h, l| l.forward(&h))
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| super::prefixed(i, l.named_parameters()))
            .collect()
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| super::prefixed(i, l.named_buffers()))
            .collect()
    }

    fn set_training(&mut self, training: bool) {
        self.layers
            .iter_mut()
            .for_each(|l| l.set_training(training));
    }

    fn for_each_rng(&self, f: &mut dyn FnMut(&mut crate::Rng)) {
        self.layers.iter().for_each(|l| l.for_each_rng(f));
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = self.layers.iter().map(|l| l.describe()).collect();
        format!("Sequential[{}]", parts.join(", "))
    }
}
