//! K-quant codecs against the pinned llama.cpp (bytes and dequantized bits) and against
//! mathematics (round-trip error, hand-built blocks).

use crate::ggml::quants::helpers::oracle_check::{
    adversarial_imatrix, adversarial_rows, assert_dequantize_matches, assert_matches,
    assert_non_finite_input_is_handled, dequantize, extreme_rows, non_finite_rows, relative_rmse,
    sparse_imatrix,
};
use crate::ggml::GgmlType;
use crate::oracle;

/// Row lengths tried: one, two and sixteen super-blocks, and 11 super-blocks.
const LENGTHS: [usize; 4] = [256, 512, 2816, 4096];
const SEEDS: [u64; 3] = [1, 2, 3];

fn check_against_oracle(ty: GgmlType) {
    for seed in SEEDS {
        for n in LENGTHS {
            let src = oracle::test_rows(seed, 8, n);
            assert_matches(ty, n, &src, None);
            assert_matches(ty, n, &src, Some(&oracle::test_imatrix(seed, n)));
        }
    }
    for n in [256, 512] {
        let src = extreme_rows(n);
        assert_matches(ty, n, &src, None);
        assert_matches(ty, n, &src, Some(&oracle::test_imatrix(9, n)));
        assert_matches(ty, n, &src, Some(&sparse_imatrix(9, n)));
    }
}

#[test]
fn q2_k_matches_llama_cpp() {
    check_against_oracle(GgmlType::Q2_K);
}

#[test]
fn q3_k_matches_llama_cpp() {
    check_against_oracle(GgmlType::Q3_K);
}

#[test]
fn q4_k_matches_llama_cpp() {
    check_against_oracle(GgmlType::Q4_K);
}

#[test]
fn q5_k_matches_llama_cpp() {
    check_against_oracle(GgmlType::Q5_K);
}

#[test]
fn q6_k_matches_llama_cpp() {
    check_against_oracle(GgmlType::Q6_K);
}

#[test]
fn dequantize_matches_llama_cpp_on_arbitrary_bytes() {
    // Random blocks with their fp16 super-scales kept finite (exponent MSB cleared).
    let mut rng = oracle::Rng::new(12);
    let fp16_fields: [(GgmlType, &[usize]); 5] = [
        (GgmlType::Q2_K, &[80, 82]),
        (GgmlType::Q3_K, &[108]),
        (GgmlType::Q4_K, &[0, 2]),
        (GgmlType::Q5_K, &[0, 2]),
        (GgmlType::Q6_K, &[208]),
    ];
    for (ty, fields) in fp16_fields {
        let ts = ty.type_size();
        let mut bytes: Vec<u8> = (0..32 * ts).map(|_| rng.next_u64() as u8).collect();
        for b in bytes.chunks_exact_mut(ts) {
            for &f in fields {
                b[f + 1] &= 0xBF;
            }
        }
        assert_dequantize_matches(ty, &bytes);
    }
}

#[test]
fn q8_k_is_read_but_not_produced() {
    let c = super::codec(GgmlType::Q8_K).expect("Q8_K codec");
    assert!(
        c.quantize.is_none(),
        "ggml_quantize_chunk does not produce Q8_K"
    );
    // d = 0.25 as f32, qs = -128..=127, bsums unused by dequantization: each element is d * qs.
    let mut block = 0.25f32.to_le_bytes().to_vec();
    block.extend((0..256).map(|i: i32| (i - 128) as i8 as u8));
    block.extend([0u8; 32]);
    let got = dequantize(GgmlType::Q8_K, &block);
    for (i, &v) in got.iter().enumerate() {
        assert_eq!(v, 0.25 * (i as f32 - 128.0), "element {i}");
    }
}

