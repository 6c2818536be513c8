//! Activation rounding: the f32 values llama.cpp's CPU backend effectively multiplies after
//! converting a matrix product's input rows to the weight type's `vec_dot_type` (x86 AVX2 paths of
//! `quantize_row_q8_0` / `quantize_row_q8_1`, `quantize_row_q8_K_ref`, F16C and BF16 conversions).

use super::super::ActRounding;
use super::simd::dispatch;
use half::f16;
use half::slice::HalfFloatSliceExt;
use qforge_formats::ggml::fp::{bf16_bits_to_f32, f32_to_bf16_bits};

/// Rounds one row `x` into `out` (same length). For [`ActRounding::Q8_1`], `delta` receives one
/// value per 32-block: the block's stored F16 sum `s` minus the sum of its dequantized values, the
/// amount by which ggml's `m * s` term differs from a product with the dequantized row.
pub fn round_row(mode: ActRounding, x: &[f32], out: &mut [f32], delta: &mut [f32]) {
    round_row_dispatch(mode, x, out, delta)
}

dispatch!(fn round_row_dispatch(mode: ActRounding, x: &[f32], out: &mut [f32], delta: &mut [f32]) => round_row_body);

#[inline(always)]
fn round_row_body(mode: ActRounding, x: &[f32], out: &mut [f32], delta: &mut [f32]) {
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
        ActRounding::Q8_0 => {
            for (xb, ob) in x.chunks_exact(32).zip(out.chunks_exact_mut(32)) {
                q8_block(xb, ob);
            }
        }
        ActRounding::Q8_1 => {
            for ((xb, ob), dl) in x.chunks_exact(32).zip(out.chunks_exact_mut(32)).zip(delta) {
                *dl = q8_block(xb, ob);
            }
        }
        ActRounding::Q8K => {
            for (xb, ob) in x.chunks_exact(256).zip(out.chunks_exact_mut(256)) {
                q8k_block(xb, ob);
            }
        }
    }
}

/// One Q8_0/Q8_1 block as the x86 AVX2 code rounds it: `d = amax/127` stored as F16,
/// `q = round_half_even(x * 127/amax)`. Returns Q8_1's `f16(d * Σq) - f16(d) * Σq`.
fn q8_block(x: &[f32], out: &mut [f32]) -> f32 {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let d16 = f16::from_f32(d).to_f32();
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut sum = 0i32;
    for (o, &v) in out.iter_mut().zip(x) {
        let q = (v * id).round_ties_even();
        sum += q as i32;
        *o = d16 * q;
    }
    let s = f16::from_f32(d * sum as f32).to_f32();
    s - d16 * sum as f32
}

/// One Q8_K block (`quantize_row_q8_K_ref`): the value of largest magnitude (first of equals)
/// sets `iscale = -127/max`, `q = min(127, nearest_int(iscale * x))`, `d = 1/iscale`.
fn q8k_block(x: &[f32], out: &mut [f32]) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        out.fill(0.0);
        return;
    }
    let iscale = -127.0 / max;
    let d = 1.0 / iscale;
    for (o, &v) in out.iter_mut().zip(x) {
        let q = (iscale * v).round_ties_even().min(127.0);
        *o = d * q;
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
        round_row(ActRounding::Q8_0, &x, &mut out, &mut []);
        assert_eq!(&out[..3], &[127.0, 2.0, -4.0]);
    }

    #[test]
    fn q8_k_zero_block_and_sign() {
        let x = [0.0f32; 256];
        let mut out = [1.0f32; 256];
        round_row(ActRounding::Q8K, &x, &mut out, &mut []);
        assert!(out.iter().all(|&v| v == 0.0));
        let mut x = [0.5f32; 256];
        x[7] = -2.0;
        round_row(ActRounding::Q8K, &x, &mut out, &mut []);
        assert_eq!(out[7], -2.0);
        assert!((out[0] - 0.5).abs() < 2.0 / 127.0);
    }
}
