//! The super-block header shared by Q4_K and Q5_K: fp16 `d` and `dmin`, then eight 6-bit
//! scales and eight 6-bit mins packed into 12 bytes (`get_scale_min_k4`), and the choice of
//! those scales and of the levels they imply.

use crate::ggml::fp;
use crate::ggml::quants::helpers::{
    for_each_row, make_qkx2_quants, make_qkx3_quants, make_qp_quants, nearest_int,
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
/// after rounding the scales; sub-blocks whose scale is zero keep their levels from the
/// search, which `search_levels(j, levels)` supplies for sub-block `j` (the scalar search has
/// already written them; the lane-parallel one computes them on demand).
#[inline(always)]
fn requantize(
    x: &[f32],
    header: &[u8],
    nmax: i32,
    l: &mut [u8; QK_K],
    mut search_levels: impl FnMut(usize, &mut [u8]),
) {
    let d_all = fp::read_f16(header);
    let dmin_all = fp::read_f16(&header[2..]);
    for (j, (xs, ls)) in x.chunks_exact(32).zip(l.chunks_exact_mut(32)).enumerate() {
        let (sc, m) = get_scale_min_k4(j, &header[4..HEADER]);
        let d = d_all * sc as f32;
        if d == 0.0 {
            search_levels(j, ls);
            continue;
        }
        let dm = dmin_all * m as f32;
        for (li, &xi) in ls.iter_mut().zip(xs) {
            *li = nmax.min(nearest_int((xi + dm) / d)).max(0) as u8;
        }
    }
}

/// Stores a super-block's 256 levels into its block (after the header).
pub(super) type PackFn = fn(&[u8; QK_K], &mut [u8]);

/// The K-quant parameters of one of the two types: largest level, the reference path's
/// search `(rmin, rdelta, nstep)`, Q5_K's clamp of the importance path's 6-bit values, the
/// block size and the level packing.
#[derive(Clone, Copy)]
pub(super) struct Kind {
    pub nmax: i32,
    pub search: (f32, f32, i32),
    pub clamp_levels: bool,
    pub bytes: usize,
    pub pack: PackFn,
}

/// `quantize_q4_K` / `quantize_q5_K`: `quantize_row_*_ref` on all of `src` without importance
/// weights, else `quantize_row_*_impl` row by row; `lanes` takes the lane-parallel path where
/// the CPU has it (same bytes).
pub(super) fn quantize(
    kind: Kind,
    src: &[f32],
    dst: &mut [u8],
    n_per_row: usize,
    imatrix: Option<&[f32]>,
    lanes: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if lanes && crate::ggml::quants::helpers::lanes::available() {
        // SAFETY: AVX2 is available (checked just above).
        unsafe { avx2::quantize(kind, src, dst, n_per_row, imatrix) };
        return;
    }
    let _ = lanes;
    let mut l = [0u8; QK_K];
    match imatrix {
        None => {
            for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(kind.bytes)) {
                quantize_ref(x, y, kind.nmax, kind.search, &mut l);
                (kind.pack)(&l, y);
            }
        }
        Some(qw) => for_each_row(
            src,
            dst,
            n_per_row,
            n_per_row / QK_K * kind.bytes,
            |x, y| {
                for ((xb, yb), qb) in x
                    .chunks_exact(QK_K)
                    .zip(y.chunks_exact_mut(kind.bytes))
                    .zip(qw.chunks_exact(QK_K))
                {
                    quantize_impl(xb, qb, yb, kind.nmax, kind.clamp_levels, &mut l);
                    (kind.pack)(&l, yb);
                }
            },
        ),
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
    }
    finish_ref(x, header, nmax, &scales, &mins, l, |_, _| {});
}

