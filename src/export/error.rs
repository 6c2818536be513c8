//! Errors of `qforge export-hf`, each naming the file (and tensor or key) at fault.

use crate::convert::tokenizer::TokenizerConvertError;
use qforge_formats::gguf::GgufError;
use qforge_formats::safetensors::SafetensorsError;
use std::path::PathBuf;
use thiserror::Error;

/// Why a GGUF model could not be exported to a Hugging Face checkpoint.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The GGUF file could not be read.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// A safetensors shard could not be written.
    #[error(transparent)]
    Safetensors(#[from] SafetensorsError),
    /// The tokenizer metadata could not be turned into Hugging Face files.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerConvertError),
    /// `general.architecture` names a model the export does not know.
    #[error("{path}: architecture {arch:?} cannot be exported (supported: {supported})")]
    UnsupportedArchitecture {
        /// The GGUF file.
        path: PathBuf,
        /// Its architecture.
        arch: String,
        /// What is supported.
        supported: String,
    },
    /// A metadata key is missing or has the wrong type or value.
    #[error("{path}: metadata {key}: {reason}")]
    Metadata {
        /// The GGUF file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor cannot be mapped or converted.
    #[error("{path}: tensor {tensor}: {reason}")]
    Tensor {
        /// The GGUF file.
        path: PathBuf,
        /// GGUF tensor name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// The output directory cannot be used.
    #[error("{path}: {reason}")]
    Output {
        /// The directory or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl ExportError {
    pub(crate) fn meta(path: &std::path::Path, key: &str, reason: impl Into<String>) -> Self {
        ExportError::Metadata {
            path: path.to_path_buf(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn tensor(path: &std::path::Path, tensor: &str, reason: impl Into<String>) -> Self {
        ExportError::Tensor {
            path: path.to_path_buf(),
            tensor: tensor.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