#[test]
fn round_trip_error_is_small() {
    // Gaussian rows; the bound is the uniform-quantizer error step/sqrt(12) for a step of
    // (sub-block range)/(levels), with the range taken as 6 sigma and a 1.5x margin, relative
    // to sigma: 6 / levels / sqrt(12) * 1.5.
    let mut rng = oracle::Rng::new(5);
    let n = 4096;
    let src: Vec<f32> = (0..4 * n).map(|_| rng.normal()).collect();
    let w = oracle::test_imatrix(5, n);
    for (ty, levels) in [
        (GgmlType::Q2_K, 4.0),
        (GgmlType::Q3_K, 8.0),
        (GgmlType::Q4_K, 16.0),
        (GgmlType::Q5_K, 32.0),
        (GgmlType::Q6_K, 64.0),
    ] {
        let bound = 6.0 / levels / 12f64.sqrt() * 1.5;
        for imatrix in [None, Some(&w[..])] {
            let e = relative_rmse(ty, n, &src, imatrix);
            eprintln!(
                "{ty} imatrix={} rmse {e:.4} bound {bound:.4}",
                imatrix.is_some()
            );
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
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
    ] {
        assert_non_finite_input_is_handled(ty, 256);
    }
}

#[test]
fn non_finite_rows_match_llama_cpp_where_it_accepts_them() {
    // Rows 0 and 1 hold a NaN, rows 2 and 3 an infinity. llama.cpp's validation refuses the
    // outputs whose scales overflow (rows 2 and 3 without an imatrix for Q2_K, Q4_K, Q5_K);
    // every output it accepts is compared.
    let n = 256;
    let src = non_finite_rows(n);
    let w = oracle::test_imatrix(1, n);
    let row = |r: usize| &src[r * n..(r + 1) * n];
    for ty in [GgmlType::Q2_K, GgmlType::Q4_K, GgmlType::Q5_K] {
        for r in 0..4 {
            if r < 2 {
                assert_matches(ty, n, row(r), None);
            }
            assert_matches(ty, n, row(r), Some(&w));
        }
    }
    for ty in [GgmlType::Q3_K, GgmlType::Q6_K] {
        for r in 0..4 {
            assert_matches(ty, n, row(r), None);
            assert_matches(ty, n, row(r), Some(&w));
        }
    }
}

/// A quantizer with an explicit choice of path (`lanes`: the lane-parallel one).
type QuantizeWith = fn(&[f32], &mut [u8], usize, Option<&[f32]>, bool);

/// The lane-parallel path against the scalar path, byte for byte, on adversarial rows (ties,
/// zero and constant sub-blocks, subnormals, huge values, NaN and infinities) with and without
/// (adversarial) importance values, for rows of one to eleven super-blocks (pairs and an odd
/// one); then the finite rows against llama.cpp.
fn check_lanes_match_scalar(ty: GgmlType, quantize_with: QuantizeWith) {
    check_lanes_match_scalar_once(ty, quantize_with);
    // Again with the lane code's exact rounding everywhere (it otherwise takes a cheaper one
    // where it can bound the values rounded).
    #[cfg(target_arch = "x86_64")]
    {
        use crate::ggml::quants::helpers::lanes::avx2::FORCE_EXACT;
        FORCE_EXACT.with(|f| f.set(true));
        check_lanes_match_scalar_once(ty, quantize_with);
        FORCE_EXACT.with(|f| f.set(false));
    }
}

fn check_lanes_match_scalar_once(ty: GgmlType, quantize_with: QuantizeWith) {
    let ts = ty.type_size();
    for (seed, n) in [(1u64, 256usize), (2, 512), (3, 768), (4, 2816)] {
        let rows = 400 * 256 / n;
        let src = adversarial_rows(seed, rows, n, true);
        let plain = oracle::test_imatrix(seed, n);
        let odd = adversarial_imatrix(seed, n, false);
        let bad = adversarial_imatrix(seed + 50, n, true);
        for imatrix in [None, Some(&plain[..]), Some(&odd[..]), Some(&bad[..])] {
            let mut scalar = vec![0u8; src.len() / 256 * ts];
            let mut lanes = vec![0xA5u8; src.len() / 256 * ts];
            quantize_with(&src, &mut scalar, n, imatrix, false);
            quantize_with(&src, &mut lanes, n, imatrix, true);
            if let Some(i) = scalar.iter().zip(&lanes).position(|(a, b)| a != b) {
                let b = i / ts;
                panic!(
                    "{ty} n_per_row={n} imatrix={}: lane path differs at byte {i} (block {b})\n \
                     input: {:?}\n scalar: {:?}\n lanes:  {:?}",
                    imatrix.is_some(),
                    &src[b * 256..(b + 1) * 256],
                    &scalar[b * ts..(b + 1) * ts],
                    &lanes[b * ts..(b + 1) * ts]
                );
            }
        }
        // llama.cpp on the rows whose scales stay finite (it refuses the others' output).
        let finite: Vec<f32> = src
            .chunks_exact(n)
            .filter(|r| r.iter().all(|v| v.abs() < 1e5))
            .flatten()
            .copied()
            .collect();
        // (Huge importance values make llama.cpp's super-scales overflow too.)
        let tame: Vec<f32> = odd
            .iter()
            .map(|&w| if w > 1e20 { 1e3 } else { w })
            .collect();
        for imatrix in [None, Some(&plain[..]), Some(&tame[..])] {
            assert_matches(ty, n, &finite, imatrix);
        }
    }
}

#[test]
fn q4_k_lanes_match_scalar() {
    check_lanes_match_scalar(GgmlType::Q4_K, super::q4_k::quantize_with);
}

#[test]
fn q5_k_lanes_match_scalar() {
    check_lanes_match_scalar(GgmlType::Q5_K, super::q5_k::quantize_with);
}

#[test]
fn q2_k_lanes_match_scalar() {
    check_lanes_match_scalar(GgmlType::Q2_K, super::q2_k::quantize_with);
}

#[test]
fn q6_k_lanes_match_scalar() {
    check_lanes_match_scalar(GgmlType::Q6_K, super::q6_k::quantize_with);
}

/// A sub-block of values in [0, 1] with one element of little importance far below them,
/// among sub-blocks of values up to 3000 (so that its scale rounds to zero and its search
/// levels are kept): a trial's fit moves the min up to the cluster, and the next trials'
/// products iscale*(x - min) for the outlier exceed 2^22, where nearest_int's bit trick gives
/// meaningless values that the C then clamps.
fn outlier_row(rng: &mut oracle::Rng, outlier: f32, importance: f32) -> (Vec<f32>, Vec<f32>) {
    let mut x = vec![0.0f32; 256];
    let mut qw = vec![1.0f32; 256];
    for (c, (xs, ws)) in x
        .chunks_exact_mut(32)
        .zip(qw.chunks_exact_mut(32))
        .enumerate()
    {
        for (v, w) in xs.iter_mut().zip(ws.iter_mut()) {
            *v = rng.uniform() * if c == 1 { 1.0 } else { 3000.0 };
            *w = 0.5 + rng.uniform();
        }
    }
    x[33] = outlier;
    qw[33] = importance;
    (x, qw)
}

#[test]
fn outlier_below_a_fitted_min_matches_llama_cpp() {
    let mut rng = oracle::Rng::new(31);
    for (ty, quantize_with) in [
        (GgmlType::Q4_K, super::q4_k::quantize_with as QuantizeWith),
        (GgmlType::Q5_K, super::q5_k::quantize_with),
    ] {
        for k in 0..40 {
            // Zero importance (the outlier's level matters only where the search levels are
            // kept), or little (its level changes the sums and errors).
            let importance = [0.0, 1e-16, 1e-14, 1e-12, 1e-10, 1e-8, 1e-6, 1e-4][k % 8];
            let (x, qw) = outlier_row(&mut rng, -(1e6 + (k / 8) as f32 * 7.3e5), importance);
            assert_matches(ty, 256, &x, Some(&qw));
            let ts = ty.type_size();
            let (mut scalar, mut lanes) = (vec![0u8; ts], vec![0u8; ts]);
            quantize_with(&x, &mut scalar, 256, Some(&qw), false);
            quantize_with(&x, &mut lanes, 256, Some(&qw), true);
            assert_eq!(scalar, lanes, "{ty} outlier {}", x[33]);
        }
    }
}
