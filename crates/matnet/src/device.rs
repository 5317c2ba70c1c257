//! Where a tensor's data lives and which backend runs its ops.

use std::cell::Cell;
use std::fmt;

/// The device of a tensor: which backend holds its buffer and runs the ops
/// on it. Every tensor carries one ([`crate::Tensor::device`]); ops on
/// tensors of different devices panic, naming the op and both devices, and
/// results live on their inputs' device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// The optimised CPU backend (packed GEMM, SIMD kernels, thread pool).
    #[default]
    Cpu,
    /// The reference backend: plain loops, f64 accumulation, no threads or
    /// SIMD. Slow and obviously correct; tests compare `Cpu` against it.
    Reference,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Reference => "reference",
        })
    }
}

thread_local! {
    static DEFAULT: Cell<Device> = const { Cell::new(Device::Cpu) };
}

/// The device that constructors (`zeros`, `from_vec`, `randn`, layers'
/// parameters) create tensors on, on this thread: [`Device::Cpu`] unless
/// inside a [`set_default_device`] scope.
pub fn default_device() -> Device {
    DEFAULT.with(|d| d.get())
}

/// Makes `device` the default for constructors on this thread until the
/// guard is dropped (like `torch.set_default_device`, but scoped). Scopes
/// nest. Tests use it to build a whole model on the device under test.
///
/// ```
/// use matnet::{Device, Tensor, set_default_device};
/// let t = {
///     let _on = set_default_device(Device::Reference);
///     Tensor::ones([2])
/// };
/// assert_eq!(t.device(), Device::Reference);
/// assert_eq!(Tensor::ones([2]).device(), Device::Cpu);
/// ```
pub fn set_default_device(device: Device) -> DefaultDeviceGuard {
    let prev = DEFAULT.with(|d| d.replace(device));
    DefaultDeviceGuard { prev }
}

/// Restores the previous default device when dropped. See [`set_default_device`].
pub struct DefaultDeviceGuard {
    prev: Device,
}

impl Drop for DefaultDeviceGuard {
    fn drop(&mut self) {
        DEFAULT.with(|d| d.set(self.prev));
    }
}
