/// A learning rate as a function of the epoch (or step) number, with an
/// optional linear warm-up in front.
#[derive(Clone, Debug, PartialEq)]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Decay factor.
        gamma: f32,
    },
    /// Cosine annealing from the base rate to `min_lr` over `total` epochs.
    Cosine {
        /// Length of the schedule.
        total: usize,
        /// Final rate.
        min_lr: f32,
    },
    /// Linear warm-up from ~0 to the base rate over `warmup` epochs, then `then`.
    Warmup {
        /// Warm-up length.
        warmup: usize,
        /// The schedule after warm-up (its epoch count starts at 0).
        then: Box<LrSchedule>,
    },
}

impl LrSchedule {
    /// The learning rate at epoch `t` (from 0) for base rate `base`.
    pub fn lr_at(&self, base: f32, t: usize) -> f32 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Step { every, gamma } => base * gamma.powi((t / (*every).max(1)) as i32),
            LrSchedule::Cosine { total, min_lr } => {
                let frac = (t as f32 / (*total).max(1) as f32).min(1.0);
                min_lr + 0.5 * (base - min_lr) * (1.0 + (std::f32::consts::PI * frac).cos())
            }
            LrSchedule::Warmup { warmup, then } => {
                if t < *warmup {
                    base * (t + 1) as f32 / (*warmup + 1) as f32
                } else {
                    then.lr_at(base, t - warmup)
                }
            }
        }
    }
}
