//! The importance weights of the legacy `quantize_row_*_impl` routines:
//! `qw[j] * sqrt(sigma2 + x[j]²)`, with `sigma2` the mean square of the whole row.

use super::QK;

/// Mean of `x²` over the row, summed in order as the C does.
pub(super) fn row_sigma2(row: &[f32]) -> f32 {
    let mut sum_x2 = 0.0f32;
    for &v in row {
        sum_x2 += v * v;
    }
    sum_x2 / row.len() as f32
}

/// The weights of one block `xb` given its importance values `qw`.
pub(super) fn block_weights(qw: &[f32], xb: &[f32], sigma2: f32) -> [f32; QK] {
    let mut weight = [0.0f32; QK];
    for ((w, &q), &x) in weight.iter_mut().zip(qw).zip(xb) {
        *w = q * (sigma2 + x * x).sqrt();
    }
    weight
}
