//! Weight matrices dequantized to f32, and their products with rounded activations (gemm crate).

use super::super::{ActRounding, BackendError, Matrix, WeightView};
use super::act::round_row;
use super::qmat::QMatrix;
use super::tinyblas;
use qforge_formats::ggml::dequantize;
use rayon::prelude::*;

/// A weight matrix prepared for products: quantized types with an exact kernel in `q`
/// ([`QMatrix`]), the others dequantized to f32 in `w` (`n_mat × n_rows × n_cols`), with the
/// activation rounding of the stored type. The storage is kept between loads, so one buffer
/// serves a whole layer walk.
#[derive(Debug, Default)]
pub struct CpuMatrix {
    pub(super) cols: usize,
    pub(super) rows: usize,
    pub(super) n_mat: usize,
    pub(super) act: Option<ActRounding>,
    pub(super) w: Vec<f32>,
    /// The weight prepared for exact integer products, when its type has them (then `w` is empty).
    pub(super) q: Option<QMatrix>,
}

impl Matrix for CpuMatrix {
    fn n_cols(&self) -> usize {
        self.cols
    }
    fn n_rows(&self) -> usize {
        self.rows
    }
    fn n_mat(&self) -> usize {
        self.n_mat
    }
}

/// Rows per parallel dequantization task.
const ROWS_PER_TASK: usize = 16;

pub(super) fn load(w: &WeightView<'_>, m: &mut CpuMatrix) -> Result<(), BackendError> {
    let [cols, rows, n_mat] = w.ne;
    let shape_err = |reason: String| BackendError::Shape {
        name: w.name.to_string(),
        reason,
    };
    let row_bytes =
        w.ty.row_size(cols as u64)
            .filter(|_| cols % w.ty.block_size() == 0)
            .ok_or_else(|| shape_err(format!("rows of {cols} do not fit type {}", w.ty)))?
            as usize;
    let n_rows_total = rows * n_mat;
    if w.data.len() != row_bytes * n_rows_total {
        return Err(shape_err(format!(
            "{} bytes for {n_rows_total} rows of {row_bytes}",
            w.data.len()
        )));
    }
    m.cols = cols;
    m.rows = rows;
    m.n_mat = n_mat;
    m.act = Some(ActRounding::for_type(w.ty));
    if QMatrix::supports(w.ty, cols) {
        m.q.get_or_insert_with(QMatrix::default)
            .load(w.ty, w.data, cols, rows);
        m.w = Vec::new();
        return Ok(());
    }
    m.q = None;
    m.w.resize(cols * n_rows_total, 0.0);
    m.w.par_chunks_mut(cols * ROWS_PER_TASK)
        .zip(w.data.par_chunks(row_bytes * ROWS_PER_TASK))
        .try_for_each(|(dst, src)| dequantize(w.ty, src, dst))
        .map_err(|source| BackendError::Codec {
            name: w.name.to_string(),
            source,
        })?;
    Ok(())
}

/// Rows of activations per parallel rounding task.
const ACT_ROWS_PER_TASK: usize = 8;

/// The fewest rows given to gemm: with fewer, gemm switches to matrix-vector or small-matrix
/// kernels whose summation order differs, and a row's result would depend on how many rows share
/// the call. From this many rows on (and a product of rows × outputs above 256) gemm always takes
/// its blocked path, whose order depends only on the inner dimension; short inputs are padded
/// with zero rows, so that a sequence gives the same bits alone or batched with others.
const MIN_GEMM_ROWS: usize = 65;

/// Rows gemm is given for `n` input rows and `nr` outputs.
fn gemm_rows(n: usize, nr: usize) -> usize {
    n.max(MIN_GEMM_ROWS).max(256 / nr.max(1) + 1)
}

