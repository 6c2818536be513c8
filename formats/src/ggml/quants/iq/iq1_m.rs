//! IQ1_M, 1.75 bits per weight: per 8 weights an 11-bit index into the IQ1_S grid and the sign
//! of a ±1/8 offset; a 3-bit odd scale per 16 weights; the fp16 super-block scale is spread over
//! the top nibbles of the four scale words (`block_iq1_m`, `iq1m_scale_t`,
//! `dequantize_row_iq1_m`).

use super::grids::IQ1S;
use super::tables::IQ1M_DELTA;
use crate::ggml::fp::f16_bits_to_f32;
use crate::ggml::types::QK_K;

/// Offset of `qh[16]`, after `qs[32]`.
const QH: usize = QK_K / 8;
/// Offset of `scales[8]`, read as four `uint16_t`.
const SCALES: usize = QH + QK_K / 16;
/// Bytes per block.
const BLOCK: usize = SCALES + QK_K / 32;

/// Dequantizes whole IQ1_M blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let s = &b[SCALES..];
        let sc: [u16; 4] = std::array::from_fn(|i| u16::from_le_bytes([s[2 * i], s[2 * i + 1]]));
        let scale =
            (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
        let d = f16_bits_to_f32(scale);
        let qs = b[..QH].chunks_exact(4);
        let qh = b[QH..SCALES].chunks_exact(2);
        for (ib, ((qs, qh), y)) in qs.zip(qh).zip(y.chunks_exact_mut(32)).enumerate() {
            let w = u32::from(sc[ib / 2]);
            let shift = 6 * (ib % 2);
            let dl = [
                d * (2 * ((w >> shift) & 0x7) + 1) as f32,
                d * (2 * ((w >> (shift + 3)) & 0x7) + 1) as f32,
            ];
            let (h0, h1) = (u32::from(qh[0]), u32::from(qh[1]));
            let index = [
                u32::from(qs[0]) | ((h0 << 8) & 0x700),
                u32::from(qs[1]) | ((h0 << 4) & 0x700),
                u32::from(qs[2]) | ((h1 << 8) & 0x700),
                u32::from(qs[3]) | ((h1 << 4) & 0x700),
            ];
            // The C names this offset IQ1S_DELTA; IQ1M_DELTA is the same 0.125.
            let sign = |h: u32, bit: u32| {
                if h & bit != 0 {
                    -IQ1M_DELTA
                } else {
                    IQ1M_DELTA
                }
            };
            let delta = [
                sign(h0, 0x08),
                sign(h0, 0x80),
                sign(h1, 0x08),
                sign(h1, 0x80),
            ];
            for (l, y) in y.chunks_exact_mut(8).enumerate() {
                let grid = &IQ1S[index[l] as usize];
                let dl = dl[l / 2];
                for (y, &g) in y.iter_mut().zip(grid) {
                    *y = dl * (g as f32 + delta[l]);
                }
            }
        }
    }
}
