//! Test support shared by the codec families: comparison of qforge's codecs with the pinned
//! llama.cpp through [`crate::oracle`].

use crate::ggml::{self, GgmlType};
use crate::oracle;

/// qforge's quantization of `src` (rows of `n_per_row`) through the codec dispatcher.
pub(crate) fn quantize(
    ty: GgmlType,
    n_per_row: usize,
    src: &[f32],
    imatrix: Option<&[f32]>,
) -> Vec<u8> {
    let mut out = vec![0u8; src.len() / ty.block_size() * ty.type_size()];
    ggml::quantize(ty, src, &mut out, n_per_row, imatrix).expect("quantize");
    out
}

/// qforge's dequantization of whole blocks through the codec dispatcher.
pub(crate) fn dequantize(ty: GgmlType, bytes: &[u8]) -> Vec<f32> {
    let mut out = vec![0f32; bytes.len() / ty.type_size() * ty.block_size()];
    ggml::dequantize(ty, bytes, &mut out).expect("dequantize");
    out
}

/// Asserts that qforge's bytes for `src` equal llama.cpp's, and that both dequantize
/// those bytes to the same f32 bits. Does nothing when the oracle is skipped.
pub(crate) fn assert_matches(ty: GgmlType, n_per_row: usize, src: &[f32], imatrix: Option<&[f32]>) {
    let Some(expected) = oracle::quantize(ty, n_per_row, src, imatrix) else {
        return;
    };
    let got = quantize(ty, n_per_row, src, imatrix);
    assert_eq!(got.len(), expected.len(), "{ty}: output size");
    if let Some(i) = got.iter().zip(&expected).position(|(a, b)| a != b) {
        let ts = ty.type_size();
        let row_bytes = n_per_row / ty.block_size() * ts;
        let (block, row) = (i / ts, i / row_bytes);
        let s = block * ts;
        panic!(
            "{ty} n_per_row={n_per_row} imatrix={}: first byte mismatch at {i} (row {row}, block {block}, \
             byte {} of the block)\n ours:  {:?}\n llama: {:?}",
            imatrix.is_some(),
            i - s,
            &got[s..s + ts],
            &expected[s..s + ts]
        );
    }
    assert_dequantize_matches(ty, &got);
}

/// Asserts that qforge and llama.cpp dequantize `bytes` to the same f32 bits.
pub(crate) fn assert_dequantize_matches(ty: GgmlType, bytes: &[u8]) {
    let Some(expected) = oracle::dequantize(ty, bytes) else {
        return;
    };
    let got = dequantize(ty, bytes);
    assert_eq!(got.len(), expected.len(), "{ty}: dequantized length");
    for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "{ty}: dequantized element {i}: ours {a}, llama {b}"
        );
    }
}

/// Root-mean-square error of qforge's round trip of `src`, relative to the RMS of `src`.
pub(crate) fn relative_rmse(
    ty: GgmlType,
    n_per_row: usize,
    src: &[f32],
    imatrix: Option<&[f32]>,
) -> f64 {
    let back = dequantize(ty, &quantize(ty, n_per_row, src, imatrix));
    let (mut err, mut sig) = (0.0f64, 0.0f64);
    for (&a, &b) in src.iter().zip(&back) {
        err += (a as f64 - b as f64).powi(2);
        sig += (a as f64).powi(2);
    }
    (err / sig).sqrt()
}

