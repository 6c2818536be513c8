//! Hyper-parameters of a model, read from GGUF metadata as llama.cpp reads them: the common keys
//! here, the architecture-specific ones in [`super::arch`].

use super::arch::Arch;
use super::error::ModelError;
use qforge_formats::gguf::{GgufArray, GgufHeader, GgufValue};
use std::path::Path;

/// Hyper-parameters of a model (keys are `{arch}.*`; `llama.*` named below).
#[derive(Clone, Debug, PartialEq)]
pub struct HParams {
    /// The architecture (`general.architecture`).
    pub arch: Arch,
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
    /// `llama.rope.scaling.attn_factor` (default 1): scales rope's cosines and sines.
    pub rope_attn_factor: f32,
    /// `llama.rope.scaling.original_context_length`, else the training context: phi3 LongRoPE
    /// uses its long factors for contexts above it.
    pub n_ctx_orig_yarn: usize,
    /// `llama.attention.layer_norm_rms_epsilon`.
    pub rms_eps: f32,
    /// Experts per MoE layer (`llama.expert_count`, 0 for a dense model).
    pub n_expert: usize,
    /// Experts used per token (`llama.expert_used_count`).
    pub n_expert_used: usize,
    /// Feed-forward width of each expert (`n_ff` for llama; qwen3moe:
    /// `expert_feed_forward_length`, else `n_ff / n_expert_used`).
    pub n_ff_exp: usize,
    /// Sliding window of the window layers (`attention.sliding_window`), 0 for none.
    pub n_swa: usize,
    /// Which layers use the sliding window (`attention.sliding_window_pattern`).
    pub swa_layers: Vec<bool>,
    /// Rope frequency base of the window layers (`rope.freq_base_swa`).
    pub rope_freq_base_swa: f32,
    /// Rope frequency scale of the window layers.
    pub rope_freq_scale_swa: f32,
    /// Attention logit soft-capping (`attn_logit_softcapping`), 0 for none.
    pub attn_softcap: f32,
    /// Final logit soft-capping (`final_logit_softcapping`), 0 for none.
    pub final_softcap: f32,
    /// A scale applied to Q before attention (then run with scale 1), as gemma and phi3 do;
    /// `None`: scores scaled by `1/sqrt(head_dim)` inside attention.
    pub q_scale: Option<f32>,
    /// A scale applied to the token embeddings (gemma: `sqrt(n_embd)`).
    pub embd_scale: Option<f32>,
}

fn key_err(path: &Path, key: &str, reason: &str) -> ModelError {
    ModelError::Key {
        path: path.to_path_buf(),
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

/// Typed access to one architecture's `{arch}.*` keys.
pub(super) struct Meta<'a> {
    pub h: &'a GgufHeader,
    pub path: &'a Path,
    pub arch: &'a str,
}

impl Meta<'_> {
    /// The error for key `{arch}.{key}`.
    pub fn err(&self, key: &str, reason: &str) -> ModelError {
        key_err(self.path, &format!("{}.{key}", self.arch), reason)
    }

    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.h.get(&format!("{}.{key}", self.arch))
    }

    pub fn uint(&self, key: &str) -> Result<Option<usize>, ModelError> {
        let full = format!("{}.{key}", self.arch);
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_int() {
                Some(i) if (0..=u32::MAX as i128).contains(&i) => Ok(Some(i as usize)),
                _ => Err(key_err(self.path, &full, "is not an unsigned integer")),
            },
        }
    }

    pub fn req_uint(&self, key: &str) -> Result<usize, ModelError> {
        self.uint(key)?
            .ok_or_else(|| key_err(self.path, &format!("{}.{key}", self.arch), "is missing"))
    }

    pub fn float(&self, key: &str) -> Result<Option<f32>, ModelError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(|f| Some(f as f32)).ok_or_else(|| {
                key_err(self.path, &format!("{}.{key}", self.arch), "is not a float")
            }),
        }
    }
}

