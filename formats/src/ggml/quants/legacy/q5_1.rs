//! Q5_1: 32 weights as 5-bit levels times an fp16 scale plus an fp16 minimum
//! (`block_q5_1`: `d`, `m`, `qh[4]` fifth bits, `qs[16]` low nibbles).

use super::q5_0::pack5;
use super::weights::{block_weights, row_sigma2};
use super::QK;
use crate::ggml::fp;
use crate::ggml::quants::helpers::{for_each_row, make_qkx3_quants, trunc_all};

/// Bytes per block.
const BYTES: usize = 24;

/// `dequantize_row_q5_1`.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = fp::read_f16(b);
        let m = fp::read_f16(&b[2..]);
        let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        let (lo, hi) = y.split_at_mut(QK / 2);
        for (j, ((&q, y0), y1)) in b[8..BYTES].iter().zip(lo).zip(hi).enumerate() {
            let xh_0 = ((qh >> j) << 4) & 0x10;
            let xh_1 = (qh >> (j + 12)) & 0x10;
            let x0 = (q as u32 & 0x0F) | xh_0;
            let x1 = (q as u32 >> 4) | xh_1;
            *y0 = x0 as f32 * d + m;
            *y1 = x1 as f32 * d + m;
        }
    }
}

/// `quantize_q5_1`: the reference min/max rounding without importance weights, else the
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

/// One block of `quantize_row_q5_1_ref`.
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
    let d = (max - min) / 31.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    fp::write_f16(&mut y[0..2], d);
    fp::write_f16(&mut y[2..4], min);
    let mut v = [0.0f32; QK];
    for (vi, &xi) in v.iter_mut().zip(x) {
        *vi = (xi - min) * id + 0.5;
    }
    let t = trunc_all(&v);
    pack5(|j| t[j] as u8, &mut y[4..]);
}

/// `quantize_row_q5_1_impl` with importance weights `qw` (one per column).
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
            31,
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
        pack5(|j| l[j], &mut yb[4..]);
    }
}
