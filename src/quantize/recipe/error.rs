//! Errors of type selection and of the per-tensor checks llama-quantize makes before it
//! converts a tensor. Messages follow llama.cpp's, with the tensor named where llama.cpp's
//! message does not name it.

use qforge_formats::ggml::GgmlType;
use thiserror::Error;

/// Why no plan could be made (llama-quantize fails before writing any tensor data).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RecipeError {
    /// The file type has no default tensor type (NVFP4).
    #[error("invalid output file type {0}")]
    InvalidFtype(u32),
    /// Two tensors share a name (llama.cpp's loader refuses the model).
    #[error("invalid model: tensor '{0}' is duplicated")]
    DuplicateTensor(String),
    /// A MoE model's FFN tensor has no `blk.N.` prefix.
    #[error("Failed to determine layer for tensor {tensor}")]
    LayerNotFound {
        /// The tensor.
        tensor: String,
    },
    /// A MoE model's FFN tensor names a block outside `[0, n_layer)`.
    #[error("Bad layer {layer} for tensor {tensor}. Must be in [0, {n_layer})")]
    BadLayer {
        /// The tensor.
        tensor: String,
        /// The block number in its name.
        layer: i32,
        /// The model's `n_layer_all`.
        n_layer: u32,
    },
    /// A tensor's rows do not fit the chosen type and the type has no fallback.
    #[error("no tensor type fallback is defined for type {ty} (tensor {tensor})")]
    NoFallback {
        /// The tensor.
        tensor: String,
        /// The type chosen for it.
        ty: GgmlType,
    },
    /// A rule needs `n_gqa` of a model without layers (a `clip` projector). llama.cpp aborts
    /// (`GGML_ABORT` in `llama_hparams::n_head`).
    #[error(
        "n_gqa is undefined for a model without layers (tensor {tensor}); llama.cpp aborts here"
    )]
    NoGqa {
        /// The tensor.
        tensor: String,
    },
    /// The chosen type needs an importance matrix and none was given.
    #[error(
        "this quantization requires an imatrix! (offending tensor: {tensor}, target type: {ty})"
    )]
    ImatrixRequired {
        /// The first tensor, in processing order, that needs one.
        tensor: String,
        /// Its target type.
        ty: GgmlType,
    },
    /// `--no-fallback` was asked for and a tensor needed the shape fallback.
    #[error("tensor {tensor}: {ncols} columns do not fit {wanted} blocks; llama-quantize would use {used} (refused by --no-fallback)")]
    FallbackRefused {
        /// The tensor.
        tensor: String,
        /// Its row length.
        ncols: u64,
        /// The type the rules chose.
        wanted: GgmlType,
        /// The fallback type.
        used: GgmlType,
    },
}

/// Why a `--tensor-type` argument was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum OverrideError {
    /// No `=` in the argument.
    #[error("malformed tensor type '{0}'")]
    Malformed(String),
    /// Nothing before the `=`.
    #[error("missing tensor name")]
    MissingName,
    /// Nothing after the `=`.
    #[error("missing quantization type")]
    MissingType,
    /// The part after `=` names no ggml type.
    #[error("invalid quantization type '{0}'")]
    InvalidType(String),
    /// The pattern is not a valid regular expression.
    #[error("invalid tensor name pattern '{pattern}': {reason}")]
    InvalidPattern {
        /// The (lower-cased) pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The pattern uses syntax that `std::regex` (ECMAScript) and Rust's `regex` read
    /// differently or that only one of them supports.
    #[error("tensor name pattern '{pattern}' is not supported: {reason}")]
    UnsupportedPattern {
        /// The (lower-cased) pattern.
        pattern: String,
        /// Which construct, and why.
        reason: String,
    },
}

/// Why a tensor cannot be converted to its planned type (llama-quantize fails when it reaches
/// the tensor, after writing the tensors before it).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConversionError {
    /// The tensor's imatrix entry has the wrong number of values.
    #[error("imatrix size {found} is different from tensor size {expected} for {tensor}")]
    ImatrixSizeMismatch {
        /// The tensor.
        tensor: String,
        /// Values in the entry.
        found: usize,
        /// `ne[0] * ne[2]`.
        expected: u64,
    },
    /// The target type needs an importance matrix and the tensor has no entry.
    #[error("Missing importance matrix for tensor {tensor} in a very low-bit quantization")]
    MissingImatrix {
        /// The tensor.
        tensor: String,
    },
    /// The tensor is already quantized and `--allow-requantize` was not given.
    #[error("requantizing from type {from} is disabled (tensor {tensor})")]
    RequantizeDisabled {
        /// The tensor.
        tensor: String,
        /// Its current type.
        from: GgmlType,
    },
    /// The tensor's quantized type has no dequantization (Q8_1, Q8_K).
    #[error("type {ty} unsupported for integer quantization: no dequantization available (tensor {tensor})")]
    NoDequantization {
        /// The tensor.
        tensor: String,
        /// Its type.
        ty: GgmlType,
    },
    /// The tensor's type is not a float or quantized type (integer or F64 tensors).
    #[error("cannot dequantize/convert tensor type {ty} (tensor {tensor})")]
    CannotConvert {
        /// The tensor.
        tensor: String,
        /// Its type.
        ty: GgmlType,
    },
    /// ggml cannot produce the target type (`ggml_quantize_chunk` aborts in llama.cpp).
    #[error("ggml cannot quantize to type {ty} (tensor {tensor}); llama.cpp aborts here")]
    UnsupportedTarget {
        /// The tensor.
        tensor: String,
        /// The target type.
        ty: GgmlType,
    },
    /// The rows are not a whole number of blocks of the target type. Only reachable through
    /// `--output-tensor-type` / `--token-embedding-type`, which skip the shape fallback.
    /// llama.cpp's release build does not check this (its `assert`s are compiled out), quantizes
    /// truncated rows and then fails with "quantized data validation failed".
    #[error("tensor {tensor}: {ncols} columns are not a whole number of {ty} blocks (llama-quantize fails with \"quantized data validation failed\")")]
    RowNotBlockAligned {
        /// The tensor.
        tensor: String,
        /// `ne[0]`.
        ncols: u64,
        /// The target type.
        ty: GgmlType,
    },
}
