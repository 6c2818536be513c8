//! The mixture rules: `llama_tensor_get_type_impl` in `src/llama-quant.cpp`, which refines the
//! file type's default tensor type by tensor category, layer position and model shape.
//!
//! The rules keep counters (`i_attention_wv`, `i_ffn_down`, `i_ffn_gate`, `i_ffn_up`) that
//! advance once per tensor of their category *that reaches these rules*, in processing order.
//! Tensors given a type by an override, or skipped by `--pure`, do not advance them.

use super::category::TensorCategory;
use super::error::RecipeError;
use super::order::layer_of;
use super::TensorDesc;
use crate::quantize::{LlamaFtype, ModelDesc};
use qforge_formats::ggml::GgmlType;

/// The counters and flags of `quantize_state_impl` that the rules read and advance.
#[derive(Clone, Debug, Default)]
pub(crate) struct RuleState {
    /// Number of attn_v-like tensors in the whole model.
    pub n_attention_wv: i64,
    /// `n_layer_all`, used as the layer count by the ffn rules.
    pub n_ffn_down: i64,
    pub n_ffn_gate: i64,
    pub n_ffn_up: i64,
    pub i_attention_wv: i64,
    pub i_ffn_down: i64,
    pub i_ffn_gate: i64,
    pub i_ffn_up: i64,
    /// An importance matrix was given (with at least one entry after filtering).
    pub has_imatrix: bool,
    /// No tensor is named `output.weight`.
    pub has_tied_embeddings: bool,
}

/// `use_more_bits`: the first and last eighth of the layers, and every third one in between.
fn use_more_bits(i_layer: i64, n_layers: i64) -> bool {
    i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2
}

/// The rules' view of the model.
pub(crate) struct RuleContext<'a> {
    pub model: &'a ModelDesc,
    pub ftype: LlamaFtype,
    /// `--output-tensor-type`, which the tied-embedding branch applies to `token_embd`.
    pub output_tensor_type: Option<GgmlType>,
    /// `--token-embedding-type`.
    pub token_embedding_type: Option<GgmlType>,
}

impl RuleContext<'_> {
    fn n_gqa(&self, tensor: &str) -> Result<u32, RecipeError> {
        self.model.n_gqa().ok_or_else(|| RecipeError::NoGqa {
            tensor: tensor.to_owned(),
        })
    }

    /// `layer_info`: for MoE models (more than one expert) the layer comes from the name,
    /// otherwise the running counter is the layer.
    fn layer_info(
        &self,
        counter: i64,
        n_layer: i64,
        name: &str,
    ) -> Result<(i64, i64), RecipeError> {
        if self.model.n_expert.max(1) > 1 {
            if !name.starts_with("blk.") || !has_scanf_int(&name[4..]) {
                return Err(RecipeError::LayerNotFound {
                    tensor: name.to_owned(),
                });
            }
            let layer = layer_of(name);
            if layer < 0 || i64::from(layer) >= n_layer {
                return Err(RecipeError::BadLayer {
                    tensor: name.to_owned(),
                    layer,
                    n_layer: self.model.n_layer_all,
                });
            }
            return Ok((i64::from(layer), n_layer));
        }
        Ok((counter, n_layer))
    }
}

