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

use crate::backend::{Storage, View};
use crate::layout::Layout;
use crate::tensor::Tensor;

/// Panics, naming the op and both devices, unless all tensors share a device.
pub(crate) fn check_devices(op: &str, ts: &[&Tensor]) {
    let d = ts[0].device();
    for t in &ts[1..] {
        assert!(
            t.device() == d,
            "{op}: tensors on different devices ({d} and {})",
            t.device()
        );
    }
}

/// Calls `f` with the storages of several tensors on one device (checked,
/// naming `op`), taking each distinct storage's read lock once
/// (`x.mul(&x)` must not lock the same buffer twice).
pub(crate) fn with_storages<R>(op: &str, ts: &[&Tensor], f: impl FnOnce(&[&Storage]) -> R) -> R {
    check_devices(op, ts);
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
    let storages: Vec<&Storage> = owner.iter().map(|&g| &*guards[g]).collect();
    f(&storages)
}

/// A view of `s` through `l`.
pub(crate) fn view<'a>(s: &'a Storage, l: &'a Layout) -> View<'a, Storage> {
    View { data: s, layout: l }
}
