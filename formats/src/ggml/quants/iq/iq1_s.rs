//! IQ1_S, 1.5625 bits per weight: per 8 weights an 11-bit index into a 2048-point grid of
//! values in {-1, 0, 1}; per 32 weights a 3-bit odd scale and the sign of a ±1/8 offset; one fp16
//! scale per 256 weights (`block_iq1_s`, `dequantize_row_iq1_s`).

use super::grids::IQ1S;
use super::neighbours::{self, GridMap};
use super::search::{max_c, quantize_rows, scale_code, sum_squares, SuperBlock};
use super::tables::IQ1S_DELTA;
use super::ternary::{snap_to_grid, sort_pairs};
use crate::ggml::fp::{read_f16, write_f16};
use crate::ggml::types::QK_K;

/// Offset of the 8 `uint16_t` `qh` words, after the fp16 scale and `qs[32]`.
const QH: usize = 2 + QK_K / 8;
/// Bytes per block.
const BLOCK: usize = QH + QK_K / 16;

/// Dequantizes whole IQ1_S blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(b);
        let qs = b[2..QH].chunks_exact(4);
        let qh = b[QH..].chunks_exact(2);
        for ((qs, h), y) in qs.zip(qh).zip(y.chunks_exact_mut(32)) {
            let h = u32::from(u16::from_le_bytes([h[0], h[1]]));
            let dl = d * (2 * ((h >> 12) & 7) + 1) as f32;
            let delta = if h & 0x8000 != 0 {
                -IQ1S_DELTA
            } else {
                IQ1S_DELTA
            };
            for (l, y) in y.chunks_exact_mut(8).enumerate() {
                let index = u32::from(qs[l]) | (((h >> (3 * l)) & 7) << 8);
                let grid = &IQ1S[index as usize];
                for (y, &g) in y.iter_mut().zip(grid) {
                    *y = dl * (g as f32 + delta);
                }
            }
        }
    }
}

/// `GROUP_MAX_EPS_IQ1_S`: groups whose largest magnitude is below this are all zero.
const GROUP_MAX_EPS: f32 = 1e-12;

/// Weights per scale (`IQ1S_BLOCK_SIZE`).
const GROUP: usize = 32;

/// Splits whose sums are computed side by side.
const LANES: usize = 8;

/// The three values with a positive offset, `x_p`.
const X_P: [f32; 3] = [-1.0 + IQ1S_DELTA, IQ1S_DELTA, 1.0 + IQ1S_DELTA];
/// The three values with a negative offset, `x_m`.
const X_M: [f32; 3] = [-1.0 - IQ1S_DELTA, -IQ1S_DELTA, 1.0 - IQ1S_DELTA];

/// Quantizes whole rows to IQ1_S as `quantize_iq1_s` does.
///
/// ggml requires importance weights for this type (the dispatcher refuses to go on without
/// them); called directly without them, this uses quant weights of 1.
pub(super) fn quantize(src: &[f32], dst: &mut [u8], n_per_row: usize, imatrix: Option<&[f32]>) {
    quantize_rows::<8, Iq1S>(neighbours::iq1(), src, dst, n_per_row, imatrix);
}

/// The super-block quantizer of [`quantize`].
struct Iq1S;

impl SuperBlock<8> for Iq1S {
    const BYTES: usize = BLOCK;
    #[inline(always)]
    fn quantize(grid: &GridMap<8>, x: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
        quantize_block(grid, x, qw, b);
    }
}

