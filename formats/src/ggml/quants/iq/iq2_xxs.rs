//! IQ2_XXS, 2.0625 bits per weight: per 32 weights, four 8-bit indices into a 256-point grid of
//! 8 magnitudes, four 7-bit sign indices and a 4-bit scale, all in 8 bytes; one fp16 scale per
//! 256 weights (`block_iq2_xxs`, `dequantize_row_iq2_xxs`).

use super::grids::{apply_sign, sign_byte, IQ2XXS};
use super::neighbours::{self, GridMap};
use super::search::{
    max_c, max_of, quantize_rows, scale_code, search, split_signs, sum_squares, weights, Refine,
    SuperBlock, Trials,
};
use crate::ggml::fp::{read_f16, write_f16};
use crate::ggml::quants::helpers::{make_qp_quants, GROUP_MAX_EPS};
use crate::ggml::types::QK_K;

/// Bytes per block: fp16 scale, then 32 `uint16_t` read as 8 pairs of `uint32_t`.
const BLOCK: usize = 2 + QK_K / 4;

/// Dequantizes whole IQ2_XXS blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(b);
        for (q, y) in b[2..].chunks_exact(8).zip(y.chunks_exact_mut(32)) {
            let aux1 = u32::from_le_bytes([q[4], q[5], q[6], q[7]]);
            let db = d * (0.5 + (aux1 >> 28) as f32) * 0.25;
            for (l, y) in y.chunks_exact_mut(8).enumerate() {
                let grid = &IQ2XXS[q[l] as usize];
                let signs = sign_byte(aux1 >> (7 * l));
                for (j, y) in y.iter_mut().enumerate() {
                    *y = apply_sign(db * grid[j] as f32, signs, j);
                }
            }
        }
    }
}

/// The trials of `quantize_row_iq2_xxs_impl`: around the scale of `make_qp_quants`, then every
/// group recomputed with the chosen scale.
const TRIALS: Trials = Trials {
    kmax_q: 3,
    nstep: 6,
    step: 0.1,
    init_on_grid: true,
    refine: Refine::Always,
};

/// Quantizes whole rows to IQ2_XXS as `quantize_iq2_xxs` does.
///
/// ggml requires importance weights for this type (the dispatcher refuses to go on without
/// them); called directly without them, this uses quant weights of 1.
pub(super) fn quantize(src: &[f32], dst: &mut [u8], n_per_row: usize, imatrix: Option<&[f32]>) {
    quantize_rows::<8, Iq2Xxs>(neighbours::iq2xxs(), src, dst, n_per_row, imatrix);
}

/// The super-block quantizer of [`quantize`].
struct Iq2Xxs;

impl SuperBlock<8> for Iq2Xxs {
    const BYTES: usize = BLOCK;
    #[inline(always)]
    fn quantize(grid: &GridMap<8>, x: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
        quantize_block(grid, x, qw, b);
    }
}

/// One super-block of `quantize_row_iq2_xxs_impl`: per 32 weights a first scale from
/// `make_qp_quants` on the magnitudes, the scale search over 4 groups of 8, signs with even
/// parity, then the 4-bit scales against `max_scale/31`.
#[inline(always)]
fn quantize_block(grid: &GridMap<8>, xbl: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
    b.fill(0);
    let sigma2 = sum_squares(xbl) / QK_K as f32;
    let mut scales = [0.0f32; QK_K / 32];
    let mut q2 = [0u32; QK_K / 16];
    let mut max_scale = 0.0f32;
    let (mut weight, mut waux, mut xval) = ([0.0f32; 32], [0.0f32; 32], [0.0f32; 32]);
    let mut signs = [0u8; 4];
    let mut lq = [0u8; 32];
    for ib in 0..QK_K / 32 {
        let xb = &xbl[32 * ib..32 * ib + 32];
        let qw = qw.map(|w| &w[32 * ib..32 * ib + 32]);
        let unit = |x: f32| (sigma2 + x * x).sqrt();
        weights(xb, qw, sigma2, unit, &mut weight, &mut waux);
        split_signs(xb, &weight, true, &mut xval, &mut signs);
        let max = max_of(&xval);
        if max < GROUP_MAX_EPS {
            scales[ib] = 0.0;
            continue;
        }
        let scale = make_qp_quants(TRIALS.kmax_q + 1, &xval, &mut lq, &weight);
        let eff_max = scale * TRIALS.kmax_q as f32;
        if eff_max <= 0.0 {
            scales[ib] = 0.0;
            continue;
        }
        // The levels of make_qp_quants, read back as int8_t (used only if no trial and no
        // refinement sets them, which finite input never leaves).
        let mut l: [i8; 32] = lq.map(|v| v as i8);
        let mut scale = search(grid, &TRIALS, &xval, &weight, &waux, eff_max, scale, &mut l);
        if scale < 0.0 {
            scale = -scale;
            for s in &mut signs {
                *s = !*s & 127;
            }
        }
        for k in 0..4 {
            let g = grid.grid_index(&l[8 * k..8 * k + 8]);
            q2[2 * ib] |= u32::from(g) << (8 * k);
            q2[2 * ib + 1] |= u32::from(signs[k]) << (7 * k);
        }
        scales[ib] = scale;
        max_scale = max_c(max_scale, scale);
    }
    if max_scale == 0.0 {
        return;
    }
    let d = max_scale / 31.0;
    write_f16(b, d);
    let id = 1.0 / d;
    for (ib, &s) in scales.iter().enumerate() {
        q2[2 * ib + 1] |= (scale_code(id, s, 15) as u32) << 28;
    }
    for (o, w) in b[2..].chunks_exact_mut(4).zip(&q2) {
        o.copy_from_slice(&w.to_le_bytes());
    }
}
