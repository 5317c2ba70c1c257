//! Mini-batches: bytes to f32 tensors, in dataset order or a seeded shuffle.
//!
//! # Shapes
//! images `[B, D]` with `D = rows × cols` (row `i` is one flattened image, so a
//! dense layer is `images · W`), or `[B, 1, rows, cols]` for convolutions;
//! labels `[B]`, class ids stored as f32.

use std::sync::Arc;

use super::mnist::Dataset;
use crate::backend::kernels::grey_level;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// Mean grey level of the MNIST training images, on the `[0, 1]` scale.
pub const MNIST_MEAN: f32 = 0.1307;
/// Standard deviation of the MNIST training pixels, on the `[0, 1]` scale.
pub const MNIST_STD: f32 = 0.3081;

/// How grey levels `x ∈ 0..=255` become f32 inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Normalize {
    /// `x / 255`, in `[0, 1]`.
    #[default]
    Unit,
    /// `(x / 255 - 0.1307) / 0.3081`: zero mean and unit variance over the
    /// MNIST training set (PyTorch's usual constants, used for Fashion-MNIST too).
    Standard,
}

impl Normalize {
    /// The model input for an intensity `unit` in `[0, 1]` (grey level / 255),
    /// for images that do not come as bytes (generated samples).
    pub fn apply(self, unit: f32) -> f32 {
        match self {
            Normalize::Unit => unit,
            Normalize::Standard => (unit - MNIST_MEAN) / MNIST_STD,
        }
    }

    /// The value of each grey level, so conversion is one lookup per pixel.
    pub fn table(self) -> [f32; 256] {
        let mut t = [0.0f32; 256];
        for (x, v) in t.iter_mut().enumerate() {
            // f64 then one rounding, so Unit gives exactly 1.0 for 255.
            let unit = x as f64 / 255.0;
            *v = match self {
                Normalize::Unit => unit,
                Normalize::Standard => (unit - MNIST_MEAN as f64) / MNIST_STD as f64,
            } as f32;
        }
        t
    }
}

/// Images `[N, D]` made with [`Normalize::Unit`], kept beside their grey
/// levels as bytes: a quarter of the memory for a kernel to stream
/// (`Classifier::train_step_pixels`). Only built when every value of the
/// tensor is exactly [`grey_level`] of its byte, so either gives the same
/// numbers.
#[derive(Clone, Debug)]
pub struct UnitPixels {
    images: Tensor,
    levels: Arc<[u8]>,
}

impl UnitPixels {
    /// `images` with its grey `levels` (one byte per value, in the tensor's
    /// order); `None` unless each value is exactly `grey_level(level)`.
    pub fn new(images: Tensor, levels: &[u8]) -> Option<UnitPixels> {
        let exact = images.numel() == levels.len()
            && images.with_data(|x| {
                x.iter()
                    .zip(levels)
                    .all(|(v, &k)| v.to_bits() == grey_level(k).to_bits())
            });
        exact.then(|| UnitPixels {
            images,
            levels: levels.into(),
        })
    }

    /// The f32 images.
    pub fn images(&self) -> &Tensor {
        &self.images
    }

    /// The grey levels, one per value of [`UnitPixels::images`].
    pub fn levels(&self) -> &[u8] {
        &self.levels
    }
}

/// A mini-batch of images and their labels.
#[derive(Clone, Debug)]
pub struct Batch {
    /// `[B, rows × cols]` normalised pixels, one image per row.
    pub images: Tensor,
    /// `[B]` class ids as f32 (`0.0` to `9.0`).
    pub labels: Tensor,
    /// Image height, for [`Batch::images_nchw`].
    pub rows: usize,
    /// Image width, for [`Batch::images_nchw`].
    pub cols: usize,
}

impl Batch {
    /// Number of images `B`.
    pub fn len(&self) -> usize {
        self.labels.numel()
    }

    /// `true` for a batch of no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The images as `[B, 1, rows, cols]` for convolutions: a reshape of
    /// [`Batch::images`], no copy.
    pub fn images_nchw(&self) -> Tensor {
        self.images.reshape([self.len(), 1, self.rows, self.cols])
    }
}

/// The dataset in mini-batches of `batch_size`, every image once; the last
/// batch holds the remainder when `batch_size` does not divide `len()`.
///
/// With `shuffle`, the order is a permutation drawn from the generator up
/// front (so the same seed gives the same batches); without, dataset order.
/// Each batch is converted when the iterator reaches it.
///
/// # Shapes
/// each [`Batch`]: images `[B, rows × cols]`, labels `[B]`, `B = batch_size`
/// except possibly the last.
///
/// Panics when `batch_size` is 0.
pub fn batches<'a>(
    ds: &'a Dataset,
    batch_size: usize,
    normalize: Normalize,
    shuffle: Option<&mut Rng>,
) -> impl Iterator<Item = Batch> + 'a {
    assert!(batch_size > 0, "batches: batch_size must be at least 1");
    let mut order: Vec<usize> = (0..ds.len()).collect();
    if let Some(rng) = shuffle {
        rng.shuffle(&mut order);
    }
    let table = normalize.table();
    let count = ds.len().div_ceil(batch_size);
    (0..count).map(move |b| {
        let end = ((b + 1) * batch_size).min(order.len());
        gather(ds, &order[b * batch_size..end], &table)
    })
}

/// The whole dataset as one batch, in order (full-batch training, evaluation).
pub fn to_batch(ds: &Dataset, normalize: Normalize) -> Batch {
    let table = normalize.table();
    let images: Vec<f32> = ds.images().iter().map(|&x| table[x as usize]).collect();
    let labels: Vec<f32> = ds.labels().iter().map(|&l| l as f32).collect();
    make_batch(ds, images, labels)
}

/// The whole dataset as `(images [N, rows × cols], labels [N])`.
pub fn to_tensors(ds: &Dataset, normalize: Normalize) -> (Tensor, Tensor) {
    let b = to_batch(ds, normalize);
    (b.images, b.labels)
}

/// The images at `indices`, in that order, as one batch.
fn gather(ds: &Dataset, indices: &[usize], table: &[f32; 256]) -> Batch {
    let mut images = Vec::with_capacity(indices.len() * ds.image_size());
    let mut labels = Vec::with_capacity(indices.len());
    for &i in indices {
        images.extend(ds.image(i).iter().map(|&x| table[x as usize]));
        labels.push(ds.label(i) as f32);
    }
    make_batch(ds, images, labels)
}

fn make_batch(ds: &Dataset, images: Vec<f32>, labels: Vec<f32>) -> Batch {
    let b = labels.len();
    Batch {
        images: Tensor::from_vec(images, [b, ds.image_size()]),
        labels: Tensor::from_vec(labels, [b]),
        rows: ds.rows(),
        cols: ds.cols(),
    }
}
