//! Sample-quality metrics for generative models, computed in the feature
//! space of a fixed classifier: the Fréchet distance between feature
//! Gaussians (FID), the Inception Score, class shares, and the precision and
//! recall of the sample manifold. `matnet gan-score` applies them with a
//! LeNet trained on MNIST as the feature extractor.
//!
//! ```
//! use matnet::metrics::{Gaussian, frechet_distance, inception_score, precision_recall};
//! use matnet::{Rng, Tensor};
//!
//! let real = Tensor::randn([400, 8], 0.0, 1.0, &mut Rng::new(0));
//! let fake = Tensor::randn([400, 8], 0.0, 1.0, &mut Rng::new(1)).add_scalar(0.5);
//! let fid = frechet_distance(&Gaussian::fit(&real), &Gaussian::fit(&fake));
//! assert!(fid > 1.0 && fid < 3.0); // ‖δ‖² = 8 · 0.25 = 2, plus sampling noise
//! let (precision, recall) = precision_recall(&real, &fake, 3);
//! assert!(precision > 0.5 && recall > 0.5);
//! assert!((inception_score(&Tensor::full([5, 10], 0.1)) - 1.0).abs() < 1e-6);
//! ```

mod fid;
mod inception;
pub mod linalg;
mod precision_recall;

pub use fid::{Gaussian, frechet_distance};
pub use inception::{class_shares, inception_score};
pub use precision_recall::precision_recall;
