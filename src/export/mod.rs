//! `qforge export-hf`: a GGUF model back to a Hugging Face checkpoint directory.
//!
//! The inverse of `qforge convert`, driven by the same architecture table
//! ([`crate::convert::arch`]): GGUF tensor names are mapped back to HF names, the converter's
//! transforms undone (Q/K permutation of Llama-family models, Gemma's `norm + 1`, stacked experts
//! split into per-expert tensors; fused tensors such as Phi-3's `qkv_proj` stay fused, as HF
//! stores them), and any tensor type is dequantized. The directory gets the safetensors data
//! (sharded with `model.safetensors.index.json` above a size, as transformers shards it),
//! config.json, generation_config.json and the tokenizer files rebuilt from the GGUF metadata.
//! Everything is written into a temporary directory beside the output and renamed on success.

pub mod arch;
pub mod config;
pub mod data;
pub mod error;
pub mod meta;
pub mod rope;
pub mod tensors;

pub use data::ExportDtype;
pub use error::ExportError;

use crate::convert::tokenizer::hf_files_from_gguf;
use config::ConfigInputs;
use meta::Meta;
use qforge_formats::gguf::split::GgufSet;
use qforge_formats::gguf::{ReadMode, TensorInfo};
use qforge_formats::safetensors::{self as st, ShardOptions, TensorSpec};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Options of an export.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Output dtype; `None` picks one from the GGUF tensor types ([`ExportDtype::default_for`]).
    pub dtype: Option<ExportDtype>,
    /// Largest tensor data per safetensors shard, in bytes (transformers' default is 5 GB).
    pub max_shard_size: u64,
    /// The HF architecture to export as (`MistralForCausalLM` for a `llama` GGUF ...), when the
    /// metadata cannot tell.
    pub architecture: Option<String>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            dtype: None,
            max_shard_size: ShardOptions::default().max_shard_size,
            architecture: None,
        }
    }
}

/// What an export wrote.
#[derive(Clone, Debug)]
pub struct ExportSummary {
    /// The checkpoint directory.
    pub dir: PathBuf,
    /// `architectures[0]` of config.json.
    pub architecture: &'static str,
    /// The dtype of the tensors.
    pub dtype: ExportDtype,
    /// Number of tensors written.
    pub n_tensors: usize,
    /// The safetensors files (index excluded), in the output directory.
    pub shards: Vec<PathBuf>,
}

/// Removes the temporary directory unless the export completed.
struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn check_output(out: &Path) -> Result<(), ExportError> {
    if out.exists() {
        let empty = out.is_dir()
            && std::fs::read_dir(out)
                .map_err(|e| ExportError::io(out, e))?
                .next()
                .is_none();
        if !empty {
            return Err(ExportError::Output {
                path: out.to_path_buf(),
                reason: "exists and is not an empty directory".into(),
            });
        }
    }
    Ok(())
}

