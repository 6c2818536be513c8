//! The forward pass of the non-llama architectures against the pinned llama.cpp: logits of each
//! fixture in fixtures/arch/ (F16 as committed, F32 and Q8_0 from llama-quantize) from
//! `Model::eval` and from libllama (the `llama-logits` harness with llama-perplexity's context
//! settings), compared position by position, with the perplexity llama-perplexity would compute.

mod common;

use common::*;
use qforge_calibration::model::{ActivationObserver, Arch, Model};
use qforge_formats::gguf::GgufFile;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Tolerances `(max |diff| / max |logit|, relative PPL difference)` by architecture and weight
/// type: none. The CPU backend reproduces the oracle's AVX2 summation order for every product,
/// so every architecture gives libllama's logits bit for bit in F32, F16 and Q8_0 (including
/// Gemma's GELU through ggml's F16 table, where one ulp of summation difference used to move a
/// gate across an F16 rounding boundary).
fn tolerance(_arch: &str, _ty: &str) -> (f64, f64) {
    (0.0, 0.0)
}

fn arch_fixture(arch: &str) -> PathBuf {
    fixture(&format!("arch/tiny-{arch}-f16.gguf"))
}

/// llama-perplexity's per-chunk perplexity: positions `n/2 .. n-1` each predict the next token.
fn chunk_ppl(logits: &[f32], tokens: &[u32], n_vocab: usize) -> f64 {
    let n = tokens.len();
    let first = n / 2;
    let mut nll = 0.0f64;
    for j in first..n - 1 {
        let row = &logits[j * n_vocab..(j + 1) * n_vocab];
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let sum: f64 = row.iter().map(|&v| ((v - max) as f64).exp()).sum();
        nll += -((row[tokens[j + 1] as usize] - max) as f64 - sum.ln());
    }
    (nll / (n - 1 - first) as f64).exp()
}

/// Relative logit difference and relative PPL difference of `model` on `tokens`.
fn compare(dir: &Path, model: &Path, tokens: &[u32], scratch: &Path) -> (f64, f64, f64) {
    let theirs = llama_logits(dir, model, tokens, 0, 2, scratch);
    let m = Model::open(model).unwrap();
    let ours = m.eval(tokens, 0, None).unwrap();
    assert_eq!(ours.len(), theirs.len(), "{}", model.display());
    let max_abs = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs() as f64)
        .fold(0.0, f64::max);
    let max_logit = theirs.iter().map(|v| v.abs() as f64).fold(0.0, f64::max);
    let nv = m.n_vocab();
    let (po, pl) = (chunk_ppl(&ours, tokens, nv), chunk_ppl(&theirs, tokens, nv));
    (max_abs / max_logit, (po / pl - 1.0).abs(), max_logit)
}

