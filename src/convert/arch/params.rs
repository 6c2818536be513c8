//! `TextModel.set_gguf_parameters`: the hyperparameter metadata every text model starts from.

use super::ArchCtx;
use crate::convert::error::ConvertError;
use crate::convert::kv::KvList;
use serde_json::Value;

/// Writes `TextModel.set_gguf_parameters`'s keys for `arch` in its order.
pub fn text_params(arch: &str, cx: &ArchCtx, kv: &mut KvList) -> Result<(), ConvertError> {
    let hp = cx.hp;
    let k = |s: &str| format!("{arch}.{s}");
    let block_count = hp.req_u64(&["n_layers", "num_hidden_layers", "n_layer", "num_layers"])?;
    kv.u32(k("block_count"), block_count as u32);
    let u32_of = |keys: &[&str]| hp.opt_u64(keys);
    if let Some(n) = u32_of(&[
        "max_position_embeddings",
        "n_ctx",
        "n_positions",
        "max_length",
        "max_sequence_length",
        "model_max_length",
    ])? {
        kv.u32(k("context_length"), n as u32);
    }
    if let Some(n) = u32_of(&["hidden_size", "n_embd", "dim"])? {
        kv.u32(k("embedding_length"), n as u32);
    }
    if let Some(n) = u32_of(&[
        "prefix_dense_intermediate_size",
        "dense_intermediate_size",
        "intermediate_size",
        "n_inner",
        "hidden_dim",
    ])? {
        kv.u32(k("feed_forward_length"), n as u32);
    }
    if let Some(n) = u32_of(&["num_attention_heads", "n_head", "n_heads"])? {
        kv.u32(k("attention.head_count"), n as u32);
    }
    if let Some(n) = u32_of(&["num_key_value_heads", "n_kv_heads"])? {
        kv.u32(k("attention.head_count_kv"), n as u32);
    }
    if hp.map.get("is_causal") == Some(&Value::Bool(false)) {
        kv.set(
            k("attention.causal"),
            qforge_formats::gguf::GgufValue::Bool(false),
        );
    }
    let rp = hp.rope_params();
    if let Some(rope_type) = rp.get("rope_type").filter(|v| !v.is_null()) {
        let rope_type = rope_type.as_str().ok_or_else(|| {
            ConvertError::config(&hp.path, format!("rope_type is not a string: {rope_type}"))
        })?;
        let factor = rp.get("factor").filter(|v| !v.is_null());
        let f32_of = |key: &str, v: &Value| hp.num(key, v).map(|x| x as f32);
        match rope_type {
            "linear" if factor.is_some() => {
                kv.string(k("rope.scaling.type"), "linear");
                kv.f32(k("rope.scaling.factor"), f32_of("factor", factor.unwrap())?);
            }
            "yarn" if factor.is_some() => {
                kv.string(k("rope.scaling.type"), "yarn");
                kv.f32(k("rope.scaling.factor"), f32_of("factor", factor.unwrap())?);
                let orig = rp.get("original_max_position_embeddings").ok_or_else(|| {
                    ConvertError::config(
                        &hp.path,
                        "yarn rope scaling without original_max_position_embeddings",
                    )
                })?;
                kv.u32(
                    k("rope.scaling.original_context_length"),
                    hp.as_u64("original_max_position_embeddings", orig)? as u32,
                );
                let opt = |key: &str| rp.get(key).filter(|v| !v.is_null());
                if let Some(v) = opt("extrapolation_factor") {
                    kv.f32(
                        k("rope.scaling.yarn_ext_factor"),
                        f32_of("extrapolation_factor", v)?,
                    );
                }
                if let Some(v) = opt("attention_factor").or_else(|| opt("attn_factor")) {
                    kv.f32(
                        k("rope.scaling.yarn_attn_factor"),
                        f32_of("attention_factor", v)?,
                    );
                }
                if let Some(v) = opt("beta_fast") {
                    kv.f32(k("rope.scaling.yarn_beta_fast"), f32_of("beta_fast", v)?);
                }
                if let Some(v) = opt("beta_slow") {
                    kv.f32(k("rope.scaling.yarn_beta_slow"), f32_of("beta_slow", v)?);
                }
            }
            "su" | "longrope" => kv.string(k("rope.scaling.type"), "longrope"),
            _ => {}
        }
    }
    if let Some(Value::Array(sections)) = hp.rope.get("mrope_section") {
        let mut s: Vec<i32> = sections
            .iter()
            .map(|v| v.as_i64().unwrap_or(0) as i32)
            .collect();
        s.resize(s.len().max(4), 0);
        s.truncate(4);
        kv.set(
            k("rope.dimension_sections"),
            qforge_formats::gguf::GgufValue::Array(qforge_formats::gguf::GgufArray::I32(s)),
        );
    }
    if let Some(theta) = rp.get("rope_theta").filter(|v| !v.is_null()) {
        kv.f32(k("rope.freq_base"), hp.num("rope_theta", theta)? as f32);
    }
    if let Some(Value::Object(swa)) = hp.rope.get("sliding_attention") {
        if let Some(theta) = swa.get("rope_theta").filter(|v| !v.is_null()) {
            kv.f32(k("rope.freq_base_swa"), hp.num("rope_theta", theta)? as f32);
        }
    }
    if let Some(eps) = hp.opt_f64(&["rms_norm_eps", "norm_eps"])? {
        kv.f32(k("attention.layer_norm_rms_epsilon"), eps as f32);
    }
    if let Some(eps) = hp.opt_f64(&["layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"])? {
        kv.f32(k("attention.layer_norm_epsilon"), eps as f32);
    }
    if let Some(n) = u32_of(&["num_local_experts", "num_experts", "n_routed_experts"])? {
        kv.u32(k("expert_count"), n as u32);
    }
    if let Some(n) = u32_of(&[
        "num_experts_per_tok",
        "num_experts_per_token",
        "top_k_experts",
    ])? {
        kv.u32(k("expert_used_count"), n as u32);
    }
    if let Some(n) = u32_of(&["n_group"])? {
        kv.u32(k("expert_group_count"), n as u32);
    }
    if let Some(n) = u32_of(&["topk_group"])? {
        kv.u32(k("expert_group_used_count"), n as u32);
    }
    if let Some(f) = hp.find_some(&[
        "score_function",
        "scoring_func",
        "score_func",
        "moe_router_activation",
        "moe_router_activation_func",
        "expert_selection_fn",
    ]) {
        let id = match f.as_str() {
            Some("softmax") => 1,
            Some("sigmoid") => 2,
            Some("sqrtsoftplus") => 4,
            _ => {
                return Err(ConvertError::config(
                    &hp.path,
                    format!("unsupported expert score gating function {f}"),
                ))
            }
        };
        kv.u32(k("expert_gating_func"), id);
    }
    if let Some(hd) = hp.map.get("head_dim").filter(|v| !v.is_null()) {
        let hd = hp.as_u64("head_dim", hd)? as u32;
        kv.u32(k("attention.key_length"), hd);
        kv.u32(k("attention.value_length"), hd);
    }
    kv.u32("general.file_type", cx.file_type);
    Ok(())
}

/// `hparams.get("head_dim")` or `hidden_size // num_attention_heads`.
pub fn head_dim(cx: &ArchCtx) -> Result<u64, ConvertError> {
    let hp = cx.hp;
    match hp.map.get("head_dim").filter(|v| !v.is_null()) {
        Some(v) => hp.as_u64("head_dim", v),
        None => {
            let h = hp.req_u64(&["hidden_size"])?;
            let n = hp.req_u64(&["num_attention_heads"])?;
            if n == 0 {
                return Err(ConvertError::config(&hp.path, "num_attention_heads is 0"));
            }
            Ok(h / n)
        }
    }
}
