//! Sign-and-scale types: Q1_0 (one sign bit per weight, scale = mean |x|, 128 weights per block)
//! and Q2_0 (2-bit codes for {-1, 0, 1, 2} * amax, 64 weights per block). llama.cpp quantizes
//! both with the reference routine whether or not importance weights are given.

mod q1_0;
mod q2_0;

#[cfg(test)]
mod tests;

use crate::ggml::codec::Codec;
use crate::ggml::types::GgmlType;

pub(crate) fn codec(ty: GgmlType) -> Option<Codec> {
    match ty {
        GgmlType::Q1_0 => Some(Codec {
            dequantize: q1_0::dequantize,
            quantize: Some(q1_0::quantize),
        }),
        GgmlType::Q2_0 => Some(Codec {
            dequantize: q2_0::dequantize,
            quantize: Some(q2_0::quantize),
        }),
        _ => None,
    }
}
