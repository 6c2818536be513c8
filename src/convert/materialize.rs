//! Computing an output tensor from its pieces, straight from the stored bytes: each output
//! chunk gathers its elements through the pieces' [`RowMap`]s (truncation, Q/K permutation),
//! applies the element-wise transforms in the tensor's working dtype (f16 arithmetic is rounded
//! to f16, as torch does on CPU) and encodes them in the output type. Chunks are computed in
//! parallel and independently, so the result does not depend on the thread count.
//!
//! When the stored dtype is the output type and nothing changes the values (f16 -> f16,
//! f32 -> f32, bf16 -> bf16), bytes are copied, never widened to f32; a tensor that is a prefix
//! of one stored tensor is handed out as a slice of the memory map, with no copy at all.

use super::error::ConvertError;
use super::plan::{Input, Op, PlannedTensor};
use super::rowmap::RowMap;
use super::source::Sources;
use qforge_formats::ggml::fp::{bf16_bits_to_f32, f32_to_bf16_bits, f32_to_f16_bits, round_f16};
use qforge_formats::ggml::GgmlType;
use qforge_formats::safetensors::{f8_e4m3_to_f32, f8_e5m2_to_f32, Dtype};
use rayon::prelude::*;
use std::borrow::Cow;

/// Elements computed per parallel chunk (a 256 KiB f32 scratch buffer).
const CHUNK_ELEMS: usize = 1 << 16;

/// One piece's data, ready to be gathered from.
struct PieceData<'a> {
    data: Stored<'a>,
    map: RowMap,
    /// `AddScalar` constants, in order.
    adds: Vec<f32>,
    /// Output elements of the piece.
    n: usize,
}

enum Stored<'a> {
    /// Little-endian elements of a float dtype.
    Bytes(Dtype, Cow<'a, [u8]>),
    /// Generated values.
    F32(&'a [f32]),
}

impl Stored<'_> {
    /// Widens `out.len()` elements starting at element `src` into `out`.
    fn decode(&self, src: usize, out: &mut [f32]) {
        match self {
            Stored::F32(v) => out.copy_from_slice(&v[src..src + out.len()]),
            Stored::Bytes(dtype, b) => {
                let size = dtype.size() as usize;
                let b = &b[src * size..(src + out.len()) * size];
                match dtype {
                    Dtype::F16 => {
                        for (o, c) in out.iter_mut().zip(b.chunks_exact(2)) {
                            *o = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
                        }
                    }
                    Dtype::BF16 => {
                        for (o, c) in out.iter_mut().zip(b.chunks_exact(2)) {
                            *o = f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16);
                        }
                    }
                    Dtype::F32 => {
                        for (o, c) in out.iter_mut().zip(b.chunks_exact(4)) {
                            *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                        }
                    }
                    Dtype::F64 => {
                        for (o, c) in out.iter_mut().zip(b.chunks_exact(8)) {
                            let mut a = [0u8; 8];
                            a.copy_from_slice(c);
                            *o = f64::from_le_bytes(a) as f32;
                        }
                    }
                    Dtype::F8_E4M3 => {
                        for (o, &c) in out.iter_mut().zip(b) {
                            *o = f8_e4m3_to_f32(c);
                        }
                    }
                    Dtype::F8_E5M2 => {
                        for (o, &c) in out.iter_mut().zip(b) {
                            *o = f8_e5m2_to_f32(c);
                        }
                    }
                    // `prepare` admits float dtypes only.
                    _ => out.fill(f32::NAN),
                }
            }
        }
    }
}

/// Opens every piece of `t` (its stored bytes, row map and element-wise transforms) and checks
/// that together they make `t.n_elements()` values.
fn prepare<'a>(
    sources: &'a Sources,
    t: &'a PlannedTensor,
) -> Result<Vec<PieceData<'a>>, ConvertError> {
    let mut pieces = Vec::with_capacity(t.pieces.len());
    for piece in &t.pieces {
        let (data, shape) = match &piece.input {
            Input::Generated(v) => (Stored::F32(v.as_slice()), vec![v.len() as u64]),
            Input::Source(i) => {
                let s = &sources.tensors[*i];
                let view = sources.view(s)?;
                (
                    Stored::Bytes(view.dtype(), view.into_data()),
                    s.shape.clone(),
                )
            }
        };
        let map = RowMap::new(&shape, &piece.ops);
        let adds = piece
            .ops
            .iter()
            .filter_map(|op| match *op {
                Op::AddScalar(c) => Some(c),
                _ => None,
            })
            .collect();
        let n = map.rows() * map.row_len;
        pieces.push(PieceData { data, map, adds, n });
    }
    let total: usize = pieces.iter().map(|p| p.n).sum();
    if total as u64 != t.n_elements() {
        return Err(ConvertError::Usage(format!(
            "internal: tensor {} computed {} values for shape {:?}",
            t.name, total, t.shape
        )));
    }
    Ok(pieces)
}

