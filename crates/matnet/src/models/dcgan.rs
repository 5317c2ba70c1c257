//! The DCGAN players (Radford et al.) for 28×28 digits: transposed
//! convolutions upsample in the generator (the seed report's eq. 11-12),
//! strided convolutions downsample in the discriminator, no pooling.

use crate::nn::{
    BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, LeakyRelu, Linear, Module, Relu, Sequential,
    Tanh,
};
use crate::ops::conv::Conv2dParams;
use crate::{Rng, Tensor};

/// Kernel 4, stride 2, padding 1: doubles (transposed) or halves (conv)
/// the height and width exactly, so 7 → 14 → 28 and back.
fn stride2() -> Conv2dParams {
    Conv2dParams {
        stride: (2, 2),
        padding: (1, 1),
        ..Conv2dParams::default()
    }
}

/// Rows as channel images.
///
/// # Shapes
/// `[N, C·H·W] -> [N, C, H, W]` (a view).
struct Unflatten([usize; 3]);

impl Module for Unflatten {
    fn forward(&self, x: &Tensor) -> Tensor {
        let [c, h, w] = self.0;
        x.reshape([x.dims()[0], c, h, w])
    }

    fn describe(&self) -> String {
        let [c, h, w] = self.0;
        format!("Unflatten({c}×{h}×{w})")
    }
}

/// G: `z → Linear → 128×7×7 → BatchNorm, ReLU → ConvTranspose2d → 64×14×14
/// → BatchNorm, ReLU → ConvTranspose2d → 1×28×28 → tanh`.
///
/// # Shapes
/// `[N, z_in] -> [N, 784]`.
pub(super) fn generator(z_in: usize, rng: &mut Rng) -> Sequential {
    Sequential::new()
        .append(Linear::new(z_in, 128 * 7 * 7, rng))
        .append(Unflatten([128, 7, 7]))
        .append(BatchNorm2d::new(128))
        .append(Relu)
        .append(ConvTranspose2d::new(128, 64, (4, 4), stride2(), rng))
        .append(BatchNorm2d::new(64))
        .append(Relu)
        .append(ConvTranspose2d::new(64, 1, (4, 4), stride2(), rng))
        .append(Tanh)
        .append(Flatten)
}

/// D: `C×28×28 → Conv 4×4/2 → 64×14×14 → LeakyReLU(0.2) → Conv 4×4/2 →
/// 128×7×7 → LeakyReLU(0.2) → Linear → 1` (a logit). `channels` is 2 in a
/// conditional model (image and label map).
///
/// # Shapes
/// `[N, channels·784] -> [N, 1]`.
pub(super) fn discriminator(channels: usize, rng: &mut Rng) -> Sequential {
    Sequential::new()
        .append(Unflatten([channels, 28, 28]))
        .append(Conv2d::new(channels, 64, (4, 4), stride2(), rng))
        .append(LeakyRelu(0.2))
        .append(Conv2d::new(64, 128, (4, 4), stride2(), rng))
        .append(LeakyRelu(0.2))
        .append(Flatten)
        .append(Linear::new(128 * 7 * 7, 1, rng))
}
