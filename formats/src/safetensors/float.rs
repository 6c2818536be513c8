//! Exact conversion of safetensors float elements to `f32`.

use super::dtype::Dtype;
use half::{bf16, f16};

/// The value of an `F8_E4M3` (`e4m3fn`) byte: bias 7, subnormals `m * 2^-9`, no infinities,
/// and NaN only for `S.1111.111` (0x7F, 0xFF). Exact.
pub fn f8_e4m3_to_f32(b: u8) -> f32 {
    let sign = ((b & 0x80) as u32) << 24;
    let exp = ((b >> 3) & 0xF) as u32;
    let man = (b & 0x7) as u32;
    let bits = if exp == 0xF && man == 0x7 {
        0x7FC0_0000
    } else if exp == 0 {
        if man == 0 {
            0
        } else {
            // m * 2^-9 with the leading one of m at bit p: exponent p - 9, the rest as fraction
            let p = 31 - man.leading_zeros();
            ((p + 127 - 9) << 23) | ((man & !(1 << p)) << (23 - p))
        }
    } else {
        ((exp + 127 - 7) << 23) | (man << 20)
    };
    f32::from_bits(sign | bits)
}

/// The value of an `F8_E5M2` byte: the top half of an IEEE fp16 (bias 15, infinities, NaNs). Exact.
pub fn f8_e5m2_to_f32(b: u8) -> f32 {
    f16::from_bits((b as u16) << 8).to_f32()
}

/// Converts little-endian elements of the float type `dtype` into `out` (one per element).
/// F64 rounds to nearest; every other type converts exactly. Returns `false`, leaving `out`
/// untouched, when `dtype` is not a float type or the lengths disagree.
pub(crate) fn to_f32(dtype: Dtype, bytes: &[u8], out: &mut [f32]) -> bool {
    if !dtype.is_float() || bytes.len() as u64 != out.len() as u64 * dtype.size() {
        return false;
    }
    match dtype {
        Dtype::F8_E4M3 => {
            let table: [f32; 256] = std::array::from_fn(|i| f8_e4m3_to_f32(i as u8));
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = table[b as usize];
            }
        }
        Dtype::F8_E5M2 => {
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = f8_e5m2_to_f32(b);
            }
        }
        Dtype::F16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        Dtype::BF16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        Dtype::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        Dtype::F64 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32;
            }
        }
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// E4M3FN by its definition, in f64: (-1)^s * 2^(e-7) * (1 + m/8), subnormal 2^-6 * m/8.
    fn e4m3_by_definition(b: u8) -> f64 {
        let s = if b & 0x80 != 0 { -1.0 } else { 1.0 };
        let e = ((b >> 3) & 0xF) as i32;
        let m = (b & 7) as f64;
        if e == 0 {
            s * 2f64.powi(-6) * (m / 8.0)
        } else {
            s * 2f64.powi(e - 7) * (1.0 + m / 8.0)
        }
    }

    /// E5M2 by its definition: bias 15, exponent 31 is infinity (m = 0) or NaN.
    fn e5m2_by_definition(b: u8) -> f64 {
        let s = if b & 0x80 != 0 { -1.0 } else { 1.0 };
        let e = ((b >> 2) & 0x1F) as i32;
        let m = (b & 3) as f64;
        match e {
            0 => s * 2f64.powi(-14) * (m / 4.0),
            31 if m == 0.0 => s * f64::INFINITY,
            31 => f64::NAN,
            _ => s * 2f64.powi(e - 15) * (1.0 + m / 4.0),
        }
    }

    #[test]
    fn f8_e4m3_matches_its_definition_on_every_byte() {
        for b in 0..=255u8 {
            let got = f8_e4m3_to_f32(b);
            if b & 0x7F == 0x7F {
                assert!(got.is_nan(), "{b:#x}");
            } else {
                assert_eq!(got as f64, e4m3_by_definition(b), "{b:#x}");
                assert_eq!(got.is_sign_negative(), b & 0x80 != 0, "{b:#x}");
            }
        }
        assert_eq!(f8_e4m3_to_f32(0x7E), 448.0);
        assert_eq!(f8_e4m3_to_f32(0x01), 2f32.powi(-9));
        assert_eq!(f8_e4m3_to_f32(0x78), 256.0);
    }

    #[test]
    fn f8_e5m2_matches_its_definition_on_every_byte() {
        for b in 0..=255u8 {
            let got = f8_e5m2_to_f32(b);
            let want = e5m2_by_definition(b);
            if want.is_nan() {
                assert!(got.is_nan(), "{b:#x}");
            } else {
                assert_eq!(got as f64, want, "{b:#x}");
                assert_eq!(got.is_sign_negative(), b & 0x80 != 0, "{b:#x}");
            }
        }
        assert_eq!(f8_e5m2_to_f32(0x7B), 57344.0);
    }

    #[test]
    fn wide_types_convert_exactly_and_f64_rounds_to_nearest() {
        let mut out = [0f32; 3];
        let halves: Vec<u8> = [0x3C00u16, 0xC000, 0x0001]
            .iter()
            .flat_map(|h| h.to_le_bytes())
            .collect();
        assert!(to_f32(Dtype::F16, &halves, &mut out));
        assert_eq!(out, [1.0, -2.0, 2f32.powi(-24)]);
        let b16: Vec<u8> = [0x3F80u16, 0xC040, 0x0001]
            .iter()
            .flat_map(|h| h.to_le_bytes())
            .collect();
        assert!(to_f32(Dtype::BF16, &b16, &mut out));
        assert_eq!(out, [1.0, -3.0, f32::from_bits(0x0001_0000)]);
        let d: Vec<u8> = [1.0f64 + 2f64.powi(-24), 1.0 + 3.0 * 2f64.powi(-24), -0.1]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert!(to_f32(Dtype::F64, &d, &mut out));
        // ties to even: 1 + 2^-24 -> 1, 1 + 3*2^-24 -> 1 + 2^-22
        assert_eq!(out, [1.0, 1.0 + 2f32.powi(-22), -0.1f32]);
    }

    #[test]
    fn integers_and_length_mismatches_are_refused() {
        let mut out = [0f32; 2];
        assert!(!to_f32(Dtype::I32, &[0; 8], &mut out));
        assert!(!to_f32(Dtype::F32, &[0; 4], &mut out));
        assert!(!to_f32(Dtype::BOOL, &[0; 2], &mut out));
    }
}
