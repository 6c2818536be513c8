//! IQ1_M, 1.75 bits per weight: per 8 weights an 11-bit index into the IQ1_S grid and the sign
//! of a ±1/8 offset; a 3-bit odd scale per 16 weights; the fp16 super-block scale is spread over
//! the top nibbles of the four scale words (`block_iq1_m`, `iq1m_scale_t`,
//! `dequantize_row_iq1_m`).

use super::grids::IQ1S;
use super::neighbours::{self, GridMap};
use super::search::{max_c, quantize_rows, scale_code, sum_squares, SuperBlock};
use super::tables::IQ1M_DELTA;
use super::ternary::{snap_to_grid, sort_pairs};
use crate::ggml::fp::{f16_bits_to_f32, f32_to_f16_bits};
use crate::ggml::types::QK_K;

/// Offset of `qh[16]`, after `qs[32]`.
const QH: usize = QK_K / 8;
/// Offset of `scales[8]`, read as four `uint16_t`.
const SCALES: usize = QH + QK_K / 16;
/// Bytes per block.
const BLOCK: usize = SCALES + QK_K / 32;

/// Dequantizes whole IQ1_M blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let s = &b[SCALES..];
        let sc: [u16; 4] = std::array::from_fn(|i| u16::from_le_bytes([s[2 * i], s[2 * i + 1]]));
        let scale =
            (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
        let d = f16_bits_to_f32(scale);
        let qs = b[..QH].chunks_exact(4);
        let qh = b[QH..SCALES].chunks_exact(2);
        for (ib, ((qs, qh), y)) in qs.zip(qh).zip(y.chunks_exact_mut(32)).enumerate() {
            let w = u32::from(sc[ib / 2]);
            let shift = 6 * (ib % 2);
            let dl = [
                d * (2 * ((w >> shift) & 0x7) + 1) as f32,
                d * (2 * ((w >> (shift + 3)) & 0x7) + 1) as f32,
            ];
            let (h0, h1) = (u32::from(qh[0]), u32::from(qh[1]));
            let index = [
                u32::from(qs[0]) | ((h0 << 8) & 0x700),
                u32::from(qs[1]) | ((h0 << 4) & 0x700),
                u32::from(qs[2]) | ((h1 << 8) & 0x700),
                u32::from(qs[3]) | ((h1 << 4) & 0x700),
            ];
            // The C names this offset IQ1S_DELTA; IQ1M_DELTA is the same 0.125.
            let sign = |h: u32, bit: u32| {
                if h & bit != 0 {
                    -IQ1M_DELTA
                } else {
                    IQ1M_DELTA
                }
            };
            let delta = [
                sign(h0, 0x08),
                sign(h0, 0x80),
                sign(h1, 0x08),
                sign(h1, 0x80),
            ];
            for (l, y) in y.chunks_exact_mut(8).enumerate() {
                let grid = &IQ1S[index[l] as usize];
                let dl = dl[l / 2];
                for (y, &g) in y.iter_mut().zip(grid) {
                    *y = dl * (g as f32 + delta[l]);
                }
            }
        }
    }
}

/// `GROUP_MAX_EPS_IQ1_M`: groups whose largest magnitude is below this are all zero.
const GROUP_MAX_EPS: f32 = 1e-7;

/// Weights per scale (`IQ1M_BLOCK_SIZE`).
const GROUP: usize = 16;

/// Splits whose sums are computed side by side.
const LANES: usize = 8;

/// The three values with a positive offset, `x_p`.
const X_P: [f32; 3] = [-1.0 + IQ1M_DELTA, IQ1M_DELTA, 1.0 + IQ1M_DELTA];
/// The three values with a negative offset, `x_m`.
const X_M: [f32; 3] = [-1.0 - IQ1M_DELTA, -IQ1M_DELTA, 1.0 - IQ1M_DELTA];

/// The offset signs of a group's two halves per choice `k` (`0: +,+ 1: +,- 2: -,+ 3: -,-`),
/// as the `qh` bits of `masks`.
const MASKS: [u8; 4] = [0x00, 0x80, 0x08, 0x88];

/// The values of half `h` (8 weights) of a group with offset choice `k`.
fn values(k: u8, h: usize) -> &'static [f32; 3] {
    let plus = if h == 0 { k < 2 } else { k % 2 == 0 };
    if plus {
        &X_P
    } else {
        &X_M
    }
}

