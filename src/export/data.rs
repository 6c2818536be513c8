//! One exported tensor's data: the GGUF bytes (one expert's slice for stacked experts),
//! dequantized to f32, the converter's transform undone, encoded in the output dtype.

use super::error::ExportError;
use super::tensors::{ExportTensor, Inverse};
use qforge_formats::ggml::fp::{f32_to_bf16_bits, f32_to_f16_bits};
use qforge_formats::ggml::{dequantize, GgmlType};
use qforge_formats::gguf::{GgufFile, TensorInfo};
use qforge_formats::safetensors::Dtype;
use rayon::prelude::*;

/// The dtype of the exported tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportDtype {
    /// `torch.float32`.
    F32,
    /// `torch.float16`.
    F16,
    /// `torch.bfloat16`.
    Bf16,
}

impl ExportDtype {
    /// Parses `f32`, `f16` or `bf16` (also `float32`, `float16`, `bfloat16`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Some(Self::F32),
            "f16" | "float16" => Some(Self::F16),
            "bf16" | "bfloat16" => Some(Self::Bf16),
            _ => None,
        }
    }

    /// The safetensors dtype.
    pub fn safetensors(self) -> Dtype {
        match self {
            Self::F32 => Dtype::F32,
            Self::F16 => Dtype::F16,
            Self::Bf16 => Dtype::BF16,
        }
    }

    /// config.json's `torch_dtype`.
    pub fn torch_name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::F16 => "float16",
            Self::Bf16 => "bfloat16",
        }
    }

    /// The default for a model: f32 when every tensor is F32, f16 when every tensor is F16 or
    /// F32, bf16 otherwise (BF16 or quantized data).
    pub fn default_for<'a>(types: impl Iterator<Item = &'a TensorInfo>) -> Self {
        let mut all_f32 = true;
        let mut all_half = true;
        for t in types {
            all_f32 &= t.ty == GgmlType::F32;
            all_half &= matches!(t.ty, GgmlType::F32 | GgmlType::F16);
        }
        if all_f32 {
            Self::F32
        } else if all_half {
            Self::F16
        } else {
            Self::Bf16
        }
    }
}

/// Rows dequantized per parallel task.
const ROWS_PER_TASK: usize = 64;

/// The f32 values of `t` (numpy order), read from `info` in `file`.
pub fn values(
    file: &GgufFile,
    info: &TensorInfo,
    t: &ExportTensor,
) -> Result<Vec<f32>, ExportError> {
    let err = |reason: String| ExportError::tensor(file.path(), &info.name, reason);
    let bytes = file.tensor_data(info)?;
    let row_len = info.dims.first().copied().unwrap_or(1);
    let row_bytes = info
        .ty
        .row_size(row_len)
        .ok_or_else(|| err(format!("row of {row_len} is not whole {} blocks", info.ty)))?
        as usize;
    let n: u64 = t.shape.iter().product();
    let rows = (n / row_len.max(1)) as usize;
    let start = t.expert.map_or(0, |x| x as usize * rows * row_bytes);
    let src = bytes
        .get(start..start + rows * row_bytes)
        .ok_or_else(|| err("expert slice lies outside the tensor".into()))?;
    let mut data = vec![0f32; n as usize];
    let chunk_vals = ROWS_PER_TASK * row_len as usize;
    data.par_chunks_mut(chunk_vals.max(1))
        .zip(src.par_chunks((ROWS_PER_TASK * row_bytes).max(1)))
        .try_for_each(|(dst, s)| dequantize(info.ty, s, dst))
        .map_err(|e| err(e.to_string()))?;
    drop(bytes);
    if t.expert
        .is_none_or(|x| x + 1 == info.dims.get(2).copied().unwrap_or(1))
    {
        file.release(info);
    }
    match t.inverse {
        Inverse::None => Ok(data),
        Inverse::SubtractOne => {
            for v in &mut data {
                *v -= 1.0;
            }
            Ok(data)
        }
        Inverse::Unpermute(heads) => Ok(unpermute(&data, &t.shape, heads)),
    }
}

/// The inverse of `LlamaModel.permute`: within each head of `d` rows, row `2*i + s` goes back
/// to row `s*d/2 + i`.
pub fn unpermute(data: &[f32], shape: &[u64], heads: u64) -> Vec<f32> {
    let rows = shape.first().copied().unwrap_or(1) as usize;
    let row: usize = shape.iter().skip(1).product::<u64>() as usize;
    let d = rows / heads as usize;
    let half = d / 2;
    let mut out = vec![0f32; data.len()];
    for h in 0..heads as usize {
        for i in 0..half {
            for s in 0..2 {
                let src = h * d + 2 * i + s;
                let dst = h * d + s * half + i;
                out[dst * row..(dst + 1) * row].copy_from_slice(&data[src * row..(src + 1) * row]);
            }
        }
    }
    out
}

/// `values` as little-endian bytes of `dtype` (round to nearest even, as torch converts).
pub fn encode(values: &[f32], dtype: ExportDtype) -> Vec<u8> {
    match dtype {
        ExportDtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ExportDtype::F16 => values
            .iter()
            .flat_map(|v| f32_to_f16_bits(*v).to_le_bytes())
            .collect(),
        ExportDtype::Bf16 => values
            .iter()
            .flat_map(|v| f32_to_bf16_bits(*v).to_le_bytes())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::materialize::permute_heads;

    #[test]
    fn unpermute_inverts_the_converter_permutation() {
        let shape = [24u64, 3];
        let data: Vec<f32> = (0..72).map(|i| i as f32).collect();
        for heads in [1, 2, 3, 6] {
            let p = permute_heads(&data, &shape, heads);
            assert_ne!(p, data);
            assert_eq!(unpermute(&p, &shape, heads), data);
        }
    }
}
