//! TQ2_0: 256 trits per block, four 2-bit codes per byte, then the fp16 scale
//! (`quantize_row_tq2_0_ref` / `dequantize_row_tq2_0`).

use super::{block_amax, inverse_scale, trit_index};
use crate::ggml::fp::{read_f16, write_f16};
use crate::ggml::types::QK_K;

/// Bytes of packed codes before the scale.
const QS: usize = QK_K / 4;
/// Bytes per block: codes plus the fp16 scale.
const BLOCK: usize = QS + 2;

/// Dequantizes whole TQ2_0 blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(&b[QS..]);
        for (qs, y) in b[..QS].chunks_exact(32).zip(y.chunks_exact_mut(128)) {
            for (l, y) in y.chunks_exact_mut(32).enumerate() {
                for (y, &q) in y.iter_mut().zip(qs) {
                    let q = ((q >> (l * 2)) & 3) as i8;
                    *y = (q - 1) as f32 * d;
                }
            }
        }
    }
}

/// Quantizes whole rows to TQ2_0 (`quantize_tq2_0`, which ignores importance weights).
pub(super) fn quantize(src: &[f32], dst: &mut [u8], _n_per_row: usize, _imatrix: Option<&[f32]>) {
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(BLOCK)) {
        let d = block_amax(x);
        let id = inverse_scale(d);
        write_f16(&mut b[QS..], d);
        for (qs, x) in b[..QS].chunks_exact_mut(32).zip(x.chunks_exact(128)) {
            for (m, q) in qs.iter_mut().enumerate() {
                let mut acc = 0u8;
                for n in 0..4 {
                    let xi = trit_index(x[m + n * 32] * id);
                    acc = acc.wrapping_add(((xi & 3) << (2 * n)) as u8);
                }
                *q = acc;
            }
        }
    }
}
