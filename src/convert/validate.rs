//! Checks, before any data is read, that the tensors the architecture needs are present and that
//! every tensor's shape agrees with the hyperparameters. Errors name the file and tensor.

use super::arch::{ArchSpec, Experts};
use super::config::Hparams;
use super::error::ConvertError;
use super::plan::{Input, PlannedTensor};
use super::source::Sources;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Checks presence and shapes.
pub fn check(
    arch: &ArchSpec,
    hp: &Hparams,
    sources: &Sources,
    tensors: &[PlannedTensor],
    dir: &Path,
) -> Result<(), ConvertError> {
    let n_embd = hp.req_u64(&["hidden_size", "n_embd"])?;
    let n_head = hp.req_u64(&["num_attention_heads", "n_head"])?;
    let n_kv = hp
        .opt_u64(&["num_key_value_heads", "n_kv_heads"])?
        .unwrap_or(n_head);
    let n_blocks = hp.req_u64(&["n_layers", "num_hidden_layers", "n_layer", "num_layers"])?;
    let n_ff = hp.opt_u64(&["intermediate_size"])?;
    let head_dim = match hp.map.get("head_dim").filter(|v| !v.is_null()) {
        Some(v) => hp.as_u64("head_dim", v)?,
        None if n_head > 0 => n_embd / n_head,
        None => return Err(ConvertError::config(&hp.path, "num_attention_heads is 0")),
    };
    let n_expert = hp.opt_u64(&["num_local_experts", "num_experts"])?;
    let n_ff_exp = hp.opt_u64(&["moe_intermediate_size"])?.or(n_ff);
    let by_name: HashMap<&str, &PlannedTensor> =
        tensors.iter().map(|t| (t.name.as_str(), t)).collect();

    // where a missing tensor would have been: the index when sharded, else the single file
    let container: PathBuf = if sources.files.len() > 1
        || dir
            .join(qforge_formats::safetensors::INDEX_FILE_NAME)
            .is_file()
    {
        dir.join(qforge_formats::safetensors::INDEX_FILE_NAME)
    } else {
        sources.files[0].path().to_path_buf()
    };
    let hf_name = |gguf: &str| -> String {
        let (base, suffix) = gguf.rsplit_once('.').unwrap_or((gguf, ""));
        if let Some(rest) = base.strip_prefix("blk.") {
            if let Some((b, g)) = rest.split_once('.') {
                if let Some((h, _)) = arch.names.block.iter().find(|(_, x)| *x == g) {
                    return format!("model.layers.{b}.{h}.{suffix}");
                }
            }
        }
        arch.names
            .global
            .iter()
            .find(|(_, x)| *x == base)
            .map(|(h, _)| format!("{h}.{suffix}"))
            .unwrap_or_else(|| gguf.to_string())
    };
    let missing = |gguf: &str| {
        ConvertError::tensor(
            &container,
            hf_name(gguf),
            format!("missing (needed for {gguf})"),
        )
    };
    for name in ["token_embd.weight", "output_norm.weight"] {
        if !by_name.contains_key(name) {
            return Err(missing(name));
        }
    }
    for b in 0..n_blocks {
        let has = |g: &str| by_name.contains_key(format!("blk.{b}.{g}.weight").as_str());
        let mut need = vec!["attn_norm", "attn_output"];
        if !has("attn_qkv") {
            need.extend(["attn_q", "attn_k", "attn_v"]);
        }
        match arch.experts {
            Experts::None => need.push("ffn_down"),
            _ if has("ffn_down") => {}
            _ => need.extend([
                "ffn_gate_inp",
                "ffn_gate_exps",
                "ffn_up_exps",
                "ffn_down_exps",
            ]),
        }
        for g in need {
            if !has(g) {
                return Err(missing(&format!("blk.{b}.{g}.weight")));
            }
        }
    }

    let q = n_head * head_dim;
    let kvd = n_kv * head_dim;
    for t in tensors {
        let (base, suffix) = t.name.rsplit_once('.').unwrap_or((&t.name, ""));
        let kind = base
            .strip_prefix("blk.")
            .and_then(|r| r.split_once('.'))
            .map(|(_, g)| g)
            .unwrap_or(base);
        let bias = suffix == "bias";
        let want: Option<Vec<Option<u64>>> = match (kind, bias) {
            ("token_embd" | "output", false) => Some(vec![None, Some(n_embd)]),
            (
                "output_norm" | "attn_norm" | "ffn_norm" | "post_attention_norm" | "post_ffw_norm",
                _,
            ) => Some(vec![Some(n_embd)]),
            ("attn_q", false) => Some(vec![Some(q), Some(n_embd)]),
            ("attn_k" | "attn_v", false) => Some(vec![Some(kvd), Some(n_embd)]),
            ("attn_q", true) => Some(vec![Some(q)]),
            ("attn_k" | "attn_v", true) => Some(vec![Some(kvd)]),
            ("attn_output", false) => Some(vec![Some(n_embd), Some(q)]),
            ("attn_qkv", false) => Some(vec![Some(q + 2 * kvd), Some(n_embd)]),
            ("attn_q_norm" | "attn_k_norm", _) => Some(vec![Some(head_dim)]),
            ("ffn_gate", false) => Some(vec![n_ff, Some(n_embd)]),
            ("ffn_up", false) if arch.gguf_arch == "phi3" => {
                Some(vec![n_ff.map(|f| 2 * f), Some(n_embd)])
            }
            ("ffn_up", false) => Some(vec![n_ff, Some(n_embd)]),
            ("ffn_down", false) => Some(vec![Some(n_embd), n_ff]),
            ("ffn_gate_inp", false) => Some(vec![n_expert, Some(n_embd)]),
            ("ffn_gate_exps" | "ffn_up_exps", false) => {
                Some(vec![n_expert, n_ff_exp, Some(n_embd)])
            }
            ("ffn_down_exps", false) => Some(vec![n_expert, Some(n_embd), n_ff_exp]),
            _ => None,
        };
        let Some(want) = want else { continue };
        let ok = want.len() == t.shape.len()
            && want
                .iter()
                .zip(&t.shape)
                .all(|(w, &s)| w.is_none_or(|w| w == s));
        if !ok {
            let shown: Vec<String> = want
                .iter()
                .map(|w| w.map_or("*".to_string(), |w| w.to_string()))
                .collect();
            let (path, stored, got) = match t.pieces.first().map(|p| &p.input) {
                Some(Input::Source(i)) => {
                    let s = &sources.tensors[*i];
                    (sources.path_of(s), s.stored_name.clone(), s.shape.clone())
                }
                _ => (hp.path.clone(), t.name.clone(), t.shape.clone()),
            };
            let got = if t.pieces.len() > 1 {
                t.shape.clone()
            } else {
                got
            };
            return Err(ConvertError::tensor(
                path,
                stored,
                format!(
                    "shape {got:?} does not match config.json ({} expects [{}])",
                    t.name,
                    shown.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
