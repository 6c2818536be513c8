//! Dispatch from a [`GgmlType`] to its block codec: dequantization to f32 and llama.cpp's
//! quantization routines (the `*_ref` paths without importance weights, the `*_impl` paths with).

use super::quants;
use super::types::GgmlType;
use thiserror::Error;

/// Dequantizes whole blocks: `src.len()` is a multiple of the type size and `dst.len()` is the
/// matching number of elements.
pub type DequantizeFn = fn(src: &[u8], dst: &mut [f32]);

/// Quantizes whole rows exactly as `ggml_quantize_chunk` does: `src.len()` is a multiple of
/// `n_per_row`, `dst` holds `rows * row_size` bytes, and `imatrix`, when given, holds one
/// importance weight per column (`n_per_row` values).
pub type QuantizeFn = fn(src: &[f32], dst: &mut [u8], n_per_row: usize, imatrix: Option<&[f32]>);

/// The codec of one ggml type.
#[derive(Clone, Copy)]
pub struct Codec {
    /// Block-to-f32 conversion.
    pub dequantize: DequantizeFn,
    /// f32-to-block conversion, when qforge can produce this type.
    pub quantize: Option<QuantizeFn>,
}

/// Why a codec call was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CodecError {
    /// No codec converts this type in the requested direction.
    #[error("type {0} cannot be {1} by qforge")]
    Unsupported(GgmlType, &'static str),
    /// A row length that is not a whole number of blocks.
    #[error("row length {n_per_row} is not a multiple of the {ty} block size {block}")]
    RowNotBlockAligned {
        /// Target type.
        ty: GgmlType,
        /// Elements per row.
        n_per_row: usize,
        /// Elements per block of `ty`.
        block: usize,
    },
    /// Input or output buffers whose sizes do not agree.
    #[error("buffer size mismatch for {ty}: {what}")]
    BadLength {
        /// Type being converted.
        ty: GgmlType,
        /// What disagrees.
        what: String,
    },
    /// The type needs an importance matrix and none was given.
    #[error("type {0} requires an importance matrix")]
    ImatrixRequired(GgmlType),
}

/// The codec of `ty`, if qforge has one.
pub fn codec(ty: GgmlType) -> Option<Codec> {
    quants::float::codec(ty)
        .or_else(|| quants::legacy::codec(ty))
        .or_else(|| quants::kquants::codec(ty))
        .or_else(|| quants::iq::codec(ty))
        .or_else(|| quants::ternary::codec(ty))
        .or_else(|| quants::fp4::codec(ty))
        .or_else(|| quants::low_bit::codec(ty))
}

/// Whether ggml refuses to quantize `ty` without an importance matrix
/// (`ggml_quantize_requires_imatrix`).
pub fn requires_imatrix(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::IQ2_XXS | GgmlType::IQ2_XS | GgmlType::IQ1_S)
}

/// Dequantizes `src` (whole blocks of `ty`) into `dst`.
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
    let c = codec(ty).ok_or(CodecError::Unsupported(ty, "dequantized"))?;
    let (bs, ts) = (ty.block_size(), ty.type_size());
    if src.len() % ts != 0 || src.len() / ts * bs != dst.len() {
        return Err(CodecError::BadLength {
            ty,
            what: format!("{} bytes in, {} elements out", src.len(), dst.len()),
        });
    }
    (c.dequantize)(src, dst);
    Ok(())
}

/// Quantizes rows of `n_per_row` f32 values into `dst`, returning the number of bytes written.
pub fn quantize(
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
    n_per_row: usize,
    imatrix: Option<&[f32]>,
) -> Result<usize, CodecError> {
    let q = codec(ty)
        .and_then(|c| c.quantize)
        .ok_or(CodecError::Unsupported(ty, "quantized"))?;
    if n_per_row == 0 || n_per_row % ty.block_size() != 0 {
        return Err(CodecError::RowNotBlockAligned {
            ty,
            n_per_row,
            block: ty.block_size(),
        });
    }
    if src.len() % n_per_row != 0 {
        return Err(CodecError::BadLength {
            ty,
            what: format!("{} values are not whole rows", src.len()),
        });
    }
    let bytes = src.len() / ty.block_size() * ty.type_size();
    if dst.len() != bytes {
        return Err(CodecError::BadLength {
            ty,
            what: format!("output holds {} bytes, {bytes} needed", dst.len()),
        });
    }
    if let Some(w) = imatrix {
        if w.len() != n_per_row {
            return Err(CodecError::BadLength {
                ty,
                what: format!("imatrix has {} values for rows of {n_per_row}", w.len()),
            });
        }
    }
    if imatrix.is_none() && requires_imatrix(ty) {
        return Err(CodecError::ImatrixRequired(ty));
    }
    q(src, dst, n_per_row, imatrix);
    Ok(bytes)
}
