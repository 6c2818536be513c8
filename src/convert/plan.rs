//! The output tensor list (`ModelBase.prepare_tensors`): generated tensors first, then the
//! checkpoint's tensors through the model class's `modify_tensors` (renaming, Q/K permutation,
//! Gemma's norm shift, expert stacking), each with its output type.

use super::arch::{block_id, ArchSpec, Experts};
use super::error::ConvertError;
use super::outtype::OutType;
use super::source::Sources;
use qforge_formats::ggml::GgmlType;
use qforge_formats::safetensors::Dtype;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A transform applied to one input tensor, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `LlamaModel.permute(w, n_head, n_head_kv)` with the effective head count.
    PermuteHeads(u64),
    /// `data + c` in the tensor's working dtype.
    AddScalar(f32),
    /// `data[:n]`.
    TruncateRows(u64),
}

/// Where an input comes from.
#[derive(Clone, Debug)]
pub enum Input {
    /// A checkpoint tensor (index into [`Sources::tensors`]).
    Source(usize),
    /// Generated F32 values.
    Generated(Arc<Vec<f32>>),
}

/// One input and its transforms.
#[derive(Clone, Debug)]
pub struct Piece {
    /// The data.
    pub input: Input,
    /// Transforms, in order.
    pub ops: Vec<Op>,
}

/// An output tensor.
#[derive(Clone, Debug)]
pub struct PlannedTensor {
    /// GGUF name.
    pub name: String,
    /// Shape as numpy sees it (outermost first).
    pub shape: Vec<u64>,
    /// Output type.
    pub ty: GgmlType,
    /// Pieces concatenated along a new outer axis (`torch.stack`) when more than one.
    pub pieces: Vec<Piece>,
    /// Whether the working dtype is f16 (an f16 source; otherwise f32).
    pub f16: bool,
}

