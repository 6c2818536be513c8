//! Errors of the safetensors reader and writer.

use super::dtype::Dtype;
use std::path::PathBuf;
use thiserror::Error;

/// A safetensors file, shard index or checkpoint could not be read or written. Every error names
/// the file concerned.
#[derive(Debug, Error)]
#[error("{}: {kind}", path.display())]
pub struct SafetensorsError {
    /// The file concerned (a tensor file, a shard index, or an output file).
    pub path: PathBuf,
    /// What is wrong (part of the message, so not repeated as a source).
    pub kind: ErrorKind,
}

impl SafetensorsError {
    pub(crate) fn new(path: impl Into<PathBuf>, kind: ErrorKind) -> Self {
        SafetensorsError {
            path: path.into(),
            kind,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::new(path, ErrorKind::Io(source))
    }
}

/// What is wrong with a safetensors file or checkpoint.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An operating-system error.
    #[error("{0}")]
    Io(#[source] std::io::Error),
    /// The file cannot even hold the 8-byte header length.
    #[error("file of {len} bytes is too short for the 8-byte header length")]
    FileTooShort {
        /// File length.
        len: u64,
    },
    /// The declared header length exceeds the cap.
    #[error("header length {len} exceeds the {max}-byte limit")]
    HeaderTooLarge {
        /// Declared length.
        len: u64,
        /// The cap ([`MAX_HEADER_SIZE`](super::MAX_HEADER_SIZE)).
        max: u64,
    },
    /// The declared header runs past the end of the file.
    #[error("header of {len} bytes runs past the end of the {file_len}-byte file")]
    HeaderBeyondFile {
        /// Declared length.
        len: u64,
        /// File length.
        file_len: u64,
    },
    /// The header is not UTF-8.
    #[error("header is not valid UTF-8: {0}")]
    HeaderNotUtf8(#[source] std::str::Utf8Error),
    /// The header is not well-formed JSON, or not a JSON object.
    #[error("header is not a valid JSON object: {0}")]
    HeaderJson(#[source] serde_json::Error),
    /// A key appears twice in the header.
    #[error("header has the key {0:?} twice")]
    DuplicateKey(String),
    /// `__metadata__` is not a map from strings to strings.
    #[error("__metadata__ is not a map of strings to strings: {0}")]
    BadMetadata(String),
    /// A tensor entry lacks a field or has one of the wrong type.
    #[error("tensor {tensor:?}: {reason}")]
    BadTensorEntry {
        /// Tensor name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor has a dtype qforge does not handle.
    #[error("tensor {tensor:?} has unsupported dtype {dtype:?}")]
    UnsupportedDtype {
        /// Tensor name.
        tensor: String,
        /// The dtype as written in the file.
        dtype: String,
    },
    /// The element count or byte size of a tensor overflows 64 bits.
    #[error("tensor {tensor:?}: shape {shape:?} overflows when computing its byte size")]
    SizeOverflow {
        /// Tensor name.
        tensor: String,
        /// Its shape.
        shape: Vec<u64>,
    },
    /// A tensor's `data_offsets` end before they begin.
    #[error("tensor {tensor:?}: data_offsets [{start}, {end}] end before they begin")]
    OffsetsReversed {
        /// Tensor name.
        tensor: String,
        /// Declared start.
        start: u64,
        /// Declared end.
        end: u64,
    },
    /// A tensor's byte range does not match its shape and dtype.
    #[error("tensor {tensor:?}: data_offsets span {actual} bytes but {dtype} {shape:?} needs {expected}")]
    WrongByteLength {
        /// Tensor name.
        tensor: String,
        /// Its dtype.
        dtype: Dtype,
        /// Its shape.
        shape: Vec<u64>,
        /// product(shape) * dtype size.
        expected: u64,
        /// end - start.
        actual: u64,
    },
    /// A tensor's bytes lie beyond the end of the data section.
    #[error("tensor {tensor:?}: data_offsets end at {end}, past the {data_len}-byte data section")]
    OutOfBounds {
        /// Tensor name.
        tensor: String,
        /// Declared end.
        end: u64,
        /// Bytes after the header.
        data_len: u64,
    },
    /// Two tensors share bytes.
    #[error(
        "tensor {tensor:?} starts at {start}, inside tensor {other:?} which ends at {other_end}"
    )]
    Overlap {
        /// The later tensor.
        tensor: String,
        /// Its start.
        start: u64,
        /// The tensor it overlaps.
        other: String,
        /// That tensor's end.
        other_end: u64,
    },
    /// Bytes between two tensors (or before the first) belong to no tensor.
    #[error("tensor {tensor:?} starts at {start}, leaving a hole after byte {expected}")]
    Gap {
        /// The tensor after the hole.
        tensor: String,
        /// Its start.
        start: u64,
        /// Where the previous tensor ended.
        expected: u64,
    },
    /// Bytes after the last tensor belong to no tensor.
    #[error("tensors cover {covered} bytes but the data section has {data_len}")]
    TrailingBytes {
        /// End of the last tensor.
        covered: u64,
        /// Bytes after the header.
        data_len: u64,
    },
    /// No tensor of that name.
    #[error("no tensor named {0:?}")]
    TensorNotFound(String),
    /// A float conversion was asked of a tensor whose dtype is not a float.
    #[error("tensor {tensor:?} has dtype {dtype}, which is not a float type")]
    NotFloat {
        /// Tensor name.
        tensor: String,
        /// Its dtype.
        dtype: Dtype,
    },
    /// A conversion was given an output of the wrong length.
    #[error("tensor {tensor:?} has {elements} elements but the output holds {out_len}")]
    OutputLength {
        /// Tensor name.
        tensor: String,
        /// Elements in the tensor.
        elements: u64,
        /// Elements in the output.
        out_len: usize,
    },
    /// The shard index is not JSON, or lacks a `weight_map` of strings.
    #[error("invalid shard index: {0}")]
    BadIndex(String),
    /// A shard file name in the index is not a plain file name.
    #[error("shard index names {0:?}, which is not a plain file name in the index's directory")]
    BadShardName(String),
    /// A shard named by the index does not exist.
    #[error("shard {shard:?} named by the index does not exist")]
    MissingShard {
        /// The shard's file name.
        shard: String,
    },
    /// The index maps a tensor to a shard that does not hold it.
    #[error("the index maps tensor {tensor:?} to shard {shard:?}, which does not contain it")]
    TensorNotInShard {
        /// Tensor name.
        tensor: String,
        /// The shard named by the index.
        shard: String,
    },
    /// A shard holds a tensor that the index does not map to it.
    #[error("shard {shard:?} holds tensor {tensor:?}, which the index does not map to it")]
    TensorNotInIndex {
        /// Tensor name.
        tensor: String,
        /// The shard holding it.
        shard: String,
    },
    /// No checkpoint was found at a directory.
    #[error("no model.safetensors.index.json or model.safetensors here")]
    NoCheckpoint,
    /// A writer was used against its contract (duplicate or reserved name, size overflow...).
    #[error("{0}")]
    Usage(String),
    /// The tensor source failed while producing a tensor.
    #[error("producing tensor {tensor:?} failed: {source}")]
    Source {
        /// Tensor name.
        tensor: String,
        /// The source's error.
        #[source]
        source: std::io::Error,
    },
    /// The tensor source produced the wrong number of bytes.
    #[error(
        "tensor {tensor:?}: the source produced {written} bytes where {expected} were declared"
    )]
    SourceLength {
        /// Tensor name.
        tensor: String,
        /// Declared size.
        expected: u64,
        /// Bytes produced (counting up to one past the declared size).
        written: u64,
    },
}
