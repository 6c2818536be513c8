//! The shape fallback (`tensor_type_fallback` in `src/llama-quant.cpp`): a tensor whose rows
//! (`ne[0]`) are not a whole number of blocks of the chosen type gets a type with smaller
//! blocks, or F16 when even that does not fit.

use super::error::RecipeError;
use qforge_formats::ggml::GgmlType;

/// A type the rules chose that the tensor's shape could not take, and the type used instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fallback {
    /// The type the rules (or a `--tensor-type` override) asked for.
    pub wanted: GgmlType,
    /// The type used: the fallback type, or F16 when its block does not divide `ne[0]` either.
    pub used: GgmlType,
}

/// The type llama.cpp substitutes for `target` when `ncols` is not a multiple of its block
/// size, or `Ok(None)` when it is. Fails, naming `tensor`, for types with blocks of more than
/// 32 and no defined fallback (Q1_0, NVFP4, Q8_K), as llama.cpp does.
pub(crate) fn fallback_for(
    tensor: &str,
    ncols: u64,
    target: GgmlType,
) -> Result<Option<Fallback>, RecipeError> {
    use GgmlType as T;
    let block = target.block_size() as u64;
    if ncols % block == 0 {
        return Ok(None);
    }
    let fallback = match target {
        T::IQ1_S
        | T::IQ1_M
        | T::IQ2_XXS
        | T::IQ2_XS
        | T::IQ2_S
        | T::IQ3_XXS
        | T::IQ3_S
        | T::IQ4_XS => T::IQ4_NL,
        T::Q2_0 | T::Q2_K | T::Q3_K | T::TQ1_0 | T::TQ2_0 => T::Q4_0,
        T::Q4_K => T::Q5_0,
        T::Q5_K => T::Q5_1,
        T::Q6_K => T::Q8_0,
        // a 32-block type has nothing smaller to demote to: the check below makes it F16
        _ if block <= 32 => target,
        _ => {
            return Err(RecipeError::NoFallback {
                tensor: tensor.to_owned(),
                ty: target,
            })
        }
    };
    let used = if ncols % fallback.block_size() as u64 != 0 {
        T::F16
    } else {
        fallback
    };
    Ok(Some(Fallback {
        wanted: target,
        used,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use GgmlType as T;

    fn used(ncols: u64, target: GgmlType) -> GgmlType {
        fallback_for("t", ncols, target)
            .unwrap()
            .map_or(target, |f| f.used)
    }

    #[test]
    fn divisible_rows_keep_their_type() {
        assert_eq!(fallback_for("t", 4096, T::Q4_K).unwrap(), None);
        assert_eq!(fallback_for("t", 96, T::Q8_0).unwrap(), None);
    }

    #[test]
    fn llama_cpp_fallback_table() {
        assert_eq!(used(320, T::Q4_K), T::Q5_0);
        assert_eq!(used(320, T::Q5_K), T::Q5_1);
        assert_eq!(used(320, T::Q6_K), T::Q8_0);
        assert_eq!(used(320, T::Q2_K), T::Q4_0);
        assert_eq!(used(320, T::Q3_K), T::Q4_0);
        assert_eq!(used(320, T::IQ4_XS), T::IQ4_NL);
        assert_eq!(used(320, T::IQ2_XXS), T::IQ4_NL);
        assert_eq!(used(96, T::Q2_0), T::Q4_0);
        // no 32-block fallback fits 200 columns
        assert_eq!(used(200, T::Q4_K), T::F16);
        assert_eq!(used(200, T::Q8_0), T::F16);
        assert_eq!(used(200, T::MXFP4), T::F16);
    }

    #[test]
    fn types_without_fallback_fail() {
        let e = fallback_for("blk.0.ffn_down.weight", 320, T::Q1_0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no tensor type fallback is defined for type q1_0 (tensor blk.0.ffn_down.weight)"
        );
        assert!(fallback_for("t", 96, T::NVFP4).is_err());
    }
}
