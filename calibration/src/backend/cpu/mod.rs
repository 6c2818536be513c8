//! The CPU backend: f32 activations, weights dequantized to f32 once per load, products by the
//! gemm crate on rayon's pool, every reduction in a fixed order (results do not depend on the
//! thread count).

mod act;
mod attention;
mod matmul;
mod ops;
mod qmat;
mod simd;
mod tinyblas;

use super::{AttnJob, Backend, BackendError, RopeParams, WeightView};
use half::f16;
pub use matmul::CpuMatrix;
use qforge_formats::ggml::dequantize;
use rayon::prelude::*;

/// The CPU implementation of [`Backend`], reproducing llama.cpp's CPU rounding (x86 AVX2 paths).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBackend;

impl CpuBackend {
    /// A CPU backend running on the current rayon pool.
    pub fn new() -> Self {
        CpuBackend
    }
}

impl Backend for CpuBackend {
    type Matrix = CpuMatrix;

    fn new_matrix(&self) -> CpuMatrix {
        CpuMatrix::default()
    }

    fn load_matrix(&self, w: &WeightView<'_>, m: &mut CpuMatrix) -> Result<(), BackendError> {
        matmul::load(w, m)
    }

    fn matmul(&self, m: &CpuMatrix, expert: usize, x: &[f32], n: usize, out: &mut [f32]) {
        matmul::matmul(m, expert, x, n, out)
    }

    fn get_rows(
        &self,
        w: &WeightView<'_>,
        ids: &[u32],
        out: &mut [f32],
    ) -> Result<(), BackendError> {
        let [cols, rows, _] = w.ne;
        let shape_err = |reason: String| BackendError::Shape {
            name: w.name.to_string(),
            reason,
        };
        let rb =
            w.ty.row_size(cols as u64)
                .filter(|_| cols % w.ty.block_size() == 0)
                .ok_or_else(|| shape_err(format!("rows of {cols} do not fit type {}", w.ty)))?
                as usize;
        if w.data.len() < rb * rows || out.len() != ids.len() * cols {
            return Err(shape_err("data or output length".into()));
        }
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= rows) {
            return Err(shape_err(format!("row {bad} requested of {rows}")));
        }
        out.par_chunks_mut(cols)
            .zip(ids.par_iter())
            .try_for_each(|(o, &id)| dequantize(w.ty, &w.data[id as usize * rb..][..rb], o))
            .map_err(|source| BackendError::Codec {
                name: w.name.to_string(),
                source,
            })
    }

    fn rms_norm(&self, x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
        ops::rms_norm(x, weight, eps, out)
    }

    fn rope(
        &self,
        x: &mut [f32],
        n_head: usize,
        head_dim: usize,
        positions: &[u32],
        p: &RopeParams,
    ) {
        ops::rope(x, n_head, head_dim, positions, p)
    }

    fn attention(&self, jobs: &mut [AttnJob<'_>], scale: f32) {
        attention::attention(jobs, scale)
    }

    fn swiglu(&self, gate: &[f32], up: &[f32], n_cols: usize, out: &mut [f32]) {
        ops::swiglu(gate, up, out, n_cols)
    }

    fn geglu(&self, gate: &[f32], up: &[f32], n_cols: usize, out: &mut [f32]) {
        ops::geglu(gate, up, out, n_cols)
    }

    fn add_bias(&self, x: &mut [f32], bias: &[f32]) {
        x.par_chunks_mut(bias.len().max(1) * 16).for_each(|c| {
            for r in c.chunks_mut(bias.len().max(1)) {
                r.iter_mut().zip(bias).for_each(|(a, b)| *a += b);
            }
        });
    }

    fn scale(&self, x: &mut [f32], s: f32) {
        x.par_chunks_mut(4096)
            .for_each(|c| c.iter_mut().for_each(|v| *v *= s));
    }

    fn softcap(&self, x: &mut [f32], c: f32) {
        let inv = 1.0 / c;
        x.par_chunks_mut(4096)
            .for_each(|ch| ch.iter_mut().for_each(|v| *v = (*v * inv).tanh() * c));
    }

    fn soft_max(&self, x: &mut [f32], n_cols: usize) {
        ops::soft_max(x, n_cols)
    }

    fn add(&self, dst: &mut [f32], src: &[f32]) {
        dst.par_chunks_mut(4096)
            .zip(src.par_chunks(4096))
            .for_each(|(d, s)| d.iter_mut().zip(s).for_each(|(a, b)| *a += b));
    }

    fn to_f16(&self, src: &[f32], dst: &mut [f16]) {
        use half::slice::HalfFloatSliceExt;
        dst.par_chunks_mut(4096)
            .zip(src.par_chunks(4096))
            .for_each(|(d, s)| d.convert_from_f32_slice(s));
    }
}
