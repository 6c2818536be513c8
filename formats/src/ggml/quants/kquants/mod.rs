//! The K-quant super-block types Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K (256 elements per
//! block, `QK_K`).
//!
//! Quantization follows `ggml_quantize_chunk`: without an importance matrix the
//! `quantize_row_*_ref` routines, with one the per-row `quantize_row_*_impl` routines.
//! `ggml_quantize_chunk` does not produce Q8_K (an intermediate for dot products), so qforge
//! only reads it.

mod bits;
mod q2_k;
mod q3_k;
mod q4_k;
mod q5_k;
mod q6_k;
mod q8_k;
mod scale_min;

#[cfg(test)]
mod tests;

use crate::ggml::codec::{Codec, DequantizeFn, QuantizeFn};
use crate::ggml::types::{GgmlType, QK_K};

pub(crate) fn codec(ty: GgmlType) -> Option<Codec> {
    let (dequantize, quantize): (DequantizeFn, Option<QuantizeFn>) = match ty {
        GgmlType::Q2_K => (q2_k::dequantize, Some(q2_k::quantize)),
        GgmlType::Q3_K => (q3_k::dequantize, Some(q3_k::quantize)),
        GgmlType::Q4_K => (q4_k::dequantize, Some(q4_k::quantize)),
        GgmlType::Q5_K => (q5_k::dequantize, Some(q5_k::quantize)),
        GgmlType::Q6_K => (q6_k::dequantize, Some(q6_k::quantize)),
        GgmlType::Q8_K => (q8_k::dequantize, None),
        _ => return None,
    };
    Some(Codec {
        dequantize,
        quantize,
    })
}

/// Mean square of a super-block times `factor` (`factor*sumx2/QK_K`), summed in order.
fn sigma2(x: &[f32], factor: f32) -> f32 {
    let mut sum_x2 = 0.0f32;
    for &v in x {
        sum_x2 += v * v;
    }
    factor * sum_x2 / QK_K as f32
}
