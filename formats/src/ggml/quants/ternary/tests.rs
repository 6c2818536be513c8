//! Byte-for-byte comparisons of TQ1_0 and TQ2_0 with the pinned llama.cpp.

use crate::ggml::{dequantize, quantize, GgmlType};
use crate::oracle;

const TYPES: [GgmlType; 2] = [GgmlType::TQ1_0, GgmlType::TQ2_0];

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
            "{ty} {what}: first difference at byte {i} (block {blk})\n ours     {:?}\n llama.cpp {:?}",
            &got[blk * ts..(blk + 1) * ts],
            &expected[blk * ts..(blk + 1) * ts]
        );
    }
}

fn assert_dequantize_matches(ty: GgmlType, bytes: &[u8]) {
    let Some(expected) = oracle::dequantize(ty, bytes) else {
        return;
    };
    let mut got = vec![0f32; bytes.len() / ty.type_size() * ty.block_size()];
    dequantize(ty, bytes, &mut got).unwrap();
    for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "{ty} dequantize element {i}: ours {a}, llama.cpp {b}"
        );
    }
}

fn check(ty: GgmlType, src: &[f32], n_per_row: usize, imatrix: Option<&[f32]>, what: &str) {
    let Some(expected) = oracle::quantize(ty, n_per_row, src, imatrix) else {
        return;
    };
    assert_same_bytes(ty, &ours(ty, n_per_row, src, imatrix), &expected, what);
    assert_dequantize_matches(ty, &expected);
}

#[test]
fn quantize_and_dequantize_match_llama_cpp() {
    for ty in TYPES {
        for (seed, nrows, n_per_row) in [(1, 8, 256), (2, 16, 512), (3, 9, 1280)] {
            let src = oracle::test_rows(seed, nrows, n_per_row);
            check(ty, &src, n_per_row, None, &format!("seed {seed}"));
            let im = oracle::test_imatrix(seed, n_per_row);
            check(
                ty,
                &src,
                n_per_row,
                Some(&im),
                &format!("seed {seed} with imatrix"),
            );
        }
    }
}

/// Blocks with ties at ±0.5 of the scale, negative zeros, subnormals (whose inverse scale
/// overflows to infinity), values near the fp16 limit and NaNs that `MAX` drops. (llama.cpp's
/// harness rejects output whose fp16 scale is not finite, so no block has an infinite or
/// trailing-NaN maximum.)
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
    src.extend((0..256).map(|j| if j % 7 == 0 { f32::NAN } else { rng.normal() }));
    src.extend((0..256).map(|j| if j == 254 { f32::NAN } else { rng.normal() }));
    for ty in TYPES {
        check(ty, &src, 256, None, "degenerate blocks");
    }
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
            let n = b.len();
            if i % 8 != 0 {
                b[n - 1] &= 0x3f;
            }
        }
        assert_dequantize_matches(ty, &bytes);
    }
}
