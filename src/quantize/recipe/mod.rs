//! Per-tensor type selection ("the recipe") of llama-quantize at the pinned llama.cpp: the
//! preliminary pass of `llama_model_quantize_impl` in `src/llama-quant.cpp`, which decides
//! every tensor's output type before any data is read.
//!
//! For each tensor, in processing order ([`order`]):
//! 1. Tensors that may not change (`tensor_allows_quantization`, in `allow.rs`) keep their type.
//! 2. `--token-embedding-type` sets `token_embd.weight` / `per_layer_token_embd.weight` (the
//!    latter only when no `--tensor-type` pattern matches it) and `--output-tensor-type` sets
//!    `output.weight`; these skip the shape fallback.
//! 3. Otherwise the file type's default type is the start. If it is not a quantized type (F32,
//!    F16, BF16) that is the answer: no rules, no overrides, no fallback.
//! 4. The first `--tensor-type` pattern that matches gives the type ("manual"); else, unless
//!    `--pure`, the mixture rules (`llama_tensor_get_type_impl`, in `rules.rs`) refine the default.
//! 5. The shape fallback ([`Fallback`], in `fallback.rs`) applies to the result, manual types included.
//! 6. Tensors whose type needs an importance matrix make llama-quantize refuse to start when
//!    none was given (`--dry-run` only warns).

mod allow;
mod category;
mod conversion;
mod error;
mod fallback;
mod imatrix_need;
pub mod order;
mod overrides;
mod pattern;
mod rules;

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod tests;

pub use category::TensorCategory;
pub use conversion::{check_conversion, ImatrixEntry, ImatrixUse};
pub use error::{ConversionError, OverrideError, RecipeError};
pub use fallback::Fallback;
pub use imatrix_need::tensor_requires_imatrix;
pub use overrides::{parse_ggml_type, parse_tensor_type_file, TensorTypeOverride};

use super::{LlamaFtype, ModelDesc, QuantOption};
use qforge_formats::ggml::GgmlType;
use qforge_formats::gguf::TensorInfo;
use rules::{RuleContext, RuleState};
use std::collections::HashSet;

/// One input tensor as the recipe sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorDesc {
    /// The tensor's name.
    pub name: String,
    /// Its current type.
    pub ty: GgmlType,
    /// `ne[0..4]`, innermost first, missing dimensions 1.
    pub ne: [u64; 4],
}

impl TensorDesc {
    /// A tensor from its name, type and dimensions (at most 4, innermost first; missing ones
    /// are 1, extra ones are ignored).
    pub fn new(name: impl Into<String>, ty: GgmlType, dims: &[u64]) -> Self {
        let mut ne = [1u64; 4];
        for (d, &v) in ne.iter_mut().zip(dims) {
            *d = v;
        }
        Self {
            name: name.into(),
            ty,
            ne,
        }
    }

    /// The tensor as a GGUF header describes it.
    pub fn from_info(info: &TensorInfo) -> Self {
        Self {
            name: info.name.clone(),
            ty: info.ty,
            ne: info.ne(),
        }
    }

    /// `ggml_n_dims`: dimensions once trailing ones are dropped (at least 1).
    pub fn n_dims(&self) -> usize {
        (1..4).rev().find(|&i| self.ne[i] > 1).map_or(1, |i| i + 1)
    }
}

/// The llama-quantize options that affect type selection.
#[derive(Clone, Debug)]
pub struct RecipeParams {
    /// The file type asked for.
    pub ftype: LlamaFtype,
    /// `COPY`: keep every tensor as it is.
    pub only_copy: bool,
    /// `--pure`: no mixture rules, every quantizable tensor gets the default type (overrides
    /// and the shape fallback still apply).
    pub pure: bool,
    /// False under `--leave-output-tensor`: `output.weight` is kept as it is.
    pub quantize_output_tensor: bool,
    /// `--output-tensor-type`.
    pub output_tensor_type: Option<GgmlType>,
    /// `--token-embedding-type`.
    pub token_embedding_type: Option<GgmlType>,
    /// `--tensor-type` / `--tensor-type-file` rules, in the order given.
    pub tensor_types: Vec<TensorTypeOverride>,
    /// An importance matrix with at least one entry (after `--include-weights` /
    /// `--exclude-weights`) is given. Some rules differ with one.
    pub has_imatrix: bool,
    /// `--dry-run`: a missing-but-needed imatrix is reported in
    /// [`QuantizePlan::will_require_imatrix`] instead of failing.
    pub dry_run: bool,
}