/// One super-block of `quantize_row_iq1_s_impl`: per 32 weights the exact weighted split
/// into -1, 0, 1 (with either offset sign) over the sorted values, each group of 8 snapped to
/// the grid, then the 3-bit scales against `max_scale/15` (the fp16 scale gets a 1.125 fudge
/// factor).
#[inline(always)]
fn quantize_block(grid: &GridMap<8>, xbl: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
    b.fill(0);
    let sigma2 = 2.0 * sum_squares(xbl) / QK_K as f32;
    let mut scales = [0.0f32; QK_K / GROUP];
    let mut shifts = [0i8; QK_K / GROUP];
    let mut max_scale = 0.0f32;
    let mut weight = [0.0f32; GROUP];
    for ib in 0..QK_K / GROUP {
        let xb = &xbl[GROUP * ib..GROUP * (ib + 1)];
        match qw {
            Some(qw) => {
                let qw = &qw[GROUP * ib..GROUP * (ib + 1)];
                for i in 0..GROUP {
                    weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).sqrt();
                }
            }
            None => {
                for i in 0..GROUP {
                    weight[i] = (sigma2 + xb[i] * xb[i]).sqrt();
                }
            }
        }
        let mut max = xb[0].abs();
        for &v in &xb[1..] {
            max = max_c(max, v.abs());
        }
        if max < GROUP_MAX_EPS {
            scales[ib] = 0.0;
            shifts[ib] = 1;
            continue;
        }
        let pairs = sort_pairs::<GROUP>(xb);
        // Prefix sums in sorted order, padded with the totals for whole lane chunks.
        let (mut sumx, mut sumw) = ([0.0f32; GROUP + 1 + LANES], [0.0f32; GROUP + 1 + LANES]);
        for (j, &(_, i)) in pairs.iter().enumerate() {
            let i = i as usize;
            sumx[j + 1] = sumx[j] + weight[i] * xb[i];
            sumw[j + 1] = sumw[j] + weight[i];
        }
        for j in GROUP + 1..GROUP + 1 + LANES {
            (sumx[j], sumw[j]) = (sumx[GROUP], sumw[GROUP]);
        }
        let mut best_score = -f32::MAX;
        let mut scale = max;
        let (mut besti1, mut besti2, mut best_shift) = (None, 0, 0i8);
        // Every split (i1, i2), i1 <= i2, in the C's order, with x_p then x_m. The sums of
        // LANES consecutive i2 are computed side by side (each with the C's operations); a
        // chunk none of whose candidates beats the current best is skipped, any other is
        // evaluated candidate by candidate as the C does.
        for i1 in 0..=GROUP {
            let (a, wa) = (sumx[i1] - sumx[0], sumw[i1] - sumw[0]);
            let mut i2 = i1;
            while i2 <= GROUP {
                let mut sumqx = [[0.0f32; LANES]; 2];
                let mut sumq2 = [[0.0f32; LANES]; 2];
                for c in 0..LANES {
                    let (m, r) = (sumx[i2 + c] - sumx[i1], sumx[GROUP] - sumx[i2 + c]);
                    let (wm, wr) = (sumw[i2 + c] - sumw[i1], sumw[GROUP] - sumw[i2 + c]);
                    for (s, xs) in [&X_P, &X_M].into_iter().enumerate() {
                        sumqx[s][c] = a * xs[0] + m * xs[1] + r * xs[2];
                        sumq2[s][c] = wa * xs[0] * xs[0] + wm * xs[1] * xs[1] + wr * xs[2] * xs[2];
                    }
                }
                let count = LANES.min(GROUP + 1 - i2);
                let beats = |best: f32, s: usize, c: usize| {
                    sumq2[s][c] > 0.0 && sumqx[s][c] * sumqx[s][c] > best * sumq2[s][c]
                };
                let mut any = false;
                for c in 0..LANES {
                    any |= (c < count) & (beats(best_score, 0, c) | beats(best_score, 1, c));
                }
                if any {
                    for c in 0..count {
                        for (s, shift) in [(0, 1i8), (1, -1)] {
                            if beats(best_score, s, c) {
                                scale = sumqx[s][c] / sumq2[s][c];
                                best_score = scale * sumqx[s][c];
                                (besti1, besti2, best_shift) = (Some(i1), i2 + c, shift);
                            }
                        }
                    }
                }
                i2 += LANES;
            }
        }
        let Some(besti1) = besti1 else {
            scales[ib] = 0.0;
            shifts[ib] = 1;
            continue;
        };
        let mut l = [0i8; GROUP];
        for (j, &(_, i)) in pairs.iter().enumerate() {
            l[i as usize] = if j < besti1 {
                0
            } else if j < besti2 {
                1
            } else {
                2
            };
        }
        if scale < 0.0 {
            for v in &mut l {
                *v = 2 - *v;
            }
            scale = -scale;
            best_shift = -best_shift;
        }
        let xx: &'static [f32; 3] = if best_shift == 1 { &X_P } else { &X_M };
        let mut index = [0u16; GROUP / 8];
        if !snap_to_grid(grid, &mut l, xb, &weight, scale, |_| xx, &mut index) {
            let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
            for (k, &g) in index.iter().enumerate() {
                let lv = grid.levels(g);
                for j in 0..8 {
                    let w = weight[8 * k + j];
                    let q = xx[lv[j] as usize];
                    sumqx += w * q * xb[8 * k + j];
                    sumq2 += w * q * q;
                }
            }
            if sumqx > 0.0 && sumq2 > 0.0 {
                scale = sumqx / sumq2;
            }
        }
        let mut h = 0u16;
        for (k, &g) in index.iter().enumerate() {
            b[2 + 4 * ib + k] = g as u8;
            h |= (g >> 8) << (3 * k);
        }
        b[QH + 2 * ib..QH + 2 * ib + 2].copy_from_slice(&h.to_le_bytes());
        scales[ib] = scale;
        shifts[ib] = best_shift;
        max_scale = max_c(max_scale, scale);
    }
    if max_scale == 0.0 {
        return;
    }
    let d = max_scale / 15.0;
    write_f16(b, d * 1.125);
    let id = 1.0 / d;
    for ib in 0..QK_K / GROUP {
        let mut l = scale_code(id, scales[ib], 7) as u16;
        if shifts[ib] == -1 {
            l |= 8;
        }
        let o = QH + 2 * ib;
        let h = u16::from_le_bytes([b[o], b[o + 1]]) | l << 12;
        b[o..o + 2].copy_from_slice(&h.to_le_bytes());
    }
}
