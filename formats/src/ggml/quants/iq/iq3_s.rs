//! IQ3_S, 3.4375 bits per weight: per 4 weights a 9-bit index into a 512-point grid (low 8 bits
//! in `qs`, the ninth in `qh`); a sign byte per 8 weights; a 4-bit odd scale per 32 weights; one
//! fp16 scale per 256 weights (`block_iq3_s`, `dequantize_row_iq3_s`).

use super::grids::{apply_sign, IQ3S};
use crate::ggml::fp::read_f16;
use crate::ggml::types::QK_K;

/// Offset of `qh[8]`, after the fp16 scale and `qs[64]`.
const QH: usize = 2 + QK_K / 4;
/// Offset of `signs[32]`.
const SIGNS: usize = QH + QK_K / 32;
/// Offset of `scales[4]`.
const SCALES: usize = SIGNS + QK_K / 8;
/// Bytes per block.
const BLOCK: usize = SCALES + QK_K / 64;

/// Dequantizes whole IQ3_S blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(b);
        let (qs, qh) = (&b[2..QH], &b[QH..SIGNS]);
        let (signs, scales) = (&b[SIGNS..SCALES], &b[SCALES..]);
        for (ib32, y) in y.chunks_exact_mut(32).enumerate() {
            let sc = scales[ib32 / 2];
            // Even 32-weight groups take the low nibble, odd ones the high one.
            let s = if ib32 % 2 == 0 { sc & 0xf } else { sc >> 4 };
            let db = d * (1 + 2 * i32::from(s)) as f32;
            let h = u32::from(qh[ib32]);
            let qs = &qs[8 * ib32..8 * ib32 + 8];
            for (l, y) in y.chunks_exact_mut(8).enumerate() {
                let i1 = u32::from(qs[2 * l]) | ((h << (8 - 2 * l)) & 256);
                let i2 = u32::from(qs[2 * l + 1]) | ((h << (7 - 2 * l)) & 256);
                let (grid1, grid2) = (&IQ3S[i1 as usize], &IQ3S[i2 as usize]);
                let sg = signs[4 * ib32 + l];
                for j in 0..4 {
                    y[j] = apply_sign(db * grid1[j] as f32, sg, j);
                    y[j + 4] = apply_sign(db * grid2[j] as f32, sg, j + 4);
                }
            }
        }
    }
}
