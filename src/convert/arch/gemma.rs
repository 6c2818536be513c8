//! `Gemma2Model` and `Gemma3Model` (conversion/gemma.py), text only.

use super::names::NameMap;
use super::params::text_params;
use super::{no_extra, ArchCtx, ArchSpec, Experts, VocabKind};
use crate::convert::config::default;
use crate::convert::error::ConvertError;
use crate::convert::kv::KvList;
use serde_json::{json, Map, Value};

/// Gemma tensor names.
pub static GEMMA_NAMES: NameMap = NameMap {
    global: &[
        ("model.embed_tokens", "token_embd"),
        ("model.norm", "output_norm"),
        ("lm_head", "output"),
    ],
    block: &[
        ("input_layernorm", "attn_norm"),
        ("post_attention_layernorm", "post_attention_norm"),
        ("pre_feedforward_layernorm", "ffn_norm"),
        ("post_feedforward_layernorm", "post_ffw_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("self_attn.q_norm", "attn_q_norm"),
        ("self_attn.k_norm", "attn_k_norm"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
    ],
};

fn gemma2_defaults(m: &mut Map<String, Value>) {
    default(m, "vocab_size", json!(256000));
    default(m, "hidden_size", json!(2304));
    default(m, "intermediate_size", json!(9216));
    default(m, "num_hidden_layers", json!(26));
    default(m, "num_attention_heads", json!(8));
    default(m, "num_key_value_heads", json!(4));
    default(m, "head_dim", json!(256));
    default(m, "max_position_embeddings", json!(8192));
    default(m, "rms_norm_eps", json!(1e-6));
    default(m, "rope_theta", json!(10000.0));
    default(m, "sliding_window", json!(4096));
    default(m, "final_logit_softcapping", json!(30.0));
    default(m, "attn_logit_softcapping", json!(50.0));
}

fn gemma3_defaults(m: &mut Map<String, Value>) {
    default(m, "vocab_size", json!(262208));
    default(m, "hidden_size", json!(2304));
    default(m, "intermediate_size", json!(9216));
    default(m, "num_hidden_layers", json!(26));
    default(m, "num_attention_heads", json!(8));
    default(m, "num_key_value_heads", json!(4));
    default(m, "head_dim", json!(256));
    default(m, "max_position_embeddings", json!(131072));
    default(m, "rms_norm_eps", json!(1e-6));
    default(m, "rope_theta", json!(1_000_000.0));
    default(m, "sliding_window", json!(4096));
    default(m, "final_logit_softcapping", Value::Null);
    default(m, "attn_logit_softcapping", Value::Null);
    default(m, "rope_scaling", Value::Null);
    default(m, "rope_local_base_freq", json!(10000.0));
    if m.get("use_bidirectional_attention") == Some(&Value::Bool(true)) {
        if let Some(w) = m.get("sliding_window").and_then(Value::as_u64) {
            m.insert("sliding_window".into(), json!(w / 2 + 1));
        }
    }
    crate::convert::config::standardize_rope_scaling(m);
}

fn req_f32(cx: &ArchCtx, key: &str) -> Result<f32, ConvertError> {
    match cx.hp.map.get(key) {
        Some(v) => cx.hp.num(key, v).map(|x| x as f32),
        None => Err(ConvertError::config(&cx.hp.path, format!("missing {key}"))),
    }
}

/// `Gemma2Model.set_gguf_parameters`.
fn gemma2_params(cx: &ArchCtx, kv: &mut KvList) -> Result<(), ConvertError> {
    let hp = cx.hp;
    let a = |s: &str| format!("gemma2.{s}");
    kv.u32(
        a("context_length"),
        hp.req_u64(&["max_position_embeddings"])? as u32,
    );
    kv.u32(a("embedding_length"), hp.req_u64(&["hidden_size"])? as u32);
    kv.u32(
        a("block_count"),
        hp.req_u64(&["n_layers", "num_hidden_layers", "n_layer", "num_layers"])? as u32,
    );
    kv.u32(
        a("feed_forward_length"),
        hp.req_u64(&["intermediate_size"])? as u32,
    );
    kv.u32(
        a("attention.head_count"),
        hp.req_u64(&["num_attention_heads"])? as u32,
    );
    kv.u32(
        a("attention.head_count_kv"),
        hp.req_u64(&["num_key_value_heads", "num_attention_heads"])? as u32,
    );
    kv.f32(
        a("attention.layer_norm_rms_epsilon"),
        req_f32(cx, "rms_norm_eps")?,
    );
    let hd = hp.req_u64(&["head_dim"])? as u32;
    kv.u32(a("attention.key_length"), hd);
    kv.u32(a("attention.value_length"), hd);
    kv.u32("general.file_type", cx.file_type);
    kv.f32(
        a("attn_logit_softcapping"),
        req_f32(cx, "attn_logit_softcapping")?,
    );
    kv.f32(
        a("final_logit_softcapping"),
        req_f32(cx, "final_logit_softcapping")?,
    );
    kv.u32(
        a("attention.sliding_window"),
        hp.req_u64(&["sliding_window"])? as u32,
    );
    Ok(())
}

/// `Gemma3Model.set_gguf_parameters`.
fn gemma3_params(cx: &ArchCtx, kv: &mut KvList) -> Result<(), ConvertError> {
    text_params("gemma3", cx, kv)?;
    let hp = cx.hp;
    let a = |s: &str| format!("gemma3.{s}");
    let u = |key: &str, d: u64| -> Result<u64, ConvertError> {
        match hp.map.get(key) {
            Some(v) => hp.as_u64(key, v),
            None => Ok(d),
        }
    };
    kv.u32(
        a("context_length"),
        u("max_position_embeddings", 131072)? as u32,
    );
    kv.u32(
        a("attention.head_count"),
        u("num_attention_heads", 8)? as u32,
    );
    let eps = match hp.map.get("rms_norm_eps") {
        Some(v) => hp.num("rms_norm_eps", v)?,
        None => 1e-6,
    };
    kv.f32(a("attention.layer_norm_rms_epsilon"), eps as f32);
    kv.u32(a("attention.key_length"), u("head_dim", 256)? as u32);
    kv.u32(a("attention.value_length"), u("head_dim", 256)? as u32);
    let theta = match hp.rope_params().get("rope_theta") {
        Some(v) => hp.num("rope_theta", v)?,
        None => 1_000_000.0,
    };
    kv.f32(a("rope.freq_base"), theta as f32);
    if hp
        .map
        .get("attn_logit_softcapping")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ConvertError::config(
            &hp.path,
            "attn_logit_softcapping is set, which Gemma 3 does not have",
        ));
    }
    if let Some(v) = hp
        .map
        .get("final_logit_softcapping")
        .filter(|v| !v.is_null())
    {
        let f = hp.num("final_logit_softcapping", v)?;
        if f != 0.0 {
            kv.f32(a("final_logit_softcapping"), f as f32);
        }
    }
    if hp.map.get("sliding_window_pattern") != Some(&json!(1)) {
        let w = hp.map.get("sliding_window").unwrap_or(&Value::Null);
        kv.u32(
            a("attention.sliding_window"),
            hp.as_u64("sliding_window", w)? as u32,
        );
    }
    kv.u32(
        a("attention.head_count_kv"),
        u("num_key_value_heads", 4)? as u32,
    );
    Ok(())
}

fn skip_lm_head(name: &str) -> bool {
    name == "lm_head.weight"
}

fn keep_all(_: &str) -> bool {
    false
}

/// `Gemma2ForCausalLM`.
pub static GEMMA2: ArchSpec = ArchSpec {
    hf_names: &["Gemma2ForCausalLM"],
    gguf_arch: "gemma2",
    defaults: gemma2_defaults,
    names: &GEMMA_NAMES,
    undo_permute: false,
    experts: Experts::None,
    norm_plus_one: true,
    truncate_embd: false,
    skip: skip_lm_head,
    params: gemma2_params,
    extra: no_extra,
    vocab: VocabKind::Gemma2,
};

/// `Gemma3ForCausalLM` (text).
pub static GEMMA3: ArchSpec = ArchSpec {
    hf_names: &["Gemma3ForCausalLM"],
    gguf_arch: "gemma3",
    defaults: gemma3_defaults,
    truncate_embd: true,
    skip: keep_all,
    params: gemma3_params,
    vocab: VocabKind::Gemma3,
    ..GEMMA2
};
