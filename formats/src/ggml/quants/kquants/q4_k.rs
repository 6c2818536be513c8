//! Q4_K: 256 weights in eight sub-blocks of 32, each with a 6-bit scale and min under fp16
//! super-scales, levels in 4 bits (`block_q4_K`: `d`, `dmin`, `scales[12]`, `qs[128]`).

use super::scale_min::{self, get_scale_min_k4, Kind, HEADER};
use crate::ggml::fp;
use crate::ggml::quants::helpers::lanes;
use crate::ggml::types::QK_K;

/// Bytes per block.
const BYTES: usize = 144;

/// `dequantize_row_q4_K`.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = fp::read_f16(b);
        let min = fp::read_f16(&b[2..]);
        let scales = &b[4..HEADER];
        for (is, (q, y)) in b[HEADER..]
            .chunks_exact(32)
            .zip(y.chunks_exact_mut(64))
            .enumerate()
        {
            let (sc, m) = get_scale_min_k4(2 * is, scales);
            let (d1, m1) = (d * sc as f32, min * m as f32);
            let (sc, m) = get_scale_min_k4(2 * is + 1, scales);
            let (d2, m2) = (d * sc as f32, min * m as f32);
            let (lo, hi) = y.split_at_mut(32);
            for ((&q, y1), y2) in q.iter().zip(lo).zip(hi) {
                *y1 = d1 * (q & 0xF) as f32 - m1;
                *y2 = d2 * (q >> 4) as f32 - m2;
            }
        }
    }
}

/// The Q4_K parameters of the shared Q4_K/Q5_K quantizer.
const KIND: Kind = Kind {
    nmax: 15,
    search: (-1.0, 0.1, 20),
    clamp_levels: false,
    bytes: BYTES,
    pack,
};

/// `quantize_q4_K`: `quantize_row_q4_K_ref` without importance weights, else
/// `quantize_row_q4_K_impl` row by row (lane-parallel where the CPU allows).
pub(super) fn quantize(src: &[f32], dst: &mut [u8], n_per_row: usize, imatrix: Option<&[f32]>) {
    quantize_with(src, dst, n_per_row, imatrix, lanes::active());
}

/// [`quantize`], taking the lane-parallel path only when `lanes` is set.
pub(super) fn quantize_with(
    src: &[f32],
    dst: &mut [u8],
    n_per_row: usize,
    imatrix: Option<&[f32]>,
    lanes: bool,
) {
    scale_min::quantize(KIND, src, dst, n_per_row, imatrix, lanes);
}

/// Stores 256 levels in `0..16` as nibbles: byte `l` of each 32-byte group holds levels
/// `64g + l` (low) and `64g + 32 + l` (high).
fn pack(l: &[u8; QK_K], y: &mut [u8]) {
    for (lv, q) in l.chunks_exact(64).zip(y[HEADER..].chunks_exact_mut(32)) {
        for (j, b) in q.iter_mut().enumerate() {
            *b = lv[j] | (lv[j + 32] << 4);
        }
    }
}
