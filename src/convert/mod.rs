//! `qforge convert`: Hugging Face checkpoint directory -> GGUF, as the pinned
//! `convert_hf_to_gguf.py` writes it.
//!
//! [`HfModel::open`] reads config.json and the safetensors headers, checks every tensor's
//! presence and shape against the hyperparameters, and presents the checkpoint as a "virtual
//! GGUF": the metadata the converter would write ([`HfModel::kvs`]), the tensor list
//! ([`HfModel::tensors`]) and each tensor's data on demand ([`HfModel::tensor_values`],
//! [`HfModel::tensor_encoded`]) with the converter's transforms applied, read straight from the
//! memory-mapped safetensors and released ([`HfModel::release`]) once used. [`write_gguf`]
//! streams it to one file or a split set, a few tensors in flight.

pub mod arch;
pub mod config;
pub mod error;
pub mod hub;
pub mod kv;
pub mod materialize;
pub mod metadata;
pub mod outtype;
pub mod plan;
pub mod rowmap;
pub mod source;
pub mod tokenizer;
mod validate;
pub mod virtual_gguf;
pub mod weight_source;
pub mod write;

pub use error::ConvertError;
pub use outtype::OutType;
pub use plan::PlannedTensor;
pub use write::{write_gguf, SplitOptions};

use arch::{ArchCtx, ArchSpec};
use config::Hparams;
use kv::KvList;
use qforge_formats::gguf::{GgufValue, TensorSpec};
use source::Sources;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// `general.quantization_version` (`GGML_QUANT_VERSION`).
pub const QUANTIZATION_VERSION: u32 = 2;

/// A Hugging Face checkpoint seen as the GGUF file the converter would make of it.
pub struct HfModel {
    dir: PathBuf,
    arch: &'static ArchSpec,
    hparams: Hparams,
    sources: Sources,
    outtype: OutType,
    tensors: Vec<PlannedTensor>,
    kvs: KvList,
}

impl HfModel {
    /// Opens the checkpoint in `dir` for output type `outtype` (`None`: the converter's `auto`).
    /// Everything is checked here, before any data is read.
    pub fn open(dir: &Path, outtype: Option<OutType>) -> Result<Self, ConvertError> {
        if !dir.is_dir() {
            return Err(ConvertError::NotADirectory(dir.to_path_buf()));
        }
        let config_path = dir.join("config.json");
        if !config_path.is_file() {
            return Err(ConvertError::config(&config_path, "not found"));
        }
        let raw = config::read_json_object(&config_path)?;
        let hf_arch = match raw.get("architectures").and_then(|a| a.as_array()) {
            Some(a) if !a.is_empty() => a[0]
                .as_str()
                .ok_or_else(|| {
                    ConvertError::config(&config_path, "architectures[0] is not a string")
                })?
                .to_string(),
            _ => {
                return Err(ConvertError::config(
                    &config_path,
                    "no \"architectures\" list",
                ))
            }
        };
        let arch = arch::lookup(&hf_arch).ok_or_else(|| ConvertError::UnsupportedArchitecture {
            path: config_path.clone(),
            arch: hf_arch.clone(),
            supported: arch::supported_names(),
        })?;
        let hparams = Hparams::new(config_path.clone(), raw, arch.defaults);
        let sources = source::open(dir, arch.skip)?;
        let outtype = outtype.unwrap_or_else(|| guess_outtype(&sources));
        let cx = ArchCtx {
            dir,
            hp: &hparams,
            file_type: outtype.file_type(),
        };
        let mut kvs = KvList::new();
        kvs.string("general.architecture", arch.gguf_arch);
        let extra = (arch.extra)(&cx, &mut kvs)?;
        let config_value = serde_json::Value::Object(hparams.map.clone());
        // the tokenizer is read after the tensor checks, unless the plan needs it (Gemma 3)
        let mut tokenizer_kvs = None;
        let vocab_rows = if arch.truncate_embd {
            let t = tokenizer::tokenizer_metadata(dir, arch.vocab, &config_value)?;
            let rows = real_vocab_rows(dir, &t)?;
            tokenizer_kvs = Some(t);
            Some(rows)
        } else {
            None
        };
        let tensors = plan::plan(arch, &hparams, &sources, extra, outtype, vocab_rows)?;
        validate::check(arch, &hparams, &sources, &tensors, dir)?;
        let tokenizer_kvs = match tokenizer_kvs {
            Some(t) => t,
            None => tokenizer::tokenizer_metadata(dir, arch.vocab, &config_value)?,
        };

        kvs.string("general.type", "model");
        let counts = metadata::param_count(
            tensors
                .iter()
                .map(|t| (t.name.as_str(), t.shape.as_slice())),
        );
        let mut who = metadata::authorship(dir, &hparams.raw, counts.total as i64);
        if who.size_label.is_none() && counts.total > 0 {
            who.size_label = Some(metadata::size_label(counts));
        }
        metadata::write_general(&mut kvs, dir, &who);
        (arch.params)(&cx, &mut kvs)?;
        kvs.u32("general.quantization_version", QUANTIZATION_VERSION);
        kvs.extend(tokenizer_kvs);
        Ok(HfModel {
            dir: dir.to_path_buf(),
            arch,
            hparams,
            sources,
            outtype,
            tensors,
            kvs,
        })
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `general.architecture`.
    pub fn gguf_arch(&self) -> &'static str {
        self.arch.gguf_arch
    }