/// Fills `out` with output elements `start..start + out.len()` as f32, transforms applied.
fn gather_f32(pieces: &[PieceData<'_>], f16: bool, start: usize, out: &mut [f32]) {
    let end = start + out.len();
    let mut base = 0usize;
    for p in pieces {
        let (lo, hi) = (base.max(start), (base + p.n).min(end));
        if lo < hi {
            let dst = &mut out[lo - start..hi - start];
            let mut at = 0usize;
            p.map.for_each_span(lo - base, hi - lo, |src, n| {
                p.data.decode(src, &mut dst[at..at + n]);
                at += n;
            });
            for &c in &p.adds {
                for v in dst.iter_mut() {
                    *v = if f16 { round_f16(*v + c) } else { *v + c };
                }
            }
        }
        base += p.n;
        if base >= end {
            break;
        }
    }
}

/// Copies the stored bytes of output elements `start..` into `out` (every piece stored with
/// elements of `size` bytes).
fn gather_bytes(pieces: &[PieceData<'_>], size: usize, start: usize, out: &mut [u8]) {
    let end = start + out.len() / size;
    let mut base = 0usize;
    for p in pieces {
        let (lo, hi) = (base.max(start), (base + p.n).min(end));
        if lo < hi {
            let Stored::Bytes(_, b) = &p.data else {
                unreachable!("byte copies are planned for stored pieces only")
            };
            let mut at = (lo - start) * size;
            p.map.for_each_span(lo - base, hi - lo, |src, n| {
                out[at..at + n * size].copy_from_slice(&b[src * size..(src + n) * size]);
                at += n * size;
            });
        }
        base += p.n;
        if base >= end {
            break;
        }
    }
}

/// The stored dtype that is bit-for-bit the output type `ty` (after the converter's no-op or
/// exact casts), if any.
fn same_dtype(ty: GgmlType) -> Option<Dtype> {
    match ty {
        GgmlType::F16 => Some(Dtype::F16),
        GgmlType::BF16 => Some(Dtype::BF16),
        GgmlType::F32 => Some(Dtype::F32),
        _ => None,
    }
}

/// The values of `t` in numpy (row-major) order, before the output-type conversion.
pub fn values(sources: &Sources, t: &PlannedTensor) -> Result<Vec<f32>, ConvertError> {
    let pieces = prepare(sources, t)?;
    let mut out = vec![0f32; t.n_elements() as usize];
    out.par_chunks_mut(CHUNK_ELEMS)
        .enumerate()
        .for_each(|(k, chunk)| gather_f32(&pieces, t.f16, k * CHUNK_ELEMS, chunk));
    Ok(out)
}

/// `t` encoded in its output type, as the converter's `gguf.quants.quantize` encodes it: numpy
/// casts for F32/F16, ggml's rounding for BF16, the reference quantizer for quantized types.
/// Borrowed from the memory map when the tensor is a stored tensor (or a prefix of one) whose
/// dtype is already the output type.
pub fn encoded<'a>(
    sources: &'a Sources,
    t: &'a PlannedTensor,
) -> Result<Cow<'a, [u8]>, ConvertError> {
    let pieces = prepare(sources, t)?;
    let ty = t.ty;
    let n = t.n_elements() as usize;
    let err = |e: String| ConvertError::Usage(format!("tensor {}: {e}", t.name));

    let copyable = same_dtype(ty).filter(|d| {
        pieces
            .iter()
            .all(|p| p.adds.is_empty() && matches!(p.data, Stored::Bytes(pd, _) if pd == *d))
    });
    if let Some(dtype) = copyable {
        let size = dtype.size() as usize;
        // One stored tensor, rows in order: a slice of it, no copy (bf16 only when no value
        // is a NaN, which ggml's rounding would make quiet).
        if let [p] = pieces.as_slice() {
            if p.map.is_contiguous() {
                if let Stored::Bytes(_, b) = &p.data {
                    let bytes = &b[..n * size];
                    if dtype != Dtype::BF16 || !bytes.par_chunks(2).any(bf16_is_nan) {
                        return Ok(match &p.data {
                            Stored::Bytes(_, Cow::Borrowed(b)) => Cow::Borrowed(&b[..n * size]),
                            _ => Cow::Owned(bytes.to_vec()),
                        });
                    }
                }
            }
        }
        let mut out = vec![0u8; n * size];
        out.par_chunks_mut(CHUNK_ELEMS * size)
            .enumerate()
            .for_each(|(k, chunk)| {
                gather_bytes(&pieces, size, k * CHUNK_ELEMS, chunk);
                if dtype == Dtype::BF16 {
                    // f32_to_bf16_bits of a widened bf16 is the same bits, NaNs made quiet.
                    for c in chunk.chunks_exact_mut(2) {
                        let h = u16::from_le_bytes([c[0], c[1]]);
                        let q = f32_to_bf16_bits(bf16_bits_to_f32(h));
                        c.copy_from_slice(&q.to_le_bytes());
                    }
                }
            });
        return Ok(Cow::Owned(out));
    }

    match ty {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
            let size = ty.type_size();
            let mut out = vec![0u8; n * size];
            out.par_chunks_mut(CHUNK_ELEMS * size)
                .enumerate()
                .for_each(|(k, chunk)| {
                    let mut vals = vec![0f32; chunk.len() / size];
                    gather_f32(&pieces, t.f16, k * CHUNK_ELEMS, &mut vals);
                    match ty {
                        GgmlType::F32 => {
                            for (c, v) in chunk.chunks_exact_mut(4).zip(&vals) {
                                c.copy_from_slice(&v.to_le_bytes());
                            }
                        }
                        GgmlType::F16 => {
                            for (c, &v) in chunk.chunks_exact_mut(2).zip(&vals) {
                                c.copy_from_slice(&f32_to_f16_bits(v).to_le_bytes());
                            }
                        }
                        _ => {
                            for (c, &v) in chunk.chunks_exact_mut(2).zip(&vals) {
                                c.copy_from_slice(&f32_to_bf16_bits(v).to_le_bytes());
                            }
                        }
                    }
                });
            Ok(Cow::Owned(out))
        }
        _ => {
            let n_per_row = t.shape.last().copied().unwrap_or(1) as usize;
            let block = ty.block_size();
            if n_per_row == 0 || n_per_row % block != 0 || n % n_per_row != 0 {
                return Err(err(format!(
                    "rows of {n_per_row} values are not whole {ty} blocks"
                )));
            }
            let row_bytes = n_per_row / block * ty.type_size();
            let rows_per_chunk = (CHUNK_ELEMS / n_per_row).max(1);
            let mut out = vec![0u8; n / n_per_row * row_bytes];
            out.par_chunks_mut(rows_per_chunk * row_bytes)
                .enumerate()
                .try_for_each(|(k, chunk)| {
                    let mut vals = vec![0f32; chunk.len() / row_bytes * n_per_row];
                    gather_f32(&pieces, t.f16, k * rows_per_chunk * n_per_row, &mut vals);
                    qforge_formats::ggml::quantize(ty, &vals, chunk, n_per_row, None)
                        .map(|_| ())
                        .map_err(|e| err(e.to_string()))
                })?;
            Ok(Cow::Owned(out))
        }
    }
}

