//! IQ3_XXS, 3.0625 bits per weight: per 4 weights an 8-bit index into a 256-point grid of 4
//! magnitudes; per 32 weights a `uint32_t` with four 7-bit sign indices and a 4-bit scale; one
//! fp16 scale per 256 weights (`block_iq3_xxs`, `dequantize_row_iq3_xxs`).

use super::grids::{apply_sign, sign_byte, IQ3XXS};
use crate::ggml::fp::read_f16;
use crate::ggml::types::QK_K;

/// Offset of the 8 `uint32_t` scale-and-sign words, after the 64 grid indices.
const SCALES_AND_SIGNS: usize = 2 + QK_K / 4;
/// Bytes per block.
const BLOCK: usize = SCALES_AND_SIGNS + QK_K / 8;

/// Dequantizes whole IQ3_XXS blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(b);
        let qs = b[2..SCALES_AND_SIGNS].chunks_exact(8);
        let words = b[SCALES_AND_SIGNS..].chunks_exact(4);
        for ((qs, w), y) in qs.zip(words).zip(y.chunks_exact_mut(32)) {
            let aux = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            let db = d * (0.5 + (aux >> 28) as f32) * 0.5;
            for (l, y) in y.chunks_exact_mut(8).enumerate() {
                let signs = sign_byte(aux >> (7 * l));
                let grid1 = &IQ3XXS[qs[2 * l] as usize];
                let grid2 = &IQ3XXS[qs[2 * l + 1] as usize];
                for j in 0..4 {
                    y[j] = apply_sign(db * grid1[j] as f32, signs, j);
                    y[j + 4] = apply_sign(db * grid2[j] as f32, signs, j + 4);
                }
            }
        }
    }
}