    /// The hyperparameters as the converter reads them.
    pub fn hparams(&self) -> &Hparams {
        &self.hparams
    }

    /// The resolved output type.
    pub fn outtype(&self) -> OutType {
        self.outtype
    }

    /// The metadata, in the converter's order.
    pub fn kvs(&self) -> &[(String, GgufValue)] {
        self.kvs.entries()
    }

    /// The output tensors, in the converter's order.
    pub fn tensors(&self) -> &[PlannedTensor] {
        &self.tensors
    }

    /// Tensor specs for a GGUF writer.
    pub fn tensor_specs(&self) -> Vec<TensorSpec> {
        self.tensors
            .iter()
            .map(|t| TensorSpec {
                name: t.name.clone(),
                ty: t.ty,
                dims: t.dims(),
            })
            .collect()
    }

    /// Tensor `i`'s values with the converter's transforms, before the output-type conversion.
    pub fn tensor_values(&self, i: usize) -> Result<Vec<f32>, ConvertError> {
        materialize::values(&self.sources, &self.tensors[i])
    }

    /// Tensor `i`'s data encoded in its output type.
    pub fn tensor_bytes(&self, i: usize) -> Result<Vec<u8>, ConvertError> {
        Ok(self.tensor_encoded(i)?.into_owned())
    }

    /// Tensor `i`'s data encoded in its output type, borrowed from the memory-mapped checkpoint
    /// when it is stored there as it is (same dtype, rows in order), computed otherwise.
    pub fn tensor_encoded(&self, i: usize) -> Result<Cow<'_, [u8]>, ConvertError> {
        materialize::encoded(&self.sources, &self.tensors[i])
    }

    /// Lets the kernel drop the mapped checkpoint pages tensor `i` was computed from; call it
    /// once the tensor's data has been used (a later request reads them from the files again).
    pub fn release(&self, i: usize) {
        for piece in &self.tensors[i].pieces {
            if let plan::Input::Source(s) = piece.input {
                self.sources.release(&self.sources.tensors[s]);
            }
        }
    }
}

/// `auto`: the dtype of the first tensor with at least 2 dimensions (bf16 -> BF16, f16 -> F16),
/// F16 otherwise.
fn guess_outtype(sources: &Sources) -> OutType {
    use qforge_formats::safetensors::Dtype;
    for t in &sources.tensors {
        if t.shape.len() < 2 {
            continue;
        }
        match t.dtype {
            Dtype::BF16 => return OutType::Bf16,
            Dtype::F16 => return OutType::F16,
            _ => {}
        }
    }
    OutType::F16
}

/// Gemma 3's real vocabulary: the SentencePiece token count, or `len(vocab) + len(added_tokens)`
/// of tokenizer.json.
fn real_vocab_rows(dir: &Path, tok: &[(String, GgufValue)]) -> Result<u64, ConvertError> {
    if dir.join("tokenizer.model").is_file() {
        let n = tok
            .iter()
            .find(|(k, _)| k == "tokenizer.ggml.tokens")
            .and_then(|(_, v)| v.as_array())
            .map(|a| a.len() as u64);
        return n.ok_or_else(|| ConvertError::config(dir.join("tokenizer.model"), "no tokens"));
    }
    let path = dir.join("tokenizer.json");
    let j = config::read_json_object(&path)?;
    let vocab = j
        .get("model")
        .and_then(|m| m.get("vocab"))
        .and_then(|v| v.as_object())
        .map(|v| v.len())
        .ok_or_else(|| ConvertError::config(&path, "no model.vocab object"))?;
    let added = j
        .get("added_tokens")
        .and_then(|a| a.as_array())
        .map(|a| a.len())
        .unwrap_or(0);
    Ok((vocab + added) as u64)
}
