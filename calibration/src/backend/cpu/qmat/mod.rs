//! Products with quantized weights by integer dot products over ggml blocks, summed in the order
//! of llama.cpp's x86 AVX2 CPU kernels, so that a forward pass gives llama.cpp's logits bit for
//! bit. Each weight type takes the path the pinned llama.cpp takes for it on AVX2, decided per
//! micro-batch by its row count `n` (the caller passes one micro-batch at a time):
//!
//! | weight | path | order here |
//! |---|---|---|
//! | Q4_0, IQ4_NL, rows % 8 == 0 | CPU_REPACK `gemm/gemv_*_8x8_q8_0` | [`q0::block_sums`] |
//! | Q4_K, rows % 8 == 0 | CPU_REPACK `gemm_q4_K_8x8_q8_K` (n - n%4 rows), `gemv` (the rest) | [`repack_q4k`] |
//! | Q8_0, Q5_0 (and Q4_0, IQ4_NL otherwise) | llamafile `tinyBLAS_Q0_AVX` (n ≥ 2), `vec_dot` | [`q0::lanes`] |
//! | Q2_K..Q6_K | `ggml-cpu/tiled` (n ≥ 8), `ggml_vec_dot_*_q8_K` | [`kdot`] |
//! | IQ4_XS, IQ3_S/XXS, IQ2_S/XS/XXS, IQ1_S/M | `ggml-cpu/tiled` (n ≥ 8), `ggml_vec_dot_*_q8_K` | [`iqdot`] |
//! | Q4_1, Q5_1 | `ggml_vec_dot_q{4,5}_1_q8_1` | [`q1`] |
//!
//! Activations are quantized to the weight's `vec_dot_type` first ([`q8`], [`q1::Q8_1Rows`],
//! [`repack_q4k::quantize_acts`]). Not covered: IQ4_NL with one input row (`vec_dot`'s two
//! alternating accumulators; the lane order is used).

pub mod iqdot;
pub mod kdot;
pub mod q0;
pub mod q1;
pub mod q8;
pub mod repack_q4k;

use q0::Q0Weight;
use q8::{Q8KRows, Q8_0Rows};
use qforge_formats::ggml::GgmlType;
use rayon::prelude::*;

/// Weight rows per parallel task (a multiple of 8, the repacked kernels' interleave).
const ROWS_PER_TASK: usize = 64;

/// A weight prepared for exact integer products.
#[derive(Debug, Default)]
pub struct QMatrix {
    ty: Option<GgmlType>,
    /// Row length.
    k: usize,
    /// Rows of one matrix (an expert's rows for stacked experts).
    rows: usize,
    q0: Q0Weight,
    /// The stored blocks, for the kernels that read them directly.
    raw: Vec<u8>,
    /// Bytes per row of `k` values.
    row_bytes: usize,
}

impl QMatrix {
    /// Whether weights of type `ty` with rows of `k` have an exact product here.
    pub fn supports(ty: GgmlType, k: usize) -> bool {
        ((q0::is_q0(ty) || q1::supports(ty)) && k % 32 == 0)
            || ((kdot::supports(ty) || iqdot::supports(ty)) && k % 256 == 0)
    }

    /// Prepares `data` (`n_mat × rows` rows of `k` values of type `ty`, one of
    /// [`QMatrix::supports`]), reusing storage.
    pub fn load(&mut self, ty: GgmlType, data: &[u8], k: usize, rows: usize) {
        self.ty = Some(ty);
        self.k = k;
        self.rows = rows;
        self.row_bytes = ty.row_size(k as u64).expect("row size") as usize;
        if q0::is_q0(ty) {
            self.q0.decode(ty, data);
            self.raw = Vec::new();
        } else {
            self.q0 = Q0Weight::default();
            self.raw.clear();
            self.raw.extend_from_slice(data);
        }
    }

    /// `out (n × rows) = x (n × k) · W[expert]ᵀ`, rounded and summed as llama.cpp's CPU backend
    /// does for a `mul_mat` (`by_row == false`) or, for stacked experts, a `mul_mat_id`, which
    /// takes one `vec_dot` per input row (`by_row == true`).
    pub fn product(&self, expert: usize, x: &[f32], n: usize, out: &mut [f32], by_row: bool) {
        let (k, rows) = (self.k, self.rows);
        let ty = self.ty.expect("QMatrix::product before load");
        assert_eq!(x.len(), n * k, "quantized product input");
        assert_eq!(out.len(), n * rows, "quantized product output");
        if n == 0 || rows == 0 {
            return;
        }
        let r0 = expert * rows;
        let rb = self.row_bytes;
        if q1::supports(ty) {
            let a = q1::Q8_1Rows::quantize(x, n, k);
            let raw = &self.raw;
            par_bands(rows, n, out, |i0, ni, o| {
                q1::band(ty, raw, rb, r0 + i0, ni, k, &a, o)
            });
            return;
        }
        if ty == GgmlType::Q4_K && rows % 8 == 0 {
            let a = repack_q4k::quantize_acts(x, n, k);
            let raw = &self.raw;
            par_bands(rows, n, out, |i0, ni, o| {
                repack_q4k::band(raw, rb, r0 + i0, ni, k, &a, o)
            });
            return;
        }
        if kdot::supports(ty) || iqdot::supports(ty) {
            let a = Q8KRows::quantize(x, n, k);
            let raw = &self.raw;
            par_bands(rows, n, out, |i0, ni, o| {
                if kdot::supports(ty) {
                    kdot::band(ty, raw, rb, r0 + i0, ni, k, &a, o)
                } else {
                    iqdot::band(ty, raw, rb, r0 + i0, ni, k, &a, o)
                }
            });
            return;
        }
        let a = Q8_0Rows::quantize(x, n, k);
        let repacked = matches!(ty, GgmlType::Q4_0 | GgmlType::IQ4_NL) && rows % 8 == 0;
        // Repacked weights take the same per-output order for `mul_mat` and `mul_mat_id`;
        // IQ4_NL's one-row `vec_dot` (two alternating accumulators) is not reproduced.
        let _ = by_row;
        if repacked {
            par_bands(rows, n, out, |i0, ni, o| {
                q0::block_sums(&self.q0, r0 + i0, ni, k, &a, o)
            });
        } else {
            par_bands(rows, n, out, |i0, ni, o| {
                q0::lanes(&self.q0, r0 + i0, ni, k, &a, o)
            });
        }
    }
}

/// Runs `band(first_row, n_rows, band_out)` on bands of weight rows in parallel, each writing
/// `n × n_rows` results (input-row-major), and scatters them into `out` (`n × rows`).
pub fn par_bands(
    rows: usize,
    n: usize,
    out: &mut [f32],
    band: impl Fn(usize, usize, &mut [f32]) + Sync,
) {
    if rows <= ROWS_PER_TASK {
        band(0, rows, out);
        return;
    }
    let bands: Vec<(usize, Vec<f32>)> = (0..rows)
        .step_by(ROWS_PER_TASK)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|r0| {
            let nr = ROWS_PER_TASK.min(rows - r0);
            let mut o = vec![0.0f32; n * nr];
            band(r0, nr, &mut o);
            (r0, o)
        })
        .collect();
    for (r0, b) in bands {
        let nr = b.len() / n;
        for (o, bl) in out.chunks_exact_mut(rows).zip(b.chunks_exact(nr)) {
            o[r0..r0 + nr].copy_from_slice(bl);
        }
    }
}
