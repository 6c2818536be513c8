//! Which tensors `llama-quantize` may change at all (`tensor_allows_quantization` in
//! `src/llama-quant.cpp`). Everything else is copied with its type unchanged.

/// Substrings that keep a tensor as it is, for every architecture.
const NEVER_QUANTIZED: [&str; 34] = [
    // MoE router and DeepSeek-V4's token-id -> expert-id table
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    // tiny Gemma-3n tensors
    "altup",
    "laurel",
    "per_layer_model_proj",
    // Mamba / Kimi / LFM2 convolutions
    "ssm_conv1d",
    "shortconv.conv.weight",
    // MiniMax indexer projections
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    // RWKV's small 2-D weights
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    // T5 relative position bias
    "attn_rel_b.weight",
    // multimodal
    ".position_embd",
    "sam.pos_embd",
    "sam.neck.",
    "sam.net_",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    // audio codebooks
    "a.rvq.codebook",
    "mm.a.code_embd",
];

/// Extra substrings kept as they are for `glm5-next`.
const NEVER_QUANTIZED_GLM5_NEXT: [&str; 14] = [
    "hc_",
    "indexer.attn_q_b",
    "indexer.attn_k",
    "indexer.proj",
    "indexer_compressor_gate",
    "indexer_compressor_ape",
    "ssm_f_a.weight",
    "ssm_f_b.weight",
    "ssm_g_a.weight",
    "ssm_g_b.weight",
    "ssm_beta.weight",
    "attn_kv_a_mqa.weight",
    "attn_k_b.weight",
    "attn_v_b.weight",
];

/// Whether llama-quantize may give tensor `name` (with `n_dims` dimensions as `ggml_n_dims`
/// counts them) a new type.
///
/// `only_copy` is the `COPY` mode; `quantize_output_tensor` is false under
/// `--leave-output-tensor`.
pub(crate) fn tensor_allows_quantization(
    only_copy: bool,
    quantize_output_tensor: bool,
    arch: &str,
    name: &str,
    n_dims: usize,
) -> bool {
    if only_copy || n_dims < 2 {
        return false;
    }
    // llama.cpp tests `name.rfind("weight") == name.size() - 6` with size_t arithmetic, so a
    // 5-byte name (size - 6 wraps to npos, which is also what rfind returns) passes as well.
    let ends_in_weight = name.ends_with("weight") || name.len() == 5;
    if !ends_in_weight || name.contains("_norm.weight") {
        return false;
    }
    if !quantize_output_tensor && name == "output.weight" {
        return false;
    }
    // LLM_TN(arch)(LLM_TENSOR_POS_EMBD / LLM_TENSOR_TOKEN_TYPES, "weight"): the same for all
    // architectures.
    if name == "position_embd.weight" || name == "token_types.weight" {
        return false;
    }
    if NEVER_QUANTIZED.iter().any(|s| name.contains(s)) {
        return false;
    }
    if arch == "glm5-next" && NEVER_QUANTIZED_GLM5_NEXT.iter().any(|s| name.contains(s)) {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::tensor_allows_quantization as allows;

    #[test]
    fn two_dimensional_weights_only() {
        assert!(allows(false, true, "llama", "blk.0.attn_q.weight", 2));
        assert!(allows(false, true, "llama", "blk.0.ffn_up_exps.weight", 3));
        assert!(!allows(false, true, "llama", "blk.0.attn_q.weight", 1));
        assert!(!allows(true, true, "llama", "blk.0.attn_q.weight", 2));
        assert!(!allows(false, true, "llama", "blk.0.attn_q.bias", 2));
        assert!(!allows(false, true, "llama", "blk.0.attn_q_norm.weight", 2));
    }

    #[test]
    fn five_byte_names_pass_the_weight_suffix_test() {
        assert!(allows(false, true, "llama", "hello", 2));
        assert!(!allows(false, true, "llama", "hell", 2));
        assert!(!allows(false, true, "llama", "hello!", 2));
    }

    #[test]
    fn exclusions() {
        assert!(!allows(false, false, "llama", "output.weight", 2));
        assert!(allows(false, false, "llama", "blk.0.output.weight", 2));
        assert!(!allows(false, true, "bert", "token_types.weight", 2));
        assert!(!allows(
            false,
            true,
            "llama",
            "blk.1.ffn_gate_inp.weight",
            2
        ));
        assert!(!allows(false, true, "llama", "v.patch_embd.weight", 2));
        assert!(!allows(
            false,
            true,
            "glm5-next",
            "blk.1.attn_k_b.weight",
            2
        ));
        assert!(allows(false, true, "deepseek2", "blk.1.attn_k_b.weight", 2));
    }
}
