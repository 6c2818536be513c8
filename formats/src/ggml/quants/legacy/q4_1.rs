//! Q4_1: 32 weights as 4-bit levels times an fp16 scale plus an fp16 minimum
//! (`block_q4_1`: `d`, `m`, `qs[16]`).

use super::weights::{block_weights, row_sigma2};
use super::QK;
use crate::ggml::fp;
use crate::ggml::quants::helpers::{for_each_row, make_qkx3_quants, trunc_all};

/// Bytes per block.
const BYTES: usize = 20;

/// `dequantize_row_q4_1`.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = fp::read_f16(b);
        let m = fp::read_f16(&b[2..]);
        let (lo, hi) = y.split_at_mut(QK / 2);
        for ((&q, y0), y1) in b[4..BYTES].iter().zip(lo).zip(hi) {
            *y0 = (q & 0x0F) as f32 * d + m;
            *y1 = (q >> 4) as f32 * d + m;
        }
    }
}

/// `quantize_q4_1`: the reference min/max rounding without importance weights, else the
/// weighted scale-and-min search row by row.
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

/// One block of `quantize_row_q4_1_ref`.
fn quantize_block_ref(x: &[f32], y: &mut [u8]) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    fp::write_f16(&mut y[0..2], d);
    fp::write_f16(&mut y[2..4], min);
    let mut v = [0.0f32; QK];
    for (vi, &xi) in v.iter_mut().zip(x) {
        *vi = (xi - min) * id + 0.5;
    }
    let t = trunc_all(&v);
    let (lo, hi) = t.split_at(QK / 2);
    for ((q, &t0), &t1) in y[4..BYTES].iter_mut().zip(lo).zip(hi) {
        let xi0 = 15.min(t0 as i8 as i32) as u8;
        let xi1 = 15.min(t1 as i8 as i32) as u8;
        *q = xi0 | (xi1 << 4);
    }
}

/// `quantize_row_q4_1_impl` with importance weights `qw` (one per column).
fn quantize_row_impl(x: &[f32], y: &mut [u8], qw: &[f32]) {
    let sigma2 = row_sigma2(x);
    let mut l = [0u8; QK];
    let mut laux = [0u8; QK];
    for ((xb, yb), qb) in x
        .chunks_exact(QK)
        .zip(y.chunks_exact_mut(BYTES))
        .zip(qw.chunks_exact(QK))
    {
        let weight = block_weights(qb, xb, sigma2);
        let (d, min) = make_qkx3_quants(
            15,
            xb,
            Some(&weight),
            &mut l,
            &mut laux,
            -0.9,
            0.05,
            36,
            false,
        );
        fp::write_f16(&mut yb[0..2], d);
        fp::write_f16(&mut yb[2..4], -min);
        for (j, q) in yb[4..BYTES].iter_mut().enumerate() {
            *q = l[j] | (l[j + 16] << 4);
        }
    }
}
