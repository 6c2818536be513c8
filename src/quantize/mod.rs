//! llama-quantize's decisions, ported from the pinned llama.cpp (`0c1e57098`): the file types
//! and their names ([`ftype`]), the model facts the rules read ([`model`]) and the per-tensor
//! type selection ([`recipe`]).
//!
//! Typical use by the CLI:
//!
//! 1. [`parse_ftype`] the type argument and build [`RecipeParams::for_option`]; fill in the
//!    flags, [`TensorTypeOverride::parse`] each `--tensor-type`.
//! 2. [`ModelDesc::from_metadata`] on the input's metadata (after `--override-kv`).
//! 3. List the tensors as [`TensorDesc`]s, sorted with [`recipe::order::sort_for_quantize`].
//! 4. [`plan_quantization`], then for each tensor that [`TensorPlan::converts`],
//!    [`check_conversion`] before quantizing it.

pub mod ftype;
pub mod model;
pub mod recipe;

pub use ftype::{allowed_types_help, parse_ftype, LlamaFtype, QuantOption, QUANT_OPTIONS};
pub use model::{ModelDesc, ModelDescError};
pub use recipe::{
    check_conversion, parse_ggml_type, parse_tensor_type_file, plan_quantization,
    tensor_requires_imatrix, ConversionError, Fallback, ImatrixEntry, ImatrixUse, OverrideError,
    QuantizePlan, RecipeError, RecipeParams, TensorCategory, TensorDesc, TensorPlan,
    TensorTypeOverride, TypeSource,
};
