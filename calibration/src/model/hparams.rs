//! Hyper-parameters of a llama-architecture model, read from GGUF metadata as llama.cpp reads them.

use super::error::ModelError;
use qforge_formats::gguf::{GgufHeader, GgufValue};
use std::path::Path;

/// Hyper-parameters of a llama-architecture model (dense or Mixtral-style MoE).
#[derive(Clone, Debug, PartialEq)]
pub struct HParams {
    /// Vocabulary size (`llama.vocab_size`, else the token list's length, else the embedding rows).
    pub n_vocab: usize,
    /// Context length of training (`llama.context_length`).
    pub n_ctx_train: usize,
    /// Residual width (`llama.embedding_length`).
    pub n_embd: usize,
    /// Layers (`llama.block_count`).
    pub n_layer: usize,
    /// Feed-forward width, per expert for MoE (`llama.feed_forward_length`).
    pub n_ff: usize,
    /// Query heads (`llama.attention.head_count`).
    pub n_head: usize,
    /// Key/value heads (`llama.attention.head_count_kv`, default `n_head`).
    pub n_head_kv: usize,
    /// Head dimension (`llama.attention.key_length`, default `n_embd / n_head`).
    pub head_dim: usize,
    /// Rotated dimensions per head (`llama.rope.dimension_count`, default `head_dim`).
    pub n_rot: usize,
    /// `llama.rope.freq_base` (default 10000).
    pub rope_freq_base: f32,
    /// `1 / llama.rope.scaling.factor` for linear scaling, else 1.
    pub rope_freq_scale: f32,
    /// `llama.attention.layer_norm_rms_epsilon`.
    pub rms_eps: f32,
    /// Experts per MoE layer (`llama.expert_count`, 0 for a dense model).
    pub n_expert: usize,
    /// Experts used per token (`llama.expert_used_count`).
    pub n_expert_used: usize,
}

fn key_err(path: &Path, key: &str, reason: &str) -> ModelError {
    ModelError::Key {
        path: path.to_path_buf(),
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

struct Meta<'a> {
    h: &'a GgufHeader,
    path: &'a Path,
    arch: &'a str,
}

impl Meta<'_> {
    fn get(&self, key: &str) -> Option<&GgufValue> {
        self.h.get(&format!("{}.{key}", self.arch))
    }

    fn uint(&self, key: &str) -> Result<Option<usize>, ModelError> {
        let full = format!("{}.{key}", self.arch);
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_int() {
                Some(i) if (0..=u32::MAX as i128).contains(&i) => Ok(Some(i as usize)),
                _ => Err(key_err(self.path, &full, "is not an unsigned integer")),
            },
        }
    }

    fn req_uint(&self, key: &str) -> Result<usize, ModelError> {
        self.uint(key)?
            .ok_or_else(|| key_err(self.path, &format!("{}.{key}", self.arch), "is missing"))
    }

    fn float(&self, key: &str) -> Result<Option<f32>, ModelError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(|f| Some(f as f32)).ok_or_else(|| {
                key_err(self.path, &format!("{}.{key}", self.arch), "is not a float")
            }),
        }
    }
}

impl HParams {
    /// Reads the hyper-parameters of the llama-architecture model described by `h`.
    pub fn from_gguf(h: &GgufHeader, path: &Path) -> Result<HParams, ModelError> {
        let arch = h.architecture().unwrap_or("");
        if arch != "llama" {
            return Err(ModelError::Architecture {
                path: path.to_path_buf(),
                arch: arch.to_string(),
            });
        }
        let m = Meta { h, path, arch };
        let n_embd = m.req_uint("embedding_length")?;
        let n_layer = m.req_uint("block_count")?;
        let n_ff = m.req_uint("feed_forward_length")?;
        let n_head = m.req_uint("attention.head_count")?;
        let n_head_kv = m.uint("attention.head_count_kv")?.unwrap_or(n_head);
        if n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 || n_embd == 0 || n_layer == 0 {
            return Err(ModelError::Unsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "n_embd {n_embd}, n_layer {n_layer}, n_head {n_head}, n_head_kv {n_head_kv}"
                ),
            });
        }
        let head_dim = m.uint("attention.key_length")?.unwrap_or(n_embd / n_head);
        let head_dim_v = m.uint("attention.value_length")?.unwrap_or(head_dim);
        let n_rot = m.uint("rope.dimension_count")?.unwrap_or(head_dim);
        if head_dim_v != head_dim || n_rot != head_dim || head_dim % 2 != 0 {
            return Err(ModelError::Unsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "key length {head_dim}, value length {head_dim_v}, rope dims {n_rot} \
                     (llama needs them equal and even)"
                ),
            });
        }
        let scaling = m.get("rope.scaling.type").and_then(|v| v.as_str());
        let factor = m.float("rope.scaling.factor")?.unwrap_or(0.0);
        let rope_freq_scale = match scaling {
            None | Some("none") => 1.0,
            Some("linear") if factor > 0.0 => 1.0 / factor,
            Some("linear") => 1.0,
            Some(other) => {
                return Err(ModelError::Unsupported {
                    path: path.to_path_buf(),
                    reason: format!("rope scaling type '{other}'"),
                })
            }
        };
        let n_vocab = match m.uint("vocab_size")? {
            Some(n) => n,
            None => h
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.as_array())
                .map(|a| a.len())
                .or_else(|| {
                    h.tensor("token_embd.weight")
                        .and_then(|t| t.dims.get(1))
                        .map(|&d| d as usize)
                })
                .ok_or_else(|| {
                    key_err(path, "llama.vocab_size", "is missing (and no token list)")
                })?,
        };
        let n_expert = m.uint("expert_count")?.unwrap_or(0);
        let n_expert_used = m.uint("expert_used_count")?.unwrap_or(0);
        if n_expert > 0 && (n_expert_used == 0 || n_expert_used > n_expert) {
            return Err(key_err(
                path,
                "llama.expert_used_count",
                "must be in 1..=expert_count",
            ));
        }
        Ok(HParams {
            n_vocab,
            n_ctx_train: m.uint("context_length")?.unwrap_or(0),
            n_embd,
            n_layer,
            n_ff,
            n_head,
            n_head_kv,
            head_dim,
            n_rot,
            rope_freq_base: m.float("rope.freq_base")?.unwrap_or(10000.0),
            rope_freq_scale,
            rms_eps: m
                .float("attention.layer_norm_rms_epsilon")?
                .ok_or_else(|| {
                    key_err(path, "llama.attention.layer_norm_rms_epsilon", "is missing")
                })?,
            n_expert,
            n_expert_used,
        })
    }
}
