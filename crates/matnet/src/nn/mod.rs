//! Layers built from tensor ops. No layer writes its own backward: autograd
//! differentiates the ops they are made of.
//!
//! Dimension letters used in every `# Shapes` section:
//! `N` batch, `C` channels, `H` height, `W` width, `T` time steps,
//! `D` features (`D_in`, `D_out` for a layer's input and output); in
//! recurrent layers `H` is the hidden size, `L` the number of stacked layers
//! and `G` the gate rows of a weight matrix (`4H` for an LSTM).
//!
//! Parameters are named and laid out as in PyTorch (`0.weight` of a Linear is
//! `[D_out, D_in]`), so a matnet checkpoint is a PyTorch `state_dict`.

mod activation;
mod conv;
mod dropout;
pub mod init;
mod linear;
pub mod loss;
mod rnn;
mod sequential;

pub use activation::{Gelu, LeakyRelu, Relu, Sigmoid, Softmax, Tanh};
pub use conv::{AvgPool2d, BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, MaxPool2d};
pub use dropout::Dropout;
pub use init::Init;
pub use linear::Linear;
pub use rnn::{Gru, Lstm, RecurrentWeights, Rnn, RnnConfig};
pub use sequential::Sequential;

use crate::tensor::Tensor;

/// A layer or a network: a function of tensors with named parameters.
pub trait Module {
    /// Applies the layer.
    fn forward(&self, x: &Tensor) -> Tensor;

    /// Trainable parameters with PyTorch-style names (`weight`, `0.bias`, ...).
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// State that is saved with the model but not trained (batch norm's
    /// running statistics), PyTorch-style names.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// Switches between training (dropout active, batch statistics) and
    /// evaluation behaviour. Layers without such behaviour ignore it.
    fn set_training(&mut self, _training: bool) {}

    /// A one-line description for summaries (`Linear(784 -> 256)`).
    fn describe(&self) -> String;

    /// The parameter tensors alone.
    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// Total number of trainable scalars.
    fn num_parameters(&self) -> usize {
        self.named_parameters().iter().map(|(_, t)| t.numel()).sum()
    }
}

/// `[("weight", w), ("bias", b)]` as Linear and convolution layers name them.
pub(crate) fn weight_and_bias(weight: &Tensor, bias: Option<&Tensor>) -> Vec<(String, Tensor)> {
    let mut p = vec![("weight".to_string(), weight.clone())];
    p.extend(bias.map(|b| ("bias".to_string(), b.clone())));
    p
}
