//! `exp`, `sigmoid`, `tanh` and GELU's normal CDF as branch-free
//! polynomials the compiler can vectorise. libm's `expf`/`tanhf` are
//! accurate but opaque calls, one element at a time: they were 15% of an
//! LSTM training step (perf).
//!
//! Accuracy: `exp` uses Cody-Waite range reduction and the degree-6
//! minimax polynomial of Cephes' `expf` (about 1 ulp on [-87, 88]);
//! `tanh` uses Cephes' odd polynomial below |x| = 0.625 (no cancellation
//! near 0) and `1 − 2/(e^{2|x|} + 1)` above it. Both agree with libm to a
//! few ulp (tested against f64 in `tests/elementwise_math.rs`).

/// `eˣ`, saturating to +∞ above f32's range and flushing results below the
/// smallest normal float (x < −87.3) to 0; NaN stays NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(-87.336_54, 88.722_83);
    // Round to nearest by adding and subtracting 1.5·2²³: plain adds that
    // vectorise, where `f32::round` is a libm call without SSE4.1.
    // The same addition also leaves n as an integer in the low mantissa
    // bits, read without a float→int conversion (whose saturating Rust
    // semantics kept the loop scalar).
    const MAGIC: f32 = 12_582_912.0;
    let shifted = xc * LOG2E + MAGIC;
    let n = shifted - MAGIC;
    let n_int = shifted.to_bits() as i32 - MAGIC.to_bits() as i32;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2ⁿ as two factors built in the exponent field: n ∈ [-126, 128] after
    // the clamp, and each half stays a normal float.
    let n = n_int;
    let pow2 = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let y = e * pow2(n / 2) * pow2(n - n / 2);
    // Past the clamp the true value is ∞ or (sub)normal-tiny; the clamp only
    // keeps the exponent trick in range. Selects, not branches, so loops
    // vectorise; NaN propagates through the arithmetic.
    let y = if x > 88.722_83 { f32::INFINITY } else { y };
    if x < -87.336_54 { 0.0 } else { y }
}

/// `1 / (1 + e⁻ˣ)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh x`.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    // Small |x|: odd polynomial, no cancellation.
    let z = x * x;
    let mut p = -5.704_988_7e-3_f32;
    p = p * z + 2.063_909e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328e-1;
    let small = p * z * x + x;
    // Large |x|: through exp (saturates to ±1).
    let big = (1.0 - 2.0 / (exp(2.0 * a) + 1.0)).copysign(x);
    if a < 0.625 { small } else { big }
}

/// The standard normal CDF `Φ(x) = erfc(−x/√2)/2`, with Numerical Recipes'
/// `erfcc` (relative error below 1.2e-7 in exact arithmetic) evaluated in
/// f32 through [`exp`]: branch-free, so GELU's loops vectorise. The
/// reference backend evaluates the same formula in f64 with libm's `exp`
/// (`backend::special`), one element at a time. Against an f64 reference
/// over [-9, 9] the relative error is below 4.2e-7, down to Φ(−9) ≈ 1e-19
/// (`tests/elementwise_math.rs`).
#[inline(always)]
pub fn normal_cdf(x: f32) -> f32 {
    let y = -x * std::f32::consts::FRAC_1_SQRT_2;
    let z = y.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77_f32;
    p = p * t - 0.822_152_23;
    p = p * t + 1.488_515_9;
    p = p * t - 1.135_204;
    p = p * t + 0.278_868_07;
    p = p * t - 0.186_288_06;
    p = p * t + 0.096_784_18;
    p = p * t + 0.374_091_96;
    p = p * t + 1.000_023_7;
    p = p * t - 1.265_512_2;
    // e^{p − z²} with z² and the difference carried to twice f32's
    // precision (Dekker's split, then Knuth's two-sum): rounded to f32
    // first, the exponent (up to ~40 in the tail) would cost Φ a relative
    // 1e-7·z². Plain adds and multiplies, so the loop still vectorises.
    // z² = x²/2 from x itself (z = |x|/√2 is already rounded).
    let xx = x * x;
    let c = 4097.0 * x;
    let hi = c - (c - x);
    let lo = x - hi;
    let (zz, zz_err) = (0.5 * xx, 0.5 * (((hi * hi - xx) + 2.0 * hi * lo) + lo * lo));
    let s = p - zz;
    let b = s - p;
    let s_err = (p - (s - b)) + (-zz - b);
    let r = t * exp(s) * (1.0 + (s_err - zz_err));
    0.5 * if y >= 0.0 { r } else { 2.0 - r }
}

/// GELU `x·Φ(x)`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    x * normal_cdf(x)
}

/// d/dx of GELU: `Φ(x) + x·φ(x)`, `φ(x) = e^{−x²/2}/√(2π)`.
#[inline(always)]
pub fn gelu_derivative(x: f32) -> f32 {
    normal_cdf(x) + x * (exp(-0.5 * x * x) * 0.398_942_3)
}

