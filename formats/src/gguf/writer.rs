//! Streaming GGUF v3 writer: the layout is fixed up front from the tensor infos, the header is
//! written, then tensor data is streamed in order. Output goes to a temporary file in the same
//! directory, renamed over the destination only by [`GgufWriter::finish`]; a writer dropped
//! before that removes its temporary file, so a failed run leaves no partial output.

use super::error::GgufError;
use super::reader::TensorInfo;
use super::value::{encode_str, GgufValue};
use super::{pad, GGUF_MAGIC, GGUF_VERSION};
use crate::ggml::GgmlType;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A tensor to be written: name, type and dimensions (innermost first, as they will be stored).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub ty: GgmlType,
    /// Dimensions to store, innermost first.
    pub dims: Vec<u64>,
}

impl TensorSpec {
    /// Size of the tensor data in bytes, or `None` if the row is not whole blocks or the size
    /// overflows.
    pub fn n_bytes(&self) -> Option<u64> {
        let n = self
            .dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64)?;
        self.ty.row_size(n)
    }
}

/// Encodes the metadata section exactly as ggml's `gguf_write_out(only_meta = true)` does,
/// including the padding up to `alignment`. Returns the bytes and each tensor's data offset.
pub fn encode_header(
    kvs: &[(String, GgufValue)],
    tensors: &[TensorSpec],
    alignment: u64,
) -> Result<(Vec<u8>, Vec<u64>), String> {
    validate(kvs, tensors, alignment)?;
    let mut out = Vec::new();
    out.extend_from_slice(&GGUF_MAGIC);
    out.extend_from_slice(&GGUF_VERSION.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    for (k, v) in kvs {
        encode_str(k.as_bytes(), &mut out);
        out.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
        v.encode(&mut out);
    }
    let mut offsets = Vec::with_capacity(tensors.len());
    let mut offset = 0u64;
    for t in tensors {
        let nbytes = t.n_bytes().ok_or_else(|| {
            format!(
                "tensor '{}': {} elements per row is not a whole number of {} blocks",
                t.name,
                t.dims.first().copied().unwrap_or(1),
                t.ty
            )
        })?;
        if t.name.len() >= super::GGML_MAX_NAME {
            return Err(format!(
                "tensor name '{}' is longer than {} bytes",
                t.name,
                super::GGML_MAX_NAME - 1
            ));
        }
        encode_str(t.name.as_bytes(), &mut out);
        out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&t.ty.id().to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offsets.push(offset);
        offset += pad(nbytes, alignment);
    }
    out.resize(pad(out.len() as u64, alignment) as usize, 0);
    Ok((out, offsets))
}

/// Refuses what the GGUF readers (llama.cpp's and qforge's) would refuse, so the writer never
/// produces a file it cannot read back.
fn validate(
    kvs: &[(String, GgufValue)],
    tensors: &[TensorSpec],
    alignment: u64,
) -> Result<(), String> {
    let mut keys = std::collections::HashSet::new();
    for (k, v) in kvs {
        if k.is_empty() {
            return Err("empty metadata key".into());
        }
        if !keys.insert(k.as_str()) {
            return Err(format!("duplicate metadata key '{k}'"));
        }
        if k == "general.alignment" && *v != GgufValue::U32(alignment as u32) {
            return Err(format!(
                "general.alignment must be the u32 {alignment} the file is laid out with"
            ));
        }
    }
    let mut names = std::collections::HashSet::new();
    for t in tensors {
        if !names.insert(t.name.as_str()) {
            return Err(format!("duplicate tensor name '{}'", t.name));
        }
        if t.dims.len() > super::GGML_MAX_DIMS {
            return Err(format!(
                "tensor '{}' has {} dimensions, more than {}",
                t.name,
                t.dims.len(),
                super::GGML_MAX_DIMS
            ));
        }
        if t.dims.iter().any(|&d| d > i64::MAX as u64)
            || t.dims
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .filter(|&n| n <= i64::MAX as u64)
                .is_none()
        {
            return Err(format!("tensor '{}' shape {:?} overflows", t.name, t.dims));
        }
    }
    Ok(())
}

/// Writes one GGUF file; see the module documentation.
pub struct GgufWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    tensors: Vec<TensorSpec>,
    next: usize,
    alignment: u64,
}

impl GgufWriter {
    /// Creates the temporary output beside `path` and writes the header for `kvs` and `tensors`.
    /// `alignment` must match the file's `general.alignment` (32 when absent).
    pub fn create(
        path: impl AsRef<Path>,
        kvs: &[(String, GgufValue)],
        tensors: Vec<TensorSpec>,
        alignment: u64,
    ) -> Result<Self, GgufError> {
        let path = path.as_ref().to_path_buf();
        let usage = |reason: String| GgufError::Usage {
            path: path.clone(),
            reason,
        };
        if alignment == 0 || !alignment.is_power_of_two() {
            return Err(usage(format!("alignment {alignment} is not a power of 2")));
        }
        let (header, _) = encode_header(kvs, &tensors, alignment).map_err(usage)?;
        let tmp = temp_path(&path);
        let file = File::create(&tmp).map_err(|e| GgufError::io(&tmp, e))?;
        let mut w = GgufWriter {
            path,
            tmp,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            tensors,
            next: 0,
            alignment,
        };
        w.write_raw(&header)?;
        Ok(w)
    }

