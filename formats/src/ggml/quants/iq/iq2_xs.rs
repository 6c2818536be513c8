//! IQ2_XS, 2.3125 bits per weight: per 8 weights a `uint16_t` holding a 9-bit index into a
//! 512-point grid and a 7-bit sign index; a 4-bit scale per 16 weights; one fp16 scale per 256
//! weights (`block_iq2_xs`, `dequantize_row_iq2_xs`).

use super::grids::{apply_sign, sign_byte, IQ2XS};
use super::neighbours::{self, GridMap};
use super::search::{
    max_c, max_of, quantize_rows, scale_code, search, split_signs, sum_squares, weights, Refine,
    SuperBlock, Trials,
};
use crate::ggml::fp::{read_f16, write_f16};
use crate::ggml::quants::helpers::GROUP_MAX_EPS;
use crate::ggml::types::QK_K;

/// Offset of `scales[8]`, after the fp16 scale and 32 `uint16_t` grid/sign codes.
const SCALES: usize = 2 + QK_K / 4;
/// Bytes per block.
const BLOCK: usize = SCALES + QK_K / 32;

/// Dequantizes whole IQ2_XS blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(b);
        let codes = b[2..SCALES].chunks_exact(8);
        for ((q, &sc), y) in codes.zip(&b[SCALES..]).zip(y.chunks_exact_mut(32)) {
            let db = [
                d * (0.5 + (sc & 0xf) as f32) * 0.25,
                d * (0.5 + (sc >> 4) as f32) * 0.25,
            ];
            for (l, y) in y.chunks_exact_mut(8).enumerate() {
                let code = u16::from_le_bytes([q[2 * l], q[2 * l + 1]]);
                let grid = &IQ2XS[(code & 511) as usize];
                let signs = sign_byte(u32::from(code >> 9));
                let dl = db[l / 2];
                for (j, y) in y.iter_mut().enumerate() {
                    *y = apply_sign(dl * grid[j] as f32, signs, j);
                }
            }
        }
    }
}

/// The trials of `quantize_row_iq2_xs_impl`.
const TRIALS: Trials = Trials {
    kmax_q: 3,
    nstep: 9,
    step: 0.1,
    init_on_grid: true,
    refine: Refine::OffGridOnly,
};

/// Quantizes whole rows to IQ2_XS as `quantize_iq2_xs` does.
///
/// ggml requires importance weights for this type (the dispatcher refuses to go on without
/// them); called directly without them, this uses quant weights of 1.
pub(super) fn quantize(src: &[f32], dst: &mut [u8], n_per_row: usize, imatrix: Option<&[f32]>) {
    quantize_rows::<8, Iq2Xs>(neighbours::iq2xs(), src, dst, n_per_row, imatrix);
}

/// The super-block quantizer of [`quantize`].
struct Iq2Xs;

impl SuperBlock<8> for Iq2Xs {
    const BYTES: usize = BLOCK;
    #[inline(always)]
    fn quantize(grid: &GridMap<8>, x: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
        quantize_block(grid, x, qw, b);
    }
}

/// One super-block of `quantize_row_iq2_xs_impl`: per 16 weights the scale search over 2
/// groups of 8, signs with even parity, then the 4-bit scales against `max_scale/31`.
#[inline(always)]
fn quantize_block(grid: &GridMap<8>, xbl: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
    b.fill(0);
    let sigma2 = sum_squares(xbl) / QK_K as f32;
    let mut scales = [0.0f32; QK_K / 16];
    let mut q2 = [0u16; QK_K / 8];
    let mut max_scale = 0.0f32;
    let (mut weight, mut waux, mut xval) = ([0.0f32; 16], [0.0f32; 16], [0.0f32; 16]);
    let mut signs = [0u8; 2];
    for ib in 0..QK_K / 16 {
        let xb = &xbl[16 * ib..16 * ib + 16];
        let qw = qw.map(|w| &w[16 * ib..16 * ib + 16]);
        let unit = |x: f32| (sigma2 + x * x).sqrt();
        weights(xb, qw, sigma2, unit, &mut weight, &mut waux);
        split_signs(xb, &weight, true, &mut xval, &mut signs);
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
                *s = !*s & 127;
            }
        }
        for k in 0..2 {
            let g = grid.grid_index(&l[8 * k..8 * k + 8]);
            q2[2 * ib + k] = g | u16::from(signs[k]) << 9;
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
    for (ib, pair) in scales.chunks_exact(2).enumerate() {
        let l1 = scale_code(id, pair[0], 15);
        let l2 = scale_code(id, pair[1], 15);
        b[SCALES + ib] = (l1 | (l2 << 4)) as u8;
    }
    for (o, w) in b[2..SCALES].chunks_exact_mut(2).zip(&q2) {
        o.copy_from_slice(&w.to_le_bytes());
    }
}
