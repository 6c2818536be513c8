//! Activation rounding: the f32 values llama.cpp's CPU backend effectively multiplies after
//! converting a matrix product's input rows to the weight type's `vec_dot_type` (x86 AVX2 paths of
//! `quantize_row_q8_0` / `quantize_row_q8_1`, `quantize_row_q8_K_ref`, F16C and BF16 conversions).

use super::super::ActRounding;
use super::qmat::q8::{q8_0_block, q8_k_block};
use super::simd::dispatch;
use half::f16;
use half::slice::HalfFloatSliceExt;
use qforge_formats::ggml::fp::{bf16_bits_to_f32, f32_to_bf16_bits};

/// Rounds one row `x` into `out` (same length). Q4_1/Q5_1 (Q8_1 activations) always take
/// `qmat::q1`'s exact products, so Q8_1 needs no sum correction here: its values are Q8_0's.
pub fn round_row(mode: ActRounding, x: &[f32], out: &mut [f32]) {
    round_row_dispatch(mode, x, out)
}

dispatch!(fn round_row_dispatch(mode: ActRounding, x: &[f32], out: &mut [f32]) => round_row_body);

#[inline(always)]
fn round_row_body(mode: ActRounding, x: &[f32], out: &mut [f32]) {
    match mode {
        ActRounding::None => out.copy_from_slice(x),
        ActRounding::F16 => {
            // Through half's slice conversions (F16C when present; same rounding either way).
            let mut h = [f16::ZERO; 256];
            for (xc, oc) in x.chunks(256).zip(out.chunks_mut(256)) {
                let h = &mut h[..xc.len()];
                h.convert_from_f32_slice(xc);
                h.convert_to_f32_slice(oc);
            }
        }
        ActRounding::Bf16 => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = bf16_bits_to_f32(f32_to_bf16_bits(v));
            }
        }
        ActRounding::Q8_0 | ActRounding::Q8_1 => {
            for (xb, ob) in x.chunks_exact(32).zip(out.chunks_exact_mut(32)) {
                q8_block(xb, ob);
            }
        }
        ActRounding::Q8K => {
            for (xb, ob) in x.chunks_exact(256).zip(out.chunks_exact_mut(256)) {
                q8k_block(xb, ob);
            }
        }
    }
}

/// One Q8_0 block as the x86 AVX2 code rounds it ([`q8_0_block`]), dequantized.
fn q8_block(x: &[f32], out: &mut [f32]) {
    let mut q = [0i8; 32];
    let d16 = q8_0_block(x, &mut q);
    for (o, &v) in out.iter_mut().zip(&q) {
        *o = d16 * v as f32;
    }
}

/// One Q8_K block ([`q8_k_block`], `quantize_row_q8_K_ref`), dequantized.
fn q8k_block(x: &[f32], out: &mut [f32]) {
    let (mut q, mut sums) = ([0i8; 256], [0i16; 16]);
    let d = q8_k_block(x, &mut q, &mut sums);
    for (o, &v) in out.iter_mut().zip(&q) {
        *o = d * v as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_keeps_the_extremes_and_rounds_half_to_even() {
        let mut x = [0.0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5; // exactly half way at scale 1: even
        x[2] = -3.5;
        let mut out = [0.0f32; 32];
        round_row(ActRounding::Q8_0, &x, &mut out);
        assert_eq!(&out[..3], &[127.0, 2.0, -4.0]);
    }

    #[test]
    fn q8_k_zero_block_and_sign() {
        let x = [0.0f32; 256];
        let mut out = [1.0f32; 256];
        round_row(ActRounding::Q8K, &x, &mut out);
        assert!(out.iter().all(|&v| v == 0.0));
        let mut x = [0.5f32; 256];
        x[7] = -2.0;
        round_row(ActRounding::Q8K, &x, &mut out);
        assert_eq!(out[7], -2.0);
        assert!((out[0] - 0.5).abs() < 2.0 / 127.0);
    }
}
