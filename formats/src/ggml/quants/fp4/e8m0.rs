//! E8M0 scales of MXFP4: a bare biased exponent.

/// Half the value of E8M0 code `x`, i.e. `2^(x - 128)` (`ggml_e8m0_to_fp32_half`); codes 0 and 1
/// are subnormal and 255 gives infinity (ggml does not special-case NaN).
#[inline]
pub(super) fn to_f32_half(x: u8) -> f32 {
    let bits = if x < 2 {
        0x0020_0000u32 << x
    } else {
        ((x - 1) as u32) << 23
    };
    f32::from_bits(bits)
}

/// The E8M0 code llama.cpp picks for a block with absolute maximum `amax`:
/// `amax > 0 ? (uint8_t)(floorf(log2f(amax)) - 2 + 127) : 0`, so the largest value lands on the
/// top E2M1 magnitudes.
///
/// The float-to-`uint8_t` conversion behaves as on x86-64: truncation to `int` (`INT_MIN` when
/// out of range, as for an infinite `amax`) keeping the low byte. `log2f` is the platform's, as in
/// llama.cpp.
#[inline]
pub(super) fn from_amax(amax: f32) -> u8 {
    // `amax > 0.0f ? ... : 0` (false for NaN)
    if amax.is_nan() || amax <= 0.0 {
        return 0;
    }
    let e = amax.log2().floor() - 2.0 + 127.0;
    let i = if (-2_147_483_648.0..2_147_483_648.0).contains(&e) {
        e as i32
    } else {
        i32::MIN
    };
    i as u8
}
