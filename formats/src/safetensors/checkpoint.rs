//! A checkpoint given as a file or a directory: one safetensors file or a sharded set.

use super::error::{ErrorKind, SafetensorsError};
use super::reader::SafetensorsFile;
use super::sharded::{ShardedCheckpoint, INDEX_FILE_NAME};
use super::storage::ReadMode;
use super::view::TensorView;
use std::path::Path;

/// A single-file or sharded safetensors checkpoint.
#[derive(Debug)]
pub enum Checkpoint {
    /// One `.safetensors` file.
    Single(SafetensorsFile),
    /// Shards listed by an index.
    Sharded(ShardedCheckpoint),
}

impl Checkpoint {
    /// Opens `path` with memory maps; see [`open_with`](Self::open_with).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SafetensorsError> {
        Self::open_with(path, ReadMode::Mmap)
    }

    /// Opens `path`: a file ending in `.index.json` is a shard index, any other file a single
    /// safetensors file; a directory holds `model.safetensors.index.json` (preferred) or
    /// `model.safetensors`.
    pub fn open_with(path: impl AsRef<Path>, mode: ReadMode) -> Result<Self, SafetensorsError> {
        let path = path.as_ref();
        if path.is_dir() {
            let index = path.join(INDEX_FILE_NAME);
            if index.is_file() {
                return ShardedCheckpoint::open_with(index, mode).map(Checkpoint::Sharded);
            }
            let single = path.join("model.safetensors");
            if single.is_file() {
                return SafetensorsFile::open_with(single, mode).map(Checkpoint::Single);
            }
            return Err(SafetensorsError::new(path, ErrorKind::NoCheckpoint));
        }
        if path.to_string_lossy().ends_with(".index.json") {
            ShardedCheckpoint::open_with(path, mode).map(Checkpoint::Sharded)
        } else {
            SafetensorsFile::open_with(path, mode).map(Checkpoint::Single)
        }
    }

    /// The files holding tensors, in iteration order.
    pub fn files(&self) -> Vec<&SafetensorsFile> {
        match self {
            Checkpoint::Single(f) => vec![f],
            Checkpoint::Sharded(s) => s.shards().iter().collect(),
        }
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        match self {
            Checkpoint::Single(f) => f.len(),
            Checkpoint::Sharded(s) => s.len(),
        }
    }

    /// Whether the checkpoint holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a tensor named `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Checkpoint::Single(f) => f.contains(name),
            Checkpoint::Sharded(s) => s.contains(name),
        }
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>, SafetensorsError> {
        match self {
            Checkpoint::Single(f) => f.tensor(name),
            Checkpoint::Sharded(s) => s.tensor(name),
        }
    }

    /// Tensor names in iteration order (files in order, names sorted within each).
    pub fn names(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Checkpoint::Single(f) => Box::new(f.names()),
            Checkpoint::Sharded(s) => Box::new(s.names()),
        }
    }

    /// Every tensor in iteration order.
    pub fn tensors(
        &self,
    ) -> Box<dyn Iterator<Item = Result<TensorView<'_>, SafetensorsError>> + '_> {
        match self {
            Checkpoint::Single(f) => Box::new(f.tensors()),
            Checkpoint::Sharded(s) => Box::new(s.tensors()),
        }
    }
}
