//! Q3_K: 256 weights in sixteen sub-blocks of 16, each with a signed 6-bit scale under one
//! fp16 super-scale, levels in 3 bits (`block_q3_K`: `hmask[32]` third bits, `qs[64]` low
//! two bits, `scales[12]`, `d`).

use super::bits::pack_2bit;
use crate::ggml::fp;
use crate::ggml::quants::helpers::{for_each_row, make_q3_quants, make_qx_quants, nearest_int};
use crate::ggml::types::QK_K;

/// Bytes per block.
const BYTES: usize = 110;
/// Offsets of the fields.
const QS: usize = 32;
const SCALES: usize = 96;
const D: usize = 108;
/// Sub-blocks per super-block.
const NSUB: usize = QK_K / 16;

/// The sixteen signed 6-bit scales (biased by 32) unpacked from their 12 bytes, as
/// `dequantize_row_q3_K` unpacks them.
fn unpack_scales(s: &[u8]) -> [i8; NSUB] {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let word = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (a0, a1, tmp) = (word(0), word(1), word(2));
    let aux = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    let mut out = [0i8; NSUB];
    for (o, b) in out.chunks_exact_mut(4).zip(aux) {
        for (o, v) in o.iter_mut().zip(b.to_le_bytes()) {
            *o = v as i8;
        }
    }
    out
}

/// `dequantize_row_q3_K`.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d_all = fp::read_f16(&b[D..]);
        let scales = unpack_scales(&b[SCALES..D]);
        let hm = &b[..QS];
        let mut is = 0;
        let mut m = 1u8;
        let mut out = y.chunks_exact_mut(16);
        for q in b[QS..SCALES].chunks_exact(32) {
            for shift in [0, 2, 4, 6] {
                for (q16, h16) in q.chunks_exact(16).zip(hm.chunks_exact(16)) {
                    let Some(y) = out.next() else { return };
                    let dl = d_all * (scales[is] as i32 - 32) as f32;
                    is += 1;
                    for ((y, &q), &h) in y.iter_mut().zip(q16).zip(h16) {
                        let v = ((q >> shift) & 3) as i32 - if h & m != 0 { 0 } else { 4 };
                        *y = dl * v as f32;
                    }
                }
                m <<= 1;
            }
        }
    }
}

/// `quantize_q3_K`: `quantize_row_q3_K_ref` without importance weights, else
/// `quantize_row_q3_K_impl` row by row.
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

/// Packs sixteen biased scales `0..64` into 12 bytes: low nibbles in bytes 0..8, high two
/// bits of scale `j` in bits `2*(j/4)` of byte `8 + j%4`.
fn pack_scales(levels: &[i32; NSUB], s: &mut [u8]) {
    s.fill(0);
    for (j, &lv) in levels.iter().enumerate() {
        if j < 8 {
            s[j] = (lv & 0xF) as u8;
        } else {
            s[j - 8] |= ((lv & 0xF) << 4) as u8;
        }
        s[j % 4 + 8] |= ((lv >> 4) << (2 * (j / 4))) as u8;
    }
}

/// One super-block of `quantize_row_q3_K_ref`.
fn quantize_block_ref(x: &[f32], y: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; NSUB];
    let mut max_scale = 0.0f32;
    let mut amax = 0.0f32;
    for (j, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
        scales[j] = make_q3_quants(4, xs, ls, true);
        let scale = scales[j].abs();
        if scale > amax {
            amax = scale;
            max_scale = scales[j];
        }
    }
    if max_scale != 0.0 {
        let iscale = -32.0 / max_scale;
        let mut levels = [0i32; NSUB];
        for (lv, &s) in levels.iter_mut().zip(&scales) {
            let q = nearest_int(iscale * s) as i8 as i32;
            *lv = 31.min(q).max(-32) + 32;
        }
        pack_scales(&levels, &mut y[SCALES..D]);
        fp::write_f16(&mut y[D..], 1.0 / iscale);
    } else {
        y[SCALES..D].fill(0);
        fp::write_f16(&mut y[D..], 0.0);
    }
    finish(x, y, &mut l);
}

/// One super-block of `quantize_row_q3_K_impl` with importance weights `qw`.
fn quantize_block_impl(x: &[f32], y: &mut [u8], qw: &[f32]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; NSUB];
    let mut weight = [0.0f32; 16];
    let mut sw = [0.0f32; NSUB];
    let sigma2 = super::sigma2(x, 2.0);
    for (j, ((xs, qs), ls)) in x
        .chunks_exact(16)
        .zip(qw.chunks_exact(16))
        .zip(l.chunks_exact_mut(16))
        .enumerate()
    {
        for ((w, &q), &v) in weight.iter_mut().zip(qs).zip(xs) {
            *w = q * (sigma2 + v * v).sqrt();
        }
        let mut sumw = 0.0f32;
        for &w in &weight {
            sumw += w;
        }
        sw[j] = sumw;
        scales[j] = make_qx_quants(4, xs, ls, 1, Some(&weight));
    }
    let mut ls = [0i8; NSUB];
    let d_block = make_qx_quants(32, &scales, &mut ls, 1, Some(&sw));
    let levels = ls.map(i32::from);
    pack_scales(&levels, &mut y[SCALES..D]);
    fp::write_f16(&mut y[D..], d_block);
    finish(x, y, &mut l);
}

/// Recomputes the levels from the stored scales, then stores their third bits in `hmask`
/// (level `j` in bit `j / 32` of byte `j % 32`) and their low two bits in `qs`. Sub-blocks
/// with a zero scale keep their levels from the search.
fn finish(x: &[f32], y: &mut [u8], l: &mut [i8; QK_K]) {
    let d_all = fp::read_f16(&y[D..]);
    let s = &y[SCALES..D];
    for (j, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
        let lo = if j < 8 { s[j] & 0xF } else { s[j - 8] >> 4 };
        let sc = (lo | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) as i8 as i32 - 32;
        let d = d_all * sc as f32;
        if d == 0.0 {
            continue;
        }
        for (li, &xi) in ls.iter_mut().zip(xs) {
            *li = (3.min(nearest_int(xi / d)).max(-4) + 4) as i8;
        }
    }
    let mut low = [0u8; QK_K];
    let hmask = &mut y[..QS];
    hmask.fill(0);
    for (j, (&lv, lo)) in l.iter().zip(low.iter_mut()).enumerate() {
        let mut v = lv;
        if v > 3 {
            hmask[j % 32] |= 1 << (j / 32);
            v -= 4;
        }
        *lo = v as u8;
    }
    pack_2bit(&low, &mut y[QS..SCALES]);
}
