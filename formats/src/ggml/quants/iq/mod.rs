//! The IQ ("importance") quant types: grid-based IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S,
//! IQ3_XXS and IQ3_S, and the non-linear IQ4_NL and IQ4_XS.
//!
//! Every type dequantizes and quantizes exactly as llama.cpp's `dequantize_row_*` and
//! `ggml_quantize_chunk` do. The grid types search their grids through the neighbour maps of
//! `neighbours` (llama.cpp's `iq2xs_init_impl` and `iq3xs_init_impl`), built once per grid on
//! first use.

mod grids;
mod iq1_m;
mod iq1_s;
mod iq2_s;
mod iq2_xs;
mod iq2_xxs;
mod iq3_s;
mod iq3_xxs;
mod iq4_nl;
mod iq4_xs;
mod neighbours;
mod nonlinear;
mod search;
mod tables;
mod ternary;

#[cfg(test)]
mod tests;

/// The IQ grids as bytes per point (least significant byte of each C entry first), for
/// kernels that compute with the quantized values directly.
pub use grids::{IQ1S, IQ2S, IQ2XS, IQ2XXS, IQ3S, IQ3XXS};

use crate::ggml::codec::{Codec, DequantizeFn, QuantizeFn};
use crate::ggml::types::GgmlType;

/// The codec of `ty` if it is an IQ type: dequantization and quantization for all of them.
pub(crate) fn codec(ty: GgmlType) -> Option<Codec> {
    let (dequantize, quantize): (DequantizeFn, Option<QuantizeFn>) = match ty {
        GgmlType::IQ2_XXS => (iq2_xxs::dequantize, Some(iq2_xxs::quantize)),
        GgmlType::IQ2_XS => (iq2_xs::dequantize, Some(iq2_xs::quantize)),
        GgmlType::IQ2_S => (iq2_s::dequantize, Some(iq2_s::quantize)),
        GgmlType::IQ3_XXS => (iq3_xxs::dequantize, Some(iq3_xxs::quantize)),
        GgmlType::IQ3_S => (iq3_s::dequantize, Some(iq3_s::quantize)),
        GgmlType::IQ1_S => (iq1_s::dequantize, Some(iq1_s::quantize)),
        GgmlType::IQ1_M => (iq1_m::dequantize, Some(iq1_m::quantize)),
        GgmlType::IQ4_NL => (iq4_nl::dequantize, Some(iq4_nl::quantize)),
        GgmlType::IQ4_XS => (iq4_xs::dequantize, Some(iq4_xs::quantize)),
        _ => return None,
    };
    Some(Codec {
        dequantize,
        quantize,
    })
}
