//! `Phi3MiniModel` (conversion/phi.py): fused qkv and gate_up, long-rope factor tensors.

use super::names::NameMap;
use super::{no_skip, ArchCtx, ArchSpec, Experts, ExtraTensor, VocabKind};
use crate::convert::config::{default, default_if_null};
use crate::convert::error::ConvertError;
use crate::convert::kv::KvList;
use serde_json::{json, Map, Value};

/// Phi-3 tensor names.
pub static PHI3_NAMES: NameMap = NameMap {
    global: &[
        ("model.embed_tokens", "token_embd"),
        ("model.norm", "output_norm"),
        ("lm_head", "output"),
        ("rope_factors_long", "rope_factors_long"),
        ("rope_factors_short", "rope_factors_short"),
    ],
    block: &[
        ("input_layernorm", "attn_norm"),
        ("post_attention_layernorm", "ffn_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.qkv_proj", "attn_qkv"),
        ("self_attn.o_proj", "attn_output"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.gate_up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
    ],
};

fn phi3_defaults(m: &mut Map<String, Value>) {
    default(m, "vocab_size", json!(32064));
    default(m, "hidden_size", json!(3072));
    default(m, "intermediate_size", json!(8192));
    default(m, "num_hidden_layers", json!(32));
    default(m, "num_attention_heads", json!(32));
    default(m, "max_position_embeddings", json!(4096));
    default(m, "original_max_position_embeddings", json!(4096));
    default(m, "rms_norm_eps", json!(1e-5));
    default(m, "rope_theta", json!(10000.0));
    default(m, "rope_scaling", Value::Null);
    default(m, "partial_rotary_factor", json!(1.0));
    default(m, "sliding_window", Value::Null);
    if let Some(n) = m.get("num_attention_heads").cloned() {
        default_if_null(m, "num_key_value_heads", n);
    }
    if let Some(Value::Object(rs)) = m.get_mut("rope_scaling") {
        if matches!(rs.get("type").and_then(Value::as_str), Some("su" | "yarn")) {
            rs.insert("type".into(), json!("longrope"));
        }
    }
}

struct Dims {
    n_embd: u64,
    n_head: u64,
    max_pos: u64,
    orig_max_pos: u64,
    rope_dims: u64,
}

fn dims(cx: &ArchCtx) -> Result<Dims, ConvertError> {
    let hp = cx.hp;
    let n_embd = hp.req_u64(&["hidden_size", "n_embd"])?;
    let n_head = hp.req_u64(&["num_attention_heads", "n_head"])?;
    if n_head == 0 {
        return Err(ConvertError::config(&hp.path, "num_attention_heads is 0"));
    }
    let max_pos = hp.req_u64(&["n_positions", "max_position_embeddings"])?;
    let orig = hp
        .rope
        .get("original_max_position_embeddings")
        .ok_or_else(|| {
            ConvertError::config(&hp.path, "missing original_max_position_embeddings")
        })?;
    let orig_max_pos = hp.as_u64("original_max_position_embeddings", orig)?;
    let rot_pct = match hp.rope.get("partial_rotary_factor") {
        Some(v) => hp.num("partial_rotary_factor", v)?,
        None => 1.0,
    };
    let rope_dims = ((rot_pct * n_embd as f64) as u64) / n_head;
    Ok(Dims {
        n_embd,
        n_head,
        max_pos,
        orig_max_pos,
        rope_dims,
    })
}

/// `Phi3MiniModel.set_gguf_parameters`.
fn phi3_params(cx: &ArchCtx, kv: &mut KvList) -> Result<(), ConvertError> {
    let hp = cx.hp;
    let d = dims(cx)?;
    let n_head_kv = hp.req_u64(&["num_key_value_heads", "n_head_kv"])?;
    let rms = match hp.find(&["rms_norm_eps"]) {
        Some(v) => hp.num("rms_norm_eps", v)? as f32,
        None => return Err(ConvertError::config(&hp.path, "missing rms_norm_eps")),
    };
    kv.u32("phi3.context_length", d.max_pos as u32);
    kv.u32(
        "phi3.rope.scaling.original_context_length",
        d.orig_max_pos as u32,
    );
    kv.u32("phi3.embedding_length", d.n_embd as u32);
    kv.u32(
        "phi3.feed_forward_length",
        hp.req_u64(&["intermediate_size"])? as u32,
    );
    kv.u32(
        "phi3.block_count",
        hp.req_u64(&["n_layers", "num_hidden_layers", "n_layer", "num_layers"])? as u32,
    );
    kv.u32("phi3.attention.head_count", d.n_head as u32);
    kv.u32("phi3.attention.head_count_kv", n_head_kv as u32);
    kv.f32("phi3.attention.layer_norm_rms_epsilon", rms);
    kv.u32("phi3.rope.dimension_count", d.rope_dims as u32);
    let theta = hp
        .rope_params()
        .get("rope_theta")
        .ok_or_else(|| ConvertError::config(&hp.path, "missing rope_theta"))?;
    kv.f32("phi3.rope.freq_base", hp.num("rope_theta", theta)? as f32);
    kv.u32("general.file_type", cx.file_type);
    let sw = match hp.map.get("sliding_window").filter(|v| !v.is_null()) {
        Some(v) => hp.as_u64("sliding_window", v)?,
        None => 0,
    };
    kv.u32("phi3.attention.sliding_window", sw as u32);
    Ok(())
}

fn factors(cx: &ArchCtx, key: &str) -> Result<Option<Vec<f32>>, ConvertError> {
    match cx.hp.rope.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| cx.hp.num(key, v).map(|x| x as f32))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(v) => Err(ConvertError::config(
            &cx.hp.path,
            format!("rope_scaling.{key} is not a list: {v}"),
        )),
    }
}