/// Compares `arch`'s fixture in F16, F32 and Q8_0 on 512 tokens (one llama-perplexity chunk).
fn check_arch(arch: &str) {
    let Some(dir) = oracle_dir() else { return };
    let s = scratch(arch);
    let src = arch_fixture(arch);
    let tokens = eval_tokens(&dir, &src, 512, &s);
    let mut failures = Vec::new();
    for ty in ["F16", "F32", "Q8_0"] {
        let model = if ty == "F16" {
            src.clone()
        } else {
            let q = s.join(format!("{arch}-{ty}.gguf"));
            run_ok(
                llama(&dir, "llama-quantize")
                    .arg(&src)
                    .arg(&q)
                    .arg(ty)
                    .arg("2"),
            );
            q
        };
        let (rel, ppl_rel, max_logit) = compare(&dir, &model, &tokens, &s);
        eprintln!("{arch:9} {ty:5} rel logit diff {rel:.2e} (max |logit| {max_logit:.2}), rel PPL diff {ppl_rel:.2e}");
        let (tl, tp) = tolerance(arch, ty);
        if !(rel <= tl && ppl_rel <= tp) {
            failures.push(format!(
                "{arch} {ty}: rel logit diff {rel:.2e}, rel PPL diff {ppl_rel:.2e}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn qwen2_matches_llama() {
    check_arch("qwen2");
}

#[test]
fn qwen3_matches_llama() {
    check_arch("qwen3");
}

#[test]
fn qwen3moe_matches_llama() {
    check_arch("qwen3moe");
}

#[test]
fn gemma2_matches_llama() {
    check_arch("gemma2");
}

#[test]
fn gemma3_matches_llama() {
    check_arch("gemma3");
}

#[test]
fn phi3_matches_llama() {
    check_arch("phi3");
}

/// Phi-3 with LongRoPE factors (original context 256): 512 tokens take the long factors.
#[test]
fn phi3_longrope_matches_llama() {
    check_arch("phi3-longrope");
}

/// LongRoPE's factor choice follows the context: 200 tokens (a context of 256, not above the
/// original 256) take the short factors, 300 (a context of 512) the long ones; logits must match
/// llama.cpp's either way and differ between the two choices.
#[test]
fn longrope_factor_choice_matches_llama() {
    let Some(dir) = oracle_dir() else { return };
    let s = scratch("longrope-choice");
    let src = arch_fixture("phi3-longrope");
    assert_eq!(Model::open(&src).unwrap().hparams().n_ctx_orig_yarn, 256);
    let mut failures = Vec::new();
    for n in [200, 300] {
        let tokens = eval_tokens(&dir, &src, n, &s);
        let (rel, ppl_rel, _) = compare(&dir, &src, &tokens, &s);
        eprintln!("phi3-longrope {n} tokens: rel logit diff {rel:.2e}, rel PPL diff {ppl_rel:.2e}");
        let (tl, tp) = tolerance("phi3", "F16");
        if !(rel <= tl && ppl_rel <= tp) {
            failures.push(format!(
                "{n}: rel logit diff {rel:.2e}, rel PPL diff {ppl_rel:.2e}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // The first 200 positions of the 300-token run used the long factors: they differ.
    let m = Model::open(&src).unwrap();
    let tokens = eval_tokens(&dir, &src, 300, &s);
    let short = m.eval(&tokens[..200], 0, None).unwrap();
    let long = m.eval(&tokens, 0, None).unwrap();
    assert_ne!(short[..short.len()], long[..short.len()]);
}

/// Sliding-window layers past one micro-batch: 560 tokens (window 64) run as micro-batches of 512
/// and 48 rows, so the second runs llama.cpp's one-row attention kernel with masked keys; and a
/// 40-token sequence (one-row kernel, soft-capping) -- F16 fixtures.
#[test]
fn sliding_window_across_micro_batches_matches_llama() {
    let Some(dir) = oracle_dir() else { return };
    let s = scratch("swa");
    let mut failures = Vec::new();
    for arch in ["gemma2", "gemma3"] {
        let src = arch_fixture(arch);
        let m = Model::open(&src).unwrap();
        let hp = m.hparams();
        assert!(
            hp.n_swa > 0 && hp.n_swa < 512,
            "{arch}: window {}",
            hp.n_swa
        );
        assert!(
            (0..hp.n_layer).any(|il| hp.is_swa(il)) && (0..hp.n_layer).any(|il| !hp.is_swa(il))
        );
        for n in [560, 40] {
            let tokens = eval_tokens(&dir, &src, n, &s);
            let (rel, ppl_rel, _) = compare(&dir, &src, &tokens, &s);
            eprintln!("{arch:9} {n} tokens: rel logit diff {rel:.2e}, rel PPL diff {ppl_rel:.2e}");
            let (tl, tp) = tolerance(arch, "F16");
            if !(rel <= tl && ppl_rel <= tp) {
                failures.push(format!(
                    "{arch} {n}: rel logit diff {rel:.2e}, rel PPL diff {ppl_rel:.2e}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The hyper-parameters each fixture's metadata implies, as llama.cpp's loader reads them.
#[test]
fn hparams_follow_llama_loader() {
    let hp = |a: &str| Model::open(arch_fixture(a)).unwrap().hparams().clone();
    let g2 = hp("gemma2");
    assert_eq!(g2.arch, Arch::Gemma2);
    assert_eq!(
        (g2.n_swa, g2.attn_softcap, g2.final_softcap),
        (64, 50.0, 30.0)
    );
    assert_eq!(g2.swa_layers, vec![true, false, true, false]);
    assert_eq!(g2.q_scale, Some(1.0 / (32f32).sqrt()));
    let g3 = hp("gemma3");
    assert_eq!(g3.swa_layers, vec![true, true, true, true, true, false]);
    assert_eq!((g3.rope_freq_base, g3.rope_freq_base_swa), (1e6, 1e4));
    assert_eq!((g3.attn_softcap, g3.final_softcap), (0.0, 0.0));
    let q = hp("qwen3moe");
    assert_eq!((q.n_expert, q.n_expert_used, q.n_ff_exp), (4, 2, 64));
    assert_eq!(q.head_dim, 64);
    let p = hp("phi3");
    assert_eq!((p.n_swa, p.q_scale), (0, Some(1.0 / (32f32).sqrt())));
    assert_eq!((p.rope_attn_factor, p.n_ctx_orig_yarn), (1.0, 1024));
    let lr = hp("phi3-longrope");
    let expected = (1.0f64 + (4.0f64).ln() / (256.0f64).ln()).sqrt() as f32;
    assert_eq!((lr.rope_attn_factor, lr.n_ctx_orig_yarn), (expected, 256));
}

/// The observer sees every weight product: the fused `attn_qkv` and `ffn_up` once (phi3), q/k/v
/// separately (qwen2), each expert's rows (qwen3moe).
#[test]
fn observer_sees_every_product() {
    #[derive(Default)]
    struct Count(BTreeMap<(String, Option<usize>), usize>);
    impl ActivationObserver for Count {
        fn observe(&mut self, w: &str, e: Option<usize>, rows: &[f32], n_cols: usize) {
            *self.0.entry((w.to_string(), e)).or_default() += rows.len() / n_cols;
        }
    }
    let tokens: Vec<u32> = (0..100u32).map(|i| (i * 37 + 5) % 512).collect();
    let run = |arch: &str| {
        let m = Model::open(arch_fixture(arch)).unwrap();
        let mut c = Count::default();
        m.eval(&tokens, 60, Some(&mut c)).unwrap();
        c.0
    };
    let p = run("phi3");
    let key = |s: &str| (s.to_string(), None);
    assert_eq!(p[&key("blk.0.attn_qkv.weight")], 100);
    assert_eq!(p[&key("blk.1.ffn_up.weight")], 40);
    assert!(!p.contains_key(&key("blk.0.attn_q.weight")));
    assert_eq!(p.len(), 4 * 2 + 1);
    let q = run("qwen2");
    assert_eq!(q[&key("blk.0.attn_k.weight")], 100);
    assert_eq!(q.len(), 7 * 2 + 1);
    let moe = run("qwen3moe");
    let routed: usize = (0..4)
        .map(|e| {
            moe.get(&("blk.0.ffn_up_exps.weight".to_string(), Some(e)))
                .copied()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(routed, 100 * 2);
    assert_eq!(moe[&key("blk.0.ffn_gate_inp.weight")], 100);
}

/// LongRoPE factors llama.cpp would not use (a lone `rope_factors_long`, or factors in a qwen2
/// model) are refused with a clear error rather than ignored.
#[test]
fn stray_longrope_factors_are_refused() {
    use qforge_calibration::model::{HParams, ModelError, TensorMeta, WeightSource};
    /// A fixture plus a `rope_factors_long.weight` entry (the loader looks for the name first).
    struct WithFactors(GgufFile);
    impl WeightSource for WithFactors {
        fn path(&self) -> &Path {
            self.0.path()
        }
        fn meta(&self, name: &str) -> Option<TensorMeta> {
            if name == "rope_factors_long.weight" || name == "rope_factors_short.weight" {
                return Some(TensorMeta {
                    ty: qforge_formats::ggml::GgmlType::F32,
                    dims: vec![16],
                });
            }
            WeightSource::meta(&self.0, name)
        }
        fn bytes(&self, name: &str) -> Result<std::borrow::Cow<'_, [u8]>, ModelError> {
            if name.starts_with("rope_factors_") {
                return Ok(std::borrow::Cow::Owned(vec![0u8; 64]));
            }
            WeightSource::bytes(&self.0, name)
        }
    }
    let src = GgufFile::open(arch_fixture("qwen2")).unwrap();
    let hp = HParams::from_gguf(src.header(), src.path()).unwrap();
    let err = Model::new(
        Box::new(WithFactors(src)),
        hp,
        qforge_calibration::backend::CpuBackend::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("LongRoPE"), "{err}");
}
