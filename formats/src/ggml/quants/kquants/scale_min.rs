//! The super-block header shared by Q4_K and Q5_K: fp16 `d` and `dmin`, then eight 6-bit
//! scales and eight 6-bit mins packed into 12 bytes (`get_scale_min_k4`), and the choice of
//! those scales and of the levels they imply.

use crate::ggml::fp;
use crate::ggml::quants::helpers::{
    make_qkx2_quants, make_qkx3_quants, make_qp_quants, nearest_int,
};
use crate::ggml::types::QK_K;

/// Bytes of the header: `d`, `dmin`, `scales[12]`.
pub(super) const HEADER: usize = 16;
/// Sub-blocks per super-block.
const NSUB: usize = QK_K / 32;

/// Scale and min of sub-block `j` from the 12 packed bytes `q` (`get_scale_min_k4`).
#[inline]
pub(super) fn get_scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Packs eight scales and eight mins into 12 bytes, as the quantizers do (bits above the
/// sixth are dropped exactly as the C's byte stores drop them).
fn pack_scale_min_k4(ls: &[u8; NSUB], lm: &[u8; NSUB], scales: &mut [u8]) {
    for j in 0..NSUB {
        if j < 4 {
            scales[j] = ls[j];
            scales[j + 4] = lm[j];
        } else {
            scales[j + 4] = (ls[j] & 0xF) | ((lm[j] & 0xF) << 4);
            scales[j - 4] |= (ls[j] >> 4) << 6;
            scales[j] |= (lm[j] >> 4) << 6;
        }
    }
}

/// Recomputes the levels `0..=nmax` of `x` from the stored header, as the quantizers do
/// after rounding the scales; sub-blocks whose scale is zero keep their levels.
fn requantize(x: &[f32], header: &[u8], nmax: i32, l: &mut [u8; QK_K]) {
    let d_all = fp::read_f16(header);
    let dmin_all = fp::read_f16(&header[2..]);
    for (j, (xs, ls)) in x.chunks_exact(32).zip(l.chunks_exact_mut(32)).enumerate() {
        let (sc, m) = get_scale_min_k4(j, &header[4..HEADER]);
        let d = d_all * sc as f32;
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * m as f32;
        for (li, &xi) in ls.iter_mut().zip(xs) {
            *li = nmax.min(nearest_int((xi + dm) / d)).max(0) as u8;
        }
    }
}

/// The reference path of `quantize_row_q4_K_ref` / `quantize_row_q5_K_ref` for one
/// super-block: per-sub-block scale and min by `make_qkx2_quants` with weights
/// `sqrt(mean x²) + |x|`, 6-bit rescaling against the largest, then the levels.
pub(super) fn quantize_ref(
    x: &[f32],
    header: &mut [u8],
    nmax: i32,
    search: (f32, f32, i32),
    l: &mut [u8; QK_K],
) {
    let (rmin, rdelta, nstep) = search;
    let mut laux = [0u8; 32];
    let mut weights = [0.0f32; 32];
    let mut mins = [0.0f32; NSUB];
    let mut scales = [0.0f32; NSUB];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for (j, (xs, ls)) in x.chunks_exact(32).zip(l.chunks_exact_mut(32)).enumerate() {
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (scale, min) = make_qkx2_quants(
            nmax, xs, &weights, ls, &mut laux, rmin, rdelta, nstep, false,
        );
        scales[j] = scale;
        mins[j] = min;
        if scale > max_scale {
            max_scale = scale;
        }
        if min > max_min {
            max_min = min;
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut ls = [0u8; NSUB];
    let mut lm = [0u8; NSUB];
    for j in 0..NSUB {
        ls[j] = 63.min(nearest_int(inv_scale * scales[j]) as u8);
        lm[j] = 63.min(nearest_int(inv_min * mins[j]) as u8);
    }
    pack_scale_min_k4(&ls, &lm, &mut header[4..HEADER]);
    fp::write_f16(&mut header[0..2], max_scale / 63.0);
    fp::write_f16(&mut header[2..4], max_min / 63.0);
    requantize(x, header, nmax, l);
}

/// The importance-weighted path of `quantize_row_q4_K_impl` / `quantize_row_q5_K_impl` for
/// one super-block: per-sub-block scale and min by `make_qkx3_quants` with weights
/// `qw * sqrt(sigma2 + x²)`, the 6-bit scales and mins by `make_qp_quants`, then the levels.
/// `clamp_levels` applies Q5_K's `MIN(63, ...)` to the packed values (Q4_K has none).
pub(super) fn quantize_impl(
    x: &[f32],
    qw: &[f32],
    header: &mut [u8],
    nmax: i32,
    clamp_levels: bool,
    l: &mut [u8; QK_K],
) {
    let sigma2 = super::sigma2(x, 2.0);
    let mut laux = [0u8; 32];
    let mut weights = [0.0f32; 32];
    let mut sw = [0.0f32; NSUB];
    let mut mins = [0.0f32; NSUB];
    let mut scales = [0.0f32; NSUB];
    for (j, ((xs, qs), ls)) in x
        .chunks_exact(32)
        .zip(qw.chunks_exact(32))
        .zip(l.chunks_exact_mut(32))
        .enumerate()
    {
        for ((w, &q), &v) in weights.iter_mut().zip(qs).zip(xs) {
            *w = q * (sigma2 + v * v).sqrt();
        }
        let mut sumw = 0.0f32;
        for &w in &weights {
            sumw += w;
        }
        sw[j] = sumw;
        let (scale, min) = make_qkx3_quants(
            nmax,
            xs,
            Some(&weights),
            ls,
            &mut laux,
            -0.9,
            0.05,
            36,
            false,
        );
        scales[j] = scale;
        mins[j] = min;
    }
    let mut ls = [0u8; NSUB];
    let mut lm = [0u8; NSUB];
    let d_block = make_qp_quants(63, &scales, &mut ls, &sw);
    let m_block = make_qp_quants(63, &mins, &mut lm, &sw);
    if clamp_levels {
        for v in ls.iter_mut().chain(lm.iter_mut()) {
            *v = 63.min(*v);
        }
    }
    pack_scale_min_k4(&ls, &lm, &mut header[4..HEADER]);
    fp::write_f16(&mut header[0..2], d_block);
    fp::write_f16(&mut header[2..4], m_block);
    requantize(x, header, nmax, l);
}
