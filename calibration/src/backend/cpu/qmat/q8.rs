//! Activation rows quantized as llama.cpp's x86 CPU backend quantizes a product's input for the
//! weight's `vec_dot_type`: Q8_0 (AVX2 `quantize_row_q8_0`, which `ggml_quantize_mat_q8_0_4x8`
//! mirrors) and Q8_K (`quantize_row_q8_K_ref`).

use half::f16;
use rayon::prelude::*;

/// Rows per parallel quantization task.
const ROWS_PER_TASK: usize = 8;

/// `n` rows of `k` activations as Q8_0 blocks: per 32 values one scale (the stored F16, as f32)
/// and 32 signed bytes.
#[derive(Debug, Default)]
pub struct Q8_0Rows {
    /// Values, `n × k`.
    pub qs: Vec<i8>,
    /// Block scales, `n × k/32`.
    pub d: Vec<f32>,
}

impl Q8_0Rows {
    /// Quantizes `n` rows of `k` (a multiple of 32).
    pub fn quantize(x: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(x.len(), n * k, "Q8_0 input");
        assert_eq!(k % 32, 0, "Q8_0 row length");
        let nb = k / 32;
        let mut out = Q8_0Rows {
            qs: vec![0; n * k],
            d: vec![0.0; n * nb],
        };
        out.qs
            .par_chunks_mut(k * ROWS_PER_TASK)
            .zip(out.d.par_chunks_mut(nb * ROWS_PER_TASK))
            .zip(x.par_chunks(k * ROWS_PER_TASK))
            .for_each(|((q, d), x)| q8_0_blocks(x, q, d));
        out
    }
}

super::super::simd::dispatch!(fn q8_0_blocks(x: &[f32], q: &mut [i8], d: &mut [f32]) => q8_0_blocks_body);

/// [`q8_0_block`] over whole rows (compiled with SSE4.1/AVX2 rounding when the CPU has it).
#[inline(always)]
fn q8_0_blocks_body(x: &[f32], q: &mut [i8], d: &mut [f32]) {
    for ((qb, db), xb) in q.chunks_exact_mut(32).zip(d).zip(x.chunks_exact(32)) {
        *db = q8_0_block(xb, qb);
    }
}

/// One Q8_0 block as the AVX2 code rounds it: `d = amax/127` stored as F16, `q =
/// round_half_even(x * (127/amax))`. Returns the stored scale.
#[inline(always)]
pub fn q8_0_block(x: &[f32], q: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    for (o, &v) in q.iter_mut().zip(x) {
        *o = (v * id).round_ties_even() as i8;
    }
    f16::from_f32(d).to_f32()
}

/// `n` rows of `k` activations as Q8_K blocks: per 256 values an f32 scale, 256 signed bytes and
/// the sums of each 16 of them.
#[derive(Debug, Default)]
pub struct Q8KRows {
    /// Values, `n × k`.
    pub qs: Vec<i8>,
    /// Block scales, `n × k/256`.
    pub d: Vec<f32>,
    /// Sums of each 16 values, `n × k/16`.
    pub bsums: Vec<i16>,
}

impl Q8KRows {
    /// Quantizes `n` rows of `k` (a multiple of 256) with `quantize_row_q8_K_ref`.
    pub fn quantize(x: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(x.len(), n * k, "Q8_K input");
        assert_eq!(k % 256, 0, "Q8_K row length");
        let nb = k / 256;
        let mut out = Q8KRows {
            qs: vec![0; n * k],
            d: vec![0.0; n * nb],
            bsums: vec![0; n * k / 16],
        };
        out.qs
            .par_chunks_mut(k * ROWS_PER_TASK)
            .zip(out.d.par_chunks_mut(nb * ROWS_PER_TASK))
            .zip(out.bsums.par_chunks_mut(k / 16 * ROWS_PER_TASK))
            .zip(x.par_chunks(k * ROWS_PER_TASK))
            .for_each(|(((q, d), s), x)| q8_k_blocks(x, q, d, s));
        out
    }
}

super::super::simd::dispatch!(fn q8_k_blocks(x: &[f32], q: &mut [i8], d: &mut [f32], s: &mut [i16]) => q8_k_blocks_body);

/// [`q8_k_block`] over whole rows (compiled with SSE4.1/AVX2 rounding when the CPU has it).
#[inline(always)]
fn q8_k_blocks_body(x: &[f32], q: &mut [i8], d: &mut [f32], s: &mut [i16]) {
    for (((qb, db), sb), xb) in q
        .chunks_exact_mut(256)
        .zip(d)
        .zip(s.chunks_exact_mut(16))
        .zip(x.chunks_exact(256))
    {
        *db = q8_k_block(xb, qb, sb);
    }
}

/// One Q8_K block (`quantize_row_q8_K_ref`): the value of largest magnitude (first of equals)
/// sets `iscale = -127/max`, `q = min(127, nearest_int(iscale * x))`, `d = 1/iscale`; `bsums`
/// gets the sum of each 16 values. Returns `d`.
#[inline(always)]
pub fn q8_k_block(x: &[f32], q: &mut [i8], bsums: &mut [i16]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        q.fill(0);
        bsums.fill(0);
        return 0.0;
    }
    let iscale = -127.0 / max;
    for (o, &v) in q.iter_mut().zip(x) {
        *o = ((iscale * v).round_ties_even() as i32).min(127) as i8;
    }
    for (s, qc) in bsums.iter_mut().zip(q.chunks_exact(16)) {
        *s = qc.iter().map(|&v| v as i16).sum();
    }
    1.0 / iscale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_rounds_half_to_even_and_keeps_the_extreme() {
        let mut x = [0.0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -3.5;
        let r = Q8_0Rows::quantize(&x, 1, 32);
        assert_eq!(&r.qs[..3], &[127, 2, -4]);
        assert_eq!(r.d[0], 1.0);
    }

    #[test]
    fn q8_k_scale_sign_and_block_sums() {
        let mut x = [0.5f32; 256];
        x[7] = -2.0;
        let r = Q8KRows::quantize(&x, 1, 256);
        assert_eq!(r.qs[7], -127);
        assert_eq!(r.d[0], 1.0 / (-127.0 / -2.0));
        let s0: i16 = r.qs[..16].iter().map(|&v| v as i16).sum();
        assert_eq!(r.bsums[0], s0);
        assert_eq!(Q8KRows::quantize(&[0.0; 256], 1, 256).d[0], 0.0);
    }
}
