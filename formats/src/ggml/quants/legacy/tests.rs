//! Legacy codecs against the pinned llama.cpp (bytes and dequantized bits) and against
//! mathematics (round-trip error, hand-built blocks).

use crate::ggml::quants::helpers::oracle_check::{
    assert_dequantize_matches, assert_matches, assert_non_finite_input_is_handled, dequantize,
    extreme_rows, non_finite_rows, relative_rmse, sparse_imatrix,
};
use crate::ggml::GgmlType;
use crate::oracle;

/// Row lengths tried: one that is not a multiple of 256, powers of two, and 11 * 256.
const LENGTHS: [usize; 5] = [96, 256, 512, 2816, 4096];
const SEEDS: [u64; 3] = [1, 2, 3];

/// `test_rows` for any multiple of 32: rows of 768 cut into shorter rows when needed.
fn rows(seed: u64, n_per_row: usize) -> Vec<f32> {
    if n_per_row % 256 == 0 {
        oracle::test_rows(seed, 8, n_per_row)
    } else {
        oracle::test_rows(seed, 8, n_per_row * 8)
    }
}

fn check_against_oracle(ty: GgmlType) {
    for seed in SEEDS {
        for n in LENGTHS {
            let src = rows(seed, n);
            assert_matches(ty, n, &src, None);
            assert_matches(ty, n, &src, Some(&oracle::test_imatrix(seed, n)));
        }
    }
    for n in [32, 256] {
        let src = extreme_rows(n);
        assert_matches(ty, n, &src, None);
        assert_matches(ty, n, &src, Some(&oracle::test_imatrix(9, n)));
        assert_matches(ty, n, &src, Some(&sparse_imatrix(9, n)));
    }
}

#[test]
fn q4_0_matches_llama_cpp() {
    check_against_oracle(GgmlType::Q4_0);
}

#[test]
fn q4_1_matches_llama_cpp() {
    check_against_oracle(GgmlType::Q4_1);
}

#[test]
fn q5_0_matches_llama_cpp() {
    check_against_oracle(GgmlType::Q5_0);
}

#[test]
fn q5_1_matches_llama_cpp() {
    check_against_oracle(GgmlType::Q5_1);
}

#[test]
fn q8_0_matches_llama_cpp() {
    check_against_oracle(GgmlType::Q8_0);
}

#[test]
fn q8_0_ignores_the_imatrix() {
    let src = rows(4, 256);
    let w = oracle::test_imatrix(4, 256);
    let ours = crate::ggml::quants::helpers::oracle_check::quantize;
    assert_eq!(
        ours(GgmlType::Q8_0, 256, &src, None),
        ours(GgmlType::Q8_0, 256, &src, Some(&w))
    );
}

#[test]
fn q8_1_is_read_but_not_produced() {
    let c = super::codec(GgmlType::Q8_1).expect("Q8_1 codec");
    assert!(
        c.quantize.is_none(),
        "ggml_quantize_chunk does not produce Q8_1"
    );
    // d = 0.5 (fp16 0x3800), s = 0, qs = -128, -127, ..., -97: each element is qs * d.
    let mut block = vec![0x00, 0x38, 0x00, 0x00];
    block.extend((0..32).map(|i| (-128i32 + i) as i8 as u8));
    let got = dequantize(GgmlType::Q8_1, &block);
    for (i, &v) in got.iter().enumerate() {
        assert_eq!(v, (-128.0 + i as f32) * 0.5, "element {i}");
    }
}

#[test]
fn dequantize_matches_llama_cpp_on_arbitrary_bytes() {
    // Every byte pattern is a valid block for these types except NaN/inf scales, which the
    // oracle writes as they come; keep the fp16 fields finite by clearing their exponent MSB.
    let mut rng = oracle::Rng::new(11);
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
    ] {
        let ts = ty.type_size();
        let mut bytes: Vec<u8> = (0..64 * ts).map(|_| rng.next_u64() as u8).collect();
        let halves = if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
            2
        } else {
            1
        };
        for b in bytes.chunks_exact_mut(ts) {
            for h in 0..halves {
                b[2 * h + 1] &= 0xBF;
            }
        }
        assert_dequantize_matches(ty, &bytes);
    }
}

#[test]
fn round_trip_error_is_small() {
    // Gaussian rows; the bound is the uniform-quantizer error step/sqrt(12) for a step of
    // (block range)/(levels), with the block range of 32 gaussians taken as 6 sigma and a 1.5x
    // margin, relative to sigma: 6 / levels / sqrt(12) * 1.5.
    let mut rng = oracle::Rng::new(5);
    let n = 4096;
    let src: Vec<f32> = (0..4 * n).map(|_| rng.normal()).collect();
    let w = oracle::test_imatrix(5, n);
    for (ty, levels) in [
        (GgmlType::Q4_0, 16.0),
        (GgmlType::Q4_1, 16.0),
        (GgmlType::Q5_0, 32.0),
        (GgmlType::Q5_1, 32.0),
        (GgmlType::Q8_0, 256.0),
    ] {
        let bound = 6.0 / levels / 12f64.sqrt() * 1.5;
        for imatrix in [None, Some(&w[..])] {
            let e = relative_rmse(ty, n, &src, imatrix);
            assert!(
                e < bound,
                "{ty} imatrix={}: relative RMSE {e} >= {bound}",
                imatrix.is_some()
            );
        }
    }
}

#[test]
fn non_finite_input_does_not_panic() {
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
    ] {
        assert_non_finite_input_is_handled(ty, 64);
    }
}

#[test]
fn non_finite_rows_match_llama_cpp_where_it_accepts_them() {
    // Rows 0 and 1 hold a NaN, rows 2 and 3 an infinity. llama.cpp's validation refuses the
    // outputs with an infinite or NaN scale (every infinity row, and the NaN rows of Q4_0 and
    // Q5_0 with an imatrix); every output it accepts is compared.
    let n = 256;
    let src = non_finite_rows(n);
    let w = oracle::test_imatrix(1, n);
    let row = |r: usize| &src[r * n..(r + 1) * n];
    for ty in [GgmlType::Q4_0, GgmlType::Q5_0] {
        for r in 0..2 {
            assert_matches(ty, n, row(r), None);
        }
    }
    for ty in [GgmlType::Q4_1, GgmlType::Q5_1, GgmlType::Q8_0] {
        for r in 0..2 {
            assert_matches(ty, n, row(r), None);
            assert_matches(ty, n, row(r), Some(&w));
        }
    }
}