/// Whether `%d` converts something at the start of `s` (white space, a sign, then a digit).
fn has_scanf_int(s: &str) -> bool {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    t.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

/// `llama_tensor_get_type_impl`: the mixture's type for one tensor whose current choice is
/// `new_type` (the file type's default).
pub(crate) fn mixture_type(
    qs: &mut RuleState,
    cx: &RuleContext<'_>,
    mut new_type: GgmlType,
    tensor: &TensorDesc,
    category: TensorCategory,
) -> Result<GgmlType, RecipeError> {
    use GgmlType as T;
    use LlamaFtype as F;
    use TensorCategory as C;
    let name = tensor.name.as_str();
    let arch = cx.model.arch.as_str();
    let ftype = cx.ftype;
    let n_expert = cx.model.n_expert;
    let is_falcon = arch == "falcon";

    // glm5-next keeps these at Q8_0 or better
    if arch == "glm5-next"
        && (name.contains("attn_q_a")
            || name.contains("attn_q_b")
            || name.contains("nextn.eh_proj"))
        && !matches!(new_type, T::F32 | T::BF16 | T::F16)
    {
        return Ok(T::Q8_0);
    }

    let low_bit_iq = matches!(
        ftype,
        F::MOSTLY_IQ2_XXS
            | F::MOSTLY_IQ2_XS
            | F::MOSTLY_IQ1_S
            | F::MOSTLY_IQ2_S
            | F::MOSTLY_IQ2_M
            | F::MOSTLY_IQ1_M
    );
    let iq2_s_or_m = matches!(ftype, F::MOSTLY_IQ2_S | F::MOSTLY_IQ2_M);

    if category == C::Output || (qs.has_tied_embeddings && category == C::TokenEmbd) {
        // the output projection, or the token embeddings that double as it
        if let Some(t) = cx.output_tensor_type {
            new_type = t;
        } else {
            let nx = tensor.ne[0];
            let qk_k = new_type.block_size() as u64;
            if ftype == F::MOSTLY_MXFP4_MOE || is_falcon || nx % qk_k != 0 {
                new_type = T::Q8_0;
            } else if low_bit_iq || ftype == F::MOSTLY_IQ3_XXS {
                new_type = T::Q5_K;
            } else if new_type != T::Q8_0 {
                new_type = T::Q6_K;
            }
        }
    } else if ftype == F::MOSTLY_MXFP4_MOE {
        // stacked experts -> MXFP4, everything else -> Q8_0; bailingmoe3's 3-D MLA projections
        // are not experts
        let expert_role = matches!(category, C::FfnUp | C::FfnGate | C::FfnDown);
        new_type = if tensor.ne[2] > 1 && (arch != "bailingmoe3" || expert_role) {
            T::MXFP4
        } else {
            T::Q8_0
        };
    } else if category == C::TokenEmbd {
        if let Some(t) = cx.token_embedding_type {
            new_type = t;
        } else if matches!(
            ftype,
            F::MOSTLY_IQ2_XXS | F::MOSTLY_IQ2_XS | F::MOSTLY_IQ1_S | F::MOSTLY_IQ1_M
        ) {
            new_type = T::Q2_K;
        } else if iq2_s_or_m || ftype == F::MOSTLY_IQ3_XXS {
            new_type = T::IQ3_S;
        } else if matches!(ftype, F::MOSTLY_TQ1_0 | F::MOSTLY_TQ2_0 | F::MOSTLY_Q2_0) {
            new_type = T::Q4_K;
        }
    } else if low_bit_iq {
        if category.is_attn_v_like() {
            new_type = if cx.n_gqa(name)? >= 4 || n_expert >= 4 {
                T::Q4_K
            } else if iq2_s_or_m {
                T::IQ3_S
            } else {
                T::Q2_K
            };
            qs.i_attention_wv += 1;
        } else if n_expert == 8 && category == C::AttentionK {
            new_type = T::Q4_K;
        } else if category == C::FfnDown {
            if qs.i_ffn_down < qs.n_ffn_down / 8 {
                new_type = if iq2_s_or_m { T::IQ3_S } else { T::Q2_K };
            }
            qs.i_ffn_down += 1;
        } else if category == C::AttentionOutput {
            if n_expert == 8 {
                new_type = T::Q5_K;
            } else if matches!(ftype, F::MOSTLY_IQ1_S | F::MOSTLY_IQ1_M) {
                new_type = T::IQ2_XXS;
            } else if iq2_s_or_m {
                new_type = T::IQ3_S;
            }
        }
    } else if category.is_attn_v_like() {
        let i = qs.i_attention_wv;
        if ftype == F::MOSTLY_Q2_K {
            new_type = if cx.n_gqa(name)? >= 4 {
                T::Q4_K
            } else {
                T::Q3_K
            };
        } else if ftype == F::MOSTLY_Q2_K_S && cx.n_gqa(name)? >= 4 {
            new_type = T::Q4_K;
        } else if ftype == F::MOSTLY_IQ3_XXS {
            new_type = if cx.n_gqa(name)? >= 4 {
                T::Q4_K
            } else if !qs.has_imatrix {
                T::IQ3_S
            } else {
                T::IQ3_XXS
            };
        } else if (matches!(ftype, F::MOSTLY_IQ3_XS | F::MOSTLY_IQ3_S) && cx.n_gqa(name)? >= 4)
            || ftype == F::MOSTLY_IQ3_M
        {
            new_type = T::Q4_K;
        } else if ftype == F::MOSTLY_Q3_K_M {
            new_type = if i < 2 { T::Q5_K } else { T::Q4_K };
        } else if ftype == F::MOSTLY_Q3_K_L
            || (matches!(ftype, F::MOSTLY_IQ4_NL | F::MOSTLY_IQ4_XS) && cx.n_gqa(name)? >= 4)
        {
            new_type = T::Q5_K;
        } else if matches!(ftype, F::MOSTLY_Q4_K_M | F::MOSTLY_Q5_K_M)
            && use_more_bits(i, qs.n_attention_wv)
        {
            new_type = T::Q6_K;
        } else if ftype == F::MOSTLY_Q4_K_S && i < 4 {
            new_type = T::Q5_K;
        }
        // 70B: 8 query heads share each attn_v, so it is 8x smaller than attn_q; more bits are
        // nearly free
        if cx.model.is_70b() && matches!(new_type, T::Q3_K | T::Q4_K) {
            new_type = T::Q5_K;
        }
        if n_expert == 8 {
            new_type = T::Q8_0;
        }
        qs.i_attention_wv += 1;
    } else if category == C::AttentionK {
        if n_expert == 8 {
            new_type = T::Q8_0;
        } else if ftype == F::MOSTLY_IQ3_XS {
            new_type = T::IQ3_XXS;
        } else if ftype == F::MOSTLY_IQ3_XXS {
            new_type = T::IQ2_S;
        }
    } else if category == C::AttentionQ {
        if ftype == F::MOSTLY_IQ3_XS {
            new_type = T::IQ3_XXS;
        } else if ftype == F::MOSTLY_IQ3_XXS {
            new_type = T::IQ2_S;
        }
    } else if category == C::FfnDown {
        let (i_layer, n_layer) = cx.layer_info(qs.i_ffn_down, qs.n_ffn_down, name)?;
        if ftype == F::MOSTLY_Q2_K {
            new_type = T::Q3_K;
        } else if ftype == F::MOSTLY_Q2_K_S {
            if i_layer < n_layer / 8 {
                new_type = T::Q4_K;
            }
        } else if ftype == F::MOSTLY_IQ3_XXS && !qs.has_imatrix {
            new_type = if i_layer < n_layer / 8 {
                T::Q4_K
            } else {
                T::Q3_K
            };
        } else if ftype == F::MOSTLY_Q3_K_M {
            new_type = if i_layer < n_layer / 16 {
                T::Q5_K
            } else if !is_falcon || use_more_bits(i_layer, n_layer) {
                T::Q4_K
            } else {
                T::Q3_K
            };
        } else if ftype == F::MOSTLY_IQ3_M
            && (i_layer < n_layer / 8 || (n_expert == 8 && use_more_bits(i_layer, n_layer)))
        {
            new_type = T::Q4_K;
        } else if ftype == F::MOSTLY_Q3_K_L {
            new_type = if is_falcon { T::Q4_K } else { T::Q5_K };
        } else if ftype == F::MOSTLY_Q4_K_M {
            if is_falcon {
                new_type = if i_layer < n_layer / 16 {
                    T::Q6_K
                } else if use_more_bits(i_layer, n_layer) {
                    T::Q5_K
                } else {
                    T::Q4_K
                };
            } else if use_more_bits(i_layer, n_layer) {
                new_type = T::Q6_K;
            }
        } else if i_layer < n_layer / 8
            && matches!(ftype, F::MOSTLY_IQ4_NL | F::MOSTLY_IQ4_XS)
            && !qs.has_imatrix
        {
            new_type = T::Q5_K;
        } else if ftype == F::MOSTLY_Q5_K_M && use_more_bits(i_layer, n_layer) {
            new_type = T::Q6_K;
        } else if ftype == F::MOSTLY_Q4_K_S && !is_falcon && i_layer < n_layer / 8 {
            new_type = T::Q5_K;
        } else if matches!(ftype, F::MOSTLY_Q4_0 | F::MOSTLY_Q5_0)
            && qs.has_imatrix
            && i_layer < n_layer / 8
        {
            // guards the first ffn_down layers, only with an imatrix so that the plain
            // quantization stays what it always was
            new_type = if ftype == F::MOSTLY_Q4_0 {
                T::Q4_1
            } else {
                T::Q5_1
            };
        }
        qs.i_ffn_down += 1;
    } else if category == C::AttentionOutput {
        if !is_falcon {
            if n_expert == 8 {
                if matches!(
                    ftype,
                    F::MOSTLY_Q2_K
                        | F::MOSTLY_IQ3_XS
                        | F::MOSTLY_IQ3_XXS
                        | F::MOSTLY_Q3_K_S
                        | F::MOSTLY_Q3_K_M
                        | F::MOSTLY_IQ4_NL
                        | F::MOSTLY_Q4_K_S
                        | F::MOSTLY_Q4_K_M
                        | F::MOSTLY_IQ3_S
                        | F::MOSTLY_IQ3_M
                        | F::MOSTLY_IQ4_XS
                ) {
                    new_type = T::Q5_K;
                }
            } else {
                match ftype {
                    F::MOSTLY_Q2_K => new_type = T::Q3_K,
                    F::MOSTLY_IQ3_XXS => new_type = T::IQ3_S,
                    F::MOSTLY_Q3_K_M => new_type = T::Q4_K,
                    F::MOSTLY_Q3_K_L => new_type = T::Q5_K,
                    F::MOSTLY_IQ3_M => new_type = T::Q4_K,
                    _ => {}
                }
            }
        } else if ftype == F::MOSTLY_Q3_K_L {
            new_type = T::Q4_K;
        }
    }
    // (llama.cpp's separate ATTENTION_QKV branch follows here; it is unreachable since the
    // 2026-03 refactor because attn_qkv is attn_v-like and handled above.)
    else if category == C::FfnGate {
        let (i_layer, n_layer) = cx.layer_info(qs.i_ffn_gate, qs.n_ffn_gate, name)?;
        if ftype == F::MOSTLY_IQ3_XS && i_layer >= n_layer / 8 && i_layer < 7 * n_layer / 8 {
            new_type = T::IQ3_XXS;
        }
        qs.i_ffn_gate += 1;
    } else if category == C::FfnUp {
        let (i_layer, n_layer) = cx.layer_info(qs.i_ffn_up, qs.n_ffn_up, name)?;
        if ftype == F::MOSTLY_IQ3_XS && i_layer >= n_layer / 8 && i_layer < 7 * n_layer / 8 {
            new_type = T::IQ3_XXS;
        }
        qs.i_ffn_up += 1;
    }
    Ok(new_type)
}

#[cfg(test)]
mod tests {
    use super::use_more_bits;

    #[test]
    fn use_more_bits_for_32_layers() {
        // n/8 = 4, 7n/8 = 28: layers 0-3, 28-31, and 6, 9, ..., 27
        let more: Vec<i64> = (0..32).filter(|&i| use_more_bits(i, 32)).collect();
        assert_eq!(
            more,
            [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
        );
    }
}
