//! Reading a sharded checkpoint through its `model.safetensors.index.json`.
//!
//! The shard set is that of llama.cpp's converter: the distinct file names of `weight_map`,
//! sorted. Every shard must exist, every tensor of the map must be in the shard it names, and
//! every tensor of a shard must be mapped to that shard (the converter refuses such
//! mismatches too).

use super::error::{ErrorKind, SafetensorsError};
use super::reader::SafetensorsFile;
use super::storage::ReadMode;
use super::view::TensorView;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The usual file name of a shard index.
pub const INDEX_FILE_NAME: &str = "model.safetensors.index.json";

/// Index files larger than this are refused (real ones are well under a megabyte per thousand
/// tensors).
const MAX_INDEX_SIZE: u64 = 256 * 1024 * 1024;

/// An open sharded checkpoint.
pub struct ShardedCheckpoint {
    index_path: PathBuf,
    index_metadata: BTreeMap<String, Value>,
    shards: Vec<SafetensorsFile>,
    /// Tensor name to position in `shards`.
    tensor_shard: BTreeMap<String, usize>,
}

impl ShardedCheckpoint {
    /// Opens the index at `index_path` and every shard it names, memory-mapped.
    pub fn open(index_path: impl AsRef<Path>) -> Result<Self, SafetensorsError> {
        Self::open_with(index_path, ReadMode::Mmap)
    }

    /// Opens the index at `index_path` and every shard it names with the given access mode.
    pub fn open_with(
        index_path: impl AsRef<Path>,
        mode: ReadMode,
    ) -> Result<Self, SafetensorsError> {
        let index_path = index_path.as_ref().to_path_buf();
        let fail = |kind| SafetensorsError::new(&index_path, kind);
        let (index_metadata, weight_map) = read_index(&index_path)?;
        let dir = index_path.parent().unwrap_or(Path::new("."));

        let shard_names: BTreeSet<&str> = weight_map.values().map(String::as_str).collect();
        let mut shards = Vec::with_capacity(shard_names.len());
        for &name in &shard_names {
            if !is_plain_file_name(name) {
                return Err(fail(ErrorKind::BadShardName(name.to_owned())));
            }
            let path = dir.join(name);
            if !path.is_file() {
                return Err(fail(ErrorKind::MissingShard {
                    shard: name.to_owned(),
                }));
            }
            shards.push(SafetensorsFile::open_with(path, mode)?);
        }
        let position: BTreeMap<&str, usize> = shard_names
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, i))
            .collect();

        let mut tensor_shard = BTreeMap::new();
        for (tensor, shard) in &weight_map {
            let i = position[shard.as_str()];
            if !shards[i].contains(tensor) {
                return Err(fail(ErrorKind::TensorNotInShard {
                    tensor: tensor.clone(),
                    shard: shard.clone(),
                }));
            }
            tensor_shard.insert(tensor.clone(), i);
        }
        for (i, (shard, &name)) in shards.iter().zip(&shard_names).enumerate() {
            if let Some(tensor) = shard.names().find(|t| tensor_shard.get(*t) != Some(&i)) {
                return Err(fail(ErrorKind::TensorNotInIndex {
                    tensor: tensor.to_owned(),
                    shard: name.to_owned(),
                }));
            }
        }
        Ok(ShardedCheckpoint {
            index_path,
            index_metadata,
            shards,
            tensor_shard,
        })
    }

    /// The index file's path.
    pub fn index_path(&self) -> &Path {
        &self.index_path
    }

    /// The index's `metadata` object (usually just `total_size`).
    pub fn index_metadata(&self) -> &BTreeMap<String, Value> {
        &self.index_metadata
    }

    /// The index's `metadata.total_size`, if present and a non-negative integer.
    pub fn total_size(&self) -> Option<u64> {
        self.index_metadata
            .get("total_size")
            .and_then(Value::as_u64)
    }

    /// The shards, sorted by file name.
    pub fn shards(&self) -> &[SafetensorsFile] {
        &self.shards
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensor_shard.len()
    }

    /// Whether the checkpoint holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensor_shard.is_empty()
    }

    /// Tensor names in iteration order: shards by file name, names sorted within each.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.shards.iter().flat_map(SafetensorsFile::names)
    }

    /// Whether a tensor named `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensor_shard.contains_key(name)
    }

    /// The shard holding `name`.
    pub fn shard_of(&self, name: &str) -> Option<&SafetensorsFile> {
        self.tensor_shard.get(name).map(|&i| &self.shards[i])
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>, SafetensorsError> {
        match self.shard_of(name) {
            Some(shard) => shard.tensor(name),
            None => Err(SafetensorsError::new(
                &self.index_path,
                ErrorKind::TensorNotFound(name.to_owned()),
            )),
        }
    }

    /// Every tensor: shards by file name, names sorted within each.
    pub fn tensors(&self) -> impl Iterator<Item = Result<TensorView<'_>, SafetensorsError>> + '_ {
        self.shards.iter().flat_map(SafetensorsFile::tensors)
    }
}

impl std::fmt::Debug for ShardedCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedCheckpoint")
            .field("index_path", &self.index_path)
            .field("shards", &self.shards.len())
            .field("tensors", &self.len())
            .finish()
    }
}

/// A shard name must name a file in the index's own directory.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).file_name().is_some_and(|f| f == name)
}

type WeightMap = BTreeMap<String, String>;

/// The index's `metadata` and `weight_map`.
fn read_index(path: &Path) -> Result<(BTreeMap<String, Value>, WeightMap), SafetensorsError> {
    let io = |e| SafetensorsError::io(path, e);
    let bad = |reason: String| SafetensorsError::new(path, ErrorKind::BadIndex(reason));
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > MAX_INDEX_SIZE {
        return Err(bad(format!(
            "{len} bytes is more than the {MAX_INDEX_SIZE}-byte limit"
        )));
    }
    let mut text = String::new();
    file.take(MAX_INDEX_SIZE)
        .read_to_string(&mut text)
        .map_err(io)?;
    let value: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let Value::Object(mut top) = value else {
        return Err(bad("not a JSON object".into()));
    };
    let metadata = match top.remove("metadata") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m.into_iter().collect(),
        Some(_) => return Err(bad("metadata is not an object".into())),
    };
    let Some(Value::Object(map)) = top.remove("weight_map") else {
        return Err(bad("no weight_map object".into()));
    };
    let weight_map = map
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            _ => Err(bad(format!(
                "weight_map entry {k:?} is not a file name string"
            ))),
        })
        .collect::<Result<WeightMap, _>>()?;
    Ok((metadata, weight_map))
}
