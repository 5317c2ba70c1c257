//! Reading and writing model files and training states.
//!
//! Checkpoints use the [safetensors](https://github.com/huggingface/safetensors)
//! format with PyTorch names and layouts (`fc1.weight` is `[D_out, D_in]`), so a
//! matnet checkpoint is a PyTorch `state_dict` and vice versa.

pub mod checkpoint;
pub mod state;

pub use checkpoint::{
    CONFIG_KEY, Checkpoint, assign, load, load_bytes, load_into, save, write_atomic,
};
pub use state::TrainingState;
