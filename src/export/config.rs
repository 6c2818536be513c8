//! config.json and generation_config.json for the exported checkpoint, from the GGUF
//! hyperparameters (what llama.cpp reads) in the form transformers' config classes expect.

use super::arch::model_type;
use super::data::ExportDtype;
use super::error::ExportError;
use super::meta::{f32_json, Meta};
use super::rope::llama3_scaling;
use crate::convert::arch::{ArchSpec, Experts};
use serde_json::{json, Map, Value};

/// What the config needs besides the metadata.
pub struct ConfigInputs<'a> {
    /// Rows of `token_embd.weight`.
    pub vocab_rows: u64,
    /// Whether the GGUF has a separate `output.weight` (untied embeddings).
    pub has_output: bool,
    /// Whether the attention projections have biases.
    pub attn_bias: bool,
    /// The output dtype.
    pub dtype: ExportDtype,
    /// Reads a generated tensor (`rope_freqs.weight` ...) as f32 values, if present.
    pub generated: &'a GeneratedTensor<'a>,
}

/// Reads a generated tensor by name as f32 values (`None` when the GGUF lacks it).
pub type GeneratedTensor<'a> = dyn Fn(&str) -> Result<Option<Vec<f32>>, ExportError> + 'a;

/// Per-layer `sliding_attention` / `full_attention`: from
/// `attention.sliding_window_pattern` (an array of per-layer flags, or a period) or llama.cpp's
/// default period for the architecture (every `period`-th layer full, `set_swa_pattern`).
fn layer_types(meta: &Meta, n_layer: u64, period: u64) -> Result<Value, ExportError> {
    let swa: Vec<bool> = if meta.is_array("attention.sliding_window_pattern") {
        let flags = meta
            .opt_int_array("attention.sliding_window_pattern")
            .filter(|f| f.len() as u64 >= n_layer)
            .ok_or_else(|| {
                ExportError::meta(
                    &meta.path,
                    &meta.key("attention.sliding_window_pattern"),
                    "not one flag per layer",
                )
            })?;
        flags
            .iter()
            .take(n_layer as usize)
            .map(|&f| f != 0)
            .collect()
    } else {
        let p = meta
            .opt_u64("attention.sliding_window_pattern")?
            .unwrap_or(period);
        (0..n_layer).map(|il| p == 0 || il % p < p - 1).collect()
    };
    Ok(Value::Array(
        swa.iter()
            .map(|&s| {
                json!(if s {
                    "sliding_attention"
                } else {
                    "full_attention"
                })
            })
            .collect(),
    ))
}

/// `rope_scaling` from `rope.scaling.*` (linear, yarn) or the Llama 3 `rope_freqs` tensor.
fn rope_scaling(
    meta: &Meta,
    inp: &ConfigInputs,
    base: f64,
    head_dim: u64,
) -> Result<Value, ExportError> {
    if let Some(freqs) = (inp.generated)("rope_freqs.weight")? {
        let dim = meta.opt_u64("rope.dimension_count")?.unwrap_or(head_dim);
        return llama3_scaling(base, dim, &freqs).ok_or_else(|| {
            ExportError::tensor(
                &meta.path,
                "rope_freqs.weight",
                "no Llama 3 rope scaling parameters reproduce these factors",
            )
        });
    }
    let factor = meta.opt_f64("rope.scaling.factor")?;
    Ok(match (meta.opt_str("rope.scaling.type")?, factor) {
        (Some("linear"), Some(f)) => json!({"rope_type": "linear", "factor": f}),
        (Some("yarn"), Some(f)) => {
            let mut m = Map::new();
            m.insert("rope_type".into(), json!("yarn"));
            m.insert("factor".into(), json!(f));
            if let Some(n) = meta.opt_u64("rope.scaling.original_context_length")? {
                m.insert("original_max_position_embeddings".into(), json!(n));
            }
            for (k, key) in [
                ("yarn_beta_fast", "beta_fast"),
                ("yarn_beta_slow", "beta_slow"),
                ("yarn_ext_factor", "extrapolation_factor"),
                ("yarn_attn_factor", "attention_factor"),
            ] {
                if let Some(v) = meta.opt_f64(&format!("rope.scaling.{k}"))? {
                    m.insert(key.into(), json!(v));
                }
            }
            Value::Object(m)
        }
        (None | Some("none"), _) => Value::Null,
        (Some(t), _) => {
            return Err(ExportError::meta(
                &meta.path,
                &meta.key("rope.scaling.type"),
                format!("rope scaling {t:?} cannot be written to config.json"),
            ))
        }
    })
}

