//! The legacy 32-element block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1.
//!
//! Quantization follows `ggml_quantize_chunk`: without an importance matrix the
//! `quantize_row_*_ref` routines, with one the per-row `quantize_row_*_impl` routines.
//! Q8_0 ignores the importance matrix; Q8_1 is not quantized by `ggml_quantize_chunk` and
//! has no `to_float` in ggml, so qforge only reads it.

mod q4_0;
mod q4_1;
mod q5_0;
mod q5_1;
mod q8_0;
mod q8_1;
mod weights;

#[cfg(test)]
mod tests;

use crate::ggml::codec::Codec;
use crate::ggml::types::GgmlType;

/// Elements per legacy block (`QK4_0` = `QK4_1` = `QK5_0` = `QK5_1` = `QK8_0` = `QK8_1`).
const QK: usize = 32;

pub(crate) fn codec(ty: GgmlType) -> Option<Codec> {
    let (dequantize, quantize): (
        crate::ggml::codec::DequantizeFn,
        Option<crate::ggml::codec::QuantizeFn>,
    ) = match ty {
        GgmlType::Q4_0 => (q4_0::dequantize, Some(q4_0::quantize)),
        GgmlType::Q4_1 => (q4_1::dequantize, Some(q4_1::quantize)),
        GgmlType::Q5_0 => (q5_0::dequantize, Some(q5_0::quantize)),
        GgmlType::Q5_1 => (q5_1::dequantize, Some(q5_1::quantize)),
        GgmlType::Q8_0 => (q8_0::dequantize, Some(q8_0::quantize)),
        GgmlType::Q8_1 => (q8_1::dequantize, None),
        _ => return None,
    };
    Some(Codec {
        dequantize,
        quantize,
    })
}
