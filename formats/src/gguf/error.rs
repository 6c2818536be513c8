//! Errors of the GGUF reader and writer.

use std::path::PathBuf;
use thiserror::Error;

/// A GGUF file could not be read or written.
#[derive(Debug, Error)]
pub enum GgufError {
    /// An operating-system error on `path`.
    #[error("{path}: {error}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error (part of the message, so not repeated as a source).
        error: std::io::Error,
    },
    /// The file's content breaks the GGUF format; `offset` is where the problem was found.
    #[error("{path}: invalid GGUF file at byte {offset}: {reason}")]
    Invalid {
        /// The file concerned.
        path: PathBuf,
        /// Byte offset of the offending field.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The file ends before a field it declares.
    #[error("{path}: truncated GGUF file: {what} needs {needed} bytes at byte {offset}, but the file has {len} bytes")]
    Truncated {
        /// The file concerned.
        path: PathBuf,
        /// The field being read.
        what: String,
        /// Where it starts.
        offset: u64,
        /// Bytes it needs.
        needed: u64,
        /// File length.
        len: u64,
    },
    /// A writer was used against its contract (wrong tensor size, out of order, ...).
    #[error("{path}: {reason}")]
    Usage {
        /// The output file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

impl GgufError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        GgufError::Io {
            path: path.into(),
            error: source,
        }
    }
}
