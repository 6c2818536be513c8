//! Byte-for-byte comparisons of Q1_0 and Q2_0 with the pinned llama.cpp.

use crate::ggml::quants::helpers::oracle_check::{assert_dequantize_matches, assert_matches};
use crate::ggml::GgmlType;
use crate::oracle;

const TYPES: [GgmlType; 2] = [GgmlType::Q1_0, GgmlType::Q2_0];

#[test]
fn quantize_and_dequantize_match_llama_cpp() {
    for ty in TYPES {
        for (seed, nrows, n_per_row) in [(1, 8, 256), (2, 16, 512), (3, 9, 1280)] {
            let src = oracle::test_rows(seed, nrows, n_per_row);
            assert_matches(ty, n_per_row, &src, None);
            let im = oracle::test_imatrix(seed, n_per_row);
            assert_matches(ty, n_per_row, &src, Some(&im));
        }
    }
}

/// Blocks with ties at ±0.5 of the scale, negative zeros, subnormals (whose inverse scale
/// overflows to infinity in Q2_0) and values near the fp16 limit, plus for Q2_0 NaNs, which its
/// maximum skips. (llama.cpp's harness rejects output whose fp16 scale is not finite.)
#[test]
fn degenerate_blocks_match_llama_cpp() {
    let mut src = Vec::new();
    let mut rng = oracle::Rng::new(7);
    let specials = [0.5, -0.5, 1.0, -1.0, -0.0, 0.25, -0.75, 1.5];
    src.extend((0..256).map(|j| specials[j % specials.len()]));
    src.extend((0..256).map(|j| {
        if j % 3 == 0 {
            f32::from_bits(1 + j as u32)
        } else {
            -0.0
        }
    }));
    src.extend((0..256).map(|j| if j == 5 { 65000.0 } else { rng.normal() * 3e4 }));
    src.extend((0..256).map(|j| {
        if j % 5 == 0 {
            -0.0
        } else {
            rng.normal() * 1e-5
        }
    }));
    for ty in TYPES {
        assert_matches(ty, 256, &src, None);
    }
    let nan_rows: Vec<f32> = (0..512)
        .map(|j| if j % 7 == 0 { f32::NAN } else { rng.normal() })
        .collect();
    assert_matches(GgmlType::Q2_0, 256, &nan_rows, None);
}

#[test]
fn dequantize_of_arbitrary_bytes_matches_llama_cpp() {
    let mut rng = oracle::Rng::new(11);
    for ty in TYPES {
        let mut bytes: Vec<u8> = (0..64 * ty.type_size())
            .map(|_| rng.next_u64() as u8)
            .collect();
        // keep most scales finite so the codes are visible, but leave some inf/NaN scales
        for (i, b) in bytes.chunks_exact_mut(ty.type_size()).enumerate() {
            if i % 8 != 0 {
                b[1] &= 0x3f;
            }
        }
        assert_dequantize_matches(ty, &bytes);
    }
}
