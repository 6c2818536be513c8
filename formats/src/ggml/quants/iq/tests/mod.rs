//! Comparisons of the IQ codecs with the pinned llama.cpp, through the `ggml-codec` oracle.

mod best_index;
mod dequantize;
mod grid_quantize;
mod quantize;

use crate::ggml::{dequantize, GgmlType};
use crate::oracle;

/// Every IQ type.
const ALL: [GgmlType; 9] = [
    GgmlType::IQ2_XXS,
    GgmlType::IQ2_XS,
    GgmlType::IQ2_S,
    GgmlType::IQ3_XXS,
    GgmlType::IQ3_S,
    GgmlType::IQ1_S,
    GgmlType::IQ1_M,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
];

/// Asserts that our dequantization of `bytes` equals llama.cpp's bit for bit.
fn assert_dequantize_matches(ty: GgmlType, bytes: &[u8], what: &str) {
    let Some(expected) = oracle::dequantize(ty, bytes) else {
        return;
    };
    let mut got = vec![0f32; bytes.len() / ty.type_size() * ty.block_size()];
    dequantize(ty, bytes, &mut got).unwrap();
    assert_eq!(got.len(), expected.len(), "{ty} {what}: length");
    for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "{ty} {what}: element {i} (block {}): ours {a}, llama.cpp {b}",
            i / ty.block_size()
        );
    }
}
