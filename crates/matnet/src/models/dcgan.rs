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

/// The DCGAN paper's initialisation: every convolution and linear weight
/// from `N(0, 0.02)`, biases 0; batch-norm scales from `N(1, 0.02)`.
/// With PyTorch's default `U(±1/√fan_in)` instead, a one-minute MNIST run
/// (245 steps) saw the discriminator win within 50 steps (`D(G(z))` below
/// 0.01) and the generator settle on one dotted pattern; bench/torch_dcgan.py
/// uses the same initialisation, so the two stay the same model.
fn normal(like: &Tensor, mean: f32, rng: &mut Rng) -> Tensor {
    Tensor::randn(like.dims().to_vec(), mean, 0.02, rng).requires_grad()
}

fn init_conv(weight: &mut Tensor, bias: &mut Option<Tensor>, rng: &mut Rng) {
    *weight = normal(weight, 0.0, rng);
    *bias = bias
        .as_ref()
        .map(|b| Tensor::zeros(b.dims().to_vec()).requires_grad());
}

fn linear(d_in: usize, d_out: usize, rng: &mut Rng) -> Linear {
    let mut l = Linear::new(d_in, d_out, rng);
    init_conv(&mut l.weight, &mut l.bias, rng);
    l
}

fn conv(c_in: usize, c_out: usize, rng: &mut Rng) -> Conv2d {
    let mut c = Conv2d::new(c_in, c_out, (4, 4), stride2(), rng);
    init_conv(&mut c.weight, &mut c.bias, rng);
    c
}

fn conv_transpose(c_in: usize, c_out: usize, rng: &mut Rng) -> ConvTranspose2d {
    let mut c = ConvTranspose2d::new(c_in, c_out, (4, 4), stride2(), rng);
    init_conv(&mut c.weight, &mut c.bias, rng);
    c
}

fn batch_norm(c: usize, rng: &mut Rng) -> BatchNorm2d {
    let mut bn = BatchNorm2d::new(c);
    bn.weight = normal(&bn.weight, 1.0, rng);
    bn
}

/// Rows as channel images.
///
/// # Shapes
/// `[N, C·H·W] -> [N, C, H, W]` (a view).
pub(super) struct Unflatten(pub(super) [usize; 3]);

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

/// G (weights as [`normal`] says): `z → Linear → 128×7×7 → BatchNorm, ReLU → ConvTranspose2d → 64×14×14
/// → BatchNorm, ReLU → ConvTranspose2d → 1×28×28 → tanh`.
///
/// # Shapes
/// `[N, z_in] -> [N, 784]`.
pub(super) fn generator(z_in: usize, rng: &mut Rng) -> Sequential {
    generator_sized(z_in, 64, (7, 7), rng)
}

/// [`generator`] with `2·width` and `width` channels, upsampling `h×w` to
/// `4h×4w` (the joint model's generator; `width` 64 from 7×7 is DCGAN's).
///
/// # Shapes
/// `[N, z_in] -> [N, 16·h·w]`.
pub(super) fn generator_sized(
    z_in: usize,
    width: usize,
    (h, w): (usize, usize),
    rng: &mut Rng,
) -> Sequential {
    let c = 2 * width;
    Sequential::new()
        .append(linear(z_in, c * h * w, rng))
        .append(Unflatten([c, h, w]))
        .append(batch_norm(c, rng))
        .append(Relu)
        .append(conv_transpose(c, width, rng))
        .append(batch_norm(width, rng))
        .append(Relu)
        .append(conv_transpose(width, 1, rng))
        .append(Tanh)
        .append(Flatten)
}

/// D (weights as [`normal`] says): `C×28×28 → Conv 4×4/2 → 64×14×14 → LeakyReLU(0.2) → Conv 4×4/2 →
/// 128×7×7 → LeakyReLU(0.2) → Linear → 1` (a logit). `channels` is 2 in a
/// conditional model (image and label map).
///
/// # Shapes
/// `[N, channels·784] -> [N, 1]`.
pub(super) fn discriminator(channels: usize, rng: &mut Rng) -> Sequential {
    Sequential::new()
        .append(Unflatten([channels, 28, 28]))
        .append(conv(channels, 64, rng))
        .append(LeakyRelu(0.2))
        .append(conv(64, 128, rng))
        .append(LeakyRelu(0.2))
        .append(Flatten)
        .append(linear(128 * 7 * 7, 1, rng))
}
