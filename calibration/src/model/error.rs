//! Errors of model loading and evaluation.

use crate::backend::BackendError;
use std::path::PathBuf;
use thiserror::Error;

/// Why a model could not be loaded or evaluated.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The model file could not be read.
    #[error("{path}: {source}")]
    Gguf {
        /// Model file.
        path: PathBuf,
        /// Reader error.
        #[source]
        source: qforge_formats::gguf::GgufError,
    },
    /// An architecture this crate does not run.
    #[error("{path}: unsupported architecture '{arch}' (supported: llama, qwen2, qwen3, qwen3moe, gemma2, gemma3, phi3)")]
    Architecture {
        /// Model file.
        path: PathBuf,
        /// `general.architecture`.
        arch: String,
    },
    /// A required metadata key is missing or has the wrong type.
    #[error("{path}: metadata key '{key}' {reason}")]
    Key {
        /// Model file.
        path: PathBuf,
        /// Key name.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A feature of the model this implementation does not support.
    #[error("{path}: {reason}")]
    Unsupported {
        /// Model file.
        path: PathBuf,
        /// What is unsupported.
        reason: String,
    },
    /// A required tensor is absent.
    #[error("{path}: tensor '{name}' is missing")]
    MissingTensor {
        /// Model file.
        path: PathBuf,
        /// Tensor name.
        name: String,
    },
    /// A tensor whose dimensions differ from what the hyper-parameters imply.
    #[error("{path}: tensor '{name}' has dims {found:?}, expected {expected:?}")]
    Shape {
        /// Model file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Dimensions implied by the hyper-parameters (ne0 first).
        expected: Vec<u64>,
        /// Dimensions in the file.
        found: Vec<u64>,
    },
    /// A tensor whose type cannot be used where it is (e.g. a quantized norm).
    #[error("{path}: tensor '{name}' has type {ty}, which cannot be used here")]
    TensorType {
        /// Model file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Its ggml type.
        ty: qforge_formats::ggml::GgmlType,
    },
    /// The backend refused a weight.
    #[error("{path}: {source}")]
    Backend {
        /// Model file.
        path: PathBuf,
        /// Backend error.
        #[source]
        source: BackendError,
    },
    /// An evaluation request that cannot be served.
    #[error("invalid evaluation request: {0}")]
    Request(String),
}
