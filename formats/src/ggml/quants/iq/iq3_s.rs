//! IQ3_S, 3.4375 bits per weight: per 4 weights a 9-bit index into a 512-point grid (low 8 bits
//! in `qs`, the ninth in `qh`); a sign byte per 8 weights; a 4-bit odd scale per 32 weights; one
//! fp16 scale per 256 weights (`block_iq3_s`, `dequantize_row_iq3_s`).

use super::grids::{apply_sign, IQ3S};
use super::neighbours::{self, GridMap};
use super::search::{
    max_c, max_of, quantize_rows, scale_code, search, split_signs, sum_squares, weights, Refine,
    SuperBlock, Trials,
};
use crate::ggml::fp::{read_f16, write_f16};
use crate::ggml::types::QK_K;

/// Offset of `qh[8]`, after the fp16 scale and `qs[64]`.
const QH: usize = 2 + QK_K / 4;
/// Offset of `signs[32]`.
const SIGNS: usize = QH + QK_K / 32;
/// Offset of `scales[4]`.
const SCALES: usize = SIGNS + QK_K / 8;
/// Bytes per block.
const BLOCK: usize = SCALES + QK_K / 64;

/// Dequantizes whole IQ3_S blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(b);
        let (qs, qh) = (&b[2..QH], &b[QH..SIGNS]);
        let (signs, scales) = (&b[SIGNS..SCALES], &b[SCALES..]);
        for (ib32, y) in y.chunks_exact_mut(32).enumerate() {
            let sc = scales[ib32 / 2];
            // Even 32-weight groups take the low nibble, odd ones the high one.
            let s = if ib32 % 2 == 0 { sc & 0xf } else { sc >> 4 };
            let db = d * (1 + 2 * i32::from(s)) as f32;
            let h = u32::from(qh[ib32]);
            let qs = &qs[8 * ib32..8 * ib32 + 8];
            for (l, y) in y.chunks_exact_mut(8).enumerate() {
                let i1 = u32::from(qs[2 * l]) | ((h << (8 - 2 * l)) & 256);
                let i2 = u32::from(qs[2 * l + 1]) | ((h << (7 - 2 * l)) & 256);
                let (grid1, grid2) = (&IQ3S[i1 as usize], &IQ3S[i2 as usize]);
                let sg = signs[4 * ib32 + l];
                for j in 0..4 {
                    y[j] = apply_sign(db * grid1[j] as f32, sg, j);
                    y[j + 4] = apply_sign(db * grid2[j] as f32, sg, j + 4);
                }
            }
        }
    }
}

/// The trials of `quantize_row_iq3_s_impl`.
const TRIALS: Trials = Trials {
    kmax_q: 8,
    nstep: 9,
    step: 0.2,
    init_on_grid: false,
    refine: Refine::AllIfAnyOff,
};

/// Quantizes whole rows to IQ3_S as `quantize_iq3_s` does (`quantize_row_iq3_s_impl` with
/// 32-weight groups), with or without importance weights.
pub(super) fn quantize(src: &[f32], dst: &mut [u8], n_per_row: usize, imatrix: Option<&[f32]>) {
    quantize_rows::<4, Iq3S>(neighbours::iq3s(), src, dst, n_per_row, imatrix);
}

/// The super-block quantizer of [`quantize`].
struct Iq3S;

impl SuperBlock<4> for Iq3S {
    const BYTES: usize = BLOCK;
    #[inline(always)]
    fn quantize(grid: &GridMap<4>, x: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
        quantize_block(grid, x, qw, b);
    }
}

/// One super-block: per 32 weights the scale search over 8 groups of 4 with full sign bytes,
/// the grid indices and signs stored as found (packed past all-zero groups, as in the C), then the 4-bit scales against `max_scale/31`
/// (the fp16 scale gets a 1.033 fudge factor).
#[inline(always)]
fn quantize_block(grid: &GridMap<4>, xbl: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
    b.fill(0);
    let sigma2 = 2.0 * sum_squares(xbl) / QK_K as f32;
    let mut scales = [0.0f32; QK_K / 32];
    let mut max_scale = 0.0f32;
    let (mut weight, mut waux, mut xval) = ([0.0f32; 32], [0.0f32; 32], [0.0f32; 32]);
    let mut signs = [0u8; 4];
    // The C advances its `qs` and `signs` pointers only past the groups it stores, so a
    // group skipped as all zero shifts the low index bytes and signs of the groups after it
    // (their high index bits in `qh` stay in place); reproduced for byte equality.
    let mut stored = 0;
    for ib in 0..QK_K / 32 {
        let xb = &xbl[32 * ib..32 * ib + 32];
        let qw = qw.map(|w| &w[32 * ib..32 * ib + 32]);
        weights(xb, qw, sigma2, |x| x * x, &mut weight, &mut waux);
        split_signs(xb, &weight, false, &mut xval, &mut signs);
        let max = max_of(&xval);
        let mut l = [0i8; 32];
        if max == 0.0 {
            scales[ib] = 0.0;
            continue;
        }
        let mut scale = search(
            grid,
            &TRIALS,
            &xval,
            &weight,
            &waux,
            max,
            max / 15.0,
            &mut l,
        );
        if scale < 0.0 {
            scale = -scale;
            for s in &mut signs {
                *s = !*s;
            }
        }
        for k in 0..8 {
            let g = grid.grid_index(&l[4 * k..4 * k + 4]);
            b[2 + 8 * stored + k] = g as u8;
            b[QH + ib] |= ((g >> 8) << k) as u8;
        }
        b[SIGNS + 4 * stored..SIGNS + 4 * stored + 4].copy_from_slice(&signs);
        stored += 1;
        scales[ib] = scale;
        max_scale = max_c(max_scale, scale);
    }
    if max_scale == 0.0 {
        return;
    }
    let d = max_scale / 31.0;
    write_f16(b, d * 1.033);
    let id = 1.0 / d;
    for (ib, pair) in scales.chunks_exact(2).enumerate() {
        let l1 = scale_code(id, pair[0], 15);
        let l2 = scale_code(id, pair[1], 15);
        b[SCALES + ib] = (l1 | (l2 << 4)) as u8;
    }
}
