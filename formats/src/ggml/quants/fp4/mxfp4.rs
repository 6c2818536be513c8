//! MXFP4: one E8M0 scale byte then 16 bytes of E2M1 codes for 32 weights, weight `j` in the
//! low nibble of byte `j` and weight `j + 16` in its high nibble (`quantize_row_mxfp4_ref` /
//! `dequantize_row_mxfp4`).

use super::{e2m1, e8m0};

/// Weights per block (`QK_MXFP4`).
const QK: usize = 32;
/// Bytes per block.
const BLOCK: usize = 1 + QK / 2;

/// Dequantizes whole MXFP4 blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK)) {
        let d = e8m0::to_f32_half(b[0]);
        let (lo, hi) = y.split_at_mut(QK / 2);
        e2m1::unpack_halves(&b[1..], d, lo, hi);
    }
}

/// Quantizes whole rows to MXFP4 (`quantize_mxfp4`, which ignores importance weights).
pub(super) fn quantize(src: &[f32], dst: &mut [u8], _n_per_row: usize, _imatrix: Option<&[f32]>) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(BLOCK)) {
        let e = e8m0::from_amax(e2m1::amax(x));
        let d = e8m0::to_f32_half(e);
        b[0] = e;
        let (lo, hi) = x.split_at(QK / 2);
        e2m1::pack_halves(lo, hi, d, &mut b[1..]);
    }
}
