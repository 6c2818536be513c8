//! IQ2_XXS, 2.0625 bits per weight: per 32 weights, four 8-bit indices into a 256-point grid of
//! 8 magnitudes, four 7-bit sign indices and a 4-bit scale, all in 8 bytes; one fp16 scale per
//! 256 weights (`block_iq2_xxs`, `dequantize_row_iq2_xxs`).

use super::grids::{apply_sign, sign_byte, IQ2XXS};
use crate::ggml::fp::read_f16;
use crate::ggml::types::QK_K;

/// Bytes per block: fp16 scale, then 32 `uint16_t` read as 8 pairs of `uint32_t`.
const BLOCK: usize = 2 + QK_K / 4;

/// Dequantizes whole IQ2_XXS blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(b);
        for (q, y) in b[2..].chunks_exact(8).zip(y.chunks_exact_mut(32)) {
            let aux1 = u32::from_le_bytes([q[4], q[5], q[6], q[7]]);
            let db = d * (0.5 + (aux1 >> 28) as f32) * 0.25;
            for (l, y) in y.chunks_exact_mut(8).enumerate() {
                let grid = &IQ2XXS[q[l] as usize];
                let signs = sign_byte(aux1 >> (7 * l));
                for (j, y) in y.iter_mut().enumerate() {
                    *y = apply_sign(db * grid[j] as f32, signs, j);
                }
            }
        }
    }
}
