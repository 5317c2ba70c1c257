//! Convolutional layers: compositions of `conv2d`, pooling and batch-norm ops.

use std::cell::Cell;

use super::{Init, Module, weight_and_bias};
use crate::params::Conv2dParams;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// A trainable weight of `shape` and `[C_out]` bias, both drawn from
/// PyTorch's default `U(±1/√fan_in)`, where PyTorch takes `fan_in` from the
/// weight's dimensions 1.. (for a transposed convolution that is `C_out/groups`).
fn torch_default_weight_and_bias(
    shape: [usize; 4],
    c_out: usize,
    rng: &mut Rng,
) -> (Tensor, Tensor) {
    let fan_in = shape[1] * shape[2] * shape[3];
    let w = Init::TorchDefault
        .tensor(shape, fan_in, c_out, rng)
        .requires_grad();
    let b = Init::TorchDefault
        .tensor([c_out], fan_in, c_out, rng)
        .requires_grad();
    (w, b)
}

/// 2-D convolution layer, weights in PyTorch's layout and default init.
///
/// # Shapes
/// `[N, C_in, H, W] -> [N, C_out, OH, OW]`, `OH = ⌊(H + 2p − d(k−1) − 1)/s⌋ + 1`;
/// weight `[C_out, C_in/groups, kh, kw]`, bias `[C_out]`.
pub struct Conv2d {
    /// `[C_out, C_in/groups, kh, kw]`
    pub weight: Tensor,
    /// `[C_out]`
    pub bias: Option<Tensor>,
    /// Stride, padding, dilation, groups.
    pub params: Conv2dParams,
}

impl Conv2d {
    /// A layer with PyTorch's default initialisation `U(±1/√fan_in)`.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: (usize, usize),
        params: Conv2dParams,
        rng: &mut Rng,
    ) -> Conv2d {
        let groups = params.groups.max(1);
        let (weight, bias) =
            torch_default_weight_and_bias([c_out, c_in / groups, kernel.0, kernel.1], c_out, rng);
        Conv2d {
            weight,
            bias: Some(bias),
            params,
        }
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(&self.weight, self.bias.as_ref(), self.params)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        weight_and_bias(&self.weight, self.bias.as_ref())
    }

    fn describe(&self) -> String {
        let d = self.weight.dims();
        format!(
            "Conv2d({} -> {}, {}×{}, stride {:?}, padding {:?})",
            d[1] * self.params.groups.max(1),
            d[0],
            d[2],
            d[3],
            self.params.stride,
            self.params.padding
        )
    }
}

/// Transposed 2-D convolution layer (the adjoint of `Conv2d`, used to
/// upsample in generators).
///
/// # Shapes
/// `[N, C_in, H, W] -> [N, C_out, H_out, W_out]`,
/// `H_out = (H − 1)·s − 2p + d(k − 1) + output_padding + 1`;
/// weight `[C_in, C_out/groups, kh, kw]`.
pub struct ConvTranspose2d {
    /// `[C_in, C_out/groups, kh, kw]`
    pub weight: Tensor,
    /// `[C_out]`
    pub bias: Option<Tensor>,
    /// Stride, padding, output padding, dilation, groups.
    pub params: Conv2dParams,
}

impl ConvTranspose2d {
    /// A layer with PyTorch's default initialisation.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: (usize, usize),
        params: Conv2dParams,
        rng: &mut Rng,
    ) -> ConvTranspose2d {
        let groups = params.groups.max(1);
        let (weight, bias) =
            torch_default_weight_and_bias([c_in, c_out / groups, kernel.0, kernel.1], c_out, rng);
        ConvTranspose2d {
            weight,
            bias: Some(bias),
            params,
        }
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.conv_transpose2d(&self.weight, self.bias.as_ref(), self.params)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        weight_and_bias(&self.weight, self.bias.as_ref())
    }

    fn describe(&self) -> String {
        let d = self.weight.dims();
        format!(
            "ConvTranspose2d({} -> {}, {}×{}, stride {:?})",
            d[0],
            d[1] * self.params.groups.max(1),
            d[2],
            d[3],
            self.params.stride
        )
    }
}

/// Max pooling. # Shapes: `[N, C, H, W] -> [N, C, ⌊(H−k)/s⌋+1, ⌊(W−k)/s⌋+1]`.
pub struct MaxPool2d {
    /// Window size.
    pub kernel: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.max_pool2d(self.kernel, self.stride)
    }

    fn describe(&self) -> String {
        format!("MaxPool2d({:?}, stride {:?})", self.kernel, self.stride)
    }
}

/// Average pooling. # Shapes: `[N, C, H, W] -> [N, C, OH, OW]`.
pub struct AvgPool2d {
    /// Window size.
    pub kernel: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Zero padding (counted in the mean).
    pub padding: (usize, usize),
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.avg_pool2d(self.kernel, self.stride, self.padding)
    }

    fn describe(&self) -> String {
        format!("AvgPool2d({:?}, stride {:?})", self.kernel, self.stride)
    }
}

