//! Q6_K: 256 weights in sixteen sub-blocks of 16, each with a signed 8-bit scale under one
//! fp16 super-scale, levels in 6 bits (`block_q6_K`: `ql[128]` low nibbles, `qh[64]` high
//! two bits, `scales[16]`, `d`).

use crate::ggml::fp;
use crate::ggml::quants::helpers::{
    for_each_row, lanes, make_qx_quants, nearest_int, GROUP_MAX_EPS,
};
use crate::ggml::types::QK_K;

/// Bytes per block.
const BYTES: usize = 210;
/// Offsets of the fields.
const QH: usize = 128;
const SCALES: usize = 192;
const D: usize = 208;
/// Sub-blocks per super-block.
const NSUB: usize = QK_K / 16;

/// `dequantize_row_q6_K`.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = fp::read_f16(&b[D..]);
        let halves = b[..QH]
            .chunks_exact(64)
            .zip(b[QH..SCALES].chunks_exact(32))
            .zip(b[SCALES..D].chunks_exact(8));
        for (((ql, qh), sc), y) in halves.zip(y.chunks_exact_mut(128)) {
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0xF) | (qh[l] & 3) << 4) as i32 - 32;
                let q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) as i32 - 32;
                let q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) as i32 - 32;
                let q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) as i32 - 32;
                y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
                y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
                y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
                y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
            }
        }
    }
}

/// `quantize_q6_K`: `quantize_row_q6_K_ref` without importance weights, else
/// `quantize_row_q6_K_impl` (which uses the importance values themselves as weights) row by
/// row (lane-parallel where the CPU allows).
pub(super) fn quantize(src: &[f32], dst: &mut [u8], n_per_row: usize, imatrix: Option<&[f32]>) {
    quantize_with(src, dst, n_per_row, imatrix, lanes::active());
}

/// [`quantize`], taking the lane-parallel path only when `lanes` is set.
pub(super) fn quantize_with(
    src: &[f32],
    dst: &mut [u8],
    n_per_row: usize,
    imatrix: Option<&[f32]>,
    lanes: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if lanes && lanes::available() {
        // SAFETY: AVX2 is available (checked just above).
        unsafe { avx2::quantize(src, dst, n_per_row, imatrix) };
        return;
    }
    let _ = lanes;
    match imatrix {
        None => {
            for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(BYTES)) {
                quantize_block(x, y, None);
            }
        }
        Some(qw) => for_each_row(src, dst, n_per_row, n_per_row / QK_K * BYTES, |x, y| {
            for ((xb, yb), qb) in x
                .chunks_exact(QK_K)
                .zip(y.chunks_exact_mut(BYTES))
                .zip(qw.chunks_exact(QK_K))
            {
                quantize_block(xb, yb, Some(qb));
            }
        }),
    }
}

/// The lane-parallel path: the sixteen sub-blocks of a super-block searched side by side,
/// one per lane (two vectors of eight); the rest as the scalar path.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{finish, quantize_block, BYTES, NSUB};
    use crate::ggml::quants::helpers::for_each_row;
    use crate::ggml::quants::helpers::lanes::avx2::make_qx_lanes;
    use crate::ggml::quants::helpers::lanes::qx_levels;
    use crate::ggml::types::QK_K;

    /// [`super::quantize_with`]'s lane-parallel path.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn quantize(
        src: &[f32],
        dst: &mut [u8],
        n_per_row: usize,
        imatrix: Option<&[f32]>,
    ) {
        match imatrix {
            None => {
                for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(BYTES)) {
                    block(x, y, None);
                }
            }
            Some(qw) => for_each_row(src, dst, n_per_row, n_per_row / QK_K * BYTES, |x, y| {
                for ((xb, yb), qb) in x
                    .chunks_exact(QK_K)
                    .zip(y.chunks_exact_mut(BYTES))
                    .zip(qw.chunks_exact(QK_K))
                {
                    block(xb, yb, Some(qb));
                }
            }),
        }
    }

    /// One super-block, by the scalar code when the lane code leaves it to it.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline(always)]
    unsafe fn block(x: &[f32], y: &mut [u8], qw: Option<&[f32]>) {
        let mut l = [0i8; QK_K];
        let mut scales = [0.0f32; NSUB];
        let mut level_iscale = [None; NSUB];
        if make_qx_lanes::<16, 2>(32, x, qw, &mut scales, &mut level_iscale) {
            finish(x, y, &scales, &mut l, |j, ls| {
                qx_levels(32, &x[16 * j..16 * j + 16], level_iscale[j], ls)
            });
        } else {
            quantize_block(x, y, qw);
        }
    }
}

/// One super-block of `quantize_row_q6_K_ref` (`qw` None) or `quantize_row_q6_K_impl`.
fn quantize_block(x: &[f32], y: &mut [u8], qw: Option<&[f32]>) {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; NSUB];
    for (ib, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
        let w = qw.map(|q| &q[16 * ib..16 * ib + 16]);
        scales[ib] = make_qx_quants(32, xs, ls, 1, w);
    }
    finish(x, y, &scales, &mut l, |_, _| {});
}

/// The rest of a super-block once the sub-blocks' scales are known: the 8-bit scales under
/// the fp16 super-scale, then the levels. Sub-blocks whose scale rounds to zero keep their
/// levels from the search, which `search_levels(j, levels)` supplies for sub-block `j` (the
/// scalar search has already written them; the lane-parallel one computes them on demand).
#[inline(always)]
fn finish(
    x: &[f32],
    y: &mut [u8],
    scales: &[f32; NSUB],
    l: &mut [i8; QK_K],
    mut search_levels: impl FnMut(usize, &mut [i8]),
) {
    let mut max_scale = 0.0f32;
    let mut max_abs_scale = 0.0f32;
    for &scale in scales {
        let abs_scale = scale.abs();
        if abs_scale > max_abs_scale {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }
    if max_abs_scale < GROUP_MAX_EPS {
        y.fill(0);
        return;
    }
    let iscale = -128.0 / max_scale;
    let d_all = fp::write_f16(&mut y[D..], 1.0 / iscale);
    for (b, &s) in y[SCALES..D].iter_mut().zip(scales) {
        *b = 127.min(nearest_int(iscale * s)) as u8;
    }
    for (j, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
        let d = d_all * (y[SCALES + j] as i8) as f32;
        if d == 0.0 {
            search_levels(j, ls);
            continue;
        }
        for (li, &xi) in ls.iter_mut().zip(xs) {
            *li = (31.min(nearest_int(xi / d)).max(-32) + 32) as i8;
        }
    }
    let (ql, qh) = y[..SCALES].split_at_mut(QH);
    for ((lv, ql), qh) in l
        .chunks_exact(128)
        .zip(ql.chunks_exact_mut(64))
        .zip(qh.chunks_exact_mut(32))
    {
        for j in 0..32 {
            let q = [
                lv[j] as i32,
                lv[j + 32] as i32,
                lv[j + 64] as i32,
                lv[j + 96] as i32,
            ];
            ql[j] = ((q[0] & 0xF) | ((q[2] & 0xF) << 4)) as u8;
            ql[j + 32] = ((q[1] & 0xF) | ((q[3] & 0xF) << 4)) as u8;
            qh[j] =
                ((q[0] >> 4) | ((q[1] >> 4) << 2) | ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6)) as u8;
        }
    }
}
