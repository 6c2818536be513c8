//! Rounding and float-to-integer conversions exactly as ggml's C performs them on x86-64.

/// Round half to even, as ggml's `nearest_int` does.
///
/// The result is exact for |x| <= 4194303; beyond that it is the same bit-level value the C
/// computes (ggml builds its reference with `NDEBUG`, so the C assertion never fires).
#[inline]
pub fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12582912.0;
    ((val.to_bits() & 0x007f_ffff) as i32) - 0x0040_0000
}

/// C's float-to-int conversion as x86-64 performs it (`cvttss2si`): truncation toward zero,
/// and `i32::MIN` for NaN and values outside the `i32` range.
#[inline]
pub fn trunc_to_i32(v: f32) -> i32 {
    // `as` saturates: values below the range already give `i32::MIN`; NaN and values at or
    // above 2^31 are mapped to it here.
    let r = v as i32;
    if v < 2147483648.0 {
        r
    } else {
        i32::MIN
    }
}

/// Truncation toward zero for |v| < 2^22, with float arithmetic only (so loops of it
/// vectorize); meaningless for larger values and NaN.
#[inline(always)]
fn trunc_small(v: f32) -> i32 {
    let r = nearest_int(v);
    let rf = r as f32;
    if v >= 0.0 {
        r - (rf > v) as i32
    } else {
        r + (rf < v) as i32
    }
}

/// Below this magnitude [`trunc_small`] is exact.
const SMALL: f32 = 4194303.0;

/// [`trunc_to_i32`] of every value: C's `(int)v` as x86-64 computes it. Takes a vectorizable
/// path when every value is below 2^22 in magnitude and the exact scalar one otherwise.
#[inline(always)]
pub fn trunc_all<const N: usize>(v: &[f32; N]) -> [i32; N] {
    let mut out = [0i32; N];
    let mut small = true;
    for (o, &x) in out.iter_mut().zip(v) {
        small &= x.abs() < SMALL;
        *o = trunc_small(x);
    }
    if !small {
        for (o, &x) in out.iter_mut().zip(v) {
            *o = trunc_to_i32(x);
        }
    }
    out
}

/// C's `(int)roundf(v)` (round half away from zero, then the x86-64 conversion) of every
/// value, with a vectorizable path when every value is below 2^22 in magnitude.
#[inline(always)]
pub fn round_all<const N: usize>(v: &[f32; N]) -> [i32; N] {
    let mut out = [0i32; N];
    let mut small = true;
    for (o, &x) in out.iter_mut().zip(v) {
        small &= x.abs() < SMALL;
        let t = trunc_small(x);
        // x - t is exact (Sterbenz), so this is the distance to the truncated value.
        let away = (x - t as f32).abs() >= 0.5;
        let step = if x < 0.0 { -1 } else { 1 };
        *o = if away { t + step } else { t };
    }
    if !small {
        for (o, &x) in out.iter_mut().zip(v) {
            *o = trunc_to_i32(x.round());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        let cases = [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (3.49, 3),
            (-3.51, -4),
            (0.0, 0),
        ];
        for (x, want) in cases {
            assert_eq!(nearest_int(x), want, "{x}");
        }
        assert_eq!(nearest_int(4194303.0), 4194303);
        assert_eq!(nearest_int(-4194303.0), -4194303);
    }

    #[test]
    fn trunc_to_i32_matches_x86_conversion() {
        assert_eq!(trunc_to_i32(8.99), 8);
        assert_eq!(trunc_to_i32(-8.99), -8);
        assert_eq!(trunc_to_i32(f32::NAN), i32::MIN);
        assert_eq!(trunc_to_i32(3e9), i32::MIN);
        assert_eq!(trunc_to_i32(-3e9), i32::MIN);
        assert_eq!(trunc_to_i32(-2147483648.0), i32::MIN);
    }

    #[test]
    fn trunc_all_and_round_all_match_scalar_conversions() {
        let mut rng = crate::oracle::Rng::new(21);
        let mut v = [0.0f32; 64];
        for round in 0..200 {
            let scale = [1.0f32, 0.5, 17.0, 1e3, 4e6, 5e6, 3e9][round % 7];
            for x in v.iter_mut() {
                *x = (rng.uniform() - 0.5) * scale;
            }
            // Exact halves, integers and the 2^22 boundary.
            v[0] = 2.5;
            v[1] = -2.5;
            v[2] = 0.49999997;
            v[3] = -3.0;
            v[4] = 4194303.5;
            v[5] = -0.0;
            if round == 199 {
                v[6] = f32::NAN;
                v[7] = f32::INFINITY;
            }
            let t = trunc_all(&v);
            let r = round_all(&v);
            for i in 0..64 {
                assert_eq!(t[i], trunc_to_i32(v[i]), "trunc {}", v[i]);
                assert_eq!(r[i], trunc_to_i32(v[i].round()), "round {}", v[i]);
            }
        }
    }
}
