//! Q5_K: 256 weights in eight sub-blocks of 32, each with a 6-bit scale and min under fp16
//! super-scales, levels in 5 bits (`block_q5_K`: `d`, `dmin`, `scales[12]`, `qh[32]` fifth
//! bits, `qs[128]` low nibbles).

use super::scale_min::{self, get_scale_min_k4, Kind, HEADER};
use crate::ggml::fp;
use crate::ggml::quants::helpers::lanes;
use crate::ggml::types::QK_K;

/// Bytes per block.
const BYTES: usize = 176;
/// Offset of the low nibbles.
const QS: usize = HEADER + QK_K / 8;

/// `dequantize_row_q5_K`.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = fp::read_f16(b);
        let min = fp::read_f16(&b[2..]);
        let scales = &b[4..HEADER];
        let qh = &b[HEADER..QS];
        for (is, (ql, y)) in b[QS..]
            .chunks_exact(32)
            .zip(y.chunks_exact_mut(64))
            .enumerate()
        {
            let (sc, m) = get_scale_min_k4(2 * is, scales);
            let (d1, m1) = (d * sc as f32, min * m as f32);
            let (sc, m) = get_scale_min_k4(2 * is + 1, scales);
            let (d2, m2) = (d * sc as f32, min * m as f32);
            let (u1, u2) = (1u8 << (2 * is), 2u8 << (2 * is));
            let (lo, hi) = y.split_at_mut(32);
            for (l, (y1, y2)) in lo.iter_mut().zip(hi).enumerate() {
                let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
                let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
                *y1 = d1 * ((ql[l] & 0xF) as i32 + h1) as f32 - m1;
                *y2 = d2 * ((ql[l] >> 4) as i32 + h2) as f32 - m2;
            }
        }
    }
}

/// The Q5_K parameters of the shared Q4_K/Q5_K quantizer.
const KIND: Kind = Kind {
    nmax: 31,
    search: (-0.5, 0.1, 15),
    clamp_levels: true,
    bytes: BYTES,
    pack,
};

/// `quantize_q5_K`: `quantize_row_q5_K_ref` without importance weights, else
/// `quantize_row_q5_K_impl` row by row (lane-parallel where the CPU allows).
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

/// Stores 256 levels in `0..32`: low nibbles as Q4_K does, the fifth bit of level
/// `64g + l` in bit `2g` of `qh[l]` and of level `64g + 32 + l` in bit `2g + 1`.
fn pack(l: &[u8; QK_K], y: &mut [u8]) {
    let (qh, ql) = y[HEADER..].split_at_mut(QK_K / 8);
    qh.fill(0);
    let (mut m1, mut m2) = (1u8, 2u8);
    for (lv, q) in l.chunks_exact(64).zip(ql.chunks_exact_mut(32)) {
        for (j, b) in q.iter_mut().enumerate() {
            let mut l1 = lv[j];
            if l1 > 15 {
                l1 -= 16;
                qh[j] |= m1;
            }
            let mut l2 = lv[j + 32];
            if l2 > 15 {
                l2 -= 16;
                qh[j] |= m2;
            }
            *b = l1 | (l2 << 4);
        }
        m1 <<= 2;
        m2 <<= 2;
    }
}