/// IEEE fp16 bits to fp32, exactly, branch-free so that the loops around it vectorise (one call
/// of the `half` crate per element costs more than the rest of a Q8_0 conversion). NaNs keep
/// their payload, quiet or signalling, as numpy's `astype(np.float32)` keeps it.
#[inline(always)]
fn f16_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let em = (h & 0x7fff) << 13;
    let exp = em & 0x0f80_0000;
    // normal numbers: rebias the exponent by 127 - 15
    let normal = em + 0x3800_0000;
    // infinities and NaNs: exponent all ones
    let special = em + 0x7000_0000;
    // zero and subnormals: scale through a float subtraction (exact)
    let sub = (f32::from_bits(em + 0x3880_0000) - f32::from_bits(0x3880_0000)).to_bits();
    let bits = if exp == 0x0f80_0000 {
        special
    } else if exp == 0 {
        sub
    } else {
        normal
    };
    f32::from_bits(bits | sign)
}

/// Whether the little-endian bf16 in `c` is a NaN.
fn bf16_is_nan(c: &[u8]) -> bool {
    u16::from_le_bytes([c[0], c[1]]) & 0x7fff > 0x7f80
}

/// `w.reshape(heads, 2, rows/heads/2, *rest).swapaxes(1, 2).reshape(w.shape)`: within each head
/// of `d` rows, row `s*d/2 + i` moves to row `2*i + s`.
pub fn permute_heads(data: &[f32], shape: &[u64], heads: u64) -> Vec<f32> {
    let rows = shape.first().copied().unwrap_or(1) as usize;
    let row: usize = shape.iter().skip(1).product::<u64>() as usize;
    let d = rows / heads as usize;
    let half = d / 2;
    let mut out = vec![0f32; data.len()];
    for h in 0..heads as usize {
        for i in 0..half {
            for s in 0..2 {
                let src = h * d + s * half + i;
                let dst = h * d + 2 * i + s;
                out[dst * row..(dst + 1) * row].copy_from_slice(&data[src * row..(src + 1) * row]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use qforge_formats::ggml::fp::f16_bits_to_f32;

    /// Every fp16 value widens as the `half` crate widens it; NaNs as numpy does
    /// (`sign | 0x7f800000 | mantissa << 13`).
    #[test]
    fn f16_widening_is_exact_for_every_value() {
        for h in 0..=u16::MAX {
            let got = f16_to_f32(h).to_bits();
            if h & 0x7c00 == 0x7c00 && h & 0x03ff != 0 {
                let want = ((h as u32 & 0x8000) << 16) | 0x7f80_0000 | ((h as u32 & 0x03ff) << 13);
                assert_eq!(got, want, "NaN {h:#06x}");
            } else {
                assert_eq!(got, f16_bits_to_f32(h).to_bits(), "{h:#06x}");
            }
        }
    }
}
