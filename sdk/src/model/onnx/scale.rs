//! A float scale ratio turned, once, into the fixed-point `(multiplier, shift)` of
//! [`crate::model::fixedpoint`], with the relative error the conversion introduces.

/// One ratio's fixed-point form: `ratio ≈ multiplier · 2⁻³¹ · 2⁻ˢʰⁱᶠᵗ`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedScale {
    /// The exact ratio (computed in f64 from the file's f32 scales).
    pub ratio: f64,
    /// Multiplier in `[2³⁰, 2³¹)`.
    pub multiplier: i32,
    /// Right shift, `0..=31`.
    pub shift: u8,
    /// `|fixed − ratio| / ratio`.
    pub relative_error: f64,
}

/// The fixed-point form of `0 < ratio < 1`, rounded to nearest (TFLite's
/// `QuantizeMultiplier`); `None` if `ratio` is not finite, not positive, at least 1 (the
/// format has right shifts only) or below `2⁻³²` (a shift over 31).
pub fn fixed_scale(ratio: f64) -> Option<FixedScale> {
    if !ratio.is_finite() || ratio <= 0.0 || ratio >= 1.0 {
        return None;
    }
    // ratio = q · 2^-shift with q in [0.5, 1).
    let mut shift = (-ratio.log2().floor()) as i32 - 1;
    let mut q = ratio * 2f64.powi(shift);
    while q < 0.5 {
        q *= 2.0;
        shift += 1;
    }
    while q >= 1.0 {
        q /= 2.0;
        shift -= 1;
    }
    let mut multiplier = (q * 2f64.powi(31)).round() as i64;
    if multiplier == 1 << 31 {
        multiplier /= 2;
        shift -= 1;
    }
    if !(0..=31).contains(&shift) {
        return None;
    }
    let fixed = multiplier as f64 * 2f64.powi(-31 - shift);
    Some(FixedScale {
        ratio,
        multiplier: multiplier as i32,
        shift: shift as u8,
        relative_error: (fixed - ratio).abs() / ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        let half = fixed_scale(0.5).unwrap();
        assert_eq!((half.multiplier, half.shift), (1 << 30, 0));
        let quarter = fixed_scale(0.25).unwrap();
        assert_eq!((quarter.multiplier, quarter.shift), (1 << 30, 1));
        // 0.75 = 0.75 · 2^0: multiplier 0.75 · 2^31.
        let three_q = fixed_scale(0.75).unwrap();
        assert_eq!((three_q.multiplier, three_q.shift), (1_610_612_736, 0));
        assert_eq!(three_q.relative_error, 0.0);
        // Just below 1 rounds up to 2^31: halved, it would need a left shift (ratio 1).
        assert!(fixed_scale(1.0 - 1e-12).is_none());
    }

    #[test]
    fn out_of_range_ratios_are_refused() {
        for r in [0.0, -0.5, 1.0, 3.0, f64::NAN, f64::INFINITY, 1e-12] {
            assert!(fixed_scale(r).is_none(), "{r}");
        }
    }

    #[test]
    fn error_is_within_half_an_ulp_of_the_multiplier() {
        for r in [0.001_234_5, 0.1, 0.333_333_3, 0.002_1, 0.9] {
            let s = fixed_scale(r).unwrap();
            assert!(s.multiplier >= 1 << 30, "{r}");
            assert!(
                s.relative_error <= 2f64.powi(-30),
                "{r}: {}",
                s.relative_error
            );
            let fixed = s.multiplier as f64 * 2f64.powi(-31 - s.shift as i32);
            assert!((fixed - r).abs() / r == s.relative_error);
        }
    }
}
