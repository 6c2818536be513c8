//! IQ2_XS, 2.3125 bits per weight: per 8 weights a `uint16_t` holding a 9-bit index into a
//! 512-point grid and a 7-bit sign index; a 4-bit scale per 16 weights; one fp16 scale per 256
//! weights (`block_iq2_xs`, `dequantize_row_iq2_xs`).

use super::grids::{apply_sign, sign_byte, IQ2XS};
use crate::ggml::fp::read_f16;
use crate::ggml::types::QK_K;

/// Offset of `scales[8]`, after the fp16 scale and 32 `uint16_t` grid/sign codes.
const SCALES: usize = 2 + QK_K / 4;
/// Bytes per block.
const BLOCK: usize = SCALES + QK_K / 32;

/// Dequantizes whole IQ2_XS blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(b);
        let codes = b[2..SCALES].chunks_exact(8);
        for ((q, &sc), y) in codes.zip(&b[SCALES..]).zip(y.chunks_exact_mut(32)) {
            let db = [
                d * (0.5 + (sc & 0xf) as f32) * 0.25,
                d * (0.5 + (sc >> 4) as f32) * 0.25,
            ];
            for (l, y) in y.chunks_exact_mut(8).enumerate() {
                let code = u16::from_le_bytes([q[2 * l], q[2 * l + 1]]);
                let grid = &IQ2XS[(code & 511) as usize];
                let signs = sign_byte(u32::from(code >> 9));
                let dl = db[l / 2];
                for (j, y) in y.iter_mut().enumerate() {
                    *y = apply_sign(dl * grid[j] as f32, signs, j);
                }
            }
        }
    }
}