/// Rows of extreme inputs, each `n_per_row` long: ±1e4 magnitudes, all-equal rows of
/// either sign, an all-zero row, a large outlier among tiny values, a ±1e4 ramp, rows of one
/// sign only, lone spikes in zeros, mostly-zero gaussians, values near fp16's smallest and fp32 subnormals.
pub(crate) fn extreme_rows(n_per_row: usize) -> Vec<f32> {
    let mut rng = oracle::Rng::new(77);
    let n = n_per_row;
    let mut v = Vec::with_capacity(12 * n);
    v.extend((0..n).map(|j| {
        if j % 3 == 0 {
            -1e4
        } else {
            1e4 * rng.uniform()
        }
    }));
    v.extend(std::iter::repeat_n(3.7f32, n));
    v.extend(std::iter::repeat_n(-2.0f32, n));
    v.extend(std::iter::repeat_n(0.0f32, n));
    v.extend((0..n).map(|j| if j == 5 { 3e4 } else { rng.normal() * 1e-3 }));
    v.extend((0..n).map(|j| (j as f32 / n as f32 - 0.5) * 2e4));
    v.extend((0..n).map(|j| if j % 2 == 0 { 1e4 } else { -1e4 }));
    v.extend((0..n).map(|_| rng.uniform() + 0.5));
    v.extend((0..n).map(|_| -rng.uniform() - 0.1));
    v.extend((0..n).map(|j| if j % 16 == 0 { 5.0 } else { 0.0 }));
    v.extend((0..n).map(|_| {
        if rng.uniform() < 0.7 {
            0.0
        } else {
            rng.normal()
        }
    }));
    v.extend((0..n).map(|_| rng.normal() * 1e-7));
    v.extend((0..n).map(|j| {
        if j % 4 == 0 {
            0.0
        } else {
            rng.uniform() * 1e-39
        }
    }));
    v.extend((0..n).map(|j| (j % 7) as f32 * 1e-44 - 2e-44));
    v
}

/// Rows holding NaN (with payloads) or infinities among ordinary values.
pub(crate) fn non_finite_rows(n_per_row: usize) -> Vec<f32> {
    let mut v = oracle::test_rows(5, 4, 256);
    v.truncate(4 * n_per_row);
    v[3] = f32::from_bits(0x7fc0_1234);
    v[n_per_row + 40] = f32::NAN;
    v[2 * n_per_row + 7] = f32::INFINITY;
    v[3 * n_per_row + 9] = f32::NEG_INFINITY;
    v
}

/// An importance vector with zeros: every fifth value and the first 64 (columns that
/// never fired during calibration).
pub(crate) fn sparse_imatrix(seed: u64, n: usize) -> Vec<f32> {
    let mut w = oracle::test_imatrix(seed, n);
    for (j, x) in w.iter_mut().enumerate() {
        if j % 5 == 0 || j < 64 {
            *x = 0.0;
        }
    }
    w
}

/// Runs `ty`'s codec directly (no validation in front of it) on a row holding NaN or
/// ±infinity, with and without importance weights: it must not panic. llama.cpp refuses
/// such rows after quantizing them, so there are no bytes to compare.
pub(crate) fn assert_non_finite_input_is_handled(ty: GgmlType, n_per_row: usize) {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut src = oracle::test_rows(3, 1, 256);
        src.truncate(n_per_row);
        src[n_per_row / 2] = bad;
        let w = oracle::test_imatrix(3, n_per_row);
        let c = ggml::codec(ty).expect("codec");
        let q = c.quantize.expect("quantizer");
        for imatrix in [None, Some(&w[..])] {
            let mut bytes = vec![0u8; n_per_row / ty.block_size() * ty.type_size()];
            q(&src, &mut bytes, n_per_row, imatrix);
            let mut back = vec![0f32; n_per_row];
            (c.dequantize)(&bytes, &mut back);
        }
    }
}