/// Flattens all but the batch dimension. # Shapes: `[N, C, H, W] -> [N, C·H·W]`.
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.flatten_from(1)
    }

    fn describe(&self) -> String {
        "Flatten".to_string()
    }
}

/// Batch normalisation over `(N, H, W)` for each channel:
/// `y = (x − μ)/√(σ² + ε)·γ + β`. Training uses the batch statistics and
/// updates running estimates (momentum 0.1, unbiased variance, as PyTorch);
/// evaluation uses the running estimates.
///
/// The running estimates are buffers ([`Module::named_buffers`]), saved in
/// checkpoints as `running_mean` and `running_var`. PyTorch's layer also keeps
/// an integer `num_batches_tracked`, which it reads only when `momentum` is
/// `None` (a cumulative average); our momentum is always a number, so the
/// counter is neither kept nor saved. `torch.nn.Module.load_state_dict`
/// accepts a safetensors state dict without it (it fills in 0).
///
/// # Shapes
/// `[N, C, H, W] -> [N, C, H, W]`; γ, β, running mean and variance `[C]`.
pub struct BatchNorm2d {
    /// γ, `[C]`, initialised to 1.
    pub weight: Tensor,
    /// β, `[C]`, initialised to 0.
    pub bias: Tensor,
    /// Running mean, `[C]` (a buffer, not trained).
    pub running_mean: Tensor,
    /// Running (unbiased) variance, `[C]`.
    pub running_var: Tensor,
    /// Weight of the newest batch in the running estimates.
    pub momentum: f32,
    /// Added to the variance for stability.
    pub eps: f32,
    training: Cell<bool>,
}

impl BatchNorm2d {
    /// Batch norm over `c` channels with PyTorch's defaults.
    pub fn new(c: usize) -> BatchNorm2d {
        BatchNorm2d {
            weight: Tensor::ones([c]).requires_grad(),
            bias: Tensor::zeros([c]).requires_grad(),
            running_mean: Tensor::zeros([c]),
            running_var: Tensor::ones([c]),
            momentum: 0.1,
            eps: 1e-5,
            training: Cell::new(true),
        }
    }
}

impl Module for BatchNorm2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        assert!(
            x.rank() == 4 && x.dims()[1] == self.weight.numel(),
            "BatchNorm2d: input {:?} is not [N, {}, H, W]",
            x.shape(),
            self.weight.numel()
        );
        let c = self.weight.numel();
        let per_channel = |t: &Tensor| t.reshape([1, c, 1, 1]);
        let gamma = per_channel(&self.weight);
        let beta = per_channel(&self.bias);
        // The per-channel factors are folded first (tiny [1, C, 1, 1]
        // tensors), so the full-size work is few passes: training centres
        // once, squares once and scales once; evaluation is one multiply
        // and one add. Spelling it out as (x − μ)/√(σ² + ε)·γ + β took five
        // full-size passes forward and more backward (a tenth of a DCGAN
        // step).
        if !self.training.get() {
            let scale = per_channel(&self.running_var)
                .add_scalar(self.eps)
                .powf(-0.5)
                .mul(&gamma);
            let shift = beta.sub(&per_channel(&self.running_mean).mul(&scale));
            return x.mul(&scale).add(&shift);
        }
        let mean = x.mean(&[0, 2, 3], true);
        let xc = x.sub(&mean);
        let var = xc.sqr().mean(&[0, 2, 3], true);
        {
            let n = (x.numel() / c) as f32;
            let _g = crate::no_grad();
            let k = self.momentum;
            let unbias = n / (n - 1.0).max(1.0);
            // running = (1 − k)·running + k·batch, with tensor ops on the
            // running statistics' own device.
            let blend = |running: &Tensor, batch: &Tensor, scale: f32| {
                let new = running
                    .mul_scalar(1.0 - k)
                    .add(&batch.reshape([c]).mul_scalar(k * scale));
                running.assign_(&new);
            };
            blend(&self.running_mean, &mean, 1.0);
            blend(&self.running_var, &var, unbias);
        }
        xc.mul(&var.add_scalar(self.eps).powf(-0.5).mul(&gamma))
            .add(&beta)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![
            ("weight".to_string(), self.weight.clone()),
            ("bias".to_string(), self.bias.clone()),
        ]
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        vec![
            ("running_mean".to_string(), self.running_mean.clone()),
            ("running_var".to_string(), self.running_var.clone()),
        ]
    }

    fn set_training(&mut self, training: bool) {
        self.training.set(training);
    }

    fn describe(&self) -> String {
        format!("BatchNorm2d({})", self.weight.numel())
    }
}