/// Slice forms of the longer polynomials: `out[i] = f(x[i])`, the loop
/// compiled for AVX-512F (sixteen lanes) when the CPU has it and for the
/// baseline otherwise. Written out per function because a function passed
/// by name or in a closure to a generic loop was called once per element
/// (LLVM would not inline bodies this long: 34% of a ViT training step in
/// GELU, perf). Neither build fuses multiply-adds, so both give the scalar
/// function's bits in every lane.
macro_rules! slice_form {
    ($(#[$doc:meta])* $name:ident => $f:ident) => {
        $(#[$doc])*
        pub fn $name(x: &[f32], out: &mut [std::mem::MaybeUninit<f32>]) {
            // Inlined into `wide`, so its loop is compiled for AVX-512F
            // there (as a call it stayed the baseline's four lanes).
            #[inline(always)]
            fn each(x: &[f32], out: &mut [std::mem::MaybeUninit<f32>]) {
                for (o, &v) in out.iter_mut().zip(x) {
                    o.write($f(v));
                }
            }
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn wide(x: &[f32], out: &mut [std::mem::MaybeUninit<f32>]) {
                    each(x, out)
                }
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { wide(x, out) };
                }
            }
            each(x, out)
        }
    };
}

slice_form!(
    /// [`gelu`] over a slice.
    gelu_slice => gelu
);
slice_form!(
    /// [`gelu_derivative`] over a slice.
    gelu_derivative_slice => gelu_derivative
);

/// [`exp`] on sixteen lanes with AVX-512F intrinsics: the same operations
/// in the same order (no fused multiply-adds, as the scalar code has none),
/// so every lane has the scalar function's bits, NaN and the saturations
/// included (tested over a sweep of inputs). For kernels whose loops the
/// compiler leaves scalar.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub unsafe fn exp_avx512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    const LO: f32 = -87.336_54;
    const HI: f32 = 88.722_83;
    const MAGIC: f32 = 12_582_912.0;
    let f = _mm512_set1_ps;
    let (add, sub, mul) = (_mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps);
    // `clamp` keeps NaN: vmaxps/vminps return their second operand when
    // either is NaN, so x goes second.
    let xc = _mm512_min_ps(f(HI), _mm512_max_ps(f(LO), x));
    let shifted = add(mul(xc, f(std::f32::consts::LOG2_E)), f(MAGIC));
    let n = sub(shifted, f(MAGIC));
    let n_int = _mm512_sub_epi32(
        _mm512_castps_si512(shifted),
        _mm512_set1_epi32(MAGIC.to_bits() as i32),
    );
    let r = sub(sub(xc, mul(n, f(0.693_359_4))), mul(n, f(-2.121_944_4e-4)));
    let mut p = f(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = add(mul(p, r), f(c));
    }
    let e = add(add(mul(mul(p, r), r), r), f(1.0));
    // n / 2 rounded toward zero, as Rust's integer division.
    let half = _mm512_srai_epi32::<1>(_mm512_add_epi32(n_int, _mm512_srli_epi32::<31>(n_int)));
    let pow2 = |k: __m512i| {
        _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
            k,
            _mm512_set1_epi32(127),
        )))
    };
    let y = mul(mul(e, pow2(half)), pow2(_mm512_sub_epi32(n_int, half)));
    let y = _mm512_mask_mov_ps(
        y,
        _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, f(HI)),
        f(f32::INFINITY),
    );
    _mm512_mask_mov_ps(
        y,
        _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, f(LO)),
        _mm512_setzero_ps(),
    )
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    /// Every lane of [`super::exp_avx512`] has [`super::exp`]'s bits.
    #[test]
    fn exp_avx512_has_the_scalar_bits() {
        if !std::is_x86_feature_detected!("avx512f") {
            println!("skipped: no avx512f");
            return;
        }
        let mut xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.0467).collect();
        xs.extend([
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            0.0,
            88.722_83,
            88.8,
            -87.336_54,
            -87.4,
            1e-30,
            -1e-30,
            f32::MAX,
            f32::MIN,
        ]);
        let mut rng = crate::Rng::new(5);
        xs.extend((0..20_000).map(|_| f32::from_bits(rng.next_u64() as u32)));
        while !xs.len().is_multiple_of(16) {
            xs.push(1.0);
        }
        for chunk in xs.chunks(16) {
            let mut out = [0.0f32; 16];
            // SAFETY: AVX-512F detected; 16 floats read and written.
            unsafe {
                use std::arch::x86_64::*;
                let v = super::exp_avx512(_mm512_loadu_ps(chunk.as_ptr()));
                _mm512_storeu_ps(out.as_mut_ptr(), v);
            }
            for (&x, &y) in chunk.iter().zip(&out) {
                let want = super::exp(x);
                assert!(
                    y.to_bits() == want.to_bits() || (y.is_nan() && want.is_nan()),
                    "exp({x:e}) = {want:e} scalar, {y:e} vector"
                );
            }
        }
    }
}
