//! IQ2_S, 2.5625 bits per weight: per 8 weights an index into a 1024-point grid (low 8 bits in
//! `qs`, high 2 bits in `qh`) and a full sign byte; a 4-bit scale per 16 weights; one fp16 scale
//! per 256 weights (`block_iq2_s`, `dequantize_row_iq2_s`).

use super::grids::{apply_sign, IQ2S};
use crate::ggml::fp::read_f16;
use crate::ggml::types::QK_K;

/// Offset of the 32 sign bytes, which follow the 32 low index bytes in `qs[64]`.
const SIGNS: usize = 2 + QK_K / 8;
/// Offset of `qh[8]`.
const QH: usize = 2 + QK_K / 4;
/// Offset of `scales[8]`.
const SCALES: usize = QH + QK_K / 32;
/// Bytes per block.
const BLOCK: usize = SCALES + QK_K / 32;

/// Dequantizes whole IQ2_S blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(b);
        let (qs, signs) = (&b[2..SIGNS], &b[SIGNS..QH]);
        let (qh, scales) = (&b[QH..SCALES], &b[SCALES..]);
        for (ib32, y) in y.chunks_exact_mut(32).enumerate() {
            let sc = scales[ib32];
            let db = [
                d * (0.5 + (sc & 0xf) as f32) * 0.25,
                d * (0.5 + (sc >> 4) as f32) * 0.25,
            ];
            let h = u32::from(qh[ib32]);
            for (l, y) in y.chunks_exact_mut(8).enumerate() {
                let dl = db[l / 2];
                let index = u32::from(qs[4 * ib32 + l]) | ((h << (8 - 2 * l)) & 0x300);
                let grid = &IQ2S[index as usize];
                let s = signs[4 * ib32 + l];
                for (j, y) in y.iter_mut().enumerate() {
                    *y = apply_sign(dl * grid[j] as f32, s, j);
                }
            }
        }
    }
}
