//! Ternary types for BitNet b1.58 and TriLM weights: TQ1_0 (base-3 packing, 1.6875 bits per
//! weight) and TQ2_0 (2 bits per weight). Both quantize every weight to `{-1, 0, 1} * amax` of
//! its 256-element block; llama.cpp ignores importance weights for them.

mod tq1_0;
mod tq2_0;

#[cfg(test)]
mod tests;

use crate::ggml::codec::Codec;
use crate::ggml::types::GgmlType;

pub(crate) fn codec(ty: GgmlType) -> Option<Codec> {
    match ty {
        GgmlType::TQ1_0 => Some(Codec {
            dequantize: tq1_0::dequantize,
            quantize: Some(tq1_0::quantize),
        }),
        GgmlType::TQ2_0 => Some(Codec {
            dequantize: tq2_0::dequantize,
            quantize: Some(tq2_0::quantize),
        }),
        _ => None,
    }
}

/// The trit index `lroundf(v) + 1` stored as C's `int`: 0, 1 or 2 for `v` in [-1, 1].
///
/// C's `lroundf` rounds half away from zero, as [`f32::round`] does. For NaN, infinities and
/// values beyond `i64` glibc returns `(long) x`, which on x86-64 is `i64::MIN`; reproducing that
/// keeps the bytes equal to llama.cpp's even for degenerate blocks (a subnormal `amax` makes
/// `1/amax` infinite).
#[inline]
fn trit_index(v: f32) -> i32 {
    const LIMIT: f32 = 9_223_372_036_854_775_808.0; // 2^63
    let l = if v > -LIMIT && v < LIMIT {
        v.round() as i64
    } else {
        i64::MIN
    };
    l.wrapping_add(1) as i32
}

/// `1/amax`, or 0 for an all-zero block, as `d ? 1.0f/d : 0.0f`.
#[inline]
fn inverse_scale(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// The absolute maximum of a block with C's `MAX(a, b)` (`a > b ? a : b`), NaN behaviour included.
#[inline]
fn block_amax(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |amax, v| {
        let a = v.abs();
        if amax > a {
            amax
        } else {
            a
        }
    })
}
