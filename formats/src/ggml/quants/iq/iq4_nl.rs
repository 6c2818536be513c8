//! IQ4_NL, 4.5 bits per weight: 32 weights as 4-bit indices into the non-linear
//! `kvalues_iq4nl` levels, with one fp16 scale (`block_iq4_nl`, `quantize_iq4_nl`,
//! `dequantize_row_iq4_nl`).

use super::nonlinear::{best_index, group_scale, group_weights, pack, sigma2, GROUP};
use super::tables::KVALUES_IQ4NL;
use crate::ggml::fp::{read_f16, write_f16};

/// Bytes per block: the fp16 scale and 16 bytes of packed indices.
const BLOCK: usize = 2 + GROUP / 2;

/// Dequantizes whole IQ4_NL blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(GROUP)) {
        let d = read_f16(b);
        let (lo, hi) = y.split_at_mut(GROUP / 2);
        for ((&q, lo), hi) in b[2..].iter().zip(lo).zip(hi) {
            *lo = d * f32::from(KVALUES_IQ4NL[(q & 0xf) as usize]);
            *hi = d * f32::from(KVALUES_IQ4NL[(q >> 4) as usize]);
        }
    }
}

/// Quantizes whole rows to IQ4_NL as `quantize_iq4_nl` does: every block is its own super-block
/// (so `sigma2` is taken over its 32 weights), its scale is stored as is and the levels are
/// chosen against the unrounded scale.
pub(super) fn quantize(src: &[f32], dst: &mut [u8], n_per_row: usize, imatrix: Option<&[f32]>) {
    for (x, out) in src
        .chunks_exact(n_per_row)
        .zip(dst.chunks_exact_mut(n_per_row / GROUP * BLOCK))
    {
        for (ib, (x, b)) in x
            .chunks_exact(GROUP)
            .zip(out.chunks_exact_mut(BLOCK))
            .enumerate()
        {
            let qw = imatrix.map(|w| &w[ib * GROUP..(ib + 1) * GROUP]);
            let sigma2 = if qw.is_some() { sigma2(x) } else { 0.0 };
            let w = group_weights(x, qw, sigma2);
            let d = group_scale(x, &w);
            write_f16(b, d);
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let mut l = [0u8; GROUP];
            for (l, &x) in l.iter_mut().zip(x) {
                *l = best_index(id * x);
            }
            pack(&l, &mut b[2..]);
        }
    }
}
