//! Which microkernel `sgemm` runs: detected once per process, or forced
//! with `MATNET_KERNEL`.

use std::sync::OnceLock;

/// A GEMM microkernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmKernel {
    /// Plain Rust 4×8, auto-vectorized for the target baseline; runs anywhere.
    Portable,
    /// AVX2+FMA 6×16 (x86_64).
    Avx2,
    /// AVX-512F 12×32 (x86_64).
    Avx512,
}

impl GemmKernel {
    /// Every kernel, slowest first.
    pub const ALL: [GemmKernel; 3] = [GemmKernel::Portable, GemmKernel::Avx2, GemmKernel::Avx512];

    /// The name `MATNET_KERNEL` accepts and benchmarks print.
    pub fn name(self) -> &'static str {
        match self {
            GemmKernel::Portable => "portable",
            GemmKernel::Avx2 => "avx2",
            GemmKernel::Avx512 => "avx512",
        }
    }

    /// Parses a `MATNET_KERNEL` value (`portable`, `avx2`, `avx512`).
    pub fn from_name(name: &str) -> Option<GemmKernel> {
        GemmKernel::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The CPU feature the kernel needs, as `is_x86_feature_detected!` names it.
    pub fn required_feature(self) -> &'static str {
        match self {
            GemmKernel::Portable => "none",
            GemmKernel::Avx2 => "avx2+fma",
            GemmKernel::Avx512 => "avx512f+avx2+fma",
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn available(self) -> bool {
        match self {
            GemmKernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            GemmKernel::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            // AVX2 too: the kernel borrows the AVX2 B-packing transpose
            // (every AVX-512 CPU has it; the check keeps that a fact).
            GemmKernel::Avx512 => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            GemmKernel::Avx2 | GemmKernel::Avx512 => false,
        }
    }

    /// The fastest kernel this CPU has.
    pub fn best_available() -> GemmKernel {
        // Measured on an AVX-512 Xeon (see avx512.rs): AVX-512 was 1.3-1.6×
        // AVX2 on 64³-2048³ and the MLP shapes, never slower.
        [GemmKernel::Avx512, GemmKernel::Avx2]
            .into_iter()
            .find(|k| k.available())
            .unwrap_or(GemmKernel::Portable)
    }
}

/// The kernel `sgemm` uses in this process: `MATNET_KERNEL` if set, else
/// [`GemmKernel::best_available`]. Read once, on first use.
///
/// # Panics
/// If `MATNET_KERNEL` names no kernel or one this CPU cannot run (see
/// [`try_gemm_kernel`]): silently falling back would make a benchmark
/// measure a kernel other than the one asked for.
pub fn gemm_kernel() -> GemmKernel {
    try_gemm_kernel().unwrap_or_else(|e| panic!("{e}"))
}

/// [`gemm_kernel`], with a bad `MATNET_KERNEL` as an error message instead
/// of a panic, for callers (the CLI) that report it and exit.
pub fn try_gemm_kernel() -> Result<GemmKernel, String> {
    static CHOICE: OnceLock<Result<GemmKernel, String>> = OnceLock::new();
    CHOICE
        .get_or_init(|| match std::env::var("MATNET_KERNEL") {
            Ok(v) if !v.is_empty() => {
                let k = GemmKernel::from_name(&v).ok_or_else(|| {
                    format!("MATNET_KERNEL={v:?}: expected one of portable, avx2, avx512")
                })?;
                if !k.available() {
                    return Err(format!(
                        "MATNET_KERNEL={v}: this CPU lacks {}, which that kernel needs",
                        k.required_feature()
                    ));
                }
                Ok(k)
            }
            _ => Ok(GemmKernel::best_available()),
        })
        .clone()
}

/// Name of the kernel `sgemm` uses (`"portable"`, `"avx2"` or `"avx512"`).
///
/// # Panics
/// As [`gemm_kernel`].
pub fn gemm_kernel_name() -> &'static str {
    gemm_kernel().name()
}

/// True when `MATNET_KERNEL` chose the kernel: then every product uses it,
/// whatever its shape.
pub(super) fn kernel_forced() -> bool {
    static FORCED: OnceLock<bool> = OnceLock::new();
    *FORCED.get_or_init(|| std::env::var_os("MATNET_KERNEL").is_some())
}
