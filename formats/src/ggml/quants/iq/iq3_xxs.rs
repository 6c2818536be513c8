//! IQ3_XXS, 3.0625 bits per weight: per 4 weights an 8-bit index into a 256-point grid of 4
//! magnitudes; per 32 weights a `uint32_t` with four 7-bit sign indices and a 4-bit scale; one
//! fp16 scale per 256 weights (`block_iq3_xxs`, `dequantize_row_iq3_xxs`).

use super::grids::{apply_sign, sign_byte, IQ3XXS};
use super::neighbours::{self, GridMap};
use super::search::{
    max_c, max_of, quantize_rows, scale_code, search, split_signs, sum_squares, weights, Refine,
    SuperBlock, Trials,
};
use crate::ggml::fp::{read_f16, write_f16};
use crate::ggml::types::QK_K;

/// Offset of the 8 `uint32_t` scale-and-sign words, after the 64 grid indices.
const SCALES_AND_SIGNS: usize = 2 + QK_K / 4;
/// Bytes per block.
const BLOCK: usize = SCALES_AND_SIGNS + QK_K / 8;

/// Dequantizes whole IQ3_XXS blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(b);
        let qs = b[2..SCALES_AND_SIGNS].chunks_exact(8);
        let words = b[SCALES_AND_SIGNS..].chunks_exact(4);
        for ((qs, w), y) in qs.zip(words).zip(y.chunks_exact_mut(32)) {
            let aux = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            let db = d * (0.5 + (aux >> 28) as f32) * 0.5;
            for (l, y) in y.chunks_exact_mut(8).enumerate() {
                let signs = sign_byte(aux >> (7 * l));
                let grid1 = &IQ3XXS[qs[2 * l] as usize];
                let grid2 = &IQ3XXS[qs[2 * l + 1] as usize];
                for j in 0..4 {
                    y[j] = apply_sign(db * grid1[j] as f32, signs, j);
                    y[j + 4] = apply_sign(db * grid2[j] as f32, signs, j + 4);
                }
            }
        }
    }
}

/// `GROUP_MAX_EPS_IQ3_XXS`: groups whose largest magnitude is below this are all zero.
const GROUP_MAX_EPS: f32 = 1e-8;

/// The trials of `quantize_row_iq3_xxs_impl`.
const TRIALS: Trials = Trials {
    kmax_q: 8,
    nstep: 15,
    step: 0.2,
    init_on_grid: true,
    refine: Refine::OffGridOnly,
};

/// Quantizes whole rows to IQ3_XXS as `quantize_iq3_xxs` does (`quantize_row_iq3_xxs_impl`
/// with the 256-point grid), with or without importance weights.
pub(super) fn quantize(src: &[f32], dst: &mut [u8], n_per_row: usize, imatrix: Option<&[f32]>) {
    quantize_rows::<4, Iq3Xxs>(neighbours::iq3xxs(), src, dst, n_per_row, imatrix);
}

/// The super-block quantizer of [`quantize`].
struct Iq3Xxs;

impl SuperBlock<4> for Iq3Xxs {
    const BYTES: usize = BLOCK;
    #[inline(always)]
    fn quantize(grid: &GridMap<4>, x: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
        quantize_block(grid, x, qw, b);
    }
}

/// One super-block: per 32 weights the scale search over 8 groups of 4, signs with even
/// parity, then the 4-bit scales against `max_scale/31` (the fp16 scale gets a 1.0125 fudge
/// factor).
#[inline(always)]
fn quantize_block(grid: &GridMap<4>, xbl: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
    b.fill(0);
    let sigma2 = 2.0 * sum_squares(xbl) / QK_K as f32;
    let mut scales = [0.0f32; QK_K / 32];
    let mut words = [0u32; QK_K / 32];
    let mut max_scale = 0.0f32;
    let (mut weight, mut waux, mut xval) = ([0.0f32; 32], [0.0f32; 32], [0.0f32; 32]);
    let mut signs = [0u8; 4];
    for ib in 0..QK_K / 32 {
        let xb = &xbl[32 * ib..32 * ib + 32];
        let qw = qw.map(|w| &w[32 * ib..32 * ib + 32]);
        weights(xb, qw, sigma2, |x| x * x, &mut weight, &mut waux);
        split_signs(xb, &weight, true, &mut xval, &mut signs);
        let max = max_of(&xval);
        let mut l = [0i8; 32];
        if max < GROUP_MAX_EPS {
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
                *s = !*s & 127;
            }
        }
        for k in 0..8 {
            b[2 + 8 * ib + k] = grid.grid_index(&l[4 * k..4 * k + 4]) as u8;
        }
        words[ib] = u32::from(signs[0])
            | u32::from(signs[1]) << 7
            | u32::from(signs[2]) << 14
            | u32::from(signs[3]) << 21;
        scales[ib] = scale;
        max_scale = max_c(max_scale, scale);
    }
    if max_scale == 0.0 {
        b.fill(0);
        return;
    }
    let d = max_scale / 31.0;
    write_f16(b, d * 1.0125);
    let id = 1.0 / d;
    for (ib, w) in words.iter_mut().enumerate() {
        *w |= (scale_code(id, scales[ib], 15) as u32) << 28;
        let o = SCALES_AND_SIGNS + 4 * ib;
        b[o..o + 4].copy_from_slice(&w.to_le_bytes());
    }
}
