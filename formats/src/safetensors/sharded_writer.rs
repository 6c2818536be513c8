//! Streaming writer of a (possibly sharded) checkpoint, as `transformers`' `save_pretrained`
//! lays one out: `model.safetensors` when everything fits in one shard, otherwise
//! `model-00001-of-0000N.safetensors`... plus `model.safetensors.index.json`.

use super::error::{ErrorKind, SafetensorsError};
use super::header::TensorInfo;
use super::layout::{checked_sizes, layout, TensorSpec};
use super::py_json::to_python_json;
use super::shard_plan::{plan_shards, shard_file_name};
use super::temp_file::TempFile;
use super::writer::{write_body, TensorSource};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How a checkpoint is split and named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardOptions {
    /// File name stem: `model` gives `model.safetensors`, `model-00001-of-00002.safetensors`
    /// and `model.safetensors.index.json`.
    pub file_stem: String,
    /// Largest amount of tensor data per shard, in bytes (headers not counted, as in
    /// `huggingface_hub`); a tensor larger than this gets a shard of its own.
    pub max_shard_size: u64,
}

impl Default for ShardOptions {
    /// `model`, 5 GB (`transformers`' `max_shard_size="5GB"`, decimal units).
    fn default() -> Self {
        ShardOptions {
            file_stem: "model".into(),
            max_shard_size: 5_000_000_000,
        }
    }
}

/// What [`write_checkpoint`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenCheckpoint {
    /// The tensor files, in shard order.
    pub files: Vec<PathBuf>,
    /// The index, when there is more than one shard.
    pub index: Option<PathBuf>,
    /// Sum of the tensors' byte sizes (the index's `metadata.total_size`).
    pub total_size: u64,
}

#[derive(Serialize)]
struct IndexJson<'a> {
    metadata: IndexMetadata,
    weight_map: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct IndexMetadata {
    total_size: u64,
}

/// Writes `specs` into `dir` as a checkpoint split by `options`, pulling every tensor's bytes
/// from `source` one at a time (shard by shard, each shard in its file order). Tensors are
/// assigned to shards in the order of `specs`; each shard is laid out like the reference
/// writer's files and carries `metadata` as its `__metadata__`. With several shards the index
/// is written as `transformers` writes it (`json.dumps(index, indent=2, sort_keys=True)` and a
/// newline). All files are written under temporary names and renamed once every shard is
/// complete, the index last. Existing files of other names in `dir` are left alone.
pub fn write_checkpoint(
    dir: impl AsRef<Path>,
    specs: &[TensorSpec],
    metadata: Option<&BTreeMap<String, String>>,
    options: &ShardOptions,
    source: &mut dyn TensorSource,
) -> Result<WrittenCheckpoint, SafetensorsError> {
    let dir = dir.as_ref();
    let single = dir.join(format!("{}.safetensors", options.file_stem));
    let sizes = checked_sizes(specs).map_err(|k| SafetensorsError::new(&single, k))?;
    let total_size = sizes
        .iter()
        .try_fold(0u64, |a, &b| a.checked_add(b))
        .ok_or_else(|| {
            SafetensorsError::new(
                &single,
                ErrorKind::Usage("total tensor size overflows 64 bits".into()),
            )
        })?;
    let plan = plan_shards(&sizes, options.max_shard_size);

    if plan.len() <= 1 {
        let infos = layout(specs).map_err(|k| SafetensorsError::new(&single, k))?;
        let mut file = TempFile::create(&single)?;
        write_body(&mut file, &infos, metadata, source)
            .map_err(|k| SafetensorsError::new(&single, k))?;
        file.commit()?;
        return Ok(WrittenCheckpoint {
            files: vec![single],
            index: None,
            total_size,
        });
    }

    let n = plan.len();
    let names: Vec<String> = (0..n)
        .map(|i| shard_file_name(&options.file_stem, i, n))
        .collect();
    let mut pending = Vec::with_capacity(n);
    let mut weight_map = BTreeMap::new();
    for (members, name) in plan.iter().zip(&names) {
        let path = dir.join(name);
        let shard_specs: Vec<TensorSpec> = members.iter().map(|&i| specs[i].clone()).collect();
        let infos: Vec<TensorInfo> =
            layout(&shard_specs).map_err(|k| SafetensorsError::new(&path, k))?;
        let mut file = TempFile::create(&path)?;
        write_body(&mut file, &infos, metadata, source)
            .map_err(|k| SafetensorsError::new(&path, k))?;
        file.finish()?;
        pending.push(file);
        for &i in members {
            weight_map.insert(specs[i].name.as_str(), name.as_str());
        }
    }

    let index_path = dir.join(format!("{}.safetensors.index.json", options.file_stem));
    let mut text = to_python_json(&IndexJson {
        metadata: IndexMetadata { total_size },
        weight_map,
    })
    .map_err(|e| SafetensorsError::new(&index_path, ErrorKind::HeaderJson(e)))?;
    text.push(b'\n');
    let mut index = TempFile::create(&index_path)?;
    index
        .write_all(&text)
        .map_err(|e| SafetensorsError::io(&index_path, e))?;
    index.finish()?;

    let files: Vec<PathBuf> = pending.iter().map(|f| f.target().to_path_buf()).collect();
    for file in pending {
        file.commit()?;
    }
    index.commit()?;
    Ok(WrittenCheckpoint {
        files,
        index: Some(index_path),
        total_size,
    })
}
