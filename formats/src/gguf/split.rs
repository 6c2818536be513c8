//! Split GGUF sets (`NAME-00001-of-0000N.gguf`), as written by `gguf-split`, the Python
//! converter and `llama-quantize --keep-split`: shard 0 carries all metadata, every shard carries
//! `split.no` (u16, 0-based), `split.count` (u16) and `split.tensors.count` (i32).

use super::error::GgufError;
use super::reader::{GgufFile, ReadMode, TensorInfo};
use super::value::GgufValue;
use std::path::{Path, PathBuf};

/// Key holding the 0-based shard index.
pub const KEY_SPLIT_NO: &str = "split.no";
/// Key holding the number of shards.
pub const KEY_SPLIT_COUNT: &str = "split.count";
/// Key holding the total number of tensors across all shards.
pub const KEY_SPLIT_TENSORS_COUNT: &str = "split.tensors.count";

/// The path of shard `index` (0-based) of `count` for `prefix` (`llama_split_path`).
pub fn split_path(prefix: &str, index: usize, count: usize) -> PathBuf {
    PathBuf::from(format!("{prefix}-{:05}-of-{:05}.gguf", index + 1, count))
}

/// The prefix of a shard path `PREFIX-0000i-of-0000n.gguf`, if `path` has that form with
/// the given index and count (`llama_split_prefix`).
pub fn split_prefix(path: &Path, index: usize, count: usize) -> Option<String> {
    let s = path.to_str()?;
    let suffix = format!("-{:05}-of-{:05}.gguf", index + 1, count);
    s.strip_suffix(&suffix).map(str::to_string)
}

/// An open model that may span several GGUF files.
pub struct GgufSet {
    shards: Vec<GgufFile>,
}

fn split_u16(f: &GgufFile, key: &str) -> Result<Option<u16>, GgufError> {
    match f.header().get(key) {
        None => Ok(None),
        Some(GgufValue::U16(v)) => Ok(Some(*v)),
        Some(v) => Err(GgufError::Invalid {
            path: f.path().to_path_buf(),
            offset: 0,
            reason: format!("{key} must be of type u16 but is {}", v.value_type().name()),
        }),
    }
}

impl GgufSet {
    /// Opens `path`; when it is the first shard of a split set, opens and checks every shard.
    pub fn open(path: impl AsRef<Path>, mode: ReadMode) -> Result<Self, GgufError> {
        let path = path.as_ref();
        let first = GgufFile::open_with(path, mode)?;
        let count = split_u16(&first, KEY_SPLIT_COUNT)?.unwrap_or(0) as usize;
        if count <= 1 {
            return Ok(GgufSet {
                shards: vec![first],
            });
        }
        let invalid = |p: &Path, reason: String| GgufError::Invalid {
            path: p.to_path_buf(),
            offset: 0,
            reason,
        };
        if split_u16(&first, KEY_SPLIT_NO)? != Some(0) {
            return Err(invalid(
                path,
                "this is not the first shard of its split set (split.no != 0)".into(),
            ));
        }
        let prefix = split_prefix(path, 0, count).ok_or_else(|| {
            invalid(
                path,
                format!(
                    "split.count is {count} but the name does not end in -00001-of-{count:05}.gguf"
                ),
            )
        })?;
        let total = match first.header().get(KEY_SPLIT_TENSORS_COUNT) {
            Some(GgufValue::I32(n)) if *n >= 0 => *n as usize,
            _ => {
                return Err(invalid(
                    path,
                    "split.tensors.count is missing or not a non-negative i32".into(),
                ))
            }
        };
        let mut shards = vec![first];
        for i in 1..count {
            let p = split_path(&prefix, i, count);
            let f = GgufFile::open_with(&p, mode)?;
            if split_u16(&f, KEY_SPLIT_NO)? != Some(i as u16) {
                return Err(invalid(&p, format!("expected split.no = {i}")));
            }
            shards.push(f);
        }
        let set = GgufSet { shards };
        let n: usize = set.shards.iter().map(|s| s.header().tensors.len()).sum();
        if n != total {
            return Err(invalid(
                path,
                format!("split.tensors.count is {total} but the shards hold {n} tensors"),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (s, t) in set.tensors() {
            if !names.insert(t.name.as_str()) {
                return Err(invalid(
                    set.shards[s].path(),
                    format!("tensor '{}' appears in more than one shard", t.name),
                ));
            }
        }
        Ok(set)
    }

    /// The shards in order (one for an unsplit file).
    pub fn shards(&self) -> &[GgufFile] {
        &self.shards
    }

    /// The first shard, which carries the model's metadata.
    pub fn first(&self) -> &GgufFile {
        &self.shards[0]
    }

    /// Every tensor with the index of its shard, in shard then file order.
    pub fn tensors(&self) -> impl Iterator<Item = (usize, &TensorInfo)> {
        self.shards
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.header().tensors.iter().map(move |t| (i, t)))
    }

    /// Whether this model spans more than one file.
    pub fn is_split(&self) -> bool {
        self.shards.len() > 1
    }
}
