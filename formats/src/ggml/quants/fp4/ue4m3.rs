//! UE4M3 scales of NVFP4: unsigned, 4 exponent bits (bias 7), 3 mantissa bits, with ggml's
//! conventions (value halved to match the doubled E2M1 table; code 0x7F reads as zero).

/// Half the value of UE4M3 code `x` (`ggml_ue4m3_to_fp32`). The top bit is ignored, as in ggml,
/// and codes 0 and 0x7F give zero. Every result is exact.
#[inline]
pub(super) fn to_f32(x: u8) -> f32 {
    if x == 0 || x == 0x7F {
        return 0.0;
    }
    let exp = ((x >> 3) & 0xF) as i32;
    let man = (x & 0x7) as f32;
    let raw = if exp == 0 {
        man * pow2(-9)
    } else {
        (1.0 + man / 8.0) * pow2(exp - 7)
    };
    raw * 0.5
}

/// `2^e` for `e` in the normal range.
#[inline]
fn pow2(e: i32) -> f32 {
    f32::from_bits(((e + 127) as u32) << 23)
}

/// The UE4M3 code for a positive scale `x` (`ggml_fp32_to_ue4m3`): NaN and non-positive values
/// give 0, values above 448 saturate, the mantissa is rounded half up on the first dropped bit,
/// and subnormals are rounded with `(int)(x * 512 + 0.5)`.
#[inline]
pub(super) fn from_f32(x: f32) -> u8 {
    // `!(x > 0.0f)`
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    let x = if x > 448.0 { 448.0 } else { x };
    let bits = x.to_bits();
    let fp32_exp = ((bits >> 23) & 0xFF) as i32 - 127;
    let fp32_man = ((bits >> 20) & 0x7) as i32;
    let mut exp = fp32_exp + 7;
    if exp <= 0 {
        // x < 2^-6 here, so the product is small and the truncation is well defined.
        let man = ((x * 512.0 + 0.5) as i32).min(7);
        return if man < 1 { 0 } else { man as u8 };
    }
    if exp >= 15 {
        return 0x7E;
    }
    let round_bit = ((bits >> 19) & 1) as i32;
    let mut man = fp32_man + round_bit;
    if man > 7 {
        man = 0;
        exp += 1;
        if exp >= 15 {
            return 0x7E;
        }
    }
    ((exp << 3) | man) as u8
}
