//! Float matrix products summed in the order of llamafile's tinyBLAS on x86 AVX2 (`sgemm.cpp`),
//! which llama.cpp's CPU backend uses for F32, F16 and BF16 weights when the product has at least
//! two input rows, the weight's row count is a multiple of 4 and the inner dimension a multiple
//! of 8: each output is eight lane sums, lane `l` a chain of fused multiply-adds over the
//! elements `8t + l`, then added as `((l4 + l0) + (l6 + l2)) + ((l5 + l1) + (l7 + l3))`.
//!
//! Every output is computed alone in that order, so the result does not depend on the tiling,
//! the thread count or the other rows of the batch.

use rayon::prelude::*;

/// Lanes of an AVX2 register: the stride of one fused multiply-add chain.
pub const LANES: usize = 8;

/// Whether llama.cpp's CPU backend takes the tinyBLAS path for a product of `n` input rows with a
/// weight of `rows` rows of `k` (`llamafile_sgemm`'s conditions on AVX2).
pub fn applies(n: usize, rows: usize, k: usize) -> bool {
    n >= 2 && rows % 4 == 0 && k % LANES == 0
}

/// tinyBLAS's horizontal sum of one AVX2 accumulator (`hsum(__m256)`).
#[inline(always)]
pub fn hsum(v: [f32; LANES]) -> f32 {
    let s = [v[4] + v[0], v[5] + v[1], v[6] + v[2], v[7] + v[3]];
    (s[0] + s[2]) + (s[1] + s[3])
}

/// Weight rows per tile (`RM`).
const RM: usize = 4;
/// Input rows per tile (`RN`).
const RN: usize = 3;

/// `out (n × rows) = x (n × k) · wᵀ`, `w` row-major `rows × k`, in tinyBLAS's order.
/// Requires `k % 8 == 0`.
pub fn gemm(w: &[f32], rows: usize, k: usize, x: &[f32], n: usize, out: &mut [f32]) {
    assert_eq!(k % LANES, 0, "tinyBLAS inner dimension");
    assert_eq!(w.len(), rows * k, "tinyBLAS weight");
    assert_eq!(x.len(), n * k, "tinyBLAS input");
    assert_eq!(out.len(), n * rows, "tinyBLAS output");
    if n == 0 || rows == 0 {
        return;
    }
    super::qmat::par_bands(rows, n, out, |r0, nr, band| {
        band_dispatch(&w[r0 * k..(r0 + nr) * k], nr, k, x, n, band)
    });
}

/// One band: `band (n × nr) = x · wᵀ`.
fn band_dispatch(w: &[f32], nr: usize, k: usize, x: &[f32], n: usize, band: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA; the slice lengths were checked by `gemm`.
            unsafe { avx2::band(w, nr, k, x, n, band) };
            return;
        }
    }
    band_scalar(w, nr, k, x, n, band)
}

/// The portable version of one band: the same lanes, fused multiply-adds and sum.
fn band_scalar(w: &[f32], nr: usize, k: usize, x: &[f32], n: usize, band: &mut [f32]) {
    for j in 0..n {
        let xr = &x[j * k..(j + 1) * k];
        for i in 0..nr {
            let wr = &w[i * k..(i + 1) * k];
            let mut acc = [0.0f32; LANES];
            for (wc, xc) in wr.chunks_exact(LANES).zip(xr.chunks_exact(LANES)) {
                for l in 0..LANES {
                    acc[l] = wc[l].mul_add(xc[l], acc[l]);
                }
            }
            band[j * nr + i] = hsum(acc);
        }
    }
}

/// Elements per step of ggml's `ggml_vec_dot_f32` / `ggml_vec_dot_f16` on AVX2 (four registers of
/// eight lanes).
pub const VEC_DOT_STEP: usize = 32;

/// `out (n × rows) = x · wᵀ` in the order of `ggml_vec_dot_f32` / `ggml_vec_dot_f16` (AVX2), which
/// llama.cpp uses for a single input row and for `mul_mat_id`: four accumulators of eight lanes,
/// accumulator `(e % 32) / 8`, lane `e % 8`, reduced as `GGML_F32x8_REDUCE`. Requires
/// `k % 32 == 0` (no scalar tail).
pub fn vec_dot_rows(w: &[f32], rows: usize, k: usize, x: &[f32], n: usize, out: &mut [f32]) {
    assert_eq!(k % VEC_DOT_STEP, 0, "vec_dot inner dimension");
    assert_eq!(w.len(), rows * k, "vec_dot weight");
    assert_eq!(x.len(), n * k, "vec_dot input");
    assert_eq!(out.len(), n * rows, "vec_dot output");
    out.par_chunks_mut(rows)
        .zip(x.par_chunks(k))
        .for_each(|(o, xr)| {
            for (oi, wr) in o.iter_mut().zip(w.chunks_exact(k)) {
                *oi = vec_dot_one(wr, xr);
            }
        });
}

