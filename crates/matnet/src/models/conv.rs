//! Convolutional classifiers: LeNet-5 and a small two-conv network.

use crate::nn::{Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, Relu, Sequential};
use crate::ops::conv::Conv2dParams;
use crate::{Rng, Tensor};

use super::ModelConfig;

fn pool2() -> MaxPool2d {
    MaxPool2d {
        kernel: (2, 2),
        stride: (2, 2),
    }
}

/// LeNet-5: conv 1→6 5×5 pad 2, ReLU, max-pool, conv 6→16 5×5, ReLU,
/// max-pool, then dense 120, 84, classes.
///
/// # Shapes
/// `[N, rows·cols] -> [N, 1, rows, cols] -> [N, 16, s_h, s_w] -> [N, classes]`
/// with `s = (side / 2 − 4) / 2` (5 for 28×28 digits).
pub fn lenet(cfg: &ModelConfig, rng: &mut Rng) -> Sequential {
    let pad2 = Conv2dParams {
        padding: (2, 2),
        ..Default::default()
    };
    let side = |s: usize| (s / 2 - 4) / 2; // after pool, 5×5 conv, pool
    let flat = 16 * side(cfg.rows) * side(cfg.cols);
    Sequential::new()
        .append(ToImage::new(cfg))
        .append(Conv2d::new(1, 6, (5, 5), pad2, rng))
        .append(Relu)
        .append(pool2())
        .append(Conv2d::new(6, 16, (5, 5), Conv2dParams::default(), rng))
        .append(Relu)
        .append(pool2())
        .append(Flatten)
        .append(Linear::new(flat, 120, rng))
        .append(Relu)
        .append(Linear::new(120, 84, rng))
        .append(Relu)
        .append(Linear::new(84, cfg.classes, rng))
}

/// conv 32 3×3, ReLU, conv 64 3×3, ReLU, max-pool, dropout 0.25, dense 128,
/// ReLU, dropout 0.5, dense classes. The dropout layers draw from streams
/// seeded `seed + 2000` and `seed + 2001`.
///
/// # Shapes
/// `[N, rows·cols] -> [N, 64, (rows−4)/2, (cols−4)/2] -> [N, classes]`.
pub fn cnn(cfg: &ModelConfig, seed: u64, rng: &mut Rng) -> Sequential {
    let flat = 64 * ((cfg.rows - 4) / 2) * ((cfg.cols - 4) / 2);
    let p = Conv2dParams::default();
    Sequential::new()
        .append(ToImage::new(cfg))
        .append(Conv2d::new(1, 32, (3, 3), p, rng))
        .append(Relu)
        .append(Conv2d::new(32, 64, (3, 3), p, rng))
        .append(Relu)
        .append(pool2())
        .append(Dropout::new(0.25, seed.wrapping_add(2000)))
        .append(Flatten)
        .append(Linear::new(flat, 128, rng))
        .append(Relu)
        .append(Dropout::new(0.5, seed.wrapping_add(2001)))
        .append(Linear::new(128, cfg.classes, rng))
}

/// Flat image rows as one-channel images.
///
/// # Shapes
/// `[N, rows·cols] -> [N, 1, rows, cols]` (a view).
pub struct ToImage {
    rows: usize,
    cols: usize,
}

impl ToImage {
    /// For the image size of `cfg`.
    pub fn new(cfg: &ModelConfig) -> ToImage {
        ToImage {
            rows: cfg.rows,
            cols: cfg.cols,
        }
    }
}

impl Module for ToImage {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.reshape([x.dims()[0], 1, self.rows, self.cols])
    }

    fn describe(&self) -> String {
        format!("ToImage(1×{}×{})", self.rows, self.cols)
    }
}
