//! IQ2_S, 2.5625 bits per weight: per 8 weights an index into a 1024-point grid (low 8 bits in
//! `qs`, high 2 bits in `qh`) and a full sign byte; a 4-bit scale per 16 weights; one fp16 scale
//! per 256 weights (`block_iq2_s`, `dequantize_row_iq2_s`).

use super::grids::{apply_sign, IQ2S};
use super::neighbours::{self, GridMap};
use super::search::{
    max_c, max_of, quantize_rows, scale_code, search, split_signs, sum_squares, weights, Refine,
    SuperBlock, Trials,
};
use crate::ggml::fp::{read_f16, write_f16};
use crate::ggml::types::QK_K;

/// Offset of the 32 sign bytes, which follow the 32 low index bytes in `qs[64]`.
const SIGNS: usize = 2 + QK_K / 8;
/// Offset of `qh[8]`.
const QH: usize = 2 + QK_K / 4;
/// Offset of `scales[8]`.
const SCALES: usize = QH + QK_K / 32;
/// Bytes per block.
const BLOCK: usize = SCALES + QK_K / 32;

/// Dequantizes whole IQ2_S blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(b);
        let (qs, signs) = (&b[2..SIGNS], &b[SIGNS..QH]);
        let (qh, scales) = (&b[QH..SCALES], &b[SCALES..]);
        for (ib32, y) in y.chunks_exact_mut(32).enumerate() {
            let sc = scales[ib32];
            let db = [
                d * (0.5 + (sc & 0xf) as f32) * 0.25,
                d * (0.5 + (sc >> 4) as f32) * 0.25,
            ];
            let h = u32::from(qh[ib32]);
            for (l, y) in y.chunks_exact_mut(8).enumerate() {
                let dl = db[l / 2];
                let index = u32::from(qs[4 * ib32 + l]) | ((h << (8 - 2 * l)) & 0x300);
                let grid = &IQ2S[index as usize];
                let s = signs[4 * ib32 + l];
                for (j, y) in y.iter_mut().enumerate() {
                    *y = apply_sign(dl * grid[j] as f32, s, j);
                }
            }
        }
    }
}

/// `GROUP_MAX_EPS_IQ2_S`: groups whose largest magnitude is below this are all zero.
const GROUP_MAX_EPS: f32 = 1e-8;

/// The trials of `quantize_row_iq2_s_impl`.
const TRIALS: Trials = Trials {
    kmax_q: 3,
    nstep: 9,
    step: 0.1,
    init_on_grid: true,
    refine: Refine::OffGridOnly,
};

/// Quantizes whole rows to IQ2_S as `quantize_iq2_s` does, with or without importance
/// weights.
pub(super) fn quantize(src: &[f32], dst: &mut [u8], n_per_row: usize, imatrix: Option<&[f32]>) {
    quantize_rows::<8, Iq2S>(neighbours::iq2s(), src, dst, n_per_row, imatrix);
}

/// The super-block quantizer of [`quantize`].
struct Iq2S;

impl SuperBlock<8> for Iq2S {
    const BYTES: usize = BLOCK;
    #[inline(always)]
    fn quantize(grid: &GridMap<8>, x: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
        quantize_block(grid, x, qw, b);
    }
}

/// One super-block of `quantize_row_iq2_s_impl`: per 16 weights the scale search over 2
/// groups of 8 with full sign bytes, stored as found, then the 4-bit scales against
/// `max_scale/31` (the fp16 scale gets a 0.9875 fudge factor).
#[inline(always)]
fn quantize_block(grid: &GridMap<8>, xbl: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
    b.fill(0);
    let sigma2 = 2.0 * sum_squares(xbl) / QK_K as f32;
    let mut scales = [0.0f32; QK_K / 16];
    let mut max_scale = 0.0f32;
    let (mut weight, mut waux, mut xval) = ([0.0f32; 16], [0.0f32; 16], [0.0f32; 16]);
    let mut signs = [0u8; 2];
    for ib in 0..QK_K / 16 {
        let xb = &xbl[16 * ib..16 * ib + 16];
        let qw = qw.map(|w| &w[16 * ib..16 * ib + 16]);
        let plain = |x: f32| 0.25 * sigma2 + x * x;
        weights(xb, qw, sigma2, plain, &mut weight, &mut waux);
        split_signs(xb, &weight, false, &mut xval, &mut signs);
        let max = max_of(&xval);
        let mut l = [0i8; 16];
        if max < GROUP_MAX_EPS {
            scales[ib] = 0.0;
            continue;
        }
        let mut scale = search(grid, &TRIALS, &xval, &weight, &waux, max, max / 5.0, &mut l);
        if scale < 0.0 {
            scale = -scale;
            for s in &mut signs {
                *s = !*s;
            }
        }
        for k in 0..2 {
            let g = grid.grid_index(&l[8 * k..8 * k + 8]);
            let i8 = 2 * ib + k;
            b[2 + i8] = g as u8;
            b[QH + i8 / 4] |= ((g >> 8) << (2 * (i8 % 4))) as u8;
            b[SIGNS + i8] = signs[k];
        }
        scales[ib] = scale;
        max_scale = max_c(max_scale, scale);
    }
    if max_scale == 0.0 {
        return;
    }
    let d = max_scale / 31.0;
    write_f16(b, d * 0.9875);
    let id = 1.0 / d;
    for (ib, pair) in scales.chunks_exact(2).enumerate() {
        let l1 = scale_code(id, pair[0], 15);
        let l2 = scale_code(id, pair[1], 15);
        b[SCALES + ib] = (l1 | (l2 << 4)) as u8;
    }
}