/// `Phi3MiniModel.generate_extra_tensors`: long/short rope factors and the attention factor.
fn phi3_extra(cx: &ArchCtx, kv: &mut KvList) -> Result<Vec<ExtraTensor>, ConvertError> {
    let d = dims(cx)?;
    let long = factors(cx, "long_factor")?;
    let Some(long) = long.filter(|l| !l.is_empty()) else {
        return Ok(Vec::new());
    };
    let scale = d.max_pos as f64 / d.orig_max_pos as f64;
    let ty = cx
        .hp
        .rope
        .get("rope_type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_lowercase();
    let attn_factor = match ty.as_str() {
        "" => {
            return Err(ConvertError::config(
                &cx.hp.path,
                "missing the required key rope_scaling.type",
            ))
        }
        "su" | "longrope" if scale > 1.0 => {
            (1.0 + scale.ln() / (d.orig_max_pos as f64).ln()).sqrt()
        }
        "yarn" if scale > 1.0 => 0.1 * scale.ln() + 1.0,
        "su" | "longrope" | "yarn" => 1.0,
        other => {
            return Err(ConvertError::config(
                &cx.hp.path,
                format!("rope scaling type {other} is not supported"),
            ))
        }
    };
    kv.f32("phi3.rope.scaling.attn_factor", attn_factor as f32);
    let short = factors(cx, "short_factor")?
        .ok_or_else(|| ConvertError::config(&cx.hp.path, "missing rope_scaling.short_factor"))?;
    if long.len() != short.len() || long.len() as f64 != d.rope_dims as f64 / 2.0 {
        return Err(ConvertError::config(
            &cx.hp.path,
            format!(
                "the rope long and short factors must have {} entries, got {} and {}",
                d.rope_dims as f64 / 2.0,
                long.len(),
                short.len()
            ),
        ));
    }
    Ok(vec![
        ("rope_factors_long.weight".into(), long),
        ("rope_factors_short.weight".into(), short),
    ])
}

/// `Phi3ForCausalLM`.
pub static PHI3: ArchSpec = ArchSpec {
    hf_names: &["Phi3ForCausalLM"],
    gguf_arch: "phi3",
    defaults: phi3_defaults,
    names: &PHI3_NAMES,
    undo_permute: false,
    experts: Experts::None,
    norm_plus_one: false,
    truncate_embd: false,
    skip: no_skip,
    params: phi3_params,
    extra: phi3_extra,
    vocab: VocabKind::Phi3,
};
