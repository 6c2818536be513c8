//! `Qwen2Model`, `Qwen3Model`, `Qwen3MoeModel` (conversion/qwen.py).

use super::names::NameMap;
use super::params::text_params;
use super::{no_extra, no_skip, ArchCtx, ArchSpec, Experts, VocabKind};
use crate::convert::config::{default, default_if_null, standardize_rope_scaling};
use crate::convert::error::ConvertError;
use crate::convert::kv::KvList;
use serde_json::{json, Map, Value};

/// Qwen tensor names (q/k norms and the MoE router included; each arch only meets its own).
pub static QWEN_NAMES: NameMap = NameMap {
    global: &[
        ("model.embed_tokens", "token_embd"),
        ("model.norm", "output_norm"),
        ("lm_head", "output"),
    ],
    block: &[
        ("input_layernorm", "attn_norm"),
        ("post_attention_layernorm", "ffn_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("self_attn.q_norm", "attn_q_norm"),
        ("self_attn.k_norm", "attn_k_norm"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
        ("mlp.gate", "ffn_gate_inp"),
    ],
};

fn qwen2_defaults(m: &mut Map<String, Value>) {
    default(m, "vocab_size", json!(151936));
    default(m, "hidden_size", json!(4096));
    default(m, "intermediate_size", json!(22016));
    default(m, "num_hidden_layers", json!(32));
    default(m, "num_attention_heads", json!(32));
    default(m, "num_key_value_heads", json!(32));
    default(m, "max_position_embeddings", json!(32768));
    default(m, "rms_norm_eps", json!(1e-6));
    default(m, "rope_theta", json!(10000.0));
    default(m, "rope_scaling", Value::Null);
    if let Some(n) = m.get("num_attention_heads").cloned() {
        default_if_null(m, "num_key_value_heads", n);
    }
    standardize_rope_scaling(m);
}

fn qwen3_defaults(m: &mut Map<String, Value>) {
    default(m, "head_dim", json!(128));
    qwen2_defaults(m);
}

fn qwen3_moe_defaults(m: &mut Map<String, Value>) {
    default(m, "vocab_size", json!(151936));
    default(m, "hidden_size", json!(2048));
    default(m, "intermediate_size", json!(6144));
    default(m, "num_hidden_layers", json!(24));
    default(m, "num_attention_heads", json!(32));
    default(m, "num_key_value_heads", json!(4));
    default(m, "max_position_embeddings", json!(32768));
    default(m, "rms_norm_eps", json!(1e-6));
    default(m, "rope_theta", json!(10000.0));
    default(m, "rope_scaling", Value::Null);
    default(m, "moe_intermediate_size", json!(768));
    default(m, "num_experts_per_tok", json!(8));
    default(m, "num_experts", json!(128));
    standardize_rope_scaling(m);
}

/// `Qwen2Model.set_gguf_parameters` (text parameters; `_try_set_pooling_type` only acts on
/// sentence-transformers checkpoints, which are refused before this point).
fn qwen2_params(cx: &ArchCtx, kv: &mut KvList) -> Result<(), ConvertError> {
    text_params("qwen2", cx, kv)
}

fn qwen3_params(cx: &ArchCtx, kv: &mut KvList) -> Result<(), ConvertError> {
    text_params("qwen3", cx, kv)
}

/// `Qwen2MoeModel.set_gguf_parameters`.
fn qwen3_moe_params(cx: &ArchCtx, kv: &mut KvList) -> Result<(), ConvertError> {
    text_params("qwen3moe", cx, kv)?;
    if let Some(n) = cx.hp.opt_u64(&["moe_intermediate_size"])? {
        kv.u32("qwen3moe.expert_feed_forward_length", n as u32);
    }
    if let Some(n) = cx.hp.opt_u64(&["shared_expert_intermediate_size"])? {
        kv.u32("qwen3moe.expert_shared_feed_forward_length", n as u32);
    }
    Ok(())
}

/// `Qwen2ForCausalLM`.
pub static QWEN2: ArchSpec = ArchSpec {
    hf_names: &["Qwen2ForCausalLM"],
    gguf_arch: "qwen2",
    defaults: qwen2_defaults,
    names: &QWEN_NAMES,
    undo_permute: false,
    experts: Experts::None,
    norm_plus_one: false,
    truncate_embd: false,
    skip: no_skip,
    params: qwen2_params,
    extra: no_extra,
    vocab: VocabKind::Qwen2,
};

/// `Qwen3ForCausalLM`.
pub static QWEN3: ArchSpec = ArchSpec {
    hf_names: &["Qwen3ForCausalLM"],
    gguf_arch: "qwen3",
    defaults: qwen3_defaults,
    params: qwen3_params,
    ..QWEN2
};

/// `Qwen3MoeForCausalLM`.
pub static QWEN3_MOE: ArchSpec = ArchSpec {
    hf_names: &["Qwen3MoeForCausalLM"],
    gguf_arch: "qwen3moe",
    defaults: qwen3_moe_defaults,
    params: qwen3_moe_params,
    experts: Experts::Qwen,
    vocab: VocabKind::Gpt2Bpe,
    ..QWEN2
};