/// Exports the GGUF model at `gguf` (first file of a split set, if split) into the directory
/// `out`, which must not exist or be empty. Everything is checked before any data is written.
pub fn export_hf(
    gguf: &Path,
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportSummary, ExportError> {
    check_output(out)?;
    let set = GgufSet::open(gguf, ReadMode::Mmap)?;
    let header = set.first().header();
    let meta = Meta::new(gguf, &header.kvs)?;
    let spec = arch::choose(&meta, opts.architecture.as_deref())?;
    let infos: Vec<(usize, &TensorInfo)> = set.tensors().collect();
    let just: Vec<&TensorInfo> = infos.iter().map(|(_, t)| *t).collect();
    let plan = tensors::plan(spec, &meta, &just)?;
    let dtype = opts
        .dtype
        .unwrap_or_else(|| ExportDtype::default_for(just.iter().copied()));

    let read_values = |i: usize, t: &tensors::ExportTensor| {
        let (shard, info) = infos[i];
        data::values(&set.shards()[shard], info, t)
    };
    let by_name: HashMap<&str, usize> = just
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let generated = |name: &str| -> Result<Option<Vec<f32>>, ExportError> {
        let Some(&i) = by_name.get(name) else {
            return Ok(None);
        };
        let t = tensors::ExportTensor {
            hf_name: name.to_string(),
            shape: just[i].dims.iter().rev().copied().collect(),
            source: i,
            expert: None,
            inverse: tensors::Inverse::None,
        };
        read_values(i, &t).map(Some)
    };
    let embd = by_name
        .get("token_embd.weight")
        .map(|&i| just[i])
        .ok_or_else(|| ExportError::tensor(gguf, "token_embd.weight", "missing"))?;
    let inputs = ConfigInputs {
        vocab_rows: embd.dims.get(1).copied().unwrap_or(1),
        has_output: by_name.contains_key("output.weight"),
        attn_bias: by_name.contains_key("blk.0.attn_q.bias")
            || by_name.contains_key("blk.0.attn_qkv.bias"),
        dtype,
        generated: &generated,
    };
    let config = config::config_json(spec, &meta, &inputs)?;
    let generation = config::generation_config(&meta);
    let tokenizer = hf_files_from_gguf(header.kvs.as_slice(), gguf)?;

    let out_abs = if out.is_absolute() {
        out.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| ExportError::io(out, e))?
            .join(out)
    };
    let parent = out_abs.parent().unwrap_or(Path::new("/")).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(|e| ExportError::io(&parent, e))?;
    let stem = out_abs
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let tmp = TempDir {
        path: parent.join(format!(".{stem}.qforge-tmp-{}", std::process::id())),
        keep: false,
    };
    if tmp.path.exists() {
        std::fs::remove_dir_all(&tmp.path).map_err(|e| ExportError::io(&tmp.path, e))?;
    }
    std::fs::create_dir(&tmp.path).map_err(|e| ExportError::io(&tmp.path, e))?;

    let specs: Vec<TensorSpec> = plan
        .iter()
        .map(|t| TensorSpec::new(t.hf_name.clone(), dtype.safetensors(), t.shape.clone()))
        .collect();
    let by_hf: HashMap<&str, &tensors::ExportTensor> =
        plan.iter().map(|t| (t.hf_name.as_str(), t)).collect();
    let mut failure: Option<ExportError> = None;
    let mut source = |info: &st::TensorInfo, w: &mut dyn std::io::Write| -> std::io::Result<()> {
        let t = by_hf[info.name()];
        match read_values(t.source, t) {
            Ok(v) => w.write_all(&data::encode(&v, dtype)),
            Err(e) => {
                let msg = e.to_string();
                failure = Some(e);
                Err(std::io::Error::other(msg))
            }
        }
    };
    let metadata = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    let written = st::write_checkpoint(
        &tmp.path,
        &specs,
        Some(&metadata),
        &ShardOptions {
            file_stem: "model".into(),
            max_shard_size: opts.max_shard_size,
        },
        &mut source,
    );
    if let Some(e) = failure {
        return Err(e);
    }
    let written = written?;

    let put = |name: &str, bytes: &[u8]| {
        let p = tmp.path.join(name);
        std::fs::write(&p, bytes).map_err(|e| ExportError::io(&out_abs.join(name), e))
    };
    put("config.json", &config::to_json_text(&config))?;
    if let Some(g) = &generation {
        put("generation_config.json", &config::to_json_text(g))?;
    }
    tokenizer.write(&tmp.path)?;

    if out_abs.exists() {
        std::fs::remove_dir(&out_abs).map_err(|e| ExportError::io(&out_abs, e))?;
    }
    std::fs::rename(&tmp.path, &out_abs).map_err(|e| ExportError::io(&out_abs, e))?;
    let mut tmp = tmp;
    tmp.keep = true;
    let shards = written
        .files
        .iter()
        .filter_map(|f| f.file_name().map(|n| out_abs.join(n)))
        .collect();
    Ok(ExportSummary {
        dir: out_abs,
        architecture: spec.hf_names[0],
        dtype,
        n_tensors: plan.len(),
        shards,
    })
}
