//! The 2-bit level layout of Q2_K and Q3_K: each half super-block of 128 levels fills 32
//! bytes, level `l + 32*k` in bits `2k..2k+2` of byte `l`.

use crate::ggml::types::QK_K;

/// Packs 256 levels in `0..4` into the 64 bytes of `qs`.
pub(super) fn pack_2bit(levels: &[u8; QK_K], qs: &mut [u8]) {
    for (half, q) in levels.chunks_exact(128).zip(qs.chunks_exact_mut(32)) {
        for (l, b) in q.iter_mut().enumerate() {
            *b = half[l] | (half[l + 32] << 2) | (half[l + 64] << 4) | (half[l + 96] << 6);
        }
    }
}
