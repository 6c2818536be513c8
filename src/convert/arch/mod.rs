//! THE architecture table: one [`ArchSpec`] per Hugging Face architecture the converter knows,
//! holding what `convert_hf_to_gguf.py`'s model class does for it: the GGUF architecture name,
//! the transformers config defaults, the tensor-name mapping, the tensor transforms, the
//! hyperparameter metadata and the tokenizer function. Adding a family is one entry here plus a
//! small file beside this one.

mod gemma;
mod llama;
mod names;
mod params;
mod phi3;
mod qwen;

pub use names::{block_id, NameMap};

use super::config::Hparams;
use super::error::ConvertError;
use super::kv::KvList;
use serde_json::{Map, Value};
use std::path::Path;

pub use crate::convert::tokenizer::VocabKind;

/// How an architecture stores MoE experts in the checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Experts {
    /// Dense model.
    None,
    /// Mixtral: `model.layers.N.block_sparse_moe.experts.X.{w1,w2,w3}.weight`, stacked in the
    /// order w1, w2, w3 into `ffn_gate_exps`, `ffn_down_exps`, `ffn_up_exps`.
    Mixtral,
    /// Qwen2/3-MoE: `model.layers.N.mlp.experts.X.{down,gate,up}_proj.weight`, stacked in the
    /// order down, gate, up.
    Qwen,
}

/// Context handed to an architecture's hooks.
pub struct ArchCtx<'a> {
    /// The checkpoint directory.
    pub dir: &'a Path,
    /// The hyperparameters.
    pub hp: &'a Hparams,
    /// `general.file_type` to write.
    pub file_type: u32,
}

/// A generated tensor (`generate_extra_tensors`): name and F32 values (1-D).
pub type ExtraTensor = (String, Vec<f32>);

/// One architecture entry.
pub struct ArchSpec {
    /// `architectures[0]` values served by this entry.
    pub hf_names: &'static [&'static str],
    /// `general.architecture`.
    pub gguf_arch: &'static str,
    /// Fills the transformers config-class defaults the converter can read.
    pub defaults: fn(&mut Map<String, Value>),
    /// HF -> GGUF tensor names.
    pub names: &'static NameMap,
    /// Whether q_proj/k_proj are permuted from HF's rotate-half layout (`LlamaModel.permute`).
    pub undo_permute: bool,
    /// Expert layout.
    pub experts: Experts,
    /// Adds 1 to every tensor whose HF name ends in `norm.weight` (Gemma's RMSNorm).
    pub norm_plus_one: bool,
    /// Truncates `embed_tokens` to the tokenizer's real vocabulary (Gemma 3).
    pub truncate_embd: bool,
    /// HF tensor names the model class drops (`filter_tensors`).
    pub skip: fn(&str) -> bool,
    /// `set_gguf_parameters`.
    pub params: fn(&ArchCtx, &mut KvList) -> Result<(), ConvertError>,
    /// `generate_extra_tensors` (with any metadata it adds before `general.type`).
    pub extra: fn(&ArchCtx, &mut KvList) -> Result<Vec<ExtraTensor>, ConvertError>,
    /// The tokenizer path.
    pub vocab: VocabKind,
}

/// Every supported architecture.
pub static ARCHITECTURES: &[&ArchSpec] = &[
    &llama::LLAMA,
    &llama::MISTRAL,
    &llama::MIXTRAL,
    &qwen::QWEN2,
    &qwen::QWEN3,
    &qwen::QWEN3_MOE,
    &gemma::GEMMA2,
    &gemma::GEMMA3,
    &phi3::PHI3,
];

/// The entry for an HF architecture name.
pub fn lookup(hf_arch: &str) -> Option<&'static ArchSpec> {
    ARCHITECTURES
        .iter()
        .copied()
        .find(|a| a.hf_names.contains(&hf_arch))
}

/// All supported HF architecture names, comma-separated.
pub fn supported_names() -> String {
    ARCHITECTURES
        .iter()
        .flat_map(|a| a.hf_names.iter().copied())
        .collect::<Vec<_>>()
        .join(", ")
}

fn no_skip(_: &str) -> bool {
    false
}

fn no_extra(_: &ArchCtx, _: &mut KvList) -> Result<Vec<ExtraTensor>, ConvertError> {
    Ok(Vec::new())
}
