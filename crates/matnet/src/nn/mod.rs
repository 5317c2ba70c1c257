//! Layers built from tensor ops. No layer writes its own backward: autograd
//! differentiates the ops they are made of.
//!
//! Dimension letters used in every `# Shapes` section:
//! `N` batch, `C` channels, `H` height, `W` width, `T` time steps,
//! `D` features (`D_in`, `D_out` for a layer's input and output).
//! In attention and transformer layers: `T` query and `S` key positions,
//! `E` model width, `H` heads (not height there), `D_h = E/H` head size,
//! `F` feed-forward width.
//! In recurrent layers `H` is the hidden size, `L` the number of stacked
//! layers and `G` the gate rows of a weight matrix (`4H` for an LSTM).
//!
//! Parameters are named and laid out as in PyTorch (`0.weight` of a Linear is
//! `[D_out, D_in]`), so a matnet checkpoint is a PyTorch `state_dict`.

mod activation;
pub mod attention;
mod conv;
mod dropout;
mod embedding;
pub mod init;
mod linear;
pub mod loss;
mod norm;
mod rnn;
mod sequential;
mod transformer;

pub use activation::{Gelu, LeakyRelu, Relu, Sigmoid, Softmax, Tanh};
pub use attention::{AttnMask, MultiheadAttention};
pub use conv::{AvgPool2d, BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, MaxPool2d};
pub use dropout::Dropout;
pub use embedding::{Embedding, LearnedPositionalEncoding, SinusoidalPositionalEncoding};
pub use init::Init;
pub use linear::Linear;
pub use norm::LayerNorm;
pub use rnn::{
    Gru, Lstm, Recurrent, RecurrentKind, RecurrentState, RecurrentWeights, Rnn, RnnConfig,
};
pub use sequential::Sequential;
pub use transformer::{
    Activation, EncoderLayerConfig, TransformerEncoder, TransformerEncoderLayer,
};

use crate::rng::Rng;
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

    /// Everything a checkpoint holds: [`Module::named_parameters`] followed
    /// by [`Module::named_buffers`], PyTorch's `state_dict` names
    /// (`1.weight`, `1.running_mean`). The tensors share storage with the
    /// model, so `io::load_into(path, &net.state_dict())` loads in place.
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut s = self.named_parameters();
        s.extend(self.named_buffers());
        s
    }

    /// Switches between training (dropout active, batch statistics) and
    /// evaluation behaviour. Layers without such behaviour ignore it.
    fn set_training(&mut self, _training: bool) {}

    /// A one-line description for summaries (`Linear(784 -> 256)`).
    fn describe(&self) -> String;

    /// Calls `f` on each random generator inside (dropout masks), always in
    /// the same order, so a training run can save and restore them
    /// ([`rng_states`], [`load_rng_states`]). Layers without one ignore it.
    fn for_each_rng(&self, _f: &mut dyn FnMut(&mut Rng)) {}

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

/// Names under a prefix, as PyTorch names a submodule's tensors:
/// `prefixed("fc", [("weight", w)])` is `[("fc.weight", w)]`.
pub fn prefixed(
    prefix: impl std::fmt::Display,
    named: Vec<(String, Tensor)>,
) -> Vec<(String, Tensor)> {
    named
        .into_iter()
        .map(|(n, t)| (format!("{prefix}.{n}"), t))
        .collect()
}

/// `[("weight", w), ("bias", b)]` as Linear and convolution layers name them.
pub(crate) fn weight_and_bias(weight: &Tensor, bias: Option<&Tensor>) -> Vec<(String, Tensor)> {
    let mut p = vec![("weight".to_string(), weight.clone())];
    p.extend(bias.map(|b| ("bias".to_string(), b.clone())));
    p
}

/// The states of every generator in `m` ([`Module::for_each_rng`] order).
pub fn rng_states(m: &dyn Module) -> Vec<[u64; 4]> {
    let mut v = Vec::new();
    m.for_each_rng(&mut |r| v.push(r.state()));
    v
}

/// Sets the generators of `m` to `states` (from [`rng_states`] of a module
/// of the same architecture). A different number of generators is an error
/// and changes nothing.
pub fn load_rng_states(m: &dyn Module, states: &[[u64; 4]]) -> crate::Result<()> {
    let have = rng_states(m).len();
    if have != states.len() {
        return Err(crate::Error::Invalid(format!(
            "{} random generators saved, the model has {have}",
            states.len()
        )));
    }
    let mut it = states.iter();
    m.for_each_rng(&mut |r| *r = Rng::from_state(*it.next().expect("counted above")));
    Ok(())
}
