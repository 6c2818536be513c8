//! Q2_K: 256 weights in sixteen sub-blocks of 16, each with a 4-bit scale and 4-bit min under
//! fp16 super-scales, levels in 2 bits (`block_q2_K`: `scales[16]`, `qs[64]`, `d`, `dmin`).

use super::bits::pack_2bit;
use crate::ggml::fp;
use crate::ggml::quants::helpers::{
    for_each_row, lanes, make_qkx2_quants, make_qkx3_quants, make_qp_quants, nearest_int,
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
/// `quantize_row_q2_K_impl` row by row (lane-parallel where the CPU allows).
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
    let mut l = [0u8; QK_K];
    let mut laux = [0u8; 16];
    let mut weights = [0.0f32; 16];
    let mut mins = [0.0f32; NSUB];
    let mut scales = [0.0f32; NSUB];
    for (j, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = v.abs();
        }
        let (scale, min) = make_qkx2_quants(3, xs, &weights, ls, &mut laux, -0.5, 0.1, 15, true);
        scales[j] = scale;
        mins[j] = min;
    }
    finish_ref(x, y, &scales, &mins, &mut l, |_, _| {});
}

/// The rest of `quantize_row_q2_K_ref` once the sub-blocks' scales and mins are known.
#[inline(always)]
fn finish_ref(
    x: &[f32],
    y: &mut [u8],
    scales: &[f32; NSUB],
    mins: &[f32; NSUB],
    l: &mut [u8; QK_K],
    search_levels: impl FnMut(usize, &mut [u8]),
) {
    const Q4SCALE: f32 = 15.0;
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for (&scale, &min) in scales.iter().zip(mins) {
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
        for (b, &s) in sc.iter_mut().zip(scales) {
            *b = nearest_int(iscale * s) as u8;
        }
        fp::write_f16(&mut y[D..], max_scale / Q4SCALE);
    } else {
        sc.fill(0);
        fp::write_f16(&mut y[D..], 0.0);
    }
    if max_min > 0.0 {
        let iscale = Q4SCALE / max_min;
        for (b, &m) in y[..QS].iter_mut().zip(mins) {
            *b |= (nearest_int(iscale * m) << 4) as u8;
        }
        fp::write_f16(&mut y[DMIN..], max_min / Q4SCALE);
    } else {
        fp::write_f16(&mut y[DMIN..], 0.0);
    }
    let dm = fp::read_f16(&y[D..]);
    let mm = fp::read_f16(&y[DMIN..]);
    requantize_and_pack(x, y, dm, mm, l, search_levels);
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
    finish_impl(x, y, (&scales, &mins, &sw), &mut l, |_, _| {});
}

/// The rest of `quantize_row_q2_K_impl` once the sub-blocks' scales, mins and weight sums
/// are known.
#[inline(always)]
fn finish_impl(
    x: &[f32],
    y: &mut [u8],
    (scales, mins, sw): (&[f32; NSUB], &[f32; NSUB], &[f32; NSUB]),
    l: &mut [u8; QK_K],
    search_levels: impl FnMut(usize, &mut [u8]),
) {
    let mut ls = [0u8; NSUB];
    let mut lm = [0u8; NSUB];
    let dm = make_qp_quants(15, scales, &mut ls, sw);
    let mm = make_qp_quants(15, mins, &mut lm, sw);
    let dm = fp::write_f16(&mut y[D..], dm);
    let mm = fp::write_f16(&mut y[DMIN..], mm);
    for ((b, &s), &m) in y[..QS].iter_mut().zip(&ls).zip(&lm) {
        *b = s | (m << 4);
    }
    requantize_and_pack(x, y, dm, mm, l, search_levels);
}

