//! IQ4_NL and IQ4_XS quantization against llama.cpp's `ggml_quantize_chunk`, byte for byte.

use super::assert_dequantize_matches;
use crate::ggml::{quantize, GgmlType};
use crate::oracle;

fn ours(ty: GgmlType, n_per_row: usize, src: &[f32], imatrix: Option<&[f32]>) -> Vec<u8> {
    let mut out = vec![0u8; src.len() / ty.block_size() * ty.type_size()];
    quantize(ty, src, &mut out, n_per_row, imatrix).unwrap();
    out
}

fn assert_same_bytes(ty: GgmlType, got: &[u8], expected: &[u8], what: &str) {
    assert_eq!(got.len(), expected.len(), "{ty} {what}: length");
    if let Some(i) = got.iter().zip(expected).position(|(a, b)| a != b) {
        let ts = ty.type_size();
        let blk = i / ts;
        panic!(
            "{ty} {what}: first difference at byte {i} (block {blk})\n ours      {:?}\n llama.cpp {:?}",
            &got[blk * ts..(blk + 1) * ts],
            &expected[blk * ts..(blk + 1) * ts]
        );
    }
}

/// Quantizes `src` with and without `test_imatrix` and compares bytes and dequantization.
fn check(ty: GgmlType, seed: u64, src: &[f32], n_per_row: usize) {
    let im = oracle::test_imatrix(seed, n_per_row);
    for imatrix in [None, Some(im.as_slice())] {
        let what = format!(
            "seed {seed}, {} rows of {n_per_row}, imatrix {}",
            src.len() / n_per_row,
            imatrix.is_some()
        );
        let Some(expected) = oracle::quantize(ty, n_per_row, src, imatrix) else {
            return;
        };
        assert_same_bytes(ty, &ours(ty, n_per_row, src, imatrix), &expected, &what);
        assert_dequantize_matches(ty, &expected, &what);
    }
}

#[test]
fn iq4_nl_matches_llama_cpp() {
    for seed in [1, 2, 3] {
        for (nrows, n_per_row) in [(16, 256), (8, 512), (8, 4096), (8, 2816)] {
            check(
                GgmlType::IQ4_NL,
                seed,
                &oracle::test_rows(seed, nrows, n_per_row),
                n_per_row,
            );
        }
        // Rows of 96 (three blocks), cut from the varied test rows.
        check(GgmlType::IQ4_NL, seed, &oracle::test_rows(seed, 8, 768), 96);
    }
}

#[test]
fn iq4_xs_matches_llama_cpp() {
    for seed in [1, 2, 3] {
        for (nrows, n_per_row) in [(16, 256), (8, 512), (8, 4096), (8, 2816)] {
            check(
                GgmlType::IQ4_XS,
                seed,
                &oracle::test_rows(seed, nrows, n_per_row),
                n_per_row,
            );
        }
    }
}

/// Blocks that hit the edge cases of the scale search: midpoints between adjacent IQ4 levels
/// (in units of the largest magnitude), groups below `GROUP_MAX_EPS` next to ordinary ones,
/// subnormals, a single non-zero value per group, equal magnitudes of both signs, and large
/// values.
#[test]
fn iq4_degenerate_blocks_match_llama_cpp() {
    let levels = [
        -127.0f32, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0, 38.0, 53.0,
        69.0, 89.0, 113.0,
    ];
    let mut src = Vec::new();
    // Midpoints between adjacent levels, divided by the largest level magnitude.
    src.extend((0..256).map(|j| {
        let k = j % 15;
        (levels[k] + levels[k + 1]) * 0.5 / 127.0
    }));
    // Tiny groups (all below 1e-15) alternating with ordinary ones.
    src.extend((0..256).map(|j| {
        if (j / 32) % 2 == 0 {
            1e-17 * (j as f32 - 16.0)
        } else {
            (j as f32).sin()
        }
    }));
    // Subnormals and zeros.
    src.extend((0..256).map(|j| {
        if j % 3 == 0 {
            f32::from_bits(1 + j as u32)
        } else {
            0.0
        }
    }));
    // One non-zero value per group.
    src.extend((0..256).map(|j| if j % 32 == 5 { 0.75 } else { 0.0 }));
    // Equal magnitudes of both signs: the first one found sets the sign of the scale.
    src.extend((0..256).map(|j| if j % 2 == 0 { 0.5 } else { -0.5 }));
    // Large values that keep the fp16 scales finite.
    src.extend((0..256).map(|j| ((j * 37 % 256) as f32 - 128.0) * 40.0));
    for ty in [GgmlType::IQ4_NL, GgmlType::IQ4_XS] {
        check(ty, 9, &src, 256);
    }
}

/// Non-finite inputs are not rejected by the codec (the caller validates rows first), so
/// NaN and infinities must go through the scale search without a panic.
#[test]
fn iq4_non_finite_input_does_not_panic() {
    let mut src = oracle::test_rows(4, 1, 256);
    src[3] = f32::NAN;
    src[40] = f32::INFINITY;
    src[100] = f32::NEG_INFINITY;
    for ty in [GgmlType::IQ4_NL, GgmlType::IQ4_XS] {
        let im = oracle::test_imatrix(4, 256);
        ours(ty, 256, &src, None);
        ours(ty, 256, &src, Some(&im));
    }
}
