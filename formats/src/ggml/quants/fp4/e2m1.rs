//! The E2M1 code book shared by MXFP4 and NVFP4 (`kvalues_fp4`, values doubled so they are
//! integers) and the nearest-code search (`best_index_mxfp4`).

/// E2M1 values times two, indexed by the 4-bit code.
pub(super) const KVALUES: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// The code whose value times `e` is nearest to `x`; the first wins a tie.
#[inline]
pub(super) fn best_index(x: f32, e: f32) -> u8 {
    let mut best_index = 0u8;
    let mut best_err = (KVALUES[0] as f32 * e - x).abs();
    for (i, &k) in KVALUES.iter().enumerate().skip(1) {
        let err = (k as f32 * e - x).abs();
        if err < best_err {
            best_index = i as u8;
            best_err = err;
        }
    }
    best_index
}

/// Packs two 16-value halves of a (sub-)block as MXFP4 and NVFP4 store them: byte `j` holds
/// the code of `lo[j]` in its low nibble and of `hi[j]` in its high nibble.
#[inline]
pub(super) fn pack_halves(lo: &[f32], hi: &[f32], e: f32, out: &mut [u8]) {
    for ((q, &a), &b) in out.iter_mut().zip(lo).zip(hi) {
        *q = best_index(a, e) | (best_index(b, e) << 4);
    }
}

/// Unpacks bytes written by [`pack_halves`] into `lo` and `hi`, scaled by `d`.
#[inline]
pub(super) fn unpack_halves(qs: &[u8], d: f32, lo: &mut [f32], hi: &mut [f32]) {
    for ((&q, a), b) in qs.iter().zip(lo).zip(hi) {
        *a = KVALUES[(q & 0x0F) as usize] as f32 * d;
        *b = KVALUES[(q >> 4) as usize] as f32 * d;
    }
}

/// The absolute maximum as `if (amax < fabsf(v)) amax = fabsf(v)` computes it (NaN is skipped).
#[inline]
pub(super) fn amax(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    for v in x {
        if amax < v.abs() {
            amax = v.abs();
        }
    }
    amax
}
