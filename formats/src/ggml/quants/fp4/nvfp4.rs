//! NVFP4: four UE4M3 scale bytes, one per 16-weight sub-block, then 32 bytes of E2M1 codes, 8
//! per sub-block, weight `j` of a sub-block in the low nibble of its byte `j` and weight `j + 8`
//! in the high nibble (`quantize_row_nvfp4_ref` / `dequantize_row_nvfp4`).

use super::{e2m1, ue4m3};

/// Weights per block (`QK_NVFP4`).
const QK: usize = 64;
/// Weights per scaled sub-block (`QK_NVFP4_SUB`).
const SUB: usize = 16;
/// Sub-blocks per block.
const NSUB: usize = QK / SUB;
/// Bytes per block.
const BLOCK: usize = NSUB + QK / 2;

/// Dequantizes whole NVFP4 blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK)) {
        let (scales, qs) = b.split_at(NSUB);
        for ((&s, qs), y) in scales
            .iter()
            .zip(qs.chunks_exact(SUB / 2))
            .zip(y.chunks_exact_mut(SUB))
        {
            let d = ue4m3::to_f32(s);
            let (lo, hi) = y.split_at_mut(SUB / 2);
            e2m1::unpack_halves(qs, d, lo, hi);
        }
    }
}

/// Quantizes whole rows to NVFP4 (`quantize_nvfp4`, which ignores importance weights).
pub(super) fn quantize(src: &[f32], dst: &mut [u8], _n_per_row: usize, _imatrix: Option<&[f32]>) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(BLOCK)) {
        let (scales, qs) = b.split_at_mut(NSUB);
        for ((s, qs), xb) in scales
            .iter_mut()
            .zip(qs.chunks_exact_mut(SUB / 2))
            .zip(x.chunks_exact(SUB))
        {
            // amax / 6 maps the largest E2M1 magnitude (6) onto amax
            let ue = ue4m3::from_f32(e2m1::amax(xb) / 6.0);
            *s = ue;
            let d = ue4m3::to_f32(ue);
            let (lo, hi) = xb.split_at(SUB / 2);
            e2m1::pack_halves(lo, hi, d, qs);
        }
    }
}
