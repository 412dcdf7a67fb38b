//! gemmlowp / TFLite fixed-point arithmetic, exactly: the integer requantization every
//! backend must reproduce bit for bit.
//!
//! A real multiplier `0 < r < 1` is represented as `r ≈ multiplier · 2⁻³¹ · 2⁻ˢʰⁱᶠᵗ` with
//! `multiplier` a positive `i32` (normally in `[2³⁰, 2³¹)`) and `shift` in `0..=31` (a right
//! shift; multipliers above 1 are not supported in this format version).
//!
//! The CPU reference here uses 64-bit products and is written as the C++ originals are;
//! the WGSL kernels (which have no 64-bit integers) build the same results from 16-bit
//! halves, and the GPU tests compare the two on edge cases and random values.

/// gemmlowp `SaturatingRoundingDoublingHighMul`: the high 32 bits of `2·a·b`, rounded.
///
/// `a·b` is computed in 64 bits, a nudge of `2³⁰` (if `a·b ≥ 0`) or `1 − 2³⁰` (if negative)
/// is added, and the sum is divided by `2³¹` truncating toward zero (C++ division). The
/// effect is round-to-nearest with ties toward +∞ (`-0.5 → 0`, `0.5 → 1`, `-1.5 → -1`).
/// The single overflowing case, `a = b = i32::MIN`, saturates to `i32::MAX`.
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // |ab + nudge| < 2^62 + 2^30, so the quotient fits i32 (Rust `/` truncates like C++).
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp `RoundingDivideByPOT`: `x / 2^exponent`, rounded to nearest, ties away from
/// zero (`5/2 → 3`, `-5/2 → -3`, `7/4 → 2`). `exponent` must be in `0..=31` (values above
/// are clamped to 31; the model validator rejects them first).
pub fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    let exponent = exponent.min(31);
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// TFLite `MultiplyByQuantizedMultiplier` for a right shift:
/// `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, multiplier), shift)`.
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: u32) -> i32 {
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), shift)
}

/// Parameters of one int32 → int8 requantization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    /// Fixed-point multiplier, `1..=i32::MAX`.
    pub multiplier: i32,
    /// Right shift, `0..=31`.
    pub shift: u8,
    /// Output zero point, `-128..=127`.
    pub output_zero_point: i32,
    /// Lowest output value (activation range; `output_zero_point` gives ReLU).
    pub act_min: i8,
    /// Highest output value, `≥ act_min`.
    pub act_max: i8,
}

impl Requant {
    /// `clamp(MultiplyByQuantizedMultiplier(acc) + output_zero_point, act_min, act_max)`,
    /// computed exactly: the scaled value is first clamped to `±2¹⁶`, which cannot change
    /// the final result (the zero point is within ±128) and keeps the addition from wrapping.
    pub fn apply(&self, acc: i32) -> i8 {
        let scaled = multiply_by_quantized_multiplier(acc, self.multiplier, self.shift as u32);
        let shifted = scaled.clamp(-(1 << 16), 1 << 16) + self.output_zero_point;
        shifted.clamp(self.act_min as i32, self.act_max as i32) as i8
    }
}

/// The `(multiplier, shift)` closest to `1 / divisor` (rounded down), integer-only:
/// `multiplier = ⌊2^(31+shift) / divisor⌋ ∈ [2³⁰, 2³¹)`. `divisor` must be at least 2 and
/// below 2³¹ (`None` otherwise).
pub fn reciprocal_multiplier(divisor: u64) -> Option<(i32, u8)> {
    if !(2..1 << 31).contains(&divisor) {
        return None;
    }
    // 2^shift <= divisor < 2^(shift+1) gives 2^30 < 2^(31+shift)/divisor <= 2^31.
    let shift = 63 - divisor.leading_zeros();
    let multiplier = ((1u64 << (31 + shift)) / divisor).min(i32::MAX as u64);
    Some((multiplier as i32, shift as u8))
}
