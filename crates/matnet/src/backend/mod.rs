//! Where tensor data lives and the primitive kernels that work on it.
//!
//! `Storage` is an enum rather than a generic parameter so that layers,
//! optimizers and the CLI never name a backend: a CUDA arm can be added here
//! and dispatched at run time without touching them.

pub mod cpu;

/// A tensor's data buffer.
#[derive(Debug, Clone)]
pub enum Storage {
    /// Host memory, f32.
    Cpu(Vec<f32>),
}

impl Storage {
    /// Number of f32 values held.
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(v) => v.len(),
        }
    }

    /// True when the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The host slice (the only backend today).
    pub fn as_slice(&self) -> &[f32] {
        match self {
            Storage::Cpu(v) => v,
        }
    }

    /// The mutable host slice.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        match self {
            Storage::Cpu(v) => v,
        }
    }
}