/// Per-thread buffers of [`matmul`], kept between calls.
#[derive(Default)]
struct Scratch {
    xr: Vec<f32>,
    out: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

pub(super) fn matmul(m: &CpuMatrix, expert: usize, x: &[f32], n: usize, out: &mut [f32]) {
    let (k, nr) = (m.cols, m.rows);
    assert!(expert < m.n_mat, "expert {expert} of {}", m.n_mat);
    assert_eq!(x.len(), n * k, "matmul input");
    assert_eq!(out.len(), n * nr, "matmul output");
    if n == 0 {
        return;
    }
    if let Some(q) = &m.q {
        q.product(expert, x, n, out, n == 1 || m.n_mat > 1);
        return;
    }
    SCRATCH.with(|cell| {
        // A rayon worker waiting inside one product may run another caller's product: that
        // one gets fresh buffers.
        let mut own = Scratch::default();
        let mut guard = cell.try_borrow_mut().ok();
        let Scratch { xr, out: pad } = match guard.as_deref_mut() {
            Some(sc) => sc,
            None => &mut own,
        };
        let act = m.act.unwrap_or(ActRounding::None);
        let w = &m.w[expert * nr * k..(expert + 1) * nr * k];
        // llama.cpp takes one `vec_dot` per output for a single input row and for `mul_mat_id`
        // (stacked experts), llamafile's tinyBLAS for other F32/F16/BF16 products.
        let by_row = n == 1 || m.n_mat > 1;
        if matches!(act, ActRounding::None | ActRounding::F16)
            && by_row
            && k % tinyblas::VEC_DOT_STEP == 0
        {
            xr.resize(n * k, 0.0);
            round_rows(act, k, x, xr);
            tinyblas::vec_dot_rows(w, nr, k, xr, n, out);
            return;
        }
        if matches!(
            act,
            ActRounding::None | ActRounding::F16 | ActRounding::Bf16
        ) && !by_row
            && tinyblas::applies(n, nr, k)
        {
            xr.resize(n * k, 0.0);
            round_rows(act, k, x, xr);
            tinyblas::gemm(w, nr, k, xr, n, out);
            return;
        }
        let ng = gemm_rows(n, nr);
        xr.resize(ng * k, 0.0);
        // Padding rows are zero (their results are dropped).
        xr[n * k..].fill(0.0);
        round_rows(act, k, x, &mut xr[..n * k]);
        let run = |dst: &mut [f32]| gemm_xwt(ng, nr, k, xr, w, dst, false);
        if ng == n {
            run(out);
        } else {
            pad.resize(ng * nr, 0.0);
            run(pad);
            out.copy_from_slice(&pad[..n * nr]);
        }
    });
}

/// Rounds the rows of `x` (`k` wide) as the weight type's `vec_dot_type`, in parallel.
fn round_rows(act: ActRounding, k: usize, x: &[f32], xr: &mut [f32]) {
    xr.par_chunks_mut(k * ACT_ROWS_PER_TASK)
        .zip(x.par_chunks(k * ACT_ROWS_PER_TASK))
        .for_each(|(o, i)| {
            for (or, ir) in o.chunks_mut(k).zip(i.chunks(k)) {
                round_row(act, ir, or);
            }
        });
}

/// `out (n × nr) [+]= x (n × k) · wᵀ` with `w` row-major `nr × k`.
fn gemm_xwt(n: usize, nr: usize, k: usize, x: &[f32], w: &[f32], out: &mut [f32], acc: bool) {
    let threads = rayon::current_num_threads();
    let par = if threads > 1 && n * nr * k >= 1 << 16 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the pointers and strides describe the three slices exactly: out is n × nr
    // row-major, x is n × k row-major, and the rhs element (kk, j) is w[j * k + kk]; the
    // lengths were checked by the caller (x: n·k, w: nr·k, out: n·nr).
    unsafe {
        gemm::gemm(
            n,
            nr,
            k,
            out.as_mut_ptr(),
            1,
            nr as isize,
            acc,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            k as isize,
            1,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        )
    }
}
