//! Products of 32-value blocks with one scale (Q8_0, Q4_0, Q5_0, IQ4_NL) with Q8_0 activations,
//! in the two summation orders llama.cpp's x86 AVX2 CPU backend uses for them:
//!
//! - [`lanes`]: llamafile's `tinyBLAS_Q0_AVX` and `ggml_vec_dot_q{8,4,5}_0_q8_0`: per block, eight
//!   integer sums of four consecutive products, each converted to f32 and fused-multiply-added
//!   with `d_w * d_a` into its lane; tinyBLAS's horizontal sum at the end.
//! - [`block_sums`]: the repacked `q4_0_8x8` / `iq4_nl_8x8` kernels (`ggml_gemm_*` / `ggml_gemv_*`):
//!   per block, the whole integer dot product converted to f32 and fused-multiply-added with
//!   `d_w * d_a` into one accumulator.
//!
//! Weights are decoded once at load into signed bytes and f32 scales ([`Q0Weight`]); integer
//! sums are exact, so only the float steps above decide the result.

use super::super::tinyblas::hsum;
use super::q8::Q8_0Rows;
use half::f16;
use qforge_formats::ggml::GgmlType;

/// IQ4_NL's 16 non-linear values (`kvalues_iq4nl`).
const IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// A weight of 32-value blocks decoded to signed bytes and f32 block scales.
#[derive(Debug, Default)]
pub struct Q0Weight {
    /// Values, `rows × k`.
    pub qs: Vec<i8>,
    /// Block scales (the stored F16 as f32), `rows × k/32`.
    pub d: Vec<f32>,
}

/// Whether `ty` is a 32-value block type with one scale whose `vec_dot_type` is Q8_0.
pub fn is_q0(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::IQ4_NL
    )
}

impl Q0Weight {
    /// Decodes `data` (whole blocks of type `ty`, one of [`is_q0`]) into `self`, reusing storage.
    pub fn decode(&mut self, ty: GgmlType, data: &[u8]) {
        let ts = ty.type_size();
        let nb = data.len() / ts;
        self.qs.resize(nb * 32, 0);
        self.d.resize(nb, 0.0);
        for ((b, q), d) in data
            .chunks_exact(ts)
            .zip(self.qs.chunks_exact_mut(32))
            .zip(&mut self.d)
        {
            *d = f16::from_le_bytes([b[0], b[1]]).to_f32();
            match ty {
                GgmlType::Q8_0 => {
                    for (o, &v) in q.iter_mut().zip(&b[2..34]) {
                        *o = v as i8;
                    }
                }
                GgmlType::Q4_0 | GgmlType::IQ4_NL => {
                    let nib = |v: u8| -> i8 {
                        if ty == GgmlType::Q4_0 {
                            v as i8 - 8
                        } else {
                            IQ4NL[v as usize]
                        }
                    };
                    for (j, &v) in b[2..18].iter().enumerate() {
                        q[j] = nib(v & 15);
                        q[j + 16] = nib(v >> 4);
                    }
                }
                GgmlType::Q5_0 => {
                    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                    for (j, &v) in b[6..22].iter().enumerate() {
                        let hi0 = ((qh >> j) & 1) as u8;
                        let hi1 = ((qh >> (j + 16)) & 1) as u8;
                        q[j] = ((v & 15) | (hi0 << 4)) as i8 - 16;
                        q[j + 16] = ((v >> 4) | (hi1 << 4)) as i8 - 16;
                    }
                }
                _ => unreachable!("Q0Weight::decode on {ty}"),
            }
        }
    }
}

/// `out (n × nr) = a · wᵀ` for weight rows `r0..r0 + nr` of `w` (`k` wide), lane order.
pub fn lanes(w: &Q0Weight, r0: usize, nr: usize, k: usize, a: &Q8_0Rows, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::super::simd::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA; lengths are checked inside.
            unsafe { avx2::lanes(w, r0, nr, k, a, out) };
            return;
        }
    }
    lanes_scalar(w, r0, nr, k, a, out)
}

