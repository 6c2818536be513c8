//! Q4_0: 32 weights as 4-bit signed levels times one fp16 scale (`block_q4_0`: `d`, `qs[16]`).

use super::weights::{block_weights, row_sigma2};
use super::QK;
use crate::ggml::fp;
use crate::ggml::quants::helpers::{for_each_row, make_qx_quants, trunc_all};

/// Bytes per block.
const BYTES: usize = 18;

/// `dequantize_row_q4_0`.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = fp::read_f16(b);
        let (lo, hi) = y.split_at_mut(QK / 2);
        for ((&q, y0), y1) in b[2..BYTES].iter().zip(lo).zip(hi) {
            *y0 = ((q & 0x0F) as i32 - 8) as f32 * d;
            *y1 = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

/// `quantize_q4_0`: the reference rounding without importance weights, else the weighted
/// scale search row by row.
pub(super) fn quantize(src: &[f32], dst: &mut [u8], n_per_row: usize, imatrix: Option<&[f32]>) {
    match imatrix {
        None => {
            for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(BYTES)) {
                quantize_block_ref(x, y);
            }
        }
        Some(qw) => for_each_row(src, dst, n_per_row, n_per_row / QK * BYTES, |x, y| {
            quantize_row_impl(x, y, qw)
        }),
    }
}

/// One block of `quantize_row_q4_0_ref`.
fn quantize_block_ref(x: &[f32], y: &mut [u8]) {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    fp::write_f16(&mut y[0..2], d);
    let mut v = [0.0f32; QK];
    for (vi, &xi) in v.iter_mut().zip(x) {
        *vi = xi * id + 8.5;
    }
    let t = trunc_all(&v);
    let (lo, hi) = t.split_at(QK / 2);
    for ((q, &t0), &t1) in y[2..BYTES].iter_mut().zip(lo).zip(hi) {
        let xi0 = 15.min(t0 as i8 as i32) as u8;
        let xi1 = 15.min(t1 as i8 as i32) as u8;
        *q = xi0 | (xi1 << 4);
    }
}

/// `quantize_row_q4_0_impl` with importance weights `qw` (one per column).
fn quantize_row_impl(x: &[f32], y: &mut [u8], qw: &[f32]) {
    let sigma2 = row_sigma2(x);
    let mut l = [0i8; QK];
    for ((xb, yb), qb) in x
        .chunks_exact(QK)
        .zip(y.chunks_exact_mut(BYTES))
        .zip(qw.chunks_exact(QK))
    {
        let weight = block_weights(qb, xb, sigma2);
        let d = make_qx_quants(8, xb, &mut l, 1, Some(&weight));
        fp::write_f16(&mut yb[0..2], d);
        for (j, q) in yb[2..BYTES].iter_mut().enumerate() {
            *q = (l[j] as u8) | ((l[j + 16] as u8) << 4);
        }
    }
}
