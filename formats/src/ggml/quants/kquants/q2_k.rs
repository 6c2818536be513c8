//! Q2_K: 256 weights in sixteen sub-blocks of 16, each with a 4-bit scale and 4-bit min under
//! fp16 super-scales, levels in 2 bits (`block_q2_K`: `scales[16]`, `qs[64]`, `d`, `dmin`).

use super::bits::pack_2bit;
use crate::ggml::fp;
use crate::ggml::quants::helpers::{
    for_each_row, make_qkx2_quants, make_qkx3_quants, make_qp_quants, nearest_int,
};
use crate::ggml::types::QK_K;

/// Bytes per block.
const BYTES: usize = 84;
/// Offsets of the fields.
const QS: usize = 16;
const D: usize = 80;
const DMIN: usize = 82;
/// Sub-blocks per super-block.
const NSUB: usize = QK_K / 16;

/// `dequantize_row_q2_K`.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = fp::read_f16(&b[D..]);
        let min = fp::read_f16(&b[DMIN..]);
        let mut scales = b[..QS].iter();
        let mut out = y.chunks_exact_mut(16);
        for q in b[QS..D].chunks_exact(32) {
            for shift in [0, 2, 4, 6] {
                for q16 in q.chunks_exact(16) {
                    let (Some(&sc), Some(y)) = (scales.next(), out.next()) else {
                        return;
                    };
                    let dl = d * (sc & 0xF) as f32;
                    let ml = min * (sc >> 4) as f32;
                    for (y, &q) in y.iter_mut().zip(q16) {
                        *y = dl * ((q >> shift) & 3) as f32 - ml;
                    }
                }
            }
        }
    }
}

/// `quantize_q2_K`: `quantize_row_q2_K_ref` without importance weights, else
/// `quantize_row_q2_K_impl` row by row.
pub(super) fn quantize(src: &[f32], dst: &mut [u8], n_per_row: usize, imatrix: Option<&[f32]>) {
    match imatrix {
        None => {
            for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(BYTES)) {
                quantize_block_ref(x, y);
            }
        }
        Some(qw) => for_each_row(src, dst, n_per_row, n_per_row / QK_K * BYTES, |x, y| {
            for ((xb, yb), qb) in x
                .chunks_exact(QK_K)
                .zip(y.chunks_exact_mut(BYTES))
                .zip(qw.chunks_exact(QK_K))
            {
                quantize_block_impl(xb, yb, qb);
            }
        }),
    }
}

/// One super-block of `quantize_row_q2_K_ref`.
fn quantize_block_ref(x: &[f32], y: &mut [u8]) {
    const Q4SCALE: f32 = 15.0;
    let mut l = [0u8; QK_K];
    let mut laux = [0u8; 16];
    let mut weights = [0.0f32; 16];
    let mut mins = [0.0f32; NSUB];
    let mut scales = [0.0f32; NSUB];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for (j, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = v.abs();
        }
        let (scale, min) = make_qkx2_quants(3, xs, &weights, ls, &mut laux, -0.5, 0.1, 15, true);
        scales[j] = scale;
        mins[j] = min;
        if scale > max_scale {
            max_scale = scale;
        }
        if min > max_min {
            max_min = min;
        }
    }
    let sc = &mut y[..QS];
    if max_scale > 0.0 {
        let iscale = Q4SCALE / max_scale;
        for (b, &s) in sc.iter_mut().zip(&scales) {
            *b = nearest_int(iscale * s) as u8;
        }
        fp::write_f16(&mut y[D..], max_scale / Q4SCALE);
    } else {
        sc.fill(0);
        fp::write_f16(&mut y[D..], 0.0);
    }
    if max_min > 0.0 {
        let iscale = Q4SCALE / max_min;
        for (b, &m) in y[..QS].iter_mut().zip(&mins) {
            *b |= (nearest_int(iscale * m) << 4) as u8;
        }
        fp::write_f16(&mut y[DMIN..], max_min / Q4SCALE);
    } else {
        fp::write_f16(&mut y[DMIN..], 0.0);
    }
    let dm = fp::read_f16(&y[D..]);
    let mm = fp::read_f16(&y[DMIN..]);
    requantize_and_pack(x, y, dm, mm, &mut l);
}

/// One super-block of `quantize_row_q2_K_impl` with importance weights `qw`.
fn quantize_block_impl(x: &[f32], y: &mut [u8], qw: &[f32]) {
    let mut l = [0u8; QK_K];
    let mut laux = [0u8; 16];
    let mut weight = [0.0f32; 16];
    let mut mins = [0.0f32; NSUB];
    let mut scales = [0.0f32; NSUB];
    let mut sw = [0.0f32; NSUB];
    let sigma2 = super::sigma2(x, 1.0);
    for (j, ((xs, qs), ls)) in x
        .chunks_exact(16)
        .zip(qw.chunks_exact(16))
        .zip(l.chunks_exact_mut(16))
        .enumerate()
    {
        for ((w, &q), &v) in weight.iter_mut().zip(qs).zip(xs) {
            *w = q * (sigma2 + v * v).sqrt();
        }
        for &w in &weight {
            sw[j] += w;
        }
        let (scale, min) =
            make_qkx3_quants(3, xs, Some(&weight), ls, &mut laux, -0.9, 0.05, 36, false);
        scales[j] = scale;
        mins[j] = min;
    }
    let mut ls = [0u8; NSUB];
    let mut lm = [0u8; NSUB];
    let dm = make_qp_quants(15, &scales, &mut ls, &sw);
    let mm = make_qp_quants(15, &mins, &mut lm, &sw);
    let dm = fp::write_f16(&mut y[D..], dm);
    let mm = fp::write_f16(&mut y[DMIN..], mm);
    for ((b, &s), &m) in y[..QS].iter_mut().zip(&ls).zip(&lm) {
        *b = s | (m << 4);
    }
    requantize_and_pack(x, y, dm, mm, &mut l);
}

/// Recomputes the levels from the stored scales (`dm`, `mm` as stored in fp16) and packs
/// them; sub-blocks with a zero scale keep their levels from the search.
fn requantize_and_pack(x: &[f32], y: &mut [u8], dm: f32, mm: f32, l: &mut [u8; QK_K]) {
    for ((xs, ls), &sc) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).zip(&y[..QS]) {
        let d = dm * (sc & 0xF) as f32;
        if d == 0.0 {
            continue;
        }
        let m = mm * (sc >> 4) as f32;
        for (li, &xi) in ls.iter_mut().zip(xs) {
            *li = 3.min(nearest_int((xi + m) / d)).max(0) as u8;
        }
    }
    pack_2bit(l, &mut y[QS..D]);
}
