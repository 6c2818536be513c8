//! The exported tensor list: every GGUF tensor's Hugging Face name (the convert table's name map
//! read backwards) and the inverse of the transform the converter applied to it.

use super::error::ExportError;
use super::meta::Meta;
use crate::convert::arch::{ArchSpec, Experts};
use qforge_formats::gguf::TensorInfo;

/// What undoes the converter's transform on one tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inverse {
    /// Stored as HF stores it.
    None,
    /// `LlamaModel.permute` undone for this many heads (Q/K of Llama-family models).
    Unpermute(u64),
    /// Gemma's RMSNorm weights are stored `+ 1` in GGUF.
    SubtractOne,
}

/// One tensor of the exported checkpoint.
#[derive(Clone, Debug)]
pub struct ExportTensor {
    /// Hugging Face name.
    pub hf_name: String,
    /// Shape, outermost first.
    pub shape: Vec<u64>,
    /// Index of the GGUF tensor in the set's tensor order.
    pub source: usize,
    /// For a slice of a stacked expert tensor: the expert's index.
    pub expert: Option<u64>,
    /// The inverse transform.
    pub inverse: Inverse,
}

/// Tensors that the converter generated from config.json; they go back into config.json.
pub const GENERATED: &[&str] = &[
    "rope_freqs.weight",
    "rope_factors_long.weight",
    "rope_factors_short.weight",
];

/// The HF names a GGUF base name (without `.weight`/`.bias`) comes from, following the table.
fn hf_candidates(spec: &ArchSpec, base: &str) -> Vec<String> {
    if let Some(rest) = base.strip_prefix("blk.") {
        let Some((bid, tail)) = rest.split_once('.') else {
            return Vec::new();
        };
        if bid.parse::<u64>().map(|b| b.to_string()) != Ok(bid.to_string()) {
            return Vec::new();
        }
        return spec
            .names
            .block
            .iter()
            .filter(|(_, g)| *g == tail)
            .map(|(h, _)| format!("model.layers.{bid}.{h}"))
            .collect();
    }
    spec.names
        .global
        .iter()
        .filter(|(_, g)| *g == base)
        .map(|(h, _)| h.to_string())
        .collect()
}

/// Picks among several HF names for one GGUF name: the MoE router is `block_sparse_moe.gate` in
/// Mixtral and `mlp.gate` elsewhere; Phi-3's `ffn_up` is the fused `mlp.gate_up_proj`.
fn disambiguate(spec: &ArchSpec, names: Vec<String>) -> Option<String> {
    if names.len() <= 1 {
        return names.into_iter().next();
    }
    let wanted: &[&str] = match spec.experts {
        Experts::Mixtral => &["block_sparse_moe.gate", "gate_up_proj"],
        _ => &["mlp.gate", "gate_up_proj"],
    };
    names
        .into_iter()
        .find(|n| wanted.iter().any(|w| n.ends_with(w)))
}

/// `blk.N.ffn_{gate,down,up}_exps.weight` -> the per-expert HF name pattern (`{x}` = expert).
fn expert_pattern(spec: &ArchSpec, name: &str) -> Option<String> {
    let rest = name.strip_prefix("blk.")?;
    let (bid, tail) = rest.split_once('.')?;
    let which = tail.strip_prefix("ffn_")?.strip_suffix("_exps.weight")?;
    let hf = match (spec.experts, which) {
        (Experts::Mixtral, "gate") => "block_sparse_moe.experts.{x}.w1",
        (Experts::Mixtral, "down") => "block_sparse_moe.experts.{x}.w2",
        (Experts::Mixtral, "up") => "block_sparse_moe.experts.{x}.w3",
        (Experts::Qwen, "gate") => "mlp.experts.{x}.gate_proj",
        (Experts::Qwen, "down") => "mlp.experts.{x}.down_proj",
        (Experts::Qwen, "up") => "mlp.experts.{x}.up_proj",
        _ => return None,
    };
    Some(format!("model.layers.{bid}.{hf}.weight"))
}

/// The exported tensors for `tensors` (the GGUF set's tensors in order), in that order with
/// stacked experts split in place.
pub fn plan(
    spec: &ArchSpec,
    meta: &Meta,
    tensors: &[&TensorInfo],
) -> Result<Vec<ExportTensor>, ExportError> {
    let n_head = meta.u64("attention.head_count")?;
    let n_head_kv = meta.opt_u64("attention.head_count_kv")?.unwrap_or(n_head);
    let ff = meta.opt_u64("feed_forward_length")?;
    let mut out = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        if GENERATED.contains(&t.name.as_str()) {
            continue;
        }
        let err = |reason: String| ExportError::tensor(&meta.path, &t.name, reason);
        let shape: Vec<u64> = t.dims.iter().rev().copied().collect();
        if let Some(pattern) = expert_pattern(spec, &t.name) {
            if shape.len() != 3 {
                return Err(err(format!("expected 3 dimensions, got {:?}", t.dims)));
            }
            for x in 0..shape[0] {
                out.push(ExportTensor {
                    hf_name: pattern.replace("{x}", &x.to_string()),
                    shape: shape[1..].to_vec(),
                    source: i,
                    expert: Some(x),
                    inverse: Inverse::None,
                });
            }
            continue;
        }
        let (base, suffix) = match t.name.rsplit_once('.') {
            Some((b, s @ ("weight" | "bias"))) => (b, s),
            _ => (t.name.as_str(), ""),
        };
        let hf_base = disambiguate(spec, hf_candidates(spec, base)).ok_or_else(|| {
            err(format!(
                "no Hugging Face name for it in {}",
                spec.hf_names[0]
            ))
        })?;
        let hf_name = if suffix.is_empty() {
            hf_base
        } else {
            format!("{hf_base}.{suffix}")
        };
        if hf_name.ends_with("gate_up_proj.weight") {
            if let Some(ff) = ff {
                if shape.first() != Some(&(2 * ff)) {
                    return Err(err(format!(
                        "a fused gate/up projection needs {} rows, got {:?}",
                        2 * ff,
                        shape
                    )));
                }
            }
        }
        let mut inverse = Inverse::None;
        if spec.undo_permute {
            let q = hf_name.ends_with("q_proj.weight") || hf_name.ends_with("q_proj.bias");
            let k = hf_name.ends_with("k_proj.weight") || hf_name.ends_with("k_proj.bias");
            if q || k {
                let heads = if k && n_head_kv != n_head {
                    n_head_kv
                } else {
                    n_head
                };
                let rows = shape.first().copied().unwrap_or(0);
                if heads == 0 || rows % (heads * 2) != 0 {
                    return Err(err(format!(
                        "{rows} rows cannot be split into {heads} heads of rotary pairs"
                    )));
                }
                inverse = Inverse::Unpermute(heads);
            }
        }
        if spec.norm_plus_one && hf_name.ends_with("norm.weight") {
            inverse = Inverse::SubtractOne;
        }
        out.push(ExportTensor {
            hf_name,
            shape,
            source: i,
            expert: None,
            inverse,
        });
    }
    let mut names: Vec<&str> = out.iter().map(|t| t.hf_name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(ExportError::tensor(
            &meta.path,
            w[0],
            "two GGUF tensors map to this Hugging Face name",
        ));
    }
    Ok(out)
}
