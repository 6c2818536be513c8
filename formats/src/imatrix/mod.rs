//! Importance-matrix files as llama.cpp reads them (`common/imatrix-loader.cpp`): the GGUF
//! format (`<tensor>.in_sum2` and `<tensor>.counts` F32 tensors, `imatrix.*` metadata) and the
//! legacy `.dat` format. [`Imatrix::load`] tries GGUF first and falls back to legacy, as
//! llama-quantize does, and [`Imatrix::weights`] gives the per-column mean squared activations
//! that the quantizers take. [`Imatrix::save_gguf`] and [`Imatrix::save_legacy`] write both
//! formats as llama-imatrix writes them.

mod legacy;
mod writer;

use crate::gguf::{GgufArray, GgufError, GgufFile, GgufValue};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Metadata key: datasets the imatrix was computed on.
pub const KEY_DATASETS: &str = "imatrix.datasets";
/// Metadata key: number of chunks processed.
pub const KEY_CHUNK_COUNT: &str = "imatrix.chunk_count";
/// Metadata key: tokens per chunk.
pub const KEY_CHUNK_SIZE: &str = "imatrix.chunk_size";

/// An importance matrix could not be loaded.
#[derive(Debug, Error)]
pub enum ImatrixError {
    /// The file could not be read.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error (part of the message, so not repeated as a source).
        error: std::io::Error,
    },
    /// The file is neither a valid GGUF imatrix nor a valid legacy one.
    #[error("{path}: not a valid importance matrix: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An importance matrix could not be written.
    #[error("{path}: cannot write the importance matrix: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// One tensor's accumulated statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct ImatrixEntry {
    /// Sums of squared activations, `ne0` per matrix (per expert for MoE tensors). For the
    /// legacy format these are `mean * ncall` as stored.
    pub sums: Vec<f32>,
    /// Tokens seen per matrix (GGUF), or the single `ncall` value (legacy).
    pub counts: Vec<i64>,
}

/// A loaded importance matrix.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Imatrix {
    /// Entries by weight name, sorted.
    pub entries: BTreeMap<String, ImatrixEntry>,
    /// Dataset names recorded in the file.
    pub datasets: Vec<String>,
    /// Chunks processed.
    pub chunk_count: i32,
    /// Tokens per chunk (0 for legacy files).
    pub chunk_size: i32,
    /// Whether the file was in the legacy `.dat` format.
    pub is_legacy: bool,
    /// Whether a GGUF file had all three `imatrix.*` metadata keys.
    pub has_metadata: bool,
}

impl Imatrix {
    /// Loads `path` as llama-quantize does: GGUF first, legacy `.dat` when it is not a GGUF file.
    /// A GGUF imatrix without its metadata is refused, as llama-quantize refuses it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ImatrixError> {
        let path = path.as_ref();
        let head = read_magic(path)?;
        let m = if head == *b"GGUF" {
            let f = GgufFile::open(path).map_err(|e| invalid(path, gguf_reason(e)))?;
            load_gguf(&f)?
        } else {
            legacy::load(path)?
        };
        if !m.is_legacy && !m.has_metadata {
            return Err(invalid(path, "missing imatrix metadata (imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size)"));
        }
        if m.entries.is_empty() {
            return Err(invalid(path, "no data in file"));
        }
        Ok(m)
    }

    /// The importance weights llama-quantize derives for each tensor: per-column means
    /// (`in_sum2 / count`, or 1 for a matrix never seen) for GGUF files, `value / ncall` for
    /// legacy ones. Entries are filtered as `--include-weights` / `--exclude-weights` do (by
    /// substring; exclusion is applied first). Non-finite values are an error, naming the tensor.
    pub fn weights(
        &self,
        include: &[String],
        exclude: &[String],
    ) -> Result<BTreeMap<String, Vec<f32>>, String> {
        let mut out = BTreeMap::new();
        for (name, e) in &self.entries {
            if exclude.iter().any(|x| name.contains(x.as_str())) {
                continue;
            }
            if !include.is_empty() && !include.iter().any(|x| name.contains(x.as_str())) {
                continue;
            }
            let w = if self.is_legacy {
                let ncall = e.counts.first().copied().unwrap_or(0);
                if ncall > 0 {
                    e.sums.iter().map(|s| s / ncall as f32).collect()
                } else {
                    e.sums.clone()
                }
            } else {
                let ncounts = e.counts.len().max(1);
                let ne0 = e.sums.len() / ncounts;
                let mut w = vec![0f32; e.sums.len()];
                for (j, &c) in e.counts.iter().enumerate() {
                    let count = c as f32;
                    for i in 0..ne0 {
                        w[j * ne0 + i] = if count > 0.0 {
                            e.sums[j * ne0 + i] / count
                        } else {
                            1.0
                        };
                    }
                }
                w
            };
            if let Some(i) = w.iter().position(|x| !x.is_finite()) {
                return Err(format!(
                    "imatrix entry '{name}' has a non-finite value at index {i}"
                ));
            }
            out.insert(name.clone(), w);
        }
        Ok(out)
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> ImatrixError {
    ImatrixError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn gguf_reason(e: GgufError) -> String {
    match e {
        GgufError::Invalid { reason, offset, .. } => format!("{reason} (byte {offset})"),
        other => other.to_string(),
    }
}

fn read_magic(path: &Path) -> Result<[u8; 4], ImatrixError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|source| ImatrixError::Io {
        path: path.to_path_buf(),
        error: source,
    })?;
    let mut b = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        match f.read(&mut b[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(source) => {
                return Err(ImatrixError::Io {
                    path: path.to_path_buf(),
                    error: source,
                })
            }
        }
    }
    Ok(b)
}

