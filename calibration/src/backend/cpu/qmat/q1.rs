//! Q4_1 and Q5_1 weights times Q8_1 activations, as llama.cpp's x86 AVX2 CPU backend computes
//! them. Neither type has a llamafile tinyBLAS case nor a repacked layout, so every output is
//! one `ggml_vec_dot_q{4,5}_1_q8_1`:
//!
//! - per 32-value block, eight integer sums of four consecutive products (`weight nibbles` as
//!   unsigned bytes times the signed activation bytes), each converted to f32 and
//!   fused-multiply-added with `d_w * d_a` into its lane;
//! - a scalar `summs = fma(m_w, s_a, summs)` for the blocks' minimums (GCC contracts the C's
//!   `summs += m * s` into an FMA);
//! - at the end `hsum_float_8(lanes) + summs`.
//!
//! Activations are quantized by the AVX2 `quantize_row_q8_1` ([`Q8_1Rows`]).

use super::super::tinyblas::hsum;
use half::f16;
use qforge_formats::ggml::GgmlType;
use rayon::prelude::*;

/// Rows per parallel quantization task.
const ROWS_PER_TASK: usize = 8;

/// Whether `ty` has a kernel here.
pub fn supports(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1)
}

/// `n` rows of `k` activations as Q8_1 blocks: per 32 values the stored F16 scale `d`, the
/// stored F16 `s = d * Σq` (both as f32) and 32 signed bytes.
#[derive(Debug, Default)]
pub struct Q8_1Rows {
    /// Values, `n × k`.
    pub qs: Vec<i8>,
    /// Block scales, `n × k/32`.
    pub d: Vec<f32>,
    /// Block scale times the block's sum of values, `n × k/32`.
    pub s: Vec<f32>,
}

impl Q8_1Rows {
    /// Quantizes `n` rows of `k` (a multiple of 32) as the AVX2 `quantize_row_q8_1` does.
    pub fn quantize(x: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(x.len(), n * k, "Q8_1 input");
        assert_eq!(k % 32, 0, "Q8_1 row length");
        let nb = k / 32;
        let mut out = Q8_1Rows {
            qs: vec![0; n * k],
            d: vec![0.0; n * nb],
            s: vec![0.0; n * nb],
        };
        out.qs
            .par_chunks_mut(k * ROWS_PER_TASK)
            .zip(out.d.par_chunks_mut(nb * ROWS_PER_TASK))
            .zip(out.s.par_chunks_mut(nb * ROWS_PER_TASK))
            .zip(x.par_chunks(k * ROWS_PER_TASK))
            .for_each(|(((q, d), s), x)| {
                for (((qb, db), sb), xb) in
                    q.chunks_exact_mut(32).zip(d).zip(s).zip(x.chunks_exact(32))
                {
                    (*db, *sb) = q8_1_block(xb, qb);
                }
            });
        out
    }
}

/// One Q8_1 block as the AVX2 code rounds it: `d = amax/127`, `q = round_half_even(x *
/// (127/amax))`, `s = d * Σq` (f32 `d` before its F16 rounding; the integer sum is exact in
/// f32). Returns the stored `(d, s)`, each rounded to F16.
pub fn q8_1_block(x: &[f32], q: &mut [i8]) -> (f32, f32) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut sum = 0i32;
    for (o, &v) in q.iter_mut().zip(x) {
        let r = (v * id).round_ties_even() as i32;
        sum += r;
        *o = r as i8;
    }
    (
        f16::from_f32(d).to_f32(),
        f16::from_f32(d * sum as f32).to_f32(),
    )
}

/// One weight row decoded: per value an unsigned byte (0..15 or 0..31), per block `d` and `m`.
struct Row {
    q: Vec<u8>,
    d: Vec<f32>,
    m: Vec<f32>,
}

impl Row {
    fn new(k: usize) -> Self {
        Row {
            q: vec![0; k],
            d: vec![0.0; k / 32],
            m: vec![0.0; k / 32],
        }
    }

