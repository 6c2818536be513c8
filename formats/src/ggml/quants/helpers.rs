//! Numeric helpers shared by llama.cpp's quantization routines (`ggml-quants.c`).

/// Round half to even, as ggml's `nearest_int` does (valid for |x| <= 4194303).
#[inline]
pub fn nearest_int(fval: f32) -> i32 {
    debug_assert!(fval.abs() <= 4194303.0);
    let val = fval + 12582912.0;
    ((val.to_bits() & 0x007f_ffff) as i32) - 0x0040_0000
}
