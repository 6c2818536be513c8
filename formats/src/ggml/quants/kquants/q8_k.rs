//! Q8_K: 256 signed bytes times an f32 scale, with sums of each 16 for dot products
//! (`block_q8_K`: `d` (f32), `qs[256]`, `bsums[16]` (i16)).
//!
//! `ggml_quantize_chunk` does not produce Q8_K; qforge reads it as `dequantize_row_q8_K`.

use crate::ggml::types::QK_K;

/// Bytes per block.
const BYTES: usize = 292;

/// `dequantize_row_q8_K`.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        for (y, &q) in y.iter_mut().zip(&b[4..4 + QK_K]) {
            *y = d * (q as i8) as f32;
        }
    }
}
