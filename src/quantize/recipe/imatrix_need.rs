//! Which planned tensors need an importance matrix (`tensor_requires_imatrix` in
//! `src/llama-quant.cpp`). llama-quantize checks this for every tensor before converting any,
//! and refuses to start without an imatrix when one is needed.

use super::category::is_token_embd;
use crate::quantize::LlamaFtype;
use qforge_formats::ggml::GgmlType;

/// Whether quantizing tensor `name` to `target` inside a file of type `ftype` needs an
/// importance matrix: the IQ1/IQ2/IQ3_XXS types always, Q2_K only inside Q2_K_S files.
/// `token_embd.weight`, `per_layer_token_embd.weight` and `output.weight` never do.
pub fn tensor_requires_imatrix(name: &str, target: GgmlType, ftype: LlamaFtype) -> bool {
    use GgmlType as T;
    if is_token_embd(name) || name == "output.weight" {
        return false;
    }
    match target {
        T::IQ3_XXS | T::IQ2_XXS | T::IQ2_XS | T::IQ2_S | T::IQ1_M | T::IQ1_S => true,
        T::Q2_K => ftype == LlamaFtype::MOSTLY_Q2_K_S,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_bit_types_need_one_except_for_embeddings_and_output() {
        let f = LlamaFtype::MOSTLY_IQ2_XXS;
        assert!(tensor_requires_imatrix(
            "blk.0.attn_q.weight",
            GgmlType::IQ2_XXS,
            f
        ));
        assert!(tensor_requires_imatrix(
            "blk.0.attn_q.weight",
            GgmlType::IQ3_XXS,
            f
        ));
        assert!(!tensor_requires_imatrix(
            "blk.0.attn_q.weight",
            GgmlType::IQ3_S,
            f
        ));
        assert!(!tensor_requires_imatrix(
            "token_embd.weight",
            GgmlType::IQ2_XXS,
            f
        ));
        assert!(!tensor_requires_imatrix(
            "output.weight",
            GgmlType::IQ1_S,
            f
        ));
        assert!(!tensor_requires_imatrix(
            "blk.0.ffn_down.weight",
            GgmlType::Q2_K,
            LlamaFtype::MOSTLY_Q2_K
        ));
        assert!(tensor_requires_imatrix(
            "blk.0.ffn_down.weight",
            GgmlType::Q2_K,
            LlamaFtype::MOSTLY_Q2_K_S
        ));
    }
}
