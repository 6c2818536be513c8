//! Behaviour of the planner and the conversion checks that the llama-quantize goldens do not
//! reach (expectations derived from the pinned `src/llama-quant.cpp`).

use super::*;

fn llama(n_layer: u32) -> ModelDesc {
    ModelDesc {
        arch: "llama".into(),
        n_layer_all: n_layer,
        n_layer_nextn: 0,
        n_head: 8,
        n_head_kv: 2,
        n_expert: 0,
    }
}

fn f16(name: &str, dims: &[u64]) -> TensorDesc {
    TensorDesc::new(name, GgmlType::F16, dims)
}

fn plan(params: &RecipeParams, tensors: &[TensorDesc]) -> Result<QuantizePlan, RecipeError> {
    plan_quantization(&llama(2), params, tensors)
}

#[test]
fn nvfp4_and_duplicates_are_refused() {
    let t = [f16("blk.0.attn_q.weight", &[256, 4])];
    let e = plan(&RecipeParams::new(LlamaFtype::MOSTLY_NVFP4), &t).unwrap_err();
    assert_eq!(e.to_string(), "invalid output file type 39");
    let t = [f16("a.weight", &[256, 4]), f16("a.weight", &[256, 4])];
    let e = plan(&RecipeParams::new(LlamaFtype::MOSTLY_Q8_0), &t).unwrap_err();
    assert_eq!(e, RecipeError::DuplicateTensor("a.weight".into()));
}

#[test]
fn sources_are_recorded() {
    let mut p = RecipeParams::new(LlamaFtype::MOSTLY_Q4_K_M);
    p.token_embedding_type = Some(GgmlType::Q8_0);
    p.tensor_types
        .push(TensorTypeOverride::parse("attn_k=q5_0").unwrap());
    let t = [
        f16("output.weight", &[256, 4]),
        TensorDesc::new("output_norm.weight", GgmlType::F32, &[256]),
        f16("token_embd.weight", &[256, 4]),
        f16("blk.0.attn_k.weight", &[256, 4]),
        f16("blk.0.attn_q.weight", &[256, 4]),
    ];
    let plan = plan(&p, &t).unwrap();
    let got: Vec<(TypeSource, GgmlType)> =
        plan.tensors.iter().map(|t| (t.source, t.target)).collect();
    assert_eq!(
        got,
        [
            (TypeSource::Mixture, GgmlType::Q6_K),
            (TypeSource::Kept, GgmlType::F32),
            (TypeSource::TokenEmbeddingType, GgmlType::Q8_0),
            (TypeSource::Manual { rule: 0 }, GgmlType::Q5_0),
            (TypeSource::Mixture, GgmlType::Q4_K),
        ]
    );
    assert!(!plan.tensors[1].converts());
    assert!(plan.tensors[4].converts());
}

#[test]
fn fallbacks_are_recorded_and_can_be_refused() {
    let t = [
        f16("blk.0.ffn_down.weight", &[320, 4]),
        f16("blk.0.ffn_up.weight", &[256, 4]),
    ];
    let plan = plan(&RecipeParams::new(LlamaFtype::MOSTLY_Q4_K_S), &t).unwrap();
    // with 2 layers no ffn_down is in the first eighth, so Q4_K_S keeps Q4_K, whose fallback
    // is Q5_0
    assert_eq!(
        plan.tensors[0].fallback,
        Some(Fallback {
            wanted: GgmlType::Q4_K,
            used: GgmlType::Q5_0
        })
    );
    assert_eq!(plan.tensors[0].target, GgmlType::Q5_0);
    assert_eq!(plan.n_fallback(), 1);
    let e = plan.refuse_fallbacks().unwrap_err();
    assert!(
        matches!(e, RecipeError::FallbackRefused { ncols: 320, .. }),
        "{e:?}"
    );
    let t = [f16("blk.0.ffn_up.weight", &[256, 4])];
    assert!(
        super::tests::plan(&RecipeParams::new(LlamaFtype::MOSTLY_Q4_K_S), &t)
            .unwrap()
            .refuse_fallbacks()
            .is_ok()
    );
}

#[test]
fn missing_imatrix_fails_unless_dry_run() {
    let t = [
        f16("token_embd.weight", &[256, 4]),
        f16("blk.0.attn_q.weight", &[256, 4]),
    ];
    let mut p = RecipeParams::new(LlamaFtype::MOSTLY_IQ2_XS);
    let e = plan(&p, &t).unwrap_err();
    assert_eq!(
        e,
        RecipeError::ImatrixRequired {
            tensor: "blk.0.attn_q.weight".into(),
            ty: GgmlType::IQ2_XS
        }
    );
    p.dry_run = true;
    assert!(plan(&p, &t).unwrap().will_require_imatrix);
    p.dry_run = false;
    p.has_imatrix = true;
    let planned = plan(&p, &t).unwrap();
    assert!(!planned.will_require_imatrix);
    assert!(planned.tensors[1].requires_imatrix);
}

#[test]
fn keep_split_order_changes_the_counters() {
    // Q3_K_M gives the first two attn_v tensors *in processing order* Q5_K.
    let mut t = vec![
        f16("blk.0.attn_v.weight", &[256, 4]),
        f16("blk.1.attn_v.weight", &[256, 4]),
        f16("blk.2.attn_v.weight", &[256, 4]),
    ];
    let p = RecipeParams::new(LlamaFtype::MOSTLY_Q3_K_M);
    let model = llama(3);
    let type_of_blk1 = |t: &[TensorDesc]| -> GgmlType {
        let plan = plan_quantization(&model, &p, t).unwrap();
        plan.tensors
            .iter()
            .find(|x| x.name == "blk.1.attn_v.weight")
            .unwrap()
            .target
    };
    assert_eq!(type_of_blk1(&t), GgmlType::Q5_K);
    // the shards hold blk.2 first: blk.1 becomes the third attn_v
    let key = |name: &str| {
        if name.starts_with("blk.2") {
            (0u16, 0u64)
        } else {
            (1, 0)
        }
    };
    order::keep_split_order(&mut t, |x| key(&x.name));
    let names: Vec<&str> = t.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "blk.2.attn_v.weight",
            "blk.0.attn_v.weight",
            "blk.1.attn_v.weight"
        ]
    );
    assert_eq!(type_of_blk1(&t), GgmlType::Q4_K);
}