impl PlannedTensor {
    /// GGML dimensions (innermost first).
    pub fn dims(&self) -> Vec<u64> {
        self.shape.iter().rev().copied().collect()
    }

    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

struct Pending {
    name: String,
    shape: Vec<u64>,
    f16: bool,
    piece: Piece,
}

/// Builds the output list. `vocab_rows` is the real vocabulary size for Gemma 3's embedding
/// truncation.
pub fn plan(
    arch: &ArchSpec,
    hp: &super::config::Hparams,
    sources: &Sources,
    extra: Vec<(String, Vec<f32>)>,
    outtype: OutType,
    vocab_rows: Option<u64>,
) -> Result<Vec<PlannedTensor>, ConvertError> {
    let n_blocks = hp.req_u64(&["n_layers", "num_hidden_layers", "n_layer", "num_layers"])?;
    let n_head = hp.opt_u64(&["n_heads", "num_attention_heads"])?;
    let n_kv_head = hp.opt_u64(&["n_kv_heads", "num_key_value_heads"])?;
    let n_experts = match arch.experts {
        Experts::None => 0,
        Experts::Mixtral => hp.req_u64(&["num_local_experts"])?,
        Experts::Qwen => hp.req_u64(&["num_local_experts", "num_experts"])?,
    };
    let mut out = Vec::new();
    let mut experts: BTreeMap<u64, BTreeMap<String, Pending>> = BTreeMap::new();
    let emit = |out: &mut Vec<PlannedTensor>,
                name: String,
                shape: Vec<u64>,
                f16: bool,
                pieces: Vec<Piece>,
                bid: Option<u64>| {
        let ty = output_type(&name, &shape, bid, outtype);
        out.push(PlannedTensor {
            name,
            shape,
            ty,
            pieces,
            f16,
        });
    };
    for (name, values) in extra {
        let n = values.len() as u64;
        let mapped = arch.names.map(&name, n_blocks).ok_or_else(|| {
            ConvertError::tensor(&hp.path, &name, "generated tensor has no GGUF name")
        })?;
        let piece = Piece {
            input: Input::Generated(Arc::new(values)),
            ops: vec![],
        };
        emit(&mut out, mapped, vec![n], false, vec![piece], None);
    }
    for (i, t) in sources.tensors.iter().enumerate() {
        let name = t.name.as_str();
        if name.ends_with(".attention.masked_bias")
            || name.ends_with(".attention.bias")
            || name.ends_with(".rotary_emb.inv_freq")
        {
            continue;
        }
        let bid = block_id(name);
        let f16 = t.dtype == Dtype::F16;
        let mut shape = t.shape.clone();
        let mut ops = Vec::new();
        let err = |reason: String| ConvertError::tensor(sources.path_of(t), &t.stored_name, reason);
        if arch.truncate_embd && name.contains("embed_tokens.weight") {
            if let Some(n) = vocab_rows {
                let rows = shape.first().copied().unwrap_or(0);
                if n < rows {
                    ops.push(Op::TruncateRows(n));
                    shape[0] = n;
                }
            }
        }
        if arch.norm_plus_one && name.ends_with("norm.weight") {
            ops.push(Op::AddScalar(1.0));
        }
        if arch.undo_permute {
            let q = name.ends_with("q_proj.weight") || name.ends_with("q_proj.bias");
            let k = name.ends_with("k_proj.weight") || name.ends_with("k_proj.bias");
            if q || k {
                let nh = n_head.ok_or_else(|| err("num_attention_heads is missing".into()))?;
                let nkv = n_kv_head.ok_or_else(|| err("num_key_value_heads is missing".into()))?;
                let heads = if k && nkv != nh { nkv } else { nh };
                let rows = shape.first().copied().unwrap_or(0);
                if heads == 0 || rows % (heads * 2) != 0 {
                    return Err(err(format!(
                        "{rows} rows cannot be split into {heads} heads of rotary pairs"
                    )));
                }
                ops.push(Op::PermuteHeads(heads));
            }
        }
        let piece = Piece {
            input: Input::Source(i),
            ops,
        };
        let expert = match arch.experts {
            Experts::Mixtral => name.contains("block_sparse_moe.experts"),
            Experts::Qwen => name.contains("experts"),
            Experts::None => false,
        };
        if expert {
            let b = bid.ok_or_else(|| err("expert tensor without a block number".into()))?;
            let layer = experts.entry(b).or_default();
            layer.insert(
                name.to_string(),
                Pending {
                    name: name.to_string(),
                    shape,
                    f16,
                    piece,
                },
            );
            if layer.len() as u64 >= n_experts * 3 {
                let mut layer = experts.remove(&b).unwrap_or_default();
                let (wids, merged): (&[&str], ExpertNames) = match arch.experts {
                    Experts::Mixtral => (&["w1", "w2", "w3"], |b, w| {
                        (
                            format!("model.layers.{b}.block_sparse_moe.experts.{{x}}.{w}.weight"),
                            format!(
                                "blk.{b}.ffn_{}_exps.weight",
                                match w {
                                    "w1" => "gate",
                                    "w2" => "down",
                                    _ => "up",
                                }
                            ),
                        )
                    }),
                    _ => (&["down_proj", "gate_proj", "up_proj"], |b, w| {
                        (
                            format!("model.layers.{b}.mlp.experts.{{x}}.{w}.weight"),
                            format!("blk.{b}.ffn_{}_exps.weight", w.trim_end_matches("_proj")),
                        )
                    }),
                };
                for w in wids {
                    let (pattern, gguf) = merged(b, w);
                    let mut pieces = Vec::new();
                    let mut inner: Option<(Vec<u64>, bool)> = None;
                    for x in 0..n_experts {
                        let ename = pattern.replace("{x}", &x.to_string());
                        let p = layer.remove(&ename).ok_or_else(|| {
                            ConvertError::tensor(
                                sources.path_of(t),
                                &ename,
                                "expert tensor is missing",
                            )
                        })?;
                        match &inner {
                            None => inner = Some((p.shape.clone(), p.f16)),
                            Some((s, f)) if *s != p.shape || *f != p.f16 => {
                                return Err(ConvertError::tensor(
                                    sources.path_of(t),
                                    &p.name,
                                    format!("shape {:?} differs from expert 0's {:?}", p.shape, s),
                                ))
                            }
                            _ => {}
                        }
                        pieces.push(p.piece);
                    }
                    let (s, f) = inner.unwrap_or_default();
                    let mut shape = vec![n_experts];
                    shape.extend(s);
                    emit(&mut out, gguf, shape, f, pieces, Some(b));
                }
                if let Some(left) = layer.keys().next() {
                    return Err(ConvertError::tensor(
                        sources.path_of(t),
                        left,
                        "unexpected expert tensor",
                    ));
                }
            }
            continue;
        }
        let mapped = arch.names.map(name, n_blocks).ok_or_else(|| {
            err(format!(
                "cannot map tensor {name:?} to a GGUF name for {}",
                arch.gguf_arch
            ))
        })?;
        emit(&mut out, mapped, shape, f16, vec![piece], bid);
    }
    if let Some((_, layer)) = experts.iter().find(|(_, l)| !l.is_empty()) {
        let first = layer
            .values()
            .next()
            .map(|p| p.name.clone())
            .unwrap_or_default();
        return Err(ConvertError::tensor(
            &hp.path,
            first,
            format!(
                "incomplete experts: {} of {} expert tensors of this layer present",
                layer.len(),
                n_experts * 3
            ),
        ));
    }
    Ok(out)
}

/// The converter's output-type rules for one tensor.
pub fn output_type(name: &str, shape: &[u64], bid: Option<u64>, outtype: OutType) -> GgmlType {
    let n_dims = shape.len();
    if n_dims <= 1 || name.ends_with("_norm.weight") {
        return GgmlType::F32;
    }
    let gate_inp = bid.is_some_and(|b| {
        name == format!("blk.{b}.ffn_gate_inp.weight")
            || name == format!("blk.{b}.ffn_gate_inp_shexp.weight")
    });
    let suffix_ok = [".weight", ".lora_a", ".lora_b"]
        .iter()
        .any(|s| name.ends_with(s));
    if gate_inp || !suffix_ok {
        return GgmlType::F32;
    }
    let ty = outtype.ggml_type();
    let block = ty.block_size() as u64;
    if shape.last().is_some_and(|&n| n % block != 0) {
        return GgmlType::F16;
    }
    ty
}

/// The HF weight ids of one expert and the function naming expert tensor `(bid, id)` as (HF
/// name prefix, GGUF name).
type ExpertNames = fn(u64, &str) -> (String, String);