/// The rest of the reference path once the sub-blocks' scales and mins are known: 6-bit
/// rescaling against the largest, the header, then the levels.
#[inline(always)]
fn finish_ref(
    x: &[f32],
    header: &mut [u8],
    nmax: i32,
    scales: &[f32; NSUB],
    mins: &[f32; NSUB],
    l: &mut [u8; QK_K],
    search_levels: impl FnMut(usize, &mut [u8]),
) {
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
    requantize(x, header, nmax, l, search_levels);
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
    finish_impl(
        x,
        header,
        nmax,
        clamp_levels,
        (&scales, &mins, &sw),
        l,
        |_, _| {},
    );
}

/// The rest of the importance path once the sub-blocks' scales, mins and weight sums are
/// known.
#[inline(always)]
fn finish_impl(
    x: &[f32],
    header: &mut [u8],
    nmax: i32,
    clamp_levels: bool,
    (scales, mins, sw): (&[f32; NSUB], &[f32; NSUB], &[f32; NSUB]),
    l: &mut [u8; QK_K],
    search_levels: impl FnMut(usize, &mut [u8]),
) {
    let mut ls = [0u8; NSUB];
    let mut lm = [0u8; NSUB];
    let d_block = make_qp_quants(63, scales, &mut ls, sw);
    let m_block = make_qp_quants(63, mins, &mut lm, sw);
    if clamp_levels {
        for v in ls.iter_mut().chain(lm.iter_mut()) {
            *v = 63.min(*v);
        }
    }
    pack_scale_min_k4(&ls, &lm, &mut header[4..HEADER]);
    fp::write_f16(&mut header[0..2], d_block);
    fp::write_f16(&mut header[2..4], m_block);
    requantize(x, header, nmax, l, search_levels);
}