fn converted(name: &str, current: GgmlType, target: GgmlType, ne: [u64; 4]) -> TensorPlan {
    TensorPlan {
        name: name.into(),
        current,
        target,
        ne,
        category: TensorCategory::of(name),
        allows_quantization: true,
        requires_imatrix: tensor_requires_imatrix(name, target, LlamaFtype::MOSTLY_IQ2_XXS),
        source: TypeSource::Mixture,
        fallback: None,
    }
}

#[test]
fn imatrix_entries_are_checked_as_llama_quantize_does() {
    let experts = converted(
        "blk.0.ffn_up_exps.weight",
        GgmlType::F16,
        GgmlType::Q4_K,
        [256, 8, 4, 1],
    );
    // one row of importance per expert: ne0 * ne2 values
    assert_eq!(
        check_conversion(&experts, ImatrixEntry::Found { len: 1024 }, false),
        Ok(ImatrixUse::Use)
    );
    assert_eq!(
        check_conversion(&experts, ImatrixEntry::Found { len: 256 }, false)
            .unwrap_err()
            .to_string(),
        "imatrix size 256 is different from tensor size 1024 for blk.0.ffn_up_exps.weight"
    );
    assert_eq!(
        check_conversion(&experts, ImatrixEntry::NotFound, false),
        Ok(ImatrixUse::NotFound)
    );
    let embd = converted(
        "per_layer_token_embd.weight",
        GgmlType::F16,
        GgmlType::Q4_K,
        [256, 8, 1, 1],
    );
    assert_eq!(
        check_conversion(&embd, ImatrixEntry::Found { len: 3 }, false),
        Ok(ImatrixUse::SizeMismatchIgnored {
            found: 3,
            expected: 256
        })
    );
    let low = converted(
        "blk.0.attn_q.weight",
        GgmlType::F16,
        GgmlType::IQ2_XXS,
        [256, 8, 1, 1],
    );
    assert_eq!(
        check_conversion(&low, ImatrixEntry::NoImatrix, false),
        Err(ConversionError::MissingImatrix {
            tensor: "blk.0.attn_q.weight".into()
        })
    );
}

#[test]
fn unconvertible_types_and_copies() {
    let q = converted(
        "blk.0.attn_q.weight",
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        [256, 8, 1, 1],
    );
    assert!(matches!(
        check_conversion(&q, ImatrixEntry::NoImatrix, false),
        Err(ConversionError::RequantizeDisabled {
            from: GgmlType::Q8_0,
            ..
        })
    ));
    assert_eq!(
        check_conversion(&q, ImatrixEntry::NoImatrix, true),
        Ok(ImatrixUse::None)
    );
    // a copy is never checked, even from a quantized type
    let copy = converted(
        "blk.0.attn_q.weight",
        GgmlType::Q8_0,
        GgmlType::Q8_0,
        [256, 8, 1, 1],
    );
    assert_eq!(
        check_conversion(&copy, ImatrixEntry::Found { len: 1 }, false),
        Ok(ImatrixUse::None)
    );
    let f64_src = converted("x.weight", GgmlType::F64, GgmlType::Q8_0, [256, 8, 1, 1]);
    assert!(matches!(
        check_conversion(&f64_src, ImatrixEntry::NoImatrix, false),
        Err(ConversionError::CannotConvert {
            ty: GgmlType::F64,
            ..
        })
    ));
    let to_q8_1 = converted("x.weight", GgmlType::F16, GgmlType::Q8_1, [256, 8, 1, 1]);
    assert!(matches!(
        check_conversion(&to_q8_1, ImatrixEntry::NoImatrix, false),
        Err(ConversionError::UnsupportedTarget {
            ty: GgmlType::Q8_1,
            ..
        })
    ));
    let to_bf16 = converted("x.weight", GgmlType::F32, GgmlType::BF16, [100, 8, 1, 1]);
    assert_eq!(
        check_conversion(&to_bf16, ImatrixEntry::NoImatrix, false),
        Ok(ImatrixUse::None)
    );
}

#[test]
fn copy_mode_keeps_everything() {
    let option = crate::quantize::parse_ftype("COPY").unwrap();
    let t = [
        f16("output.weight", &[256, 4]),
        f16("blk.0.attn_q.weight", &[256, 4]),
    ];
    let plan = plan(&RecipeParams::for_option(option), &t).unwrap();
    assert!(plan
        .tensors
        .iter()
        .all(|t| !t.converts() && t.source == TypeSource::Kept));
}

#[test]
fn tensor_infos_convert_with_padded_dimensions() {
    let info = qforge_formats::gguf::TensorInfo {
        name: "blk.0.ffn_up_exps.weight".into(),
        ty: GgmlType::BF16,
        dims: vec![256, 8, 4],
        offset: 0,
    };
    let t = TensorDesc::from_info(&info);
    assert_eq!(
        (t.ty, t.ne, t.n_dims()),
        (GgmlType::BF16, [256, 8, 4, 1], 3)
    );
    assert_eq!(TensorDesc::new("x", GgmlType::F32, &[7, 1, 1]).n_dims(), 1);
}
