//! IQ1_S, 1.5625 bits per weight: per 8 weights an 11-bit index into a 2048-point grid of
//! values in {-1, 0, 1}; per 32 weights a 3-bit odd scale and the sign of a ±1/8 offset; one fp16
//! scale per 256 weights (`block_iq1_s`, `dequantize_row_iq1_s`).

use super::grids::IQ1S;
use super::tables::IQ1S_DELTA;
use crate::ggml::fp::read_f16;
use crate::ggml::types::QK_K;

/// Offset of the 8 `uint16_t` `qh` words, after the fp16 scale and `qs[32]`.
const QH: usize = 2 + QK_K / 8;
/// Bytes per block.
const BLOCK: usize = QH + QK_K / 16;

/// Dequantizes whole IQ1_S blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(b);
        let qs = b[2..QH].chunks_exact(4);
        let qh = b[QH..].chunks_exact(2);
        for ((qs, h), y) in qs.zip(qh).zip(y.chunks_exact_mut(32)) {
            let h = u32::from(u16::from_le_bytes([h[0], h[1]]));
            let dl = d * (2 * ((h >> 12) & 7) + 1) as f32;
            let delta = if h & 0x8000 != 0 {
                -IQ1S_DELTA
            } else {
                IQ1S_DELTA
            };
            for (l, y) in y.chunks_exact_mut(8).enumerate() {
                let index = u32::from(qs[l]) | (((h >> (3 * l)) & 7) << 8);
                let grid = &IQ1S[index as usize];
                for (y, &g) in y.iter_mut().zip(grid) {
                    *y = dl * (g as f32 + delta);
                }
            }
        }
    }
}
