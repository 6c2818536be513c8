//! IQ4_XS, 4.25 bits per weight: 256 weights as 4-bit indices into the non-linear
//! `kvalues_iq4nl` levels, a signed 6-bit scale per 32 weights and one fp16 super-block scale
//! (`block_iq4_xs`, `quantize_iq4_xs`, `dequantize_row_iq4_xs`).

use super::nonlinear::{best_index, group_scale, group_weights, pack, sigma2, GROUP};
use super::tables::KVALUES_IQ4NL;
use crate::ggml::fp::{read_f16, write_f16};
use crate::ggml::quants::helpers::nearest_int;
use crate::ggml::types::QK_K;

/// Offset of `scales_l[4]`, after the fp16 scale and the `uint16_t` `scales_h`.
const SCALES_L: usize = 4;
/// Offset of `qs[128]`.
const QS: usize = SCALES_L + QK_K / 64;
/// Bytes per block.
const BLOCK: usize = QS + QK_K / 2;
/// Groups of 32 weights per block.
const GROUPS: usize = QK_K / GROUP;

/// Dequantizes whole IQ4_XS blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(b);
        let scales_h = u32::from(u16::from_le_bytes([b[2], b[3]]));
        let qs = b[QS..].chunks_exact(GROUP / 2);
        for (ib, (qs, y)) in qs.zip(y.chunks_exact_mut(GROUP)).enumerate() {
            let lo = (u32::from(b[SCALES_L + ib / 2]) >> (4 * (ib % 2))) & 0xf;
            let ls = lo | (((scales_h >> (2 * ib)) & 3) << 4);
            let dl = d * (ls as i32 - 32) as f32;
            let (y_lo, y_hi) = y.split_at_mut(GROUP / 2);
            for ((&q, y_lo), y_hi) in qs.iter().zip(y_lo).zip(y_hi) {
                *y_lo = dl * f32::from(KVALUES_IQ4NL[(q & 0xf) as usize]);
                *y_hi = dl * f32::from(KVALUES_IQ4NL[(q >> 4) as usize]);
            }
        }
    }
}

/// Quantizes whole rows to IQ4_XS as `quantize_iq4_xs` does: a scale per 32 weights from the
/// shared search, the scales quantized to 6 bits against `-max_scale/32`, then the levels
/// chosen against each rounded group scale (computed from the unrounded super-block scale).
pub(super) fn quantize(src: &[f32], dst: &mut [u8], n_per_row: usize, imatrix: Option<&[f32]>) {
    for (x, out) in src
        .chunks_exact(n_per_row)
        .zip(dst.chunks_exact_mut(n_per_row / QK_K * BLOCK))
    {
        for (ibl, (x, b)) in x
            .chunks_exact(QK_K)
            .zip(out.chunks_exact_mut(BLOCK))
            .enumerate()
        {
            let qw = imatrix.map(|w| &w[ibl * QK_K..(ibl + 1) * QK_K]);
            quantize_block(x, b, qw);
        }
    }
}

/// One 256-weight super-block of `quantize_row_iq4_nl_impl(QK_K, 32, ..., ntry = 7)`.
fn quantize_block(x: &[f32], b: &mut [u8], qw: Option<&[f32]>) {
    let sigma2 = if qw.is_some() { sigma2(x) } else { 0.0 };
    let mut scales = [0.0f32; GROUPS];
    let (mut max_scale, mut amax_scale) = (0.0f32, 0.0f32);
    for (ib, (xb, s)) in x.chunks_exact(GROUP).zip(&mut scales).enumerate() {
        let qw = qw.map(|w| &w[ib * GROUP..(ib + 1) * GROUP]);
        let w = group_weights(xb, qw, sigma2);
        *s = group_scale(xb, &w);
        let abs_d = s.abs();
        if abs_d > amax_scale {
            amax_scale = abs_d;
            max_scale = *s;
        }
    }

    let d = -max_scale / 32.0;
    write_f16(b, d);
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut scales_h = 0u16;
    let (scales_l, qs) = b[SCALES_L..].split_at_mut(QK_K / 64);
    scales_l.fill(0);
    let groups = x.chunks_exact(GROUP).zip(qs.chunks_exact_mut(GROUP / 2));
    for (ib, ((xb, q4), &s)) in groups.zip(&scales).enumerate() {
        let l = nearest_int(id * s).clamp(-32, 31);
        let dl = d * l as f32;
        let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
        let mut lb = [0u8; GROUP];
        for (lb, &x) in lb.iter_mut().zip(xb) {
            *lb = best_index(idl * x);
        }
        pack(&lb, q4);
        let l = (l + 32) as u8;
        scales_l[ib / 2] |= (l & 0xf) << (4 * (ib % 2));
        scales_h |= u16::from(l >> 4) << (2 * (ib % 8));
    }
    b[2..4].copy_from_slice(&scales_h.to_le_bytes());
}
