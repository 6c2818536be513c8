//! The checks llama-quantize makes when it reaches a tensor whose type changes, before it
//! converts it (the main loop of `llama_model_quantize_impl`): the imatrix entry, the
//! requantization guard, and whether ggml can read the source and write the target.
//! Tensors copied unchanged are not checked.

use super::category::is_token_embd;
use super::error::ConversionError;
use super::TensorPlan;
use qforge_formats::ggml::GgmlType;

/// What the importance matrix holds for one tensor (looked up by its name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImatrixEntry {
    /// No importance matrix was given (or none was left after `--include-weights` /
    /// `--exclude-weights`).
    NoImatrix,
    /// The matrix has no entry for this tensor.
    NotFound,
    /// The entry has `len` values.
    Found {
        /// Number of values in the entry.
        len: usize,
    },
}

/// How to quantize a tensor that passed the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImatrixUse {
    /// Quantize without importance weights; no imatrix was given.
    None,
    /// Quantize without importance weights; llama-quantize logs
    /// `did not find weights for <tensor>`.
    NotFound,
    /// Quantize without importance weights; llama-quantize logs that the imatrix size differs
    /// from the tensor size (tolerated for the token embeddings only).
    SizeMismatchIgnored {
        /// Values in the entry.
        found: usize,
        /// `ne[0] * ne[2]`.
        expected: u64,
    },
    /// Quantize with the entry: expert `e` of a 3-D tensor uses values `e*ne[0] .. (e+1)*ne[0]`.
    Use,
}

/// Runs llama-quantize's checks for one converted tensor, in its order, and says how to use
/// the imatrix. For tensors that are copied ([`TensorPlan::converts`] is false) it returns
/// `Ok(ImatrixUse::None)` without checking anything, as llama-quantize does.
pub fn check_conversion(
    tensor: &TensorPlan,
    imatrix: ImatrixEntry,
    allow_requantize: bool,
) -> Result<ImatrixUse, ConversionError> {
    if !tensor.converts() {
        return Ok(ImatrixUse::None);
    }
    let name = || tensor.name.clone();
    let expected = tensor.ne[0].saturating_mul(tensor.ne[2]);
    let usage = match imatrix {
        ImatrixEntry::NoImatrix => ImatrixUse::None,
        ImatrixEntry::NotFound => ImatrixUse::NotFound,
        ImatrixEntry::Found { len } if len as u64 == expected => ImatrixUse::Use,
        ImatrixEntry::Found { len } => {
            if !is_token_embd(&tensor.name) {
                return Err(ConversionError::ImatrixSizeMismatch {
                    tensor: name(),
                    found: len,
                    expected,
                });
            }
            ImatrixUse::SizeMismatchIgnored {
                found: len,
                expected,
            }
        }
    };
    if usage != ImatrixUse::Use && tensor.requires_imatrix {
        return Err(ConversionError::MissingImatrix { tensor: name() });
    }
    let from = tensor.current;
    if from.is_quantized() && !allow_requantize {
        return Err(ConversionError::RequantizeDisabled {
            tensor: name(),
            from,
        });
    }
    match from {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {}
        GgmlType::Q8_1 | GgmlType::Q8_K => {
            return Err(ConversionError::NoDequantization {
                tensor: name(),
                ty: from,
            });
        }
        t if t.is_quantized() => {}
        t => {
            return Err(ConversionError::CannotConvert {
                tensor: name(),
                ty: t,
            })
        }
    }
    let to = tensor.target;
    let producible = matches!(to, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16)
        || (to.is_quantized() && !matches!(to, GgmlType::Q8_1 | GgmlType::Q8_K));
    if !producible {
        return Err(ConversionError::UnsupportedTarget {
            tensor: name(),
            ty: to,
        });
    }
    if tensor.ne[0] % to.block_size() as u64 != 0 {
        return Err(ConversionError::RowNotBlockAligned {
            tensor: name(),
            ncols: tensor.ne[0],
            ty: to,
        });
    }
    Ok(usage)
}