impl HParams {
    /// Reads the hyper-parameters of the model described by `h` (any supported architecture).
    pub fn from_gguf(h: &GgufHeader, path: &Path) -> Result<HParams, ModelError> {
        let name = h.architecture().unwrap_or("");
        let arch = Arch::from_name(name).ok_or_else(|| ModelError::Architecture {
            path: path.to_path_buf(),
            arch: name.to_string(),
        })?;
        let m = Meta {
            h,
            path,
            arch: arch.name(),
        };
        let n_embd = m.req_uint("embedding_length")?;
        let n_layer = m.req_uint("block_count")?;
        let n_ff = if arch == Arch::Qwen3Moe {
            m.uint("feed_forward_length")?.unwrap_or(0)
        } else {
            m.req_uint("feed_forward_length")?
        };
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
                     (this implementation needs them equal and even)"
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
                .ok_or_else(|| m.err("vocab_size", "is missing (and no token list)"))?,
        };
        let n_expert = m.uint("expert_count")?.unwrap_or(0);
        let n_expert_used = m.uint("expert_used_count")?.unwrap_or(0);
        if n_expert > 0 && (n_expert_used == 0 || n_expert_used > n_expert) {
            return Err(m.err("expert_used_count", "must be in 1..=expert_count"));
        }
        let rope_freq_base = m.float("rope.freq_base")?.unwrap_or(10000.0);
        let n_ctx_train = m.uint("context_length")?.unwrap_or(0);
        let n_ctx_orig_yarn = match m.uint("rope.scaling.original_context_length")? {
            Some(n) if n > 0 => n,
            _ => n_ctx_train,
        };
        let mut hp = HParams {
            arch,
            n_vocab,
            n_ctx_train,
            n_embd,
            n_layer,
            n_ff,
            n_head,
            n_head_kv,
            head_dim,
            n_rot,
            rope_freq_base,
            rope_freq_scale,
            rope_attn_factor: m.float("rope.scaling.attn_factor")?.unwrap_or(1.0),
            n_ctx_orig_yarn,
            rms_eps: m
                .float("attention.layer_norm_rms_epsilon")?
                .ok_or_else(|| m.err("attention.layer_norm_rms_epsilon", "is missing"))?,
            n_expert,
            n_expert_used,
            n_ff_exp: n_ff,
            n_swa: 0,
            swa_layers: vec![false; n_layer],
            rope_freq_base_swa: rope_freq_base,
            rope_freq_scale_swa: rope_freq_scale,
            attn_softcap: 0.0,
            final_softcap: 0.0,
            q_scale: None,
            embd_scale: None,
        };
        arch.read_hparams(&m, &mut hp)?;
        Ok(hp)
    }

    /// Whether layer `il` uses the sliding window.
    pub fn is_swa(&self, il: usize) -> bool {
        self.n_swa > 0 && self.swa_layers.get(il).copied().unwrap_or(false)
    }

    /// Sets the window layers from `{arch}.attention.sliding_window_pattern` as llama.cpp's
    /// `load_swa_pattern` does: a per-layer bool array, else a period `n` (default
    /// `default_period`) where layer `il` uses the window unless `il % n == n - 1` (every layer
    /// for period 0).
    pub(super) fn load_swa_pattern(
        &mut self,
        m: &Meta<'_>,
        default_period: usize,
    ) -> Result<(), ModelError> {
        let key = "attention.sliding_window_pattern";
        if let Some(arr) = m.get(key).and_then(|v| v.as_array()) {
            let GgufArray::Bool(layers) = arr else {
                return Err(m.err(key, "is not a bool array"));
            };
            let layers = layers.clone();
            if layers.len() != self.n_layer {
                return Err(m.err(key, "does not have one entry per layer"));
            }
            self.swa_layers = layers;
            return Ok(());
        }
        let n = m.uint(key)?.unwrap_or(default_period);
        self.swa_layers = (0..self.n_layer)
            .map(|il| n == 0 || il % n < n - 1)
            .collect();
        Ok(())
    }
}
