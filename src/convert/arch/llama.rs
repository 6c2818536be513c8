//! `LlamaModel` (conversion/llama.py): Llama, Mistral and Mixtral.

use super::names::NameMap;
use super::params::{head_dim, text_params};
use super::{no_skip, ArchCtx, ArchSpec, Experts, ExtraTensor, VocabKind};
use crate::convert::config::{
    default, default_if_null, derived_head_dim, standardize_rope_scaling,
};
use crate::convert::error::ConvertError;
use crate::convert::kv::KvList;
use serde_json::{json, Map, Value};

/// Llama's tensor names (shared by the Llama-family entries).
pub static LLAMA_NAMES: NameMap = NameMap {
    global: &[
        ("model.embed_tokens", "token_embd"),
        ("model.norm", "output_norm"),
        ("lm_head", "output"),
        ("rope_freqs", "rope_freqs"),
    ],
    block: &[
        ("input_layernorm", "attn_norm"),
        ("post_attention_layernorm", "ffn_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
        ("block_sparse_moe.gate", "ffn_gate_inp"),
        ("mlp.gate", "ffn_gate_inp"),
    ],
};

fn llama_defaults(m: &mut Map<String, Value>) {
    default(m, "vocab_size", json!(32000));
    default(m, "hidden_size", json!(4096));
    default(m, "intermediate_size", json!(11008));
    default(m, "num_hidden_layers", json!(32));
    default(m, "num_attention_heads", json!(32));
    default(m, "max_position_embeddings", json!(2048));
    default(m, "rms_norm_eps", json!(1e-6));
    default(m, "rope_theta", json!(10000.0));
    default(m, "rope_scaling", Value::Null);
    if let Some(n) = m.get("num_attention_heads").cloned() {
        default_if_null(m, "num_key_value_heads", n);
    }
    if let Some(hd) = derived_head_dim(m) {
        default_if_null(m, "head_dim", hd);
    }
    standardize_rope_scaling(m);
}

fn mistral_defaults(m: &mut Map<String, Value>) {
    default(m, "vocab_size", json!(32000));
    default(m, "hidden_size", json!(4096));
    default(m, "intermediate_size", json!(14336));
    default(m, "num_hidden_layers", json!(32));
    default(m, "num_attention_heads", json!(32));
    default(m, "num_key_value_heads", json!(8));
    default(m, "head_dim", Value::Null);
    default(m, "max_position_embeddings", json!(4096 * 32));
    default(m, "rms_norm_eps", json!(1e-6));
    default(m, "rope_theta", json!(10000.0));
    if let Some(n) = m.get("num_attention_heads").cloned() {
        default_if_null(m, "num_key_value_heads", n);
    }
}

fn mixtral_defaults(m: &mut Map<String, Value>) {
    default(m, "vocab_size", json!(32000));
    default(m, "hidden_size", json!(4096));
    default(m, "intermediate_size", json!(14336));
    default(m, "num_hidden_layers", json!(32));
    default(m, "num_attention_heads", json!(32));
    default(m, "num_key_value_heads", json!(8));
    default(m, "head_dim", Value::Null);
    default(m, "max_position_embeddings", json!(4096 * 32));
    default(m, "rms_norm_eps", json!(1e-5));
    default(m, "rope_theta", json!(1e6));
    default(m, "num_experts_per_tok", json!(2));
    default(m, "num_local_experts", json!(8));
    if let Some(n) = m.get("num_attention_heads").cloned() {
        default_if_null(m, "num_key_value_heads", n);
    }
}

/// `LlamaModel.set_gguf_parameters`.
fn llama_params(cx: &ArchCtx, kv: &mut KvList) -> Result<(), ConvertError> {
    text_params("llama", cx, kv)?;
    let vocab = cx.hp.req_u64(&["vocab_size"])?;
    kv.u32("llama.vocab_size", vocab as u32);
    kv.u32("llama.rope.dimension_count", head_dim(cx)? as u32);
    Ok(())
}

/// `LlamaModel.generate_extra_tensors`: llama3 rope scaling factors.
fn llama_extra(cx: &ArchCtx, _kv: &mut KvList) -> Result<Vec<ExtraTensor>, ConvertError> {
    let rp = cx.hp.rope_params();
    if rp.is_empty() {
        return Ok(Vec::new());
    }
    let is_llama3 = rp
        .get("rope_type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.to_lowercase() == "llama3");
    if !is_llama3 {
        return Ok(Vec::new());
    }
    let num = |key: &str, dflt: f64| -> Result<f64, ConvertError> {
        match rp.get(key).filter(|v| !v.is_null()) {
            Some(v) => cx.hp.num(key, v),
            None => Ok(dflt),
        }
    };
    let base = num("rope_theta", 10000.0)?;
    let dim = head_dim(cx)?;
    let factor = num("factor", 8.0)?;
    let lff = num("low_freq_factor", 1.0)?;
    let hff = num("high_freq_factor", 4.0)?;
    let old_ctx = num("original_max_position_embeddings", 8192.0)?;
    Ok(vec![(
        "rope_freqs.weight".to_string(),
        llama3_rope_factors(base, dim, factor, lff, hff, old_ctx),
    )])
}

/// The llama3 factors as the converter computes them in torch float32: `freqs = 1 / base **
/// (arange(0, dim, 2) / dim)` and the per-frequency smoothing, each scalar step rounded to f32.
pub fn llama3_rope_factors(
    base: f64,
    dim: u64,
    factor: f64,
    lff: f64,
    hff: f64,
    old_ctx: f64,
) -> Vec<f32> {
    let low_wavelen = old_ctx / lff;
    let high_wavelen = old_ctx / hff;
    let two_pi = 2.0 * std::f64::consts::PI;
    (0..dim)
        .step_by(2)
        .map(|i| {
            let e = (i as f32) / (dim as f32);
            let p = (base as f32).powf(e);
            let freq = 1.0f32 / p;
            let wavelen = (two_pi as f32) / freq;
            if wavelen < high_wavelen as f32 {
                1.0
            } else if wavelen > low_wavelen as f32 {
                factor as f32
            } else {
                let smooth = ((old_ctx as f32) / wavelen - lff as f32) / ((hff - lff) as f32);
                1.0f32 / ((1.0f32 - smooth) / (factor as f32) + smooth)
            }
        })
        .collect()
}

/// `LlamaForCausalLM`.
pub static LLAMA: ArchSpec = ArchSpec {
    hf_names: &["LlamaForCausalLM", "LLaMAForCausalLM"],
    gguf_arch: "llama",
    defaults: llama_defaults,
    names: &LLAMA_NAMES,
    undo_permute: true,
    experts: Experts::None,
    norm_plus_one: false,
    truncate_embd: false,
    skip: no_skip,
    params: llama_params,
    extra: llama_extra,
    vocab: VocabKind::Llama,
};

/// `MistralForCausalLM` (converted by `LlamaModel`).
pub static MISTRAL: ArchSpec = ArchSpec {
    hf_names: &["MistralForCausalLM"],
    defaults: mistral_defaults,
    ..LLAMA
};

/// `MixtralForCausalLM` (converted by `LlamaModel`, experts stacked).
pub static MIXTRAL: ArchSpec = ArchSpec {
    hf_names: &["MixtralForCausalLM"],
    defaults: mixtral_defaults,
    experts: Experts::Mixtral,
    ..LLAMA
};
