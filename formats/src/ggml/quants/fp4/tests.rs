//! Byte-for-byte comparisons of MXFP4 and NVFP4 with the pinned llama.cpp.

use crate::ggml::quants::helpers::oracle_check::{assert_dequantize_matches, assert_matches};
use crate::ggml::GgmlType;
use crate::oracle;

const TYPES: [GgmlType; 2] = [GgmlType::MXFP4, GgmlType::NVFP4];

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

/// Blocks with values on E2M1 midpoints, negative zeros, subnormals, huge values, infinities
/// and NaNs (which the maximum skips and the code search never picks).
#[test]
fn degenerate_blocks_match_llama_cpp() {
    let mut src = Vec::new();
    let mut rng = oracle::Rng::new(7);
    let specials = [
        0.25, -0.75, 1.25, -1.75, 2.5, -3.5, 5.0, -0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -6.0,
    ];
    src.extend((0..256).map(|j| specials[j % specials.len()]));
    src.extend((0..256).map(|j| {
        if j % 3 == 0 {
            f32::from_bits(1 + j as u32)
        } else {
            -0.0
        }
    }));
    src.extend((0..256).map(|j| {
        if j % 50 == 5 {
            3.0e38
        } else {
            rng.normal() * 1e38
        }
    }));
    src.extend((0..256).map(|j| {
        if j % 40 == 17 {
            f32::INFINITY
        } else {
            rng.normal()
        }
    }));
    src.extend((0..256).map(|j| if j % 7 == 0 { f32::NAN } else { rng.normal() }));
    src.extend((0..256).map(|j| {
        if j % 60 == 0 {
            f32::NEG_INFINITY
        } else {
            rng.normal()
        }
    }));
    for ty in TYPES {
        assert_matches(ty, 256, &src, None);
    }
}

#[test]
fn dequantize_of_every_scale_code_matches_llama_cpp() {
    let mut rng = oracle::Rng::new(11);
    for ty in TYPES {
        let ts = ty.type_size();
        let mut bytes: Vec<u8> = (0..256 * ts).map(|_| rng.next_u64() as u8).collect();
        for (code, b) in bytes.chunks_exact_mut(ts).enumerate() {
            match ty {
                GgmlType::MXFP4 => b[0] = code as u8,
                _ => b[..4].copy_from_slice(&[
                    code as u8,
                    (code as u8).wrapping_add(64),
                    !(code as u8),
                    0x7F,
                ]),
            }
        }
        assert_dequantize_matches(ty, &bytes);
    }
}

/// Scales across the whole exponent range, including amax on and just below powers of two
/// (where `floorf(log2f(amax))` turns) and UE4M3 rounding and saturation boundaries.
#[test]
fn scale_boundaries_match_llama_cpp() {
    let mut src = Vec::new();
    let mut rng = oracle::Rng::new(5);
    // amax in [2^-126, 2^-125) gives E8M0 code 255 (NaN), which the harness's row validation
    // rejects; `e8m0_code_of_smallest_normals_wraps_to_255` covers it.
    for k in (-140i32..=127).filter(|&k| k != -126) {
        let p = f32::from_bits(if k >= -126 {
            ((k + 127) as u32) << 23
        } else {
            1 << (k + 149)
        });
        for amax in [
            p,
            f32::from_bits(p.to_bits() - 1),
            p * 1.4375,
            p * 1.5,
            p * 1.5625,
        ] {
            let amax = if amax.is_finite() { amax } else { f32::MAX };
            for j in 0..16 {
                src.push(if j == 3 {
                    -amax
                } else {
                    amax * (rng.uniform() * 2.0 - 1.0)
                });
            }
        }
    }
    src.truncate(src.len() / 256 * 256);
    for ty in TYPES {
        assert_matches(ty, 256, &src, None);
    }
}

/// `(uint8_t)(floorf(log2f(amax)) - 2 + 127)` for amax in [2^-126, 2^-125) is `(uint8_t)-1`, and
/// below that the code keeps wrapping downward (2^-149 gives `(uint8_t)-24` = 232).
#[test]
fn e8m0_code_of_smallest_normals_wraps_to_255() {
    assert_eq!(super::e8m0::from_amax(f32::MIN_POSITIVE), 255);
    assert_eq!(super::e8m0::from_amax(f32::MIN_POSITIVE * 1.99), 255);
    assert_eq!(super::e8m0::from_amax(f32::from_bits(1)), 232);
    assert_eq!(super::e8m0::from_amax(f32::INFINITY), 0);
    assert_eq!(super::e8m0::from_amax(1.0), 125);
}