/// The lane-parallel path: the eight sub-blocks of a super-block (of two, where there are
/// two) searched side by side, one per lane; the rest as the scalar path.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{finish_impl, finish_ref, quantize_impl, quantize_ref, Kind, HEADER, NSUB};
    use crate::ggml::quants::helpers::for_each_row;
    use crate::ggml::quants::helpers::lanes::avx2::{make_qkx_lanes, QkxParams, QkxWeights};
    use crate::ggml::quants::helpers::lanes::qkx_levels;
    use crate::ggml::types::QK_K;

    /// Super-blocks searched at once (eight lanes each): enough independent work to hide the
    /// latency of the searches' sequential sums and divisions.
    const WIDE: usize = 2;

    /// [`super::quantize`]'s lane-parallel path.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn quantize(
        kind: Kind,
        src: &[f32],
        dst: &mut [u8],
        n_per_row: usize,
        imatrix: Option<&[f32]>,
    ) {
        match imatrix {
            None => blocks(kind, src, dst, None),
            Some(qw) => for_each_row(
                src,
                dst,
                n_per_row,
                n_per_row / QK_K * kind.bytes,
                |x, y| blocks(kind, x, y, Some(qw)),
            ),
        }
    }

    /// Whole super-blocks of `x` into `y`, [`WIDE`] at a time, then two, then one, `qw`
    /// being the importance values of the row (the importance path) or `None` (the reference
    /// path).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline(always)]
    unsafe fn blocks(kind: Kind, x: &[f32], y: &mut [u8], qw: Option<&[f32]>) {
        let nb = (x.len() / QK_K).min(y.len() / kind.bytes);
        let mut b = 0;
        while b + WIDE <= nb {
            run::<WIDE>(kind, x, y, qw, b);
            b += WIDE;
        }
        if WIDE > 2 && b + 2 <= nb {
            run::<2>(kind, x, y, qw, b);
            b += 2;
        }
        if b < nb {
            run::<1>(kind, x, y, qw, b);
        }
    }

    /// Super-blocks `b..b + G` of `x` into `y` (see [`blocks`]).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline(always)]
    unsafe fn run<const G: usize>(
        kind: Kind,
        x: &[f32],
        y: &mut [u8],
        qw: Option<&[f32]>,
        b: usize,
    ) {
        let (xs, ys) = (&x[b * QK_K..(b + G) * QK_K], &mut y[b * kind.bytes..]);
        let qs = qw.map(|q| &q[b * QK_K..(b + G) * QK_K]);
        if !group::<G>(kind, xs, ys, qs) {
            for g in 0..G {
                let qb = qs.map(|q| &q[g * QK_K..(g + 1) * QK_K]);
                scalar(
                    kind,
                    &xs[g * QK_K..(g + 1) * QK_K],
                    &mut ys[g * kind.bytes..],
                    qb,
                );
            }
        }
    }

    /// One super-block by the scalar code (input the lane code leaves to it).
    fn scalar(kind: Kind, x: &[f32], y: &mut [u8], qw: Option<&[f32]>) {
        let mut l = [0u8; QK_K];
        match qw {
            None => quantize_ref(x, y, kind.nmax, kind.search, &mut l),
            Some(q) => quantize_impl(x, q, y, kind.nmax, kind.clamp_levels, &mut l),
        }
        (kind.pack)(&l, y);
    }

    /// `G` consecutive super-blocks of `x` (with their importance values `qw`) into the
    /// first `G` blocks of `y`; false, writing nothing, when the lane code leaves them to the
    /// scalar code.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline(always)]
    unsafe fn group<const G: usize>(
        kind: Kind,
        x: &[f32],
        y: &mut [u8],
        qw: Option<&[f32]>,
    ) -> bool {
        let mut l = [0u8; QK_K];
        let mut scales = [0.0f32; 8 * WIDE];
        let mut mins = [0.0f32; 8 * WIDE];
        let mut sw = [0.0f32; 8 * WIDE];
        let mut level_iscale = [0.0f32; 8 * WIDE];
        let mut level_min = [0.0f32; 8 * WIDE];
        let mut sigma2 = [0.0f32; WIDE];
        let (params, weights) = match qw {
            None => (
                QkxParams {
                    nmax: kind.nmax,
                    rmin: kind.search.0,
                    rdelta: kind.search.1,
                    nstep: kind.search.2,
                    le_test: false,
                },
                QkxWeights::RmsPlusAbs,
            ),
            Some(qw) => {
                for (g, s2) in sigma2.iter_mut().enumerate().take(G) {
                    *s2 = super::super::sigma2(&x[g * QK_K..(g + 1) * QK_K], 2.0);
                }
                (
                    QkxParams {
                        nmax: kind.nmax,
                        rmin: -0.9,
                        rdelta: 0.05,
                        nstep: 36,
                        le_test: true,
                    },
                    QkxWeights::Importance {
                        qw,
                        sigma2: &sigma2[..G],
                    },
                )
            }
        };
        if !make_qkx_lanes::<32, G, false>(
            params,
            x,
            weights,
            &mut scales,
            &mut mins,
            &mut sw,
            &mut level_iscale,
            &mut level_min,
        ) {
            return false;
        }
        for g in 0..G {
            let xb = &x[g * QK_K..(g + 1) * QK_K];
            let yb = &mut y[g * kind.bytes..(g + 1) * kind.bytes];
            let sub = |v: &[f32; 8 * WIDE]| -> [f32; NSUB] {
                let mut a = [0.0f32; NSUB];
                a.copy_from_slice(&v[g * NSUB..(g + 1) * NSUB]);
                a
            };
            let search_levels = |j: usize, ls: &mut [u8]| {
                let c = g * NSUB + j;
                let xs = &xb[32 * j..32 * j + 32];
                qkx_levels(kind.nmax, xs, level_iscale[c], level_min[c], ls);
            };
            let header = &mut yb[..HEADER];
            match qw {
                None => finish_ref(
                    xb,
                    header,
                    kind.nmax,
                    &sub(&scales),
                    &sub(&mins),
                    &mut l,
                    search_levels,
                ),
                Some(_) => finish_impl(
                    xb,
                    header,
                    kind.nmax,
                    kind.clamp_levels,
                    (&sub(&scales), &sub(&mins), &sub(&sw)),
                    &mut l,
                    search_levels,
                ),
            }
            (kind.pack)(&l, yb);
        }
        true
    }
}
