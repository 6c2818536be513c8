//! Errors of `qforge convert`. Every variant names the file (and tensor) concerned.

use std::path::PathBuf;
use thiserror::Error;

/// Why a Hugging Face checkpoint could not be converted.
#[derive(Debug, Error)]
pub enum ConvertError {
    /// The source is not a directory.
    #[error("{}: not a checkpoint directory", .0.display())]
    NotADirectory(PathBuf),
    /// An operating-system error on a file.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// config.json (or another JSON file) is missing a field, malformed, or unusable.
    #[error("{}: {reason}", path.display())]
    Config {
        /// The JSON file concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The architecture named in config.json has no entry in qforge's architecture table.
    #[error("{}: architecture {arch:?} is not supported (supported: {supported})", path.display())]
    UnsupportedArchitecture {
        /// config.json.
        path: PathBuf,
        /// The `architectures[0]` value.
        arch: String,
        /// The supported names, comma-separated.
        supported: String,
    },
    /// A tensor file or shard index could not be read.
    #[error(transparent)]
    Safetensors(#[from] qforge_formats::safetensors::SafetensorsError),
    /// The checkpoint has no weights.
    #[error("{}: no model.safetensors, model-*.safetensors or model.safetensors.index.json", .0.display())]
    NoWeights(PathBuf),
    /// A tensor the architecture needs is absent, or one it cannot place is present.
    #[error("{}: tensor {tensor:?}: {reason}", path.display())]
    Tensor {
        /// The file holding (or expected to hold) the tensor.
        path: PathBuf,
        /// The Hugging Face tensor name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// The tokenizer files could not be converted.
    #[error(transparent)]
    Tokenizer(#[from] super::tokenizer::TokenizerConvertError),
    /// The output could not be written.
    #[error(transparent)]
    Gguf(#[from] qforge_formats::gguf::GgufError),
    /// Bad options (split limits, output type).
    #[error("{0}")]
    Usage(String),
}

impl ConvertError {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        ConvertError::Io {
            path: path.into(),
            error,
        }
    }

    pub(crate) fn config(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        ConvertError::Config {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn tensor(
        path: impl Into<PathBuf>,
        tensor: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ConvertError::Tensor {
            path: path.into(),
            tensor: tensor.into(),
            reason: reason.into(),
        }
    }
}