fn lanes_scalar(w: &Q0Weight, r0: usize, nr: usize, k: usize, a: &Q8_0Rows, out: &mut [f32]) {
    let nb = k / 32;
    let n = a.d.len() / nb;
    assert_eq!(out.len(), n * nr, "Q0 output");
    for i in 0..nr {
        let wq = &w.qs[(r0 + i) * k..][..k];
        let wd = &w.d[(r0 + i) * nb..][..nb];
        for j in 0..n {
            let aq = &a.qs[j * k..][..k];
            let ad = &a.d[j * nb..][..nb];
            let mut acc = [0.0f32; 8];
            for b in 0..nb {
                let d = wd[b] * ad[b];
                for (l, accl) in acc.iter_mut().enumerate() {
                    let e = b * 32 + l * 4;
                    let s: i32 = (0..4).map(|t| wq[e + t] as i32 * aq[e + t] as i32).sum();
                    *accl = d.mul_add(s as f32, *accl);
                }
            }
            out[j * nr + i] = hsum(acc);
        }
    }
}

/// `out (n × nr) = a · wᵀ` for weight rows `r0..r0 + nr`, one accumulator per output.
pub fn block_sums(w: &Q0Weight, r0: usize, nr: usize, k: usize, a: &Q8_0Rows, out: &mut [f32]) {
    block_sums_dispatch(w, r0, nr, k, a, out)
}

super::super::simd::dispatch!(fn block_sums_dispatch(w: &Q0Weight, r0: usize, nr: usize, k: usize, a: &Q8_0Rows, out: &mut [f32]) => block_sums_body);

