//! Tensor operations. Each file holds a family of forward ops; their gradient
//! rules sit in `autograd/backward.rs` in one exhaustive match.

pub mod conv;
pub mod elementwise;
pub mod index;
pub mod matmul;
pub mod movement;
pub mod recurrent;
pub mod reduce;

use std::sync::RwLockReadGuard;

use crate::backend::Storage;
use crate::tensor::Tensor;

/// Calls `f` with the storage slices of several tensors, taking each distinct
/// storage's read lock once (`x.mul(&x)` must not lock the same buffer twice).
pub(crate) fn with_slices<R>(ts: &[&Tensor], f: impl FnOnce(&[&[f32]]) -> R) -> R {
    let mut guards: Vec<RwLockReadGuard<'_, Storage>> = Vec::with_capacity(ts.len());
    let mut owner = Vec::with_capacity(ts.len());
    for (i, t) in ts.iter().enumerate() {
        match ts[..i].iter().position(|u| u.same_storage(t)) {
            Some(j) => owner.push(owner[j]),
            None => {
                owner.push(guards.len());
                guards.push(t.storage());
            }
        }
    }
    let slices: Vec<&[f32]> = owner.iter().map(|&g| guards[g].as_slice()).collect();
    f(&slices)
}
