//! Scalar float conversions exactly as ggml performs them (`ggml-impl.h`).

use half::{bf16, f16};

/// fp32 to IEEE fp16 bits, round to nearest even, overflow to infinity, NaN to the quiet NaN
/// `0x7E00` with the sign kept (`ggml_compute_fp32_to_fp16`).
#[inline]
pub fn f32_to_f16_bits(x: f32) -> u16 {
    if x.is_nan() {
        return ((x.to_bits() >> 16) as u16 & 0x8000) | 0x7E00;
    }
    f16::from_f32(x).to_bits()
}

/// IEEE fp16 bits to fp32 (exact).
#[inline]
pub fn f16_bits_to_f32(h: u16) -> f32 {
    f16::from_bits(h).to_f32()
}

/// Rounds `x` through fp16 and back, as code that stores a scale and reads it again does.
#[inline]
pub fn round_f16(x: f32) -> f32 {
    f16_bits_to_f32(f32_to_f16_bits(x))
}

/// fp32 to bf16 bits, round to nearest even, NaN forced quiet (`ggml_compute_fp32_to_bf16`).
#[inline]
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let u = x.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    ((u.wrapping_add(0x7fff + ((u >> 16) & 1))) >> 16) as u16
}

/// bf16 bits to fp32 (exact).
#[inline]
pub fn bf16_bits_to_f32(h: u16) -> f32 {
    bf16::from_bits(h).to_f32()
}

/// Reads the little-endian fp16 at `b[0..2]` as fp32.
#[inline]
pub fn read_f16(b: &[u8]) -> f32 {
    f16_bits_to_f32(u16::from_le_bytes([b[0], b[1]]))
}

/// Writes `x` as little-endian fp16 into `b[0..2]` and returns the value actually stored.
#[inline]
pub fn write_f16(b: &mut [u8], x: f32) -> f32 {
    let h = f32_to_f16_bits(x);
    b[..2].copy_from_slice(&h.to_le_bytes());
    f16_bits_to_f32(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ggml's bit-twiddling fp16 conversion, transcribed as the mathematical oracle for the
    /// library path used above.
    fn ggml_fp16(f: f32) -> u16 {
        let scale_to_inf = f32::from_bits(0x7780_0000);
        let scale_to_zero = f32::from_bits(0x0880_0000);
        let mut base = (f.abs() * scale_to_inf) * scale_to_zero;
        let w = f.to_bits();
        let shl1_w = w.wrapping_add(w);
        let sign = w & 0x8000_0000;
        let mut bias = shl1_w & 0xFF00_0000;
        if bias < 0x7100_0000 {
            bias = 0x7100_0000;
        }
        base += f32::from_bits((bias >> 1) + 0x0780_0000);
        let bits = base.to_bits();
        let exp_bits = (bits >> 13) & 0x7C00;
        let mantissa_bits = bits & 0x0FFF;
        let nonsign = exp_bits + mantissa_bits;
        ((sign >> 16)
            | if shl1_w > 0xFF00_0000 {
                0x7E00
            } else {
                nonsign
            }) as u16
    }

    #[test]
    fn fp16_matches_ggml_on_a_sweep_of_bit_patterns() {
        // Every 97th bit pattern covers normals, subnormals, ties, overflow, inf and NaN.
        let mut bits: u32 = 0;
        loop {
            let f = f32::from_bits(bits);
            assert_eq!(f32_to_f16_bits(f), ggml_fp16(f), "bits {bits:#x}");
            match bits.checked_add(97) {
                Some(b) => bits = b,
                None => break,
            }
        }
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(f32_to_bf16_bits(1.0), 0x3f80);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f80_8000)), 0x3f80);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f81_8000)), 0x3f82);
        assert_eq!(
            f32_to_bf16_bits(f32::from_bits(0x7fc0_0001)) & 0x7fc0,
            0x7fc0
        );
    }
}