impl RecipeParams {
    /// llama-quantize's defaults for file type `ftype`.
    pub fn new(ftype: LlamaFtype) -> Self {
        Self {
            ftype,
            only_copy: false,
            pure: false,
            quantize_output_tensor: true,
            output_tensor_type: None,
            token_embedding_type: None,
            tensor_types: Vec::new(),
            has_imatrix: false,
            dry_run: false,
        }
    }

    /// Defaults for a parsed type argument (`COPY` sets [`only_copy`](Self::only_copy)).
    pub fn for_option(option: &QuantOption) -> Self {
        Self {
            only_copy: option.is_copy(),
            ..Self::new(option.ftype)
        }
    }
}

/// Where a tensor's target type came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeSource {
    /// The tensor may not change type (or `COPY`).
    Kept,
    /// `--token-embedding-type`.
    TokenEmbeddingType,
    /// `--output-tensor-type`.
    OutputTensorType,
    /// The `--tensor-type` rule with this index (llama-quantize logs "applying manual
    /// override" when its type differs from the default).
    Manual {
        /// Index into [`RecipeParams::tensor_types`].
        rule: usize,
    },
    /// The mixture rules.
    Mixture,
    /// The file type's default type, unrefined (`--pure`, or a non-quantized default).
    Default,
}

/// The decision for one tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorPlan {
    /// The tensor's name.
    pub name: String,
    /// Its type in the input.
    pub current: GgmlType,
    /// Its type in the output.
    pub target: GgmlType,
    /// `ne[0..4]`.
    pub ne: [u64; 4],
    /// Its category.
    pub category: TensorCategory,
    /// Whether llama-quantize may change its type at all.
    pub allows_quantization: bool,
    /// Whether producing `target` needs an importance matrix.
    pub requires_imatrix: bool,
    /// Where `target` came from.
    pub source: TypeSource,
    /// Set when the shape fallback replaced the chosen type (`target` is then `fallback.used`).
    pub fallback: Option<Fallback>,
}

impl TensorPlan {
    /// Whether the data is converted (`target != current`); otherwise the bytes are copied.
    pub fn converts(&self) -> bool {
        self.current != self.target
    }
}

/// The decisions for all tensors, in processing order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantizePlan {
    /// The file type planned for.
    pub ftype: LlamaFtype,
    /// One entry per input tensor, in the order given.
    pub tensors: Vec<TensorPlan>,
    /// `--dry-run` without an imatrix: the real run would fail for want of one.
    pub will_require_imatrix: bool,
}

impl QuantizePlan {
    /// Number of tensors that needed the shape fallback (llama-quantize's closing warning
    /// "%d of %d tensor(s) required fallback quantization").
    pub fn n_fallback(&self) -> usize {
        self.tensors.iter().filter(|t| t.fallback.is_some()).count()
    }

    /// For `--no-fallback`: fails on the first tensor that needed the shape fallback.
    pub fn refuse_fallbacks(&self) -> Result<(), RecipeError> {
        match self.tensors.iter().find_map(|t| t.fallback.map(|f| (t, f))) {
            None => Ok(()),
            Some((t, f)) => Err(RecipeError::FallbackRefused {
                tensor: t.name.clone(),
                ncols: t.ne[0],
                wanted: f.wanted,
                used: f.used,
            }),
        }
    }
}