/// `ggml_vec_dot_f16`'s total for rows already widened to f32: the AVX2 register sum of the first
/// `len - len % 32` elements, then the remaining products (rounded to f32) added in double.
pub fn vec_dot_f16_total(w: &[f32], x: &[f32]) -> f64 {
    let np = w.len() / VEC_DOT_STEP * VEC_DOT_STEP;
    let mut sum = if np > 0 {
        vec_dot_one(&w[..np], &x[..np]) as f64
    } else {
        0.0
    };
    for (&a, &b) in w[np..].iter().zip(&x[np..]) {
        sum += (a * b) as f64;
    }
    sum
}

super::simd::dispatch!(fn vec_dot_one(w: &[f32], x: &[f32]) -> f32 => vec_dot_body);

#[inline(always)]
fn vec_dot_body(w: &[f32], x: &[f32]) -> f32 {
    let mut acc = [[0.0f32; LANES]; 4];
    for (wc, xc) in w
        .chunks_exact(VEC_DOT_STEP)
        .zip(x.chunks_exact(VEC_DOT_STEP))
    {
        for (j, accj) in acc.iter_mut().enumerate() {
            for l in 0..LANES {
                accj[l] = wc[j * LANES + l].mul_add(xc[j * LANES + l], accj[l]);
            }
        }
    }
    // GGML_F32x8_REDUCE: x0 += x2, x1 += x3; x0 += x1; then the halves, then two hadds.
    let mut r = [0.0f32; LANES];
    for l in 0..LANES {
        r[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    }
    let t0 = [r[0] + r[4], r[1] + r[5], r[2] + r[6], r[3] + r[7]];
    (t0[0] + t0[1]) + (t0[2] + t0[3])
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! Blocked over the inner dimension (`KB` values) and the input rows (`NB`), so that the
    //! weight rows of a tile and the input block stay in cache; each output's eight lane
    //! accumulators are kept in a buffer between inner blocks, so every lane's chain of fused
    //! multiply-adds runs over the elements in the same order as unblocked.
    use super::{hsum, LANES, RM, RN};
    use std::arch::x86_64::*;

    /// Inner-dimension block (values).
    const KB: usize = 512;
    /// Input rows per block (a multiple of `RN`).
    const NB: usize = 96;

    /// A tile of `M` weight rows by `N` input rows over `kl` values, continuing the
    /// accumulators at `acc` (`acc[j * nr + i]`).
    #[inline(always)]
    unsafe fn tile<const M: usize, const N: usize>(
        w: *const f32,
        x: *const f32,
        k: usize,
        kl: usize,
        acc: *mut __m256,
        nr: usize,
    ) {
        let mut c = [[_mm256_setzero_ps(); M]; N];
        for (j, cj) in c.iter_mut().enumerate() {
            for (i, cji) in cj.iter_mut().enumerate() {
                *cji = *acc.add(j * nr + i);
            }
        }
        let mut l = 0;
        while l < kl {
            // The input rows first, then one weight row at a time (tinyBLAS's order for RM > RN):
            // 12 accumulators + 3 + 1 registers, no spills.
            let mut b = [_mm256_setzero_ps(); N];
            for (j, bj) in b.iter_mut().enumerate() {
                *bj = _mm256_loadu_ps(x.add(j * k + l));
            }
            for i in 0..M {
                let a = _mm256_loadu_ps(w.add(i * k + l));
                for (cj, bj) in c.iter_mut().zip(b.iter()) {
                    cj[i] = _mm256_fmadd_ps(a, *bj, cj[i]);
                }
            }
            l += LANES;
        }
        for (j, cj) in c.iter().enumerate() {
            for (i, cji) in cj.iter().enumerate() {
                *acc.add(j * nr + i) = *cji;
            }
        }
    }

    /// One band of `nr` weight rows by all `n` input rows.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn band(
        w: &[f32],
        nr: usize,
        k: usize,
        x: &[f32],
        n: usize,
        band: &mut [f32],
    ) {
        assert!(w.len() >= nr * k && x.len() >= n * k && band.len() >= n * nr);
        let mut acc = vec![_mm256_setzero_ps(); NB * nr];
        let mut jb = 0;
        while jb < n {
            let nj_block = NB.min(n - jb);
            acc.iter_mut().for_each(|a| *a = _mm256_setzero_ps());
            let mut kb = 0;
            while kb < k {
                let kl = KB.min(k - kb);
                let mut i0 = 0;
                while i0 < nr {
                    let ni = RM.min(nr - i0);
                    let mut j0 = 0;
                    while j0 < nj_block {
                        let nj = RN.min(nj_block - j0);
                        let wp = w.as_ptr().add(i0 * k + kb);
                        let xp = x.as_ptr().add((jb + j0) * k + kb);
                        let ap = acc.as_mut_ptr().add(j0 * nr + i0);
                        match (ni, nj) {
                            (4, 3) => tile::<4, 3>(wp, xp, k, kl, ap, nr),
                            (4, 2) => tile::<4, 2>(wp, xp, k, kl, ap, nr),
                            (4, 1) => tile::<4, 1>(wp, xp, k, kl, ap, nr),
                            (3, 3) => tile::<3, 3>(wp, xp, k, kl, ap, nr),
                            (3, 2) => tile::<3, 2>(wp, xp, k, kl, ap, nr),
                            (3, 1) => tile::<3, 1>(wp, xp, k, kl, ap, nr),
                            (2, 3) => tile::<2, 3>(wp, xp, k, kl, ap, nr),
                            (2, 2) => tile::<2, 2>(wp, xp, k, kl, ap, nr),
                            (2, 1) => tile::<2, 1>(wp, xp, k, kl, ap, nr),
                            (1, 3) => tile::<1, 3>(wp, xp, k, kl, ap, nr),
                            (1, 2) => tile::<1, 2>(wp, xp, k, kl, ap, nr),
                            _ => tile::<1, 1>(wp, xp, k, kl, ap, nr),
                        }
                        j0 += nj;
                    }
                    i0 += ni;
                }
                kb += kl;
            }
            for j in 0..nj_block {
                for i in 0..nr {
                    let mut v = [0.0f32; LANES];
                    _mm256_storeu_ps(v.as_mut_ptr(), acc[j * nr + i]);
                    band[(jb + j) * nr + i] = hsum(v);
                }
            }
            jb += nj_block;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_path_equals_scalar_path_bit_for_bit() {
        let (rows, k, n) = (70, 48, 5);
        let w: Vec<f32> = (0..rows * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let x: Vec<f32> = (0..n * k)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 3.0)
            .collect();
        let mut fast = vec![0.0f32; n * rows];
        gemm(&w, rows, k, &x, n, &mut fast);
        let mut slow = vec![0.0f32; n * rows];
        band_scalar(&w, rows, k, &x, n, &mut slow);
        assert_eq!(fast, slow);
        // And the sum is the dot product up to rounding.
        let exact: f64 = (0..k).map(|l| w[l] as f64 * x[l] as f64).sum();
        assert!((fast[0] as f64 - exact).abs() < 1e-3 * exact.abs().max(1.0));
    }

    #[test]
    fn vec_dot_order_sums_four_registers_then_lanes() {
        let (rows, k, n) = (3, 64, 2);
        let w: Vec<f32> = (0..rows * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let x: Vec<f32> = (0..n * k)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 3.0)
            .collect();
        let mut out = vec![0.0f32; n * rows];
        vec_dot_rows(&w, rows, k, &x, n, &mut out);
        let exact: f64 = (0..k).map(|l| w[l] as f64 * x[l] as f64).sum();
        assert!((out[0] as f64 - exact).abs() < 1e-3 * exact.abs().max(1.0));
        // Element e lands in register (e % 32) / 8, lane e % 8: one non-zero product per
        // register and lane gives the plain sum.
        let mut w1 = vec![0.0f32; k];
        let x1 = vec![1.0f32; k];
        w1[0] = 1.0;
        w1[9] = 2.0;
        w1[63] = 4.0;
        let mut o = [0.0f32];
        vec_dot_rows(&w1, 1, k, &x1, 1, &mut o);
        assert_eq!(o[0], 7.0);
    }
}