/// The lane-parallel path: the sixteen sub-blocks of a super-block searched side by side,
/// one per lane (two vectors of eight); the rest as the scalar path.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{finish_impl, finish_ref, quantize_block_impl, quantize_block_ref, BYTES, NSUB};
    use crate::ggml::quants::helpers::for_each_row;
    use crate::ggml::quants::helpers::lanes::avx2::{make_qkx_lanes, QkxParams, QkxWeights};
    use crate::ggml::quants::helpers::lanes::qkx_levels;
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
                    if !block(x, y, None) {
                        quantize_block_ref(x, y);
                    }
                }
            }
            Some(qw) => for_each_row(src, dst, n_per_row, n_per_row / QK_K * BYTES, |x, y| {
                for ((xb, yb), qb) in x
                    .chunks_exact(QK_K)
                    .zip(y.chunks_exact_mut(BYTES))
                    .zip(qw.chunks_exact(QK_K))
                {
                    if !block(xb, yb, Some(qb)) {
                        quantize_block_impl(xb, yb, qb);
                    }
                }
            }),
        }
    }

    /// One super-block (with importance values `qw` on the importance path); false, writing
    /// nothing, when the lane code leaves it to the scalar code.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline(always)]
    unsafe fn block(x: &[f32], y: &mut [u8], qw: Option<&[f32]>) -> bool {
        let mut l = [0u8; QK_K];
        let mut scales = [0.0f32; NSUB];
        let mut mins = [0.0f32; NSUB];
        let mut sw = [0.0f32; NSUB];
        let mut level_iscale = [0.0f32; NSUB];
        let mut level_min = [0.0f32; NSUB];
        let sigma2;
        let done = match qw {
            None => make_qkx_lanes::<16, 2, true>(
                QkxParams {
                    nmax: 3,
                    rmin: -0.5,
                    rdelta: 0.1,
                    nstep: 15,
                    le_test: false,
                },
                x,
                QkxWeights::Abs,
                &mut scales,
                &mut mins,
                &mut sw,
                &mut level_iscale,
                &mut level_min,
            ),
            Some(qw) => {
                let s = super::super::sigma2(x, 1.0);
                sigma2 = [s, s];
                make_qkx_lanes::<16, 2, false>(
                    QkxParams {
                        nmax: 3,
                        rmin: -0.9,
                        rdelta: 0.05,
                        nstep: 36,
                        le_test: true,
                    },
                    x,
                    QkxWeights::Importance {
                        qw,
                        sigma2: &sigma2,
                    },
                    &mut scales,
                    &mut mins,
                    &mut sw,
                    &mut level_iscale,
                    &mut level_min,
                )
            }
        };
        if !done {
            return false;
        }
        let search_levels = |j: usize, ls: &mut [u8]| {
            let xs = &x[16 * j..16 * j + 16];
            qkx_levels(3, xs, level_iscale[j], level_min[j], ls);
        };
        match qw {
            None => finish_ref(x, y, &scales, &mins, &mut l, search_levels),
            Some(_) => finish_impl(x, y, (&scales, &mins, &sw), &mut l, search_levels),
        }
        true
    }
}

/// Recomputes the levels from the stored scales (`dm`, `mm` as stored in fp16) and packs
/// them; sub-blocks with a zero scale keep their levels from the search, which
/// `search_levels(j, levels)` supplies for sub-block `j` (the scalar search has already
/// written them; the lane-parallel one computes them on demand).
#[inline(always)]
fn requantize_and_pack(
    x: &[f32],
    y: &mut [u8],
    dm: f32,
    mm: f32,
    l: &mut [u8; QK_K],
    mut search_levels: impl FnMut(usize, &mut [u8]),
) {
    let chunks = x.chunks_exact(16).zip(l.chunks_exact_mut(16)).zip(&y[..QS]);
    for (j, ((xs, ls), &sc)) in chunks.enumerate() {
        let d = dm * (sc & 0xF) as f32;
        if d == 0.0 {
            search_levels(j, ls);
            continue;
        }
        let m = mm * (sc >> 4) as f32;
        for (li, &xi) in ls.iter_mut().zip(xs) {
            *li = 3.min(nearest_int((xi + m) / d)).max(0) as u8;
        }
    }
    pack_2bit(l, &mut y[QS..D]);
}
