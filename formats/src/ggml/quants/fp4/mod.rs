//! 4-bit float types: MXFP4 (OCP microscaling, E2M1 values with one E8M0 scale per 32) and
//! NVFP4 (E2M1 values with one UE4M3 scale per 16, 64 per block). llama.cpp quantizes both
//! with the reference routine and ignores importance weights.

mod e2m1;
mod e8m0;
mod mxfp4;
mod nvfp4;
mod ue4m3;

#[cfg(test)]
mod tests;

use crate::ggml::codec::Codec;
use crate::ggml::types::GgmlType;

pub(crate) fn codec(ty: GgmlType) -> Option<Codec> {
    match ty {
        GgmlType::MXFP4 => Some(Codec {
            dequantize: mxfp4::dequantize,
            quantize: Some(mxfp4::quantize),
        }),
        GgmlType::NVFP4 => Some(Codec {
            dequantize: nvfp4::dequantize,
            quantize: Some(nvfp4::quantize),
        }),
        _ => None,
    }
}
