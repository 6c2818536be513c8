//! `--outtype`: the converter's float output types, and the value conversions it performs.

use qforge_formats::ggml::fp::{f32_to_bf16_bits, f32_to_f16_bits};
use qforge_formats::ggml::GgmlType;

/// A resolved output type (`auto` already decided).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutType {
    /// `f32` (`ALL_F32`).
    F32,
    /// `f16` (`MOSTLY_F16`).
    F16,
    /// `bf16` (`MOSTLY_BF16`).
    Bf16,
    /// `q8_0` (`MOSTLY_Q8_0`).
    Q8_0,
}

impl OutType {
    /// Parses a converter `--outtype` (`auto` gives `None`).
    pub fn parse(s: &str) -> Option<Option<OutType>> {
        Some(match s.to_ascii_lowercase().as_str() {
            "f32" => Some(OutType::F32),
            "f16" => Some(OutType::F16),
            "bf16" => Some(OutType::Bf16),
            "q8_0" => Some(OutType::Q8_0),
            "auto" => None,
            _ => return None,
        })
    }

    /// The ggml type of the tensors this type applies to.
    pub fn ggml_type(self) -> GgmlType {
        match self {
            OutType::F32 => GgmlType::F32,
            OutType::F16 => GgmlType::F16,
            OutType::Bf16 => GgmlType::BF16,
            OutType::Q8_0 => GgmlType::Q8_0,
        }
    }

    /// `general.file_type` (`LlamaFileType`).
    pub fn file_type(self) -> u32 {
        match self {
            OutType::F32 => 0,
            OutType::F16 => 1,
            OutType::Bf16 => 32,
            OutType::Q8_0 => 7,
        }
    }
}

/// Encodes `values` (rows of `n_per_row`) as `ty`, as the converter's `gguf.quants.quantize`
/// does: numpy casts for F32/F16, ggml's rounding for BF16, and Q8_0's reference quantizer.
pub fn encode(ty: GgmlType, values: &[f32], n_per_row: usize) -> Result<Vec<u8>, String> {
    match ty {
        GgmlType::F32 => Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        GgmlType::F16 => Ok(values
            .iter()
            .flat_map(|&v| f32_to_f16_bits(v).to_le_bytes())
            .collect()),
        GgmlType::BF16 => Ok(values
            .iter()
            .flat_map(|&v| f32_to_bf16_bits(v).to_le_bytes())
            .collect()),
        _ => {
            let bytes = values.len() / ty.block_size() * ty.type_size();
            let mut out = vec![0u8; bytes];
            qforge_formats::ggml::quantize(ty, values, &mut out, n_per_row, None)
                .map_err(|e| e.to_string())?;
            Ok(out)
        }
    }
}
