//! # matnet
//!
//! Neural networks as what they are: matrix operations. A [`Tensor`] is an
//! n-dimensional f32 array; every operation on it records how to send
//! gradients back, and [`Tensor::backward`] returns them as a [`Gradients`] map.
//! Layers are in [`nn`], ready-made models (and loading any matnet
//! checkpoint) in [`models`], the training step in [`train`].
//!
//! Every tensor lives on a [`Device`]: the fast CPU backend by default, or
//! the plain reference backend the tests check it against. Ops run on their
//! inputs' device through the primitives listed in [`backend::BackendStorage`].
//!
//! ```
//! use matnet::{Rng, Tensor};
//!
//! // One dense layer y = x·W + b trained by hand: the matrices are all there is.
//! let mut rng = Rng::new(0);
//! let x = Tensor::randn([8, 3], 0.0, 1.0, &mut rng);
//! let target = x.matmul(&Tensor::from_vec(vec![1.0, -2.0, 0.5], [3, 1]));
//! let w = Tensor::zeros([3, 1]).requires_grad();
//! let b = Tensor::zeros([1]).requires_grad();
//! for _ in 0..200 {
//!     let y = x.matmul(&w).add(&b);
//!     let loss = y.sub(&target).sqr().mean_all();
//!     let grads = loss.backward();
//!     // grad_W = xᵀ · grad_y, computed by autograd.
//!     w.update_(|d| {
//!         let g = grads.get(&w).unwrap().to_vec();
//!         d.iter_mut().zip(g).for_each(|(d, g)| *d -= 0.1 * g);
//!     });
//!     b.update_(|d| d[0] -= 0.1 * grads.get(&b).unwrap().item());
//! }
//! assert!((w.to_vec()[1] + 2.0).abs() < 1e-3);
//! ```

pub mod alloc;
pub mod autograd;
pub mod backend;
pub mod data;
pub mod device;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod io;
pub mod layout;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod params;
pub mod rng;
pub mod shape;
pub mod tensor;
pub mod train;

pub use autograd::{Gradients, is_grad_enabled, no_grad};
pub use device::{Device, default_device, set_default_device};
pub use error::{Error, Result};
pub use nn::Module;
pub use optim::Optimizer;
pub use rng::Rng;
pub use shape::{Dim, Shape};
pub use tensor::{Tensor, TensorId};

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
