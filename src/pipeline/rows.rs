//! Converting one tensor's rows from their stored type to a target type, in parallel over rows
//! and in bounded slabs, exactly as llama-quantize's `llama_tensor_quantize_impl` does per row:
//! each row is dequantized to f32 and passed to the target type's quantizer with the imatrix
//! slice of its expert. Rows are independent, so the bytes do not depend on the thread count.

use qforge_formats::ggml::{self, GgmlType};
use rayon::prelude::*;
use thiserror::Error;

/// Elements per parallel work item (llama-quantize's `min_chunk_size`).
const MIN_CHUNK_ELEMENTS: usize = 32 * 512;

/// Why a tensor could not be converted.
#[derive(Debug, Error)]
pub enum RowsError {
    /// A codec refused the conversion.
    #[error(transparent)]
    Codec(#[from] ggml::CodecError),
    /// The quantized output failed `ggml_validate_row_data`.
    #[error("quantized data validation failed: {0}")]
    Validation(String),
    /// Writing the output failed.
    #[error(transparent)]
    Sink(#[from] anyhow::Error),
}

/// The shape of a tensor as rows: `n_per_row` elements per row, `rows_per_expert` rows per
/// matrix (ne1), and `rows` rows in all (ne1 * ne2 * ne3).
#[derive(Clone, Copy, Debug)]
pub struct RowShape {
    /// Elements per row (ne0).
    pub n_per_row: usize,
    /// Rows per matrix (ne1).
    pub rows_per_expert: usize,
    /// Total rows.
    pub rows: usize,
}

/// Converts `src` (all rows of a tensor of type `src_ty`) to `dst_ty`, handing the output to
/// `sink` slab by slab, in order. At most about `slab_bytes` of output (plus one f32 row per
/// worker) is held at once. `imatrix`, when given, holds `n_per_row` weights per expert.
pub fn convert_rows(
    src_ty: GgmlType,
    src: &[u8],
    dst_ty: GgmlType,
    shape: RowShape,
    imatrix: Option<&[f32]>,
    slab_bytes: usize,
    sink: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>,
) -> Result<u64, RowsError> {
    let n = shape.n_per_row;
    let src_row = src_ty
        .row_size(n as u64)
        .ok_or(ggml::CodecError::RowNotBlockAligned {
            ty: src_ty,
            n_per_row: n,
            block: src_ty.block_size(),
        })? as usize;
    let dst_row = dst_ty
        .row_size(n as u64)
        .ok_or(ggml::CodecError::RowNotBlockAligned {
            ty: dst_ty,
            n_per_row: n,
            block: dst_ty.block_size(),
        })? as usize;
    if src.len() != src_row * shape.rows {
        return Err(ggml::CodecError::BadLength {
            ty: src_ty,
            what: format!("{} bytes for {} rows", src.len(), shape.rows),
        }
        .into());
    }
    let rows_per_task = (MIN_CHUNK_ELEMENTS.div_ceil(n)).max(1);
    let rows_per_slab = (slab_bytes / dst_row.max(1))
        .max(rows_per_task)
        .min(shape.rows.max(1));
    let mut out = vec![0u8; rows_per_slab * dst_row];
    let mut total = 0u64;
    let mut first = 0;
    while first < shape.rows {
        let nrows = rows_per_slab.min(shape.rows - first);
        // Work items never cross an expert boundary, so each uses one imatrix slice.
        let mut tasks = Vec::new();
        let mut r = first;
        while r < first + nrows {
            let expert_end = (r / shape.rows_per_expert + 1) * shape.rows_per_expert;
            let end = (r + rows_per_task).min(first + nrows).min(expert_end);
            tasks.push((r, end));
            r = end;
        }
        let dst = &mut out[..nrows * dst_row];
        let mut dst_parts: Vec<&mut [u8]> = Vec::with_capacity(tasks.len());
        let mut rest = dst;
        for (a, b) in &tasks {
            let (head, tail) = rest.split_at_mut((b - a) * dst_row);
            dst_parts.push(head);
            rest = tail;
        }
        tasks
            .par_iter()
            .zip(dst_parts.into_par_iter())
            .try_for_each_init(
                Vec::new,
                |f32_buf: &mut Vec<f32>, (&(a, b), dst)| -> Result<(), RowsError> {
                    let rows = b - a;
                    let src_bytes = &src[a * src_row..b * src_row];
                    let w = imatrix.map(|im| {
                        let e = a / shape.rows_per_expert;
                        &im[e * n..(e + 1) * n]
                    });
                    if src_ty == GgmlType::F32 && src_bytes.as_ptr().align_offset(4) == 0 {
                        // SAFETY: the bytes are 4-aligned and every bit pattern is a valid f32.
                        let f = unsafe {
                            std::slice::from_raw_parts(src_bytes.as_ptr() as *const f32, rows * n)
                        };
                        ggml::quantize(dst_ty, f, dst, n, w)?;
                    } else {
                        f32_buf.resize(rows * n, 0.0);
                        ggml::dequantize(src_ty, src_bytes, f32_buf)?;
                        ggml::quantize(dst_ty, f32_buf, dst, n, w)?;
                    }
                    ggml::validate_row_data(dst_ty, dst).map_err(RowsError::Validation)
                },
            )?;
        sink(&out[..nrows * dst_row])?;
        total += (nrows * dst_row) as u64;
        first += nrows;
    }
    Ok(total)
}