/// config.json for `spec`.
pub fn config_json(spec: &ArchSpec, meta: &Meta, inp: &ConfigInputs) -> Result<Value, ExportError> {
    let mut c = Map::new();
    let mut set = |k: &str, v: Value| {
        c.insert(k.to_string(), v);
    };
    let n_layer = meta.u64("block_count")?;
    let hidden = meta.u64("embedding_length")?;
    let n_head = meta.u64("attention.head_count")?;
    let n_head_kv = meta.opt_u64("attention.head_count_kv")?.unwrap_or(n_head);
    if n_head == 0 {
        return Err(ExportError::meta(
            &meta.path,
            &meta.key("attention.head_count"),
            "is 0",
        ));
    }
    let head_dim = meta
        .opt_u64("attention.key_length")?
        .unwrap_or(hidden / n_head);
    let theta = meta.opt_f64("rope.freq_base")?.unwrap_or(10000.0);
    set("architectures", json!([spec.hf_names[0]]));
    set("model_type", json!(model_type(spec)));
    set("vocab_size", json!(inp.vocab_rows));
    set("hidden_size", json!(hidden));
    if let Some(ff) = meta.opt_u64("feed_forward_length")? {
        set("intermediate_size", json!(ff));
    } else if meta.is_array("feed_forward_length") {
        return Err(ExportError::meta(
            &meta.path,
            &meta.key("feed_forward_length"),
            "per-layer sizes cannot be written to config.json",
        ));
    }
    set("num_hidden_layers", json!(n_layer));
    set("num_attention_heads", json!(n_head));
    set("num_key_value_heads", json!(n_head_kv));
    set("head_dim", json!(head_dim));
    if let Some(n) = meta.opt_u64("context_length")? {
        set("max_position_embeddings", json!(n));
    }
    let eps = meta
        .get(&meta.key("attention.layer_norm_rms_epsilon"))
        .and_then(|v| match v {
            qforge_formats::gguf::GgufValue::F32(x) => Some(f32_json(*x)),
            _ => None,
        })
        .ok_or_else(|| {
            ExportError::meta(
                &meta.path,
                &meta.key("attention.layer_norm_rms_epsilon"),
                "missing or not an f32",
            )
        })?;
    set("rms_norm_eps", eps);
    set("rope_theta", json!(theta));
    set("tie_word_embeddings", json!(!inp.has_output));
    set("torch_dtype", json!(inp.dtype.torch_name()));
    set("hidden_act", json!("silu"));
    set("attention_dropout", json!(0.0));
    set("initializer_range", json!(0.02));
    set("use_cache", json!(true));
    for (k, name) in [
        ("bos_token_id", "bos"),
        ("eos_token_id", "eos"),
        ("pad_token_id", "padding"),
    ] {
        if let Some(id) = meta.token_id(name) {
            set(k, json!(id));
        }
    }
    let gguf_arch = spec.gguf_arch;
    match gguf_arch {
        "llama" => {
            set("rope_scaling", rope_scaling(meta, inp, theta, head_dim)?);
            if spec.experts == Experts::Mixtral {
                set("num_local_experts", json!(meta.u64("expert_count")?));
                set("num_experts_per_tok", json!(meta.u64("expert_used_count")?));
                set("sliding_window", Value::Null);
                set("router_jitter_noise", json!(0.0));
            } else if spec.hf_names[0] == "MistralForCausalLM" {
                set("sliding_window", Value::Null);
            } else {
                set("attention_bias", json!(inp.attn_bias));
                set("mlp_bias", json!(false));
                set("pretraining_tp", json!(1));
            }
        }
        "qwen2" | "qwen3" | "qwen3moe" => {
            set("rope_scaling", rope_scaling(meta, inp, theta, head_dim)?);
            set("use_sliding_window", json!(false));
            set("sliding_window", Value::Null);
            set("max_window_layers", json!(n_layer));
            if gguf_arch != "qwen2" {
                set("attention_bias", json!(inp.attn_bias));
            }
            if gguf_arch == "qwen3moe" {
                set("num_experts", json!(meta.u64("expert_count")?));
                set("num_experts_per_tok", json!(meta.u64("expert_used_count")?));
                set(
                    "moe_intermediate_size",
                    json!(meta.u64("expert_feed_forward_length")?),
                );
                // llama.cpp's qwen3moe graph always renormalises the top-k weights
                set("norm_topk_prob", json!(true));
                set("decoder_sparse_step", json!(1));
                set("mlp_only_layers", json!([]));
            }
        }
        "gemma2" | "gemma3" => {
            set("hidden_activation", json!("gelu_pytorch_tanh"));
            set("hidden_act", json!("gelu_pytorch_tanh"));
            set("attention_bias", json!(false));
            // llama.cpp scales queries by 1/sqrt(head_dim), by 1/sqrt(n_embd/n_head) for 27B
            let is_27b = (gguf_arch == "gemma2" && n_layer == 46)
                || (gguf_arch == "gemma3" && n_layer == 62);
            set(
                "query_pre_attn_scalar",
                json!(if is_27b { hidden / n_head } else { head_dim }),
            );
            let softcap = |k: &str| -> Result<Value, ExportError> {
                Ok(meta
                    .opt_f64(k)?
                    .filter(|&v| v != 0.0)
                    .map_or(Value::Null, |v| json!(v)))
            };
            set(
                "final_logit_softcapping",
                softcap("final_logit_softcapping")?,
            );
            if gguf_arch == "gemma2" {
                set("attn_logit_softcapping", softcap("attn_logit_softcapping")?);
                let w = meta.opt_u64("attention.sliding_window")?.unwrap_or(4096);
                set("sliding_window", json!(w));
                set("layer_types", layer_types(meta, n_layer, 2)?);
            } else {
                set("attn_logit_softcapping", Value::Null);
                set("rope_scaling", rope_scaling(meta, inp, theta, head_dim)?);
                let swa_base = meta.opt_f64("rope.freq_base_swa")?.unwrap_or(10000.0);
                set("rope_local_base_freq", json!(swa_base));
                match meta.opt_u64("attention.sliding_window")?.filter(|&w| w > 0) {
                    Some(w) => {
                        set("sliding_window", json!(w));
                        set("layer_types", layer_types(meta, n_layer, 6)?);
                    }
                    None => {
                        set("sliding_window", json!(4096));
                        set(
                            "layer_types",
                            Value::Array(vec![json!("full_attention"); n_layer as usize]),
                        );
                    }
                }
            }
        }
        "phi3" => {
            set("attention_bias", json!(false));
            let rope_dims = meta.opt_u64("rope.dimension_count")?.unwrap_or(head_dim);
            set(
                "partial_rotary_factor",
                json!((rope_dims * n_head) as f64 / hidden as f64),
            );
            let orig = meta.opt_u64("rope.scaling.original_context_length")?;
            if let Some(o) = orig {
                set("original_max_position_embeddings", json!(o));
            }
            let sw = meta.opt_u64("attention.sliding_window")?.filter(|&w| w > 0);
            set("sliding_window", sw.map_or(Value::Null, |w| json!(w)));
            let long = (inp.generated)("rope_factors_long.weight")?;
            let short = (inp.generated)("rope_factors_short.weight")?;
            let scaling = match (long, short) {
                (Some(l), Some(s)) => json!({
                    "type": "longrope",
                    "long_factor": l.iter().map(|&x| f32_json(x)).collect::<Vec<_>>(),
                    "short_factor": s.iter().map(|&x| f32_json(x)).collect::<Vec<_>>(),
                }),
                (None, None) => Value::Null,
                _ => {
                    return Err(ExportError::tensor(
                        &meta.path,
                        "rope_factors_long.weight",
                        "only one of rope_factors_long/rope_factors_short is present",
                    ))
                }
            };
            set("rope_scaling", scaling);
        }
        other => {
            return Err(ExportError::meta(
                &meta.path,
                "general.architecture",
                format!("no config.json form for {other}"),
            ))
        }
    }
    Ok(Value::Object(c))
}

/// generation_config.json: the special token ids, when the vocabulary names any.
pub fn generation_config(meta: &Meta) -> Option<Value> {
    let mut c = Map::new();
    for (k, name) in [
        ("bos_token_id", "bos"),
        ("eos_token_id", "eos"),
        ("pad_token_id", "padding"),
    ] {
        if let Some(id) = meta.token_id(name) {
            c.insert(k.into(), json!(id));
        }
    }
    (!c.is_empty()).then_some(Value::Object(c))
}

/// `json.dumps(obj, indent=2, sort_keys=True) + "\n"`, as transformers writes config.json
/// (serde_json's maps are sorted here).
pub fn to_json_text(v: &Value) -> Vec<u8> {
    let mut s = serde_json::to_vec_pretty(v).unwrap_or_default();
    s.push(b'\n');
    s
}
