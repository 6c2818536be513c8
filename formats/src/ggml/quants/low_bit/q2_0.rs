//! Q2_0: an fp16 scale (absolute maximum of the block) then 2-bit codes `q` for the values
//! `(q - 1) * d`, four per byte from the low bits up (`quantize_row_q2_0_ref` /
//! `dequantize_row_q2_0`).

use crate::ggml::fp::{read_f16, write_f16};

/// Weights per block (`QK2_0`).
const QK: usize = 64;
/// Bytes per block: fp16 scale and `QK / 4` code bytes.
const BLOCK: usize = 2 + QK / 4;

/// C's `(int)` conversion of an integral float as x86-64 performs it (`cvttss2si`): values
/// outside the `int` range, infinities and NaN give `INT_MIN`.
#[inline]
fn c_int(v: f32) -> i32 {
    if (-2_147_483_648.0..2_147_483_648.0).contains(&v) {
        v as i32
    } else {
        i32::MIN
    }
}

/// Dequantizes whole Q2_0 blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK)) {
        let d = read_f16(b);
        for (y, &codes) in y.chunks_exact_mut(4).zip(&b[2..]) {
            for (k, y) in y.iter_mut().enumerate() {
                let q = (codes >> (2 * k)) & 3;
                *y = (q as i32 - 1) as f32 * d;
            }
        }
    }
}

/// Quantizes whole rows to Q2_0 (`quantize_q2_0`; importance weights do not change the result).
pub(super) fn quantize(src: &[f32], dst: &mut [u8], _n_per_row: usize, _imatrix: Option<&[f32]>) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(BLOCK)) {
        let mut amax = 0.0f32;
        for v in x {
            let a = v.abs();
            if a > amax {
                amax = a;
            }
        }
        let d = amax;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        write_f16(b, d);
        for (q, x) in b[2..].iter_mut().zip(x.chunks_exact(4)) {
            let mut codes = 0u8;
            for (k, &w) in x.iter().enumerate() {
                let c = c_int((w * id).round()).wrapping_add(1).clamp(0, 3);
                codes |= (c as u8) << (2 * k);
            }
            *q = codes;
        }
    }
}