    /// Decodes one row of Q4_1 or Q5_1 blocks.
    fn decode(&mut self, ty: GgmlType, raw: &[u8]) {
        let ts = ty.type_size();
        for (((b, q), d), m) in raw
            .chunks_exact(ts)
            .zip(self.q.chunks_exact_mut(32))
            .zip(&mut self.d)
            .zip(&mut self.m)
        {
            *d = f16::from_le_bytes([b[0], b[1]]).to_f32();
            *m = f16::from_le_bytes([b[2], b[3]]).to_f32();
            if ty == GgmlType::Q4_1 {
                for (j, &v) in b[4..20].iter().enumerate() {
                    q[j] = v & 15;
                    q[j + 16] = v >> 4;
                }
            } else {
                let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                for (j, &v) in b[8..24].iter().enumerate() {
                    q[j] = (v & 15) | ((((qh >> j) & 1) as u8) << 4);
                    q[j + 16] = (v >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
                }
            }
        }
    }
}

/// `out (n × nr) = a · wᵀ` for weight rows `r0..r0 + nr` of `raw` (`row_bytes` per row of `k`).
#[allow(clippy::too_many_arguments)]
pub fn band(
    ty: GgmlType,
    raw: &[u8],
    row_bytes: usize,
    r0: usize,
    nr: usize,
    k: usize,
    a: &Q8_1Rows,
    out: &mut [f32],
) {
    assert!(supports(ty), "no Q8_1 kernel for {ty}");
    let nb = k / 32;
    let n = a.d.len() / nb;
    assert_eq!(out.len(), n * nr, "Q8_1 product output");
    assert!(
        a.qs.len() == n * k && a.s.len() == n * nb,
        "Q8_1 activations"
    );
    assert!(raw.len() >= (r0 + nr) * row_bytes, "Q8_1 product weights");
    let mut row = Row::new(k);
    for i in 0..nr {
        row.decode(ty, &raw[(r0 + i) * row_bytes..][..row_bytes]);
        #[cfg(target_arch = "x86_64")]
        {
            if super::super::simd::has_avx2_fma() {
                // SAFETY: the CPU has AVX2 and FMA; lengths were checked above.
                unsafe { avx2::row_times_all(&row, a, nb, n, i, nr, out) };
                continue;
            }
        }
        for j in 0..n {
            out[j * nr + i] = dot_scalar(&row, a, j, nb);
        }
    }
}

/// One output, the portable twin of the AVX2 code (identical bits).
fn dot_scalar(w: &Row, a: &Q8_1Rows, j: usize, nb: usize) -> f32 {
    let aq = &a.qs[j * nb * 32..][..nb * 32];
    let (ad, as_) = (&a.d[j * nb..][..nb], &a.s[j * nb..][..nb]);
    let mut acc = [0.0f32; 8];
    let mut summs = 0.0f32;
    for b in 0..nb {
        summs = w.m[b].mul_add(as_[b], summs);
        let dd = w.d[b] * ad[b];
        for (l, accl) in acc.iter_mut().enumerate() {
            let e = b * 32 + l * 4;
            let s: i32 = (0..4).map(|t| w.q[e + t] as i32 * aq[e + t] as i32).sum();
            *accl = dd.mul_add(s as f32, *accl);
        }
    }
    hsum(acc) + summs
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{hsum, Q8_1Rows, Row};
    use std::arch::x86_64::*;

    /// Eight lanes of four-product sums of one block (`mul_sum_us8_pairs_float`).
    #[inline(always)]
    unsafe fn block_lanes(w: __m256i, a: *const i8) -> __m256 {
        let y = _mm256_loadu_si256(a as *const __m256i);
        let p = _mm256_maddubs_epi16(w, y);
        _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)))
    }

    /// Outputs `J` input rows from `j0` of weight row `w`.
    #[inline(always)]
    unsafe fn rows<const J: usize>(w: &Row, a: &Q8_1Rows, nb: usize, j0: usize) -> [f32; J] {
        let mut acc = [_mm256_setzero_ps(); J];
        let mut summs = [0.0f32; J];
        for b in 0..nb {
            let wv = _mm256_loadu_si256(w.q.as_ptr().add(b * 32) as *const __m256i);
            let (dw, mw) = (*w.d.get_unchecked(b), *w.m.get_unchecked(b));
            for jj in 0..J {
                let ib = (j0 + jj) * nb + b;
                summs[jj] = mw.mul_add(*a.s.get_unchecked(ib), summs[jj]);
                let dd = _mm256_set1_ps(dw * *a.d.get_unchecked(ib));
                let xy = block_lanes(wv, a.qs.as_ptr().add(ib * 32));
                acc[jj] = _mm256_fmadd_ps(dd, xy, acc[jj]);
            }
        }
        let mut r = [0.0f32; J];
        for jj in 0..J {
            let mut v = [0.0f32; 8];
            _mm256_storeu_ps(v.as_mut_ptr(), acc[jj]);
            r[jj] = hsum(v) + summs[jj];
        }
        r
    }

    /// `out[j * nr + i]` for every input row `j` of `a` (`n` rows of `nb` blocks).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn row_times_all(
        w: &Row,
        a: &Q8_1Rows,
        nb: usize,
        n: usize,
        i: usize,
        nr: usize,
        out: &mut [f32],
    ) {
        let mut j = 0;
        while j + 4 <= n {
            for (jj, v) in rows::<4>(w, a, nb, j).into_iter().enumerate() {
                out[(j + jj) * nr + i] = v;
            }
            j += 4;
        }
        while j < n {
            out[j * nr + i] = rows::<1>(w, a, nb, j)[0];
            j += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rows` weight rows of type `ty` quantized from smooth data, and `n` activation rows.
    fn sample(ty: GgmlType, rows: usize, k: usize, n: usize) -> (Vec<u8>, Vec<f32>, Vec<f32>) {
        let w: Vec<f32> = (0..rows * k)
            .map(|i| ((i * 37 % 101) as f32 - 40.0) / 17.0 + (i as f32 * 0.37).sin())
            .collect();
        let mut raw = vec![0u8; ty.row_size(k as u64).unwrap() as usize * rows];
        qforge_formats::ggml::quantize(ty, &w, &mut raw, k, None).unwrap();
        let mut deq = vec![0.0f32; rows * k];
        qforge_formats::ggml::dequantize(ty, &raw, &mut deq).unwrap();
        let x: Vec<f32> = (0..n * k)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 3.0 + (i as f32 * 0.11).cos())
            .collect();
        (raw, deq, x)
    }

    #[test]
    fn q8_1_stores_d_and_d_times_the_sum() {
        let mut x = [0.25f32; 32];
        x[3] = -127.0;
        x[4] = 2.5;
        let a = Q8_1Rows::quantize(&x, 1, 32);
        assert_eq!((a.qs[3], a.qs[4], a.qs[0]), (-127, 2, 0));
        assert_eq!(a.d[0], 1.0);
        assert_eq!(a.s[0], -125.0);
        let z = Q8_1Rows::quantize(&[0.0; 32], 1, 32);
        assert_eq!((z.d[0], z.s[0]), (0.0, 0.0));
    }

    #[test]
    fn vector_equals_scalar_and_the_dequantized_dot_product() {
        for ty in [GgmlType::Q4_1, GgmlType::Q5_1] {
            let (rows, k, n) = (6, 256, 7);
            let (raw, deq, x) = sample(ty, rows, k, n);
            let a = Q8_1Rows::quantize(&x, n, k);
            let rb = raw.len() / rows;
            let mut fast = vec![0.0; n * 5];
            band(ty, &raw, rb, 1, 5, k, &a, &mut fast);
            let mut row = Row::new(k);
            for i in 0..5 {
                row.decode(ty, &raw[(1 + i) * rb..][..rb]);
                for j in 0..n {
                    let slow = dot_scalar(&row, &a, j, k / 32);
                    assert_eq!(fast[j * 5 + i].to_bits(), slow.to_bits(), "{ty} {i} {j}");
                    // The dequantized dot product with the minimum's term taken from the
                    // stored `s` (an F16 rounding of `d * Σq`) instead of `d * Σq`.
                    let (mut exact, mut scale) = (0.0f64, 0.0f64);
                    for b in 0..k / 32 {
                        let ib = j * k / 32 + b;
                        let m = f16::from_le_bytes([
                            raw[(1 + i) * rb + b * ty.type_size() + 2],
                            raw[(1 + i) * rb + b * ty.type_size() + 3],
                        ])
                        .to_f32() as f64;
                        let mut sumq = 0.0f64;
                        for e in b * 32..b * 32 + 32 {
                            let aq = a.qs[j * k + e] as f64;
                            let p = deq[(1 + i) * k + e] as f64 * aq * a.d[ib] as f64;
                            exact += p;
                            scale += p.abs();
                            sumq += aq;
                        }
                        exact += m * (a.s[ib] as f64 - a.d[ib] as f64 * sumq);
                        scale += (m * a.s[ib] as f64).abs();
                    }
                    assert!(
                        (slow as f64 - exact).abs() <= 1e-5 * scale,
                        "{ty}: {slow} vs {exact}"
                    );
                }
            }
        }
    }
}