#[inline(always)]
fn block_sums_body(w: &Q0Weight, r0: usize, nr: usize, k: usize, a: &Q8_0Rows, out: &mut [f32]) {
    let nb = k / 32;
    let n = a.d.len() / nb;
    assert_eq!(out.len(), n * nr, "Q0 output");
    for i in 0..nr {
        let wq = &w.qs[(r0 + i) * k..][..k];
        let wd = &w.d[(r0 + i) * nb..][..nb];
        for j in 0..n {
            let aq = &a.qs[j * k..][..k];
            let ad = &a.d[j * nb..][..nb];
            let mut acc = 0.0f32;
            for ((wb, ab), (&dw, &da)) in wq
                .chunks_exact(32)
                .zip(aq.chunks_exact(32))
                .zip(wd.iter().zip(ad))
            {
                let s: i32 = wb.iter().zip(ab).map(|(&x, &y)| x as i32 * y as i32).sum();
                acc = (s as f32).mul_add(dw * da, acc);
            }
            out[j * nr + i] = acc;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{hsum, Q0Weight, Q8_0Rows};
    use std::arch::x86_64::*;

    /// Eight lanes of four-product sums of one block pair (`mul_sum_i8_pairs_float`).
    #[inline(always)]
    unsafe fn block_lanes(w: *const i8, a: *const i8) -> __m256 {
        let x = _mm256_loadu_si256(w as *const __m256i);
        let y = _mm256_loadu_si256(a as *const __m256i);
        let ax = _mm256_sign_epi8(x, x);
        let sy = _mm256_sign_epi8(y, x);
        let dot = _mm256_maddubs_epi16(ax, sy);
        _mm256_cvtepi32_ps(_mm256_madd_epi16(dot, _mm256_set1_epi16(1)))
    }

    // The tile indices address the accumulators, the rows and the scales together.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn lanes(
        w: &Q0Weight,
        r0: usize,
        nr: usize,
        k: usize,
        a: &Q8_0Rows,
        out: &mut [f32],
    ) {
        let nb = k / 32;
        let n = a.d.len() / nb;
        assert_eq!(out.len(), n * nr, "Q0 output");
        assert!(w.qs.len() >= (r0 + nr) * k && w.d.len() >= (r0 + nr) * nb);
        assert!(a.qs.len() >= n * k);
        // Two weight rows by two input rows per step.
        let mut i = 0;
        while i < nr {
            let mi = 2.min(nr - i);
            let mut j = 0;
            while j < n {
                let mj = 2.min(n - j);
                let mut acc = [[_mm256_setzero_ps(); 2]; 2];
                for b in 0..nb {
                    for ii in 0..mi {
                        let row = r0 + i + ii;
                        let wp = w.qs.as_ptr().add(row * k + b * 32);
                        let dw = *w.d.get_unchecked(row * nb + b);
                        for jj in 0..mj {
                            let ap = a.qs.as_ptr().add((j + jj) * k + b * 32);
                            let d = _mm256_set1_ps(dw * *a.d.get_unchecked((j + jj) * nb + b));
                            acc[jj][ii] = _mm256_fmadd_ps(d, block_lanes(wp, ap), acc[jj][ii]);
                        }
                    }
                }
                for jj in 0..mj {
                    for ii in 0..mi {
                        let mut v = [0.0f32; 8];
                        _mm256_storeu_ps(v.as_mut_ptr(), acc[jj][ii]);
                        out[(j + jj) * nr + i + ii] = hsum(v);
                    }
                }
                j += mj;
            }
            i += mi;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rows: usize, k: usize, n: usize) -> (Q0Weight, Q8_0Rows) {
        let w = Q0Weight {
            qs: (0..rows * k)
                .map(|i| ((i * 37 % 255) as i32 - 127) as i8)
                .collect(),
            d: (0..rows * k / 32).map(|i| 0.01 + i as f32 * 1e-3).collect(),
        };
        let x: Vec<f32> = (0..n * k)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 3.0)
            .collect();
        (w, Q8_0Rows::quantize(&x, n, k))
    }

    #[test]
    fn vector_lanes_equal_scalar_lanes_bit_for_bit() {
        // Odd band sizes and input counts exercise every edge tile; 288 values is nine
        // blocks, so the scale products' vector loop has a scalar tail.
        for (rows, k) in [(12, 96), (11, 288)] {
            for n in 1..=7 {
                for (r0, nr) in [(1, 4), (0, rows), (2, rows - 3), (rows - 1, 1)] {
                    let (w, a) = sample(rows, k, n);
                    let mut fast = vec![0.0; n * nr];
                    lanes(&w, r0, nr, k, &a, &mut fast);
                    let mut slow = vec![0.0; n * nr];
                    lanes_scalar(&w, r0, nr, k, &a, &mut slow);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&fast), bits(&slow), "rows {r0}+{nr}, n {n}, k {k}");
                }
            }
        }
    }

    #[test]
    fn both_orders_give_the_dot_product_of_the_decoded_values() {
        let (rows, k) = (2, 64);
        let (w, a) = sample(rows, k, 3);
        let exact: f64 = (0..k)
            .map(|e| w.qs[e] as f64 * w.d[e / 32] as f64 * a.qs[e] as f64 * a.d[e / 32] as f64)
            .sum();
        let mut o1 = vec![0.0; 3 * 2];
        lanes(&w, 0, 2, k, &a, &mut o1);
        let mut o2 = vec![0.0; 3 * 2];
        block_sums(&w, 0, 2, k, &a, &mut o2);
        for v in [o1[0], o2[0]] {
            assert!(
                (v as f64 - exact).abs() <= 1e-5 * exact.abs().max(1.0),
                "{v} vs {exact}"
            );
        }
    }

    #[test]
    fn decodes_q4_0_and_q5_0_nibbles() {
        let mut b = vec![0u8; 18];
        b[..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        b[2] = 0x1F; // element 0: 15 - 8 = 7; element 16: 1 - 8 = -7
        let mut w = Q0Weight::default();
        w.decode(GgmlType::Q4_0, &b);
        assert_eq!((w.qs[0], w.qs[16], w.qs[1], w.d[0]), (7, -7, -8, 0.5));
        let mut b = vec![0u8; 22];
        b[2] = 1; // qh bit 0: element 0 gets 16
        b[6] = 0x03;
        w.decode(GgmlType::Q5_0, &b);
        assert_eq!((w.qs[0], w.qs[16]), (3, -16));
    }
}