/// Sixteen values of one of the shapes that stress the scale searches: gaussians of
/// magnitudes from 1e-30 to 1e30 (and up to near `f32::MAX`), values on exact grids (ties in
/// the rounding), all-zero, constant (either sign, `-0.0` too), a lone spike, subnormals, one
/// sign only, two distinct values, and magnitudes mixed per element.
pub(crate) fn adversarial_chunk(rng: &mut oracle::Rng, shape: u64, out: &mut [f32; 16]) {
    let sign = |rng: &mut oracle::Rng| {
        if rng.next_u64() & 1 == 0 {
            1.0f32
        } else {
            -1.0
        }
    };
    match shape % 13 {
        0 => {
            let s = [1e-30f32, 1e-6, 0.02, 1.0, 1e4, 1e19, 1e30][(rng.next_u64() % 7) as usize];
            out.iter_mut().for_each(|v| *v = rng.normal() * s);
        }
        1 => {
            // Integers and half-integers times a power of two: exact ties.
            let step = (2.0f32).powi((rng.next_u64() % 20) as i32 - 10);
            let half = rng.next_u64() & 1 == 0;
            out.iter_mut().for_each(|v| {
                let k = (rng.next_u64() % 33) as f32 - 16.0;
                *v = (k + if half { 0.5 } else { 0.0 }) * step;
            });
        }
        2 => out.fill(0.0),
        3 => {
            let c = [0.0f32, -0.0, 3.7, -2.0, 1e-40, -1e30][(rng.next_u64() % 6) as usize];
            out.fill(c);
        }
        4 => {
            out.fill(0.0);
            out[(rng.next_u64() % 16) as usize] = sign(rng) * 5.0;
        }
        5 => out.iter_mut().for_each(|v| {
            *v = if rng.next_u64() & 1 == 0 {
                rng.uniform() * 1e-39 * sign(rng)
            } else {
                ((rng.next_u64() % 7) as f32 - 3.0) * 1e-45
            }
        }),
        6 => out.iter_mut().for_each(|v| {
            *v = sign(rng) * (1e19 + rng.uniform() * 3.4e38);
        }),
        7 => out.iter_mut().for_each(|v| *v = rng.uniform() + 0.5),
        8 => out.iter_mut().for_each(|v| *v = -rng.uniform() - 0.1),
        9 => {
            let (a, b) = (rng.normal(), rng.normal());
            out.iter_mut()
                .for_each(|v| *v = if rng.next_u64() & 1 == 0 { a } else { b });
        }
        10 => out.iter_mut().for_each(|v| *v = rng.normal() * 1e-7),
        11 => out.iter_mut().for_each(|v| {
            *v = rng.normal() * (10.0f32).powi((rng.next_u64() % 21) as i32 - 10);
        }),
        _ => {
            // Small integers: many trial scales give the same levels.
            out.iter_mut()
                .for_each(|v| *v = (rng.next_u64() % 5) as f32 - 1.0);
        }
    }
}

/// `rows` rows of `n_per_row` values made of [`adversarial_chunk`]s (a shape often kept for
/// the next chunk, so that whole sub-blocks of 32 share it), with NaN (payloads too) and
/// ±infinity planted in about one row in eight when `non_finite`.
pub(crate) fn adversarial_rows(
    seed: u64,
    rows: usize,
    n_per_row: usize,
    non_finite: bool,
) -> Vec<f32> {
    let mut rng = oracle::Rng::new(seed);
    let mut v = vec![0.0f32; rows * n_per_row];
    let mut shape = 0;
    let mut chunk = [0.0f32; 16];
    for c in v.chunks_mut(16) {
        if rng.next_u64() % 2 == 0 {
            shape = rng.next_u64();
        }
        adversarial_chunk(&mut rng, shape, &mut chunk);
        c.copy_from_slice(&chunk[..c.len()]);
    }
    if non_finite {
        for row in v.chunks_exact_mut(n_per_row) {
            if rng.next_u64() % 8 == 0 {
                let bad = [
                    f32::NAN,
                    f32::from_bits(0x7fc0_1234),
                    f32::from_bits(0xffa0_0001),
                    f32::INFINITY,
                    f32::NEG_INFINITY,
                ][(rng.next_u64() % 5) as usize];
                row[(rng.next_u64() % n_per_row as u64) as usize] = bad;
            }
        }
    }
    v
}

/// An importance vector of `n` values: mostly positive values of varied magnitude, with
/// zeros, `-0.0`, subnormals, huge values, and (when `non_finite`) a NaN or an infinity.
pub(crate) fn adversarial_imatrix(seed: u64, n: usize, non_finite: bool) -> Vec<f32> {
    let mut rng = oracle::Rng::new(seed);
    let mut w: Vec<f32> = (0..n)
        .map(|_| match rng.next_u64() % 16 {
            0 => 0.0,
            1 => -0.0,
            2 => rng.uniform() * 1e-40,
            3 => 1e30 * rng.uniform(),
            4 => 1.0,
            _ => rng.uniform() * rng.uniform() * 10.0,
        })
        .collect();
    if non_finite && n > 0 {
        let i = (rng.next_u64() % n as u64) as usize;
        w[i] = if rng.next_u64() & 1 == 0 {
            f32::NAN
        } else {
            f32::INFINITY
        };
    }
    w
}
