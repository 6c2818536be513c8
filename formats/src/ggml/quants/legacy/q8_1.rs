//! Q8_1: 32 signed bytes times an fp16 scale, with the fp16 `s = d * Σqs` kept for dot
//! products (`block_q8_1`: `d`, `s`, `qs[32]`).
//!
//! ggml uses Q8_1 only as an intermediate for dot products: `ggml_quantize_chunk` does not
//! produce it and its type traits have no `to_float`. qforge reads it as `qs[j] * d`, the
//! value the block encodes (the form of `dequantize_row_q8_0`).

use super::QK;
use crate::ggml::fp;

/// Bytes per block.
const BYTES: usize = 36;

/// `qs[j] * d` for every element.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = fp::read_f16(b);
        for (y, &q) in y.iter_mut().zip(&b[4..BYTES]) {
            *y = (q as i8) as f32 * d;
        }
    }
}