    /// The tensors still to be written, in order.
    pub fn pending(&self) -> &[TensorSpec] {
        &self.tensors[self.next..]
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), GgufError> {
        let out = self.out.as_mut().expect("writer is open until finish");
        out.write_all(bytes)
            .map_err(|e| GgufError::io(&self.tmp, e))
    }

    /// Writes the data of the next tensor, which must be named `name` and hold exactly its size,
    /// followed by zero padding.
    pub fn write_tensor(&mut self, name: &str, data: &[u8]) -> Result<(), GgufError> {
        let Some(spec) = self.tensors.get(self.next) else {
            return Err(GgufError::Usage {
                path: self.path.clone(),
                reason: format!("tensor '{name}' written after the last one"),
            });
        };
        if spec.name != name {
            return Err(GgufError::Usage {
                path: self.path.clone(),
                reason: format!("tensor '{name}' written where '{}' was expected", spec.name),
            });
        }
        let want = spec.n_bytes().unwrap_or(0);
        if data.len() as u64 != want {
            return Err(GgufError::Usage {
                path: self.path.clone(),
                reason: format!(
                    "tensor '{name}' has {} bytes of data, its header says {want}",
                    data.len()
                ),
            });
        }
        self.next += 1;
        self.write_raw(data)?;
        self.write_padding(want)
    }

    /// Starts streaming the data of the next tensor, which must be named `name`, in pieces; the
    /// returned sink checks the total size and writes the padding when finished.
    pub fn begin_tensor(&mut self, name: &str) -> Result<TensorSink<'_>, GgufError> {
        let Some(spec) = self.tensors.get(self.next) else {
            return Err(GgufError::Usage {
                path: self.path.clone(),
                reason: format!("tensor '{name}' written after the last one"),
            });
        };
        if spec.name != name {
            return Err(GgufError::Usage {
                path: self.path.clone(),
                reason: format!("tensor '{name}' written where '{}' was expected", spec.name),
            });
        }
        let expected = spec.n_bytes().unwrap_or(0);
        self.next += 1;
        Ok(TensorSink {
            writer: self,
            name: name.to_string(),
            expected,
            written: 0,
        })
    }

    fn write_padding(&mut self, size: u64) -> Result<(), GgufError> {
        let padding = (pad(size, self.alignment) - size) as usize;
        self.write_raw(&vec![0u8; padding])
    }

    /// Checks that every tensor was written, flushes, and renames the output into place.
    pub fn finish(mut self) -> Result<PathBuf, GgufError> {
        if self.next != self.tensors.len() {
            return Err(GgufError::Usage {
                path: self.path.clone(),
                reason: format!(
                    "only {} of {} tensors were written",
                    self.next,
                    self.tensors.len()
                ),
            });
        }
        let out = self.out.take().expect("writer is open until finish");
        let file = out
            .into_inner()
            .map_err(|e| GgufError::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| GgufError::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| GgufError::io(&self.path, e))?;
        Ok(self.path.clone())
    }
}

/// Streams one tensor's data in pieces; see [`GgufWriter::begin_tensor`].
pub struct TensorSink<'w> {
    writer: &'w mut GgufWriter,
    name: String,
    expected: u64,
    written: u64,
}

impl TensorSink<'_> {
    /// Appends the next piece of the tensor's data.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), GgufError> {
        self.written += bytes.len() as u64;
        if self.written > self.expected {
            return Err(GgufError::Usage {
                path: self.writer.path.clone(),
                reason: format!(
                    "tensor '{}' got more than its {} bytes",
                    self.name, self.expected
                ),
            });
        }
        self.writer.write_raw(bytes)
    }

    /// Checks the size and writes the padding.
    pub fn finish(self) -> Result<(), GgufError> {
        if self.written != self.expected {
            return Err(GgufError::Usage {
                path: self.writer.path.clone(),
                reason: format!(
                    "tensor '{}' has {} bytes of data, its header says {}",
                    self.name, self.written, self.expected
                ),
            });
        }
        self.writer.write_padding(self.expected)
    }
}

impl Drop for GgufWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The temporary name used while `path` is being written: a hidden sibling with the process id.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}

/// Tensor infos as a reader would see them for `specs` (used to check layouts).
pub fn layout(specs: &[TensorSpec], alignment: u64) -> Vec<TensorInfo> {
    let mut offset = 0;
    specs
        .iter()
        .map(|s| {
            let t = TensorInfo {
                name: s.name.clone(),
                ty: s.ty,
                dims: s.dims.clone(),
                offset,
            };
            offset += pad(s.n_bytes().unwrap_or(0), alignment);
            t
        })
        .collect()
}
