//! Broad tensor categories the type rules key on (`tensor_get_category` in
//! `src/llama-quant.cpp`), found by exact name or by substring, in llama.cpp's order.

/// The category of a tensor, from its name alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorCategory {
    /// `token_embd.weight` or `per_layer_token_embd.weight`.
    TokenEmbd,
    /// Name contains `attn_q.weight`.
    AttentionQ,
    /// Name contains `attn_v.weight`.
    AttentionV,
    /// Name contains `attn_k.weight`.
    AttentionK,
    /// Name contains `attn_qkv.weight` (fused QKV).
    AttentionQkv,
    /// Name contains `attn_kv_b.weight` (MLA).
    AttentionKvB,
    /// Name contains `attn_output.weight`.
    AttentionOutput,
    /// Name contains `ffn_up`.
    FfnUp,
    /// Name contains `ffn_gate` (this includes `ffn_gate_inp`, which is never quantized).
    FfnGate,
    /// Name contains `ffn_down`.
    FfnDown,
    /// Exactly `output.weight`.
    Output,
    /// Anything else.
    Other,
}

impl TensorCategory {
    /// Categorizes `name` exactly as llama.cpp does: the first test that matches wins.
    pub fn of(name: &str) -> Self {
        use TensorCategory as C;
        if name == "output.weight" {
            return C::Output;
        }
        if is_token_embd(name) {
            return C::TokenEmbd;
        }
        const BY_SUBSTRING: [(&str, TensorCategory); 9] = [
            ("attn_qkv.weight", C::AttentionQkv),
            ("attn_kv_b.weight", C::AttentionKvB),
            ("attn_v.weight", C::AttentionV),
            ("attn_k.weight", C::AttentionK),
            ("attn_q.weight", C::AttentionQ),
            ("attn_output.weight", C::AttentionOutput),
            ("ffn_up", C::FfnUp),
            ("ffn_gate", C::FfnGate),
            ("ffn_down", C::FfnDown),
        ];
        BY_SUBSTRING
            .iter()
            .find(|(s, _)| name.contains(s))
            .map_or(C::Other, |&(_, c)| c)
    }

    /// `category_is_attn_v`: the value-like projections that get more bits (`attn_v`, and since
    /// the 2026-03 refactor also `attn_qkv` and `attn_kv_b`).
    pub fn is_attn_v_like(self) -> bool {
        matches!(
            self,
            Self::AttentionV | Self::AttentionQkv | Self::AttentionKvB
        )
    }
}

/// `tensor_name_match_token_embd`.
pub(crate) fn is_token_embd(name: &str) -> bool {
    name == "token_embd.weight" || name == "per_layer_token_embd.weight"
}

#[cfg(test)]
mod tests {
    use super::TensorCategory as C;

    #[test]
    fn first_matching_substring_wins() {
        assert_eq!(C::of("output.weight"), C::Output);
        assert_eq!(C::of("blk.0.output.weight"), C::Other);
        assert_eq!(C::of("per_layer_token_embd.weight"), C::TokenEmbd);
        assert_eq!(C::of("blk.3.attn_qkv.weight"), C::AttentionQkv);
        assert_eq!(C::of("blk.3.attn_kv_b.weight"), C::AttentionKvB);
        assert_eq!(C::of("blk.3.attn_q.weight"), C::AttentionQ);
        assert_eq!(C::of("blk.3.attn_q_b.weight"), C::Other);
        assert_eq!(C::of("blk.3.ffn_down_exps.weight"), C::FfnDown);
        assert_eq!(C::of("blk.3.ffn_gate_inp.weight"), C::FfnGate);
        // fused gate+up tensors contain "ffn_gate" but not "ffn_up"
        assert_eq!(C::of("blk.3.ffn_gate_up_exps.weight"), C::FfnGate);
        assert_eq!(C::of("blk.3.ffn_up_gate.weight"), C::FfnUp);
        assert!(C::of("blk.0.attn_kv_b.weight").is_attn_v_like());
        assert!(!C::of("blk.0.attn_k.weight").is_attn_v_like());
    }
}
