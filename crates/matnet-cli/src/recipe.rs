//! Each classifier's training recipe: the defaults `matnet train --model
//! ARCH` uses for every flag left out, the settings behind the accuracies in
//! the README.

use matnet::data::Normalize;
use matnet::models::Arch;

use crate::train::{OptKind, ScheduleKind};

/// Per-architecture defaults: the settings that reproduce each model's result.
pub struct Recipe {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub optimizer: OptKind,
    pub schedule: ScheduleKind,
    pub dropout: f32,
    /// Training images drawn from the start of the official training set.
    pub pool: Option<usize>,
    /// Of those, how many at the end are held out for validation.
    pub val: usize,
    pub normalize: Normalize,
    pub log_every: usize,
    /// Global gradient-norm clip unless `--clip` says otherwise.
    pub clip: Option<f32>,
}

pub fn recipe(arch: Arch) -> Recipe {
    match arch {
        // The seed report: first 42,000 images, 80/20 split (33,600 / 8,400),
        // full-batch gradient descent, learning rate 0.5, 1,000 iterations.
        Arch::SeedMlp => Recipe {
            epochs: 1000,
            batch_size: usize::MAX,
            lr: 0.5,
            optimizer: OptKind::Sgd,
            schedule: ScheduleKind::Constant,
            dropout: 0.0,
            pool: Some(42_000),
            val: 8_400,
            normalize: Normalize::Unit,
            log_every: 10,
            clip: None,
        },
        Arch::Mlp => Recipe {
            epochs: 10,
            batch_size: 128,
            lr: 1e-3,
            optimizer: OptKind::Adam,
            // Measured: 20 epochs reach 98.62-98.71% test with cosine
            // annealing (3 seeds) against 98.32% at a constant rate.
            schedule: ScheduleKind::Cosine,
            dropout: 0.2,
            pool: None,
            val: 5_000,
            normalize: Normalize::Standard,
            log_every: 1,
            clip: None,
        },
        Arch::Lenet | Arch::Cnn => Recipe {
            epochs: if arch == Arch::Lenet { 10 } else { 12 },
            batch_size: 64,
            lr: 1e-3,
            optimizer: OptKind::Adam,
            schedule: ScheduleKind::Cosine,
            dropout: 0.0,
            pool: None,
            val: 5_000,
            normalize: Normalize::Standard,
            log_every: 1,
            clip: None,
        },
        // Row-by-row readers: clipping keeps the recurrent gradients tame.
        Arch::Rnn | Arch::Lstm | Arch::Gru => Recipe {
            epochs: 10,
            batch_size: 64,
            lr: 1e-3,
            optimizer: OptKind::Adam,
            schedule: ScheduleKind::Cosine,
            dropout: 0.0,
            pool: None,
            val: 5_000,
            normalize: Normalize::Standard,
            log_every: 1,
            clip: Some(1.0),
        },
        Arch::Gan | Arch::Dcgan | Arch::Joint => {
            unreachable!("GANs and the joint model train in their own loops, without a recipe")
        }
        Arch::Vit => Recipe {
            epochs: 12,
            batch_size: 64,
            lr: 1e-3,
            optimizer: OptKind::Adam,
            schedule: ScheduleKind::Cosine,
            dropout: 0.1,
            pool: None,
            val: 5_000,
            normalize: Normalize::Standard,
            log_every: 1,
            clip: Some(1.0),
        },
    }
}
