//! Q8_0: 32 weights as signed bytes times one fp16 scale (`block_q8_0`: `d`, `qs[32]`).

use super::QK;
use crate::ggml::fp;
use crate::ggml::quants::helpers::round_all;

/// Bytes per block.
const BYTES: usize = 34;

/// `dequantize_row_q8_0`.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = fp::read_f16(b);
        for (y, &q) in y.iter_mut().zip(&b[2..BYTES]) {
            *y = (q as i8) as f32 * d;
        }
    }
}

/// `quantize_q8_0`: always `quantize_row_q8_0_ref`; importance weights are ignored.
pub(super) fn quantize(src: &[f32], dst: &mut [u8], _n_per_row: usize, _imatrix: Option<&[f32]>) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(BYTES)) {
        let mut amax = 0.0f32;
        for &v in x {
            let av = v.abs();
            amax = if amax > av { amax } else { av };
        }
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        fp::write_f16(&mut y[0..2], d);
        let mut v = [0.0f32; QK];
        for (vi, &xi) in v.iter_mut().zip(x) {
            *vi = xi * id;
        }
        for (q, r) in y[2..BYTES].iter_mut().zip(round_all(&v)) {
            *q = r as i8 as u8;
        }
    }
}
