//! Activation functions as modules (for `Sequential`).

use super::Module;
use crate::tensor::Tensor;

macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, $label:literal, |$x:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl Module for $name {
            fn forward(&self, $x: &Tensor) -> Tensor {
                $body
            }

            fn describe(&self) -> String {
                $label.to_string()
            }
        }
    };
}

activation!(
    /// `max(x, 0)` elementwise. # Shapes: any -> same.
    Relu, "ReLU", |x| x.relu()
);
activation!(
    /// Logistic sigmoid elementwise. # Shapes: any -> same.
    Sigmoid, "Sigmoid", |x| x.sigmoid()
);
activation!(
    /// `tanh` elementwise. # Shapes: any -> same.
    Tanh, "Tanh", |x| x.tanh()
);
activation!(
    /// GELU (exact erf form) elementwise. # Shapes: any -> same.
    Gelu, "GELU", |x| x.gelu()
);

/// `x` for `x > 0`, else `slope·x`.
#[derive(Clone, Copy, Debug)]
pub struct LeakyRelu(pub f32);

impl Module for LeakyRelu {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.leaky_relu(self.0)
    }

    fn describe(&self) -> String {
        format!("LeakyReLU({})", self.0)
    }
}

/// Softmax over one dimension (the last for `[N, D]` logits).
#[derive(Clone, Copy, Debug)]
pub struct Softmax(pub isize);

impl Module for Softmax {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.softmax(self.0)
    }

    fn describe(&self) -> String {
        format!("Softmax(dim={})", self.0)
    }
}
