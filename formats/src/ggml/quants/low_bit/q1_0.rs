//! Q1_0: an fp16 scale (mean absolute value of the block) then one bit per weight, set for
//! weights `>= 0` (`quantize_row_q1_0_ref` / `dequantize_row_q1_0`).

use crate::ggml::fp::{read_f16, write_f16};

/// Weights per block (`QK1_0`).
const QK: usize = 128;
/// Bytes per block: fp16 scale and `QK / 8` sign bytes.
const BLOCK: usize = 2 + QK / 8;

/// Dequantizes whole Q1_0 blocks: each weight is `+d` or `-d`.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK)) {
        let d = read_f16(b);
        let neg_d = -d;
        for (y, &bits) in y.chunks_exact_mut(8).zip(&b[2..]) {
            for (k, y) in y.iter_mut().enumerate() {
                *y = if (bits >> k) & 1 != 0 { d } else { neg_d };
            }
        }
    }
}

/// Quantizes whole rows to Q1_0 (`quantize_q1_0`; importance weights do not change the result).
pub(super) fn quantize(src: &[f32], dst: &mut [u8], _n_per_row: usize, _imatrix: Option<&[f32]>) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(BLOCK)) {
        let mut sum_abs = 0.0f32;
        for v in x {
            sum_abs += v.abs();
        }
        write_f16(b, sum_abs / QK as f32);
        for (q, x) in b[2..].iter_mut().zip(x.chunks_exact(8)) {
            let mut bits = 0u8;
            for (k, &v) in x.iter().enumerate() {
                if v >= 0.0 {
                    bits |= 1 << k;
                }
            }
            *q = bits;
        }
    }
}