/// Plans the output type of every tensor as llama-quantize does.
///
/// `tensors` must be in llama-quantize's processing order ([`order::sort_for_quantize`], or
/// [`order::keep_split_order`] under `--keep-split`): the counter-based rules depend on it.
pub fn plan_quantization(
    model: &ModelDesc,
    params: &RecipeParams,
    tensors: &[TensorDesc],
) -> Result<QuantizePlan, RecipeError> {
    let default_type = params
        .ftype
        .default_type()
        .ok_or(RecipeError::InvalidFtype(params.ftype.id()))?;
    let mut seen = HashSet::with_capacity(tensors.len());
    for t in tensors {
        if !seen.insert(t.name.as_str()) {
            return Err(RecipeError::DuplicateTensor(t.name.clone()));
        }
    }

    let categories: Vec<TensorCategory> = tensors
        .iter()
        .map(|t| TensorCategory::of(&t.name))
        .collect();
    let n_layer = i64::from(model.n_layer_all);
    let mut qs = RuleState {
        n_attention_wv: categories.iter().filter(|c| c.is_attn_v_like()).count() as i64,
        n_ffn_down: n_layer,
        n_ffn_gate: n_layer,
        n_ffn_up: n_layer,
        has_imatrix: params.has_imatrix,
        has_tied_embeddings: !categories.contains(&TensorCategory::Output),
        ..RuleState::default()
    };
    let cx = RuleContext {
        model,
        ftype: params.ftype,
        output_tensor_type: params.output_tensor_type,
        token_embedding_type: params.token_embedding_type,
    };

    let mut plans = Vec::with_capacity(tensors.len());
    let mut will_require_imatrix = false;
    for (t, &category) in tensors.iter().zip(&categories) {
        let allows = allow::tensor_allows_quantization(
            params.only_copy,
            params.quantize_output_tensor,
            &model.arch,
            &t.name,
            t.n_dims(),
        );
        let (target, source, fallback) = if allows {
            tensor_type(&mut qs, &cx, params, default_type, t, category)?
        } else {
            (t.ty, TypeSource::Kept, None)
        };
        let requires_imatrix = tensor_requires_imatrix(&t.name, target, params.ftype);
        if !params.has_imatrix && allows && requires_imatrix {
            if !params.dry_run {
                return Err(RecipeError::ImatrixRequired {
                    tensor: t.name.clone(),
                    ty: target,
                });
            }
            will_require_imatrix = true;
        }
        plans.push(TensorPlan {
            name: t.name.clone(),
            current: t.ty,
            target,
            ne: t.ne,
            category,
            allows_quantization: allows,
            requires_imatrix,
            source,
            fallback,
        });
    }
    Ok(QuantizePlan {
        ftype: params.ftype,
        tensors: plans,
        will_require_imatrix,
    })
}

/// `llama_tensor_get_type` for a tensor that may be quantized.
fn tensor_type(
    qs: &mut RuleState,
    cx: &RuleContext<'_>,
    params: &RecipeParams,
    default_type: GgmlType,
    t: &TensorDesc,
    category: TensorCategory,
) -> Result<(GgmlType, TypeSource, Option<Fallback>), RecipeError> {
    if let Some(ty) = params.token_embedding_type {
        if category == TensorCategory::TokenEmbd {
            // per_layer_token_embd follows --token-embedding-type unless a --tensor-type
            // pattern names it
            let named = t.name == "per_layer_token_embd.weight"
                && overrides::first_match(&params.tensor_types, &t.name).is_some();
            if !named {
                return Ok((ty, TypeSource::TokenEmbeddingType, None));
            }
        }
    }
    if let Some(ty) = params.output_tensor_type {
        if category == TensorCategory::Output {
            return Ok((ty, TypeSource::OutputTensorType, None));
        }
    }
    if !default_type.is_quantized() {
        return Ok((default_type, TypeSource::Default, None));
    }
    let (chosen, source) = match overrides::first_match(&params.tensor_types, &t.name) {
        Some((rule, r)) => (r.ty(), TypeSource::Manual { rule }),
        None if params.pure => (default_type, TypeSource::Default),
        None => (
            rules::mixture_type(qs, cx, default_type, t, category)?,
            TypeSource::Mixture,
        ),
    };
    let fallback = fallback::fallback_for(&t.name, t.ne[0], chosen)?;
    let target = fallback.map_or(chosen, |f| f.used);
    Ok((target, source, fallback))
}