/// Quantizes whole rows to IQ1_M as `quantize_iq1_m` does, with or without importance
/// weights.
pub(super) fn quantize(src: &[f32], dst: &mut [u8], n_per_row: usize, imatrix: Option<&[f32]>) {
    quantize_rows::<8, Iq1M>(neighbours::iq1(), src, dst, n_per_row, imatrix);
}

/// The super-block quantizer of [`quantize`].
struct Iq1M;

impl SuperBlock<8> for Iq1M {
    const BYTES: usize = BLOCK;
    #[inline(always)]
    fn quantize(grid: &GridMap<8>, x: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
        quantize_block(grid, x, qw, b);
    }
}

/// One super-block of `quantize_row_iq1_m_impl`: per 16 weights the exact weighted split into
/// -1, 0, 1 over the sorted values with an offset sign per half, each half snapped to the
/// grid, the 3-bit scales against `max_scale/15`, and the super-block scale refitted to the
/// quantized values (with a 1.1125 fudge factor).
#[inline(always)]
fn quantize_block(grid: &GridMap<8>, xbl: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
    b.fill(0);
    let sigma2 = 2.0 * sum_squares(xbl) / QK_K as f32;
    let mut scales = [0.0f32; QK_K / GROUP];
    let mut shifts = [0u8; QK_K / GROUP];
    let mut max_scale = 0.0f32;
    // Every group's weights, which the final refit uses again.
    let mut weights = [[0.0f32; GROUP]; QK_K / GROUP];
    let p2 = X_P[2];
    let m2 = X_M[2];
    let cp1 = X_P[0] * X_P[0] - X_P[1] * X_P[1];
    let cp2 = X_P[1] * X_P[1] - X_P[2] * X_P[2];
    let cm1 = X_M[0] * X_M[0] - X_M[1] * X_M[1];
    let cm2 = X_M[1] * X_M[1] - X_M[2] * X_M[2];
    for ib in 0..QK_K / GROUP {
        let xb = &xbl[GROUP * ib..GROUP * (ib + 1)];
        let weight = &mut weights[ib];
        match qw {
            Some(qw) => {
                let qw = &qw[GROUP * ib..GROUP * (ib + 1)];
                for i in 0..GROUP {
                    weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).sqrt();
                }
            }
            None => {
                for i in 0..GROUP {
                    weight[i] = xb[i] * xb[i];
                }
            }
        }
        let weight = &*weight;
        let mut max = xb[0].abs();
        for &v in &xb[1..] {
            max = max_c(max, v.abs());
        }
        if max < GROUP_MAX_EPS {
            scales[ib] = 0.0;
            shifts[ib] = 0;
            continue;
        }
        let pairs = sort_pairs::<GROUP>(xb);
        // Prefix sums per half of the group, in sorted order.
        let (mut px, mut pw) = (
            [[0.0f32; GROUP + 1 + LANES]; 2],
            [[0.0f32; GROUP + 1 + LANES]; 2],
        );
        for (j, &(_, i)) in pairs.iter().enumerate() {
            let i = i as usize;
            let h = if i < GROUP / 2 { 0 } else { 1 };
            px[h][j + 1] = px[h][j] + weight[i] * xb[i];
            px[1 - h][j + 1] = px[1 - h][j];
            pw[h][j + 1] = pw[h][j] + weight[i];
            pw[1 - h][j + 1] = pw[1 - h][j];
        }
        // Padding with the totals, for whole lane chunks.
        for h in 0..2 {
            for j in GROUP + 1..GROUP + 1 + LANES {
                (px[h][j], pw[h][j]) = (px[h][GROUP], pw[h][GROUP]);
            }
        }
        let txs = [px[0][GROUP], px[1][GROUP]];
        let tws = [pw[0][GROUP], pw[1][GROUP]];
        let mut best_score = -f32::MAX;
        let mut scale = max;
        let (mut besti1, mut besti2, mut best_k) = (None, 0, 0u8);
        // Every split (i1, i2), i1 <= i2, in the C's order, with the four sign choices in
        // order. The sums of LANES consecutive i2 are computed side by side (each with the C's
        // operations); a chunk none of whose candidates beats the current best is skipped, any
        // other is evaluated candidate by candidate as the C does.
        for i1 in 0..=GROUP {
            let mut i2 = i1;
            while i2 <= GROUP {
                let mut sumqx = [[0.0f32; LANES]; 4];
                let mut sumq2 = [[0.0f32; LANES]; 4];
                for c in 0..LANES {
                    let j = i2 + c;
                    let (mut qx_p, mut qx_m, mut q2_p, mut q2_m) =
                        ([0.0f32; 2], [0.0f32; 2], [0.0f32; 2], [0.0f32; 2]);
                    for h in 0..2 {
                        let sx = px[h][i1] + px[h][j];
                        qx_p[h] = txs[h] * p2 - sx;
                        qx_m[h] = txs[h] * m2 - sx;
                        q2_p[h] = tws[h] * p2 * p2 + pw[h][i1] * cp1 + pw[h][j] * cp2;
                        q2_m[h] = tws[h] * m2 * m2 + pw[h][i1] * cm1 + pw[h][j] * cm2;
                    }
                    sumqx[0][c] = qx_p[0] + qx_p[1];
                    sumqx[1][c] = qx_p[0] + qx_m[1];
                    sumqx[2][c] = qx_m[0] + qx_p[1];
                    sumqx[3][c] = qx_m[0] + qx_m[1];
                    sumq2[0][c] = q2_p[0] + q2_p[1];
                    sumq2[1][c] = q2_p[0] + q2_m[1];
                    sumq2[2][c] = q2_m[0] + q2_p[1];
                    sumq2[3][c] = q2_m[0] + q2_m[1];
                }
                let count = LANES.min(GROUP + 1 - i2);
                let beats = |best: f32, k: usize, c: usize| {
                    sumq2[k][c] > 0.0 && sumqx[k][c] * sumqx[k][c] > best * sumq2[k][c]
                };
                let mut any = false;
                for c in 0..LANES {
                    let mut b = false;
                    for k in 0..4 {
                        b |= beats(best_score, k, c);
                    }
                    any |= (c < count) & b;
                }
                if any {
                    for c in 0..count {
                        for k in 0..4 {
                            if beats(best_score, k, c) {
                                scale = sumqx[k][c] / sumq2[k][c];
                                best_score = scale * sumqx[k][c];
                                (besti1, besti2, best_k) = (Some(i1), i2 + c, k as u8);
                            }
                        }
                    }
                }
                i2 += LANES;
            }
        }
        let Some(besti1) = besti1 else {
            scales[ib] = 0.0;
            shifts[ib] = 0;
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
            best_k = 3 - best_k;
        }
        let mut index = [0u16; 2];
        if !snap_to_grid(
            grid,
            &mut l,
            xb,
            weight,
            scale,
            |k| values(best_k, k),
            &mut index,
        ) {
            let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
            for (k, &g) in index.iter().enumerate() {
                let xx = values(best_k, k);
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
        b[2 * ib] = index[0] as u8;
        b[2 * ib + 1] = index[1] as u8;
        b[QH + ib] = ((index[0] >> 8) | ((index[1] >> 8) << 4)) as u8;
        scales[ib] = scale;
        shifts[ib] = best_k;
        max_scale = max_c(max_scale, scale);
    }
    if max_scale == 0.0 {
        return;
    }
    let mut sc = [0u16; 4];
    let mut d = max_scale / 15.0;
    let id = 1.0 / d;
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for ib in 0..QK_K / GROUP {
        let l = scale_code(id, scales[ib], 7);
        sc[ib / 4] |= (l as u16) << (3 * (ib % 4));
        b[QH + ib] |= MASKS[shifts[ib] as usize];
        let xb = &xbl[GROUP * ib..GROUP * (ib + 1)];
        let weight = &weights[ib];
        let h = u16::from(b[QH + ib]);
        let ls = (2 * l + 1) as f32;
        for k in 0..2 {
            let xx = values(shifts[ib], k);
            let g = u16::from(b[2 * ib + k]) + ((h << (8 - 4 * k)) & 0x700);
            let lv = grid.levels(g);
            for j in 0..8 {
                let w = weight[8 * k + j];
                let q = xx[lv[j] as usize] * ls;
                sumqx += w * q * xb[8 * k + j];
                sumq2 += w * q * q;
            }
        }
    }
    if sumq2 > 0.0 {
        d = sumqx / sumq2;
    }
    let s = f32_to_f16_bits(d * 1.1125);
    sc[0] |= (s & 0x000f) << 12;
    sc[1] |= (s & 0x00f0) << 8;
    sc[2] |= (s & 0x0f00) << 4;
    sc[3] |= s & 0xf000;
    for (o, v) in b[SCALES..].chunks_exact_mut(2).zip(&sc) {
        o.copy_from_slice(&v.to_le_bytes());
    }
}
