//! Q5_0: 32 weights as 5-bit signed levels times one fp16 scale
//! (`block_q5_0`: `d`, `qh[4]` fifth bits, `qs[16]` low nibbles).

use super::weights::{block_weights, row_sigma2};
use super::QK;
use crate::ggml::fp;
use crate::ggml::quants::helpers::{for_each_row, make_qx_quants, trunc_all};

/// Bytes per block.
const BYTES: usize = 22;

/// `dequantize_row_q5_0`.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = fp::read_f16(b);
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        let (lo, hi) = y.split_at_mut(QK / 2);
        for (j, ((&q, y0), y1)) in b[6..BYTES].iter().zip(lo).zip(hi).enumerate() {
            let xh_0 = ((qh >> j) << 4) & 0x10;
            let xh_1 = (qh >> (j + 12)) & 0x10;
            let x0 = ((q as u32 & 0x0F) | xh_0) as i32 - 16;
            let x1 = ((q as u32 >> 4) | xh_1) as i32 - 16;
            *y0 = x0 as f32 * d;
            *y1 = x1 as f32 * d;
        }
    }
}

/// `quantize_q5_0`: the reference rounding without importance weights, else the weighted
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

/// Packs 32 five-bit levels into `qh` and `qs` as every Q5 block does.
pub(super) fn pack5(levels: impl Fn(usize) -> u8, y: &mut [u8]) {
    let mut qh = 0u32;
    for j in 0..QK / 2 {
        let xi0 = levels(j);
        let xi1 = levels(j + QK / 2);
        y[4 + j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
        qh |= ((xi0 as u32 & 0x10) >> 4) << j;
        qh |= ((xi1 as u32 & 0x10) >> 4) << (j + QK / 2);
    }
    y[..4].copy_from_slice(&qh.to_le_bytes());
}

/// One block of `quantize_row_q5_0_ref`.
fn quantize_block_ref(x: &[f32], y: &mut [u8]) {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    fp::write_f16(&mut y[0..2], d);
    let mut v = [0.0f32; QK];
    for (vi, &xi) in v.iter_mut().zip(x) {
        *vi = xi * id + 16.5;
    }
    let t = trunc_all(&v);
    pack5(|j| 31.min(t[j] as i8 as i32) as u8, &mut y[2..]);
}

/// `quantize_row_q5_0_impl` with importance weights `qw` (one per column).
fn quantize_row_impl(x: &[f32], y: &mut [u8], qw: &[f32]) {
    let sigma2 = row_sigma2(x);
    let mut l = [0i8; QK];
    for ((xb, yb), qb) in x
        .chunks_exact(QK)
        .zip(y.chunks_exact_mut(BYTES))
        .zip(qw.chunks_exact(QK))
    {
        let weight = block_weights(qb, xb, sigma2);
        let d = make_qx_quants(16, xb, &mut l, 1, Some(&weight));
        fp::write_f16(&mut yb[0..2], d);
        pack5(|j| l[j] as u8, &mut yb[2..]);
    }
}