fn load_gguf(f: &GgufFile) -> Result<Imatrix, ImatrixError> {
    let path = f.path();
    let h = f.header();
    let mut m = Imatrix::default();
    if let Some(GgufValue::Array(GgufArray::String(ds))) = h.get(KEY_DATASETS) {
        m.datasets = ds
            .iter()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .collect();
    }
    let u32_key = |k: &str| -> Result<Option<i32>, ImatrixError> {
        match h.get(k) {
            None => Ok(None),
            Some(GgufValue::U32(v)) => Ok(Some(*v as i32)),
            Some(v) => Err(invalid(
                path,
                format!("{k} must be u32 but is {}", v.value_type().name()),
            )),
        }
    };
    let count = u32_key(KEY_CHUNK_COUNT)?;
    let size = u32_key(KEY_CHUNK_SIZE)?;
    m.has_metadata = h.get(KEY_DATASETS).is_some() && count.is_some() && size.is_some();
    m.chunk_count = count.unwrap_or(0);
    m.chunk_size = size.unwrap_or(0);

    let mut pairs: BTreeMap<String, (Option<usize>, Option<usize>)> = BTreeMap::new();
    for (i, t) in h.tensors.iter().enumerate() {
        if let Some(n) = t.name.strip_suffix(".in_sum2") {
            pairs.entry(n.to_string()).or_default().0 = Some(i);
        } else if let Some(n) = t.name.strip_suffix(".counts") {
            pairs.entry(n.to_string()).or_default().1 = Some(i);
        }
    }
    let read_f32 = |i: usize| -> Result<Vec<f32>, ImatrixError> {
        let t = &h.tensors[i];
        if t.ty != crate::ggml::GgmlType::F32 {
            return Err(invalid(
                path,
                format!("tensor '{}' must be F32 but is {}", t.name, t.ty),
            ));
        }
        let d = f.tensor_data(t).map_err(|e| invalid(path, e.to_string()))?;
        Ok(d.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    for (name, (s, c)) in pairs {
        let (Some(s), Some(c)) = (s, c) else {
            return Err(invalid(
                path,
                format!("mismatched sums and counts for '{name}'"),
            ));
        };
        let sums = read_f32(s)?;
        let counts: Vec<i64> = read_f32(c)?.iter().map(|x| x.round() as i64).collect();
        if counts.is_empty() || sums.len() % counts.len() != 0 {
            return Err(invalid(
                path,
                format!(
                    "'{name}': {} sums cannot be split over {} counts",
                    sums.len(),
                    counts.len()
                ),
            ));
        }
        m.entries.insert(name, ImatrixEntry { sums, counts });
    }
    Ok(m)
}
