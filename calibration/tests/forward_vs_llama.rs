//! The forward pass against the pinned llama.cpp: logits of the eval fixture, quantized by
//! llama-quantize to each type, from `Model::eval` and from libllama (the `llama-logits` harness
//! with llama-perplexity's context settings), compared position by position, and the
//! perplexity llama-perplexity would compute from each.

mod common;

use common::*;
use qforge_calibration::model::{ActivationObserver, Model};
use std::path::Path;

/// Tokens evaluated: one llama-perplexity chunk.
const N_TOKENS: usize = 512;

/// Tolerances `(max |diff| / max |logit|, relative PPL difference)` by weight type: none. The
/// CPU backend reproduces the summation order of the oracle's x86 AVX2 kernels (llamafile
/// tinyBLAS, the repacked 8x8 and tiled K-quant kernels, `vec_dot`), so every type the fixture
/// is quantized to here gives libllama's logits bit for bit.
fn tolerance(_ty: &str) -> (f64, f64) {
    (0.0, 0.0)
}

/// Tolerance of the F16 fixture runs with partial outputs or a short sequence: none.
const MAX_REL_LOGIT_DIFF: f64 = 0.0;

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

/// The eval fixture's text (stored in the file) tokenized by llama-tokenize, first 512 ids.
fn eval_fixture_tokens(dir: &Path, scratch: &Path) -> Vec<u32> {
    eval_tokens(dir, &fixture("tiny-llama-eval-f16.gguf"), N_TOKENS, scratch)
}

struct Diff {
    max_abs: f64,
    max_logit: f64,
    ppl_ours: f64,
    ppl_llama: f64,
}

fn compare(dir: &Path, model: &Path, tokens: &[u32], first: usize, scratch: &Path) -> Diff {
    let theirs = llama_logits(dir, model, tokens, first, 2, scratch);
    let m = Model::open(model).unwrap();
    let ours = m.eval(tokens, first, None).unwrap();
    assert_eq!(ours.len(), theirs.len(), "{}", model.display());
    let max_abs = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs() as f64)
        .fold(0.0, f64::max);
    let max_logit = theirs.iter().map(|v| v.abs() as f64).fold(0.0, f64::max);
    let (ppl_ours, ppl_llama) = if first == 0 {
        let nv = m.n_vocab();
        (chunk_ppl(&ours, tokens, nv), chunk_ppl(&theirs, tokens, nv))
    } else {
        (f64::NAN, f64::NAN)
    };
    Diff {
        max_abs,
        max_logit,
        ppl_ours,
        ppl_llama,
    }
}

fn check_types(types: &[&str], test: &str) {
    let Some(dir) = oracle_dir() else { return };
    let s = scratch(test);
    let tokens = eval_fixture_tokens(&dir, &s);
    let src = fixture("tiny-llama-eval-f16.gguf");
    let mut failures = Vec::new();
    for ty in types {
        let q = s.join(format!("eval-{ty}.gguf"));
        run_ok(
            llama(&dir, "llama-quantize")
                .arg(&src)
                .arg(&q)
                .arg(ty)
                .arg("2"),
        );
        let d = compare(&dir, &q, &tokens, 0, &s);
        let rel = d.max_abs / d.max_logit;
        let ppl_rel = (d.ppl_ours / d.ppl_llama - 1.0).abs();
        eprintln!(
            "{ty:8} max|diff| {:.3e} (max |logit| {:.2}, rel {rel:.2e})  PPL ours {:.6} llama {:.6} (rel {ppl_rel:.2e})",
            d.max_abs, d.max_logit, d.ppl_ours, d.ppl_llama
        );
        let (tl, tp) = tolerance(ty);
        if !(rel <= tl && ppl_rel <= tp) {
            failures.push(format!(
                "{ty}: rel logit diff {rel:.2e}, rel PPL diff {ppl_rel:.2e}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn float_types_match_llama() {
    check_types(&["F32", "F16", "BF16"], "float");
}

#[test]
fn legacy_quants_match_llama() {
    check_types(&["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"], "legacy");
}

#[test]
fn k_and_iq_quants_match_llama() {
    check_types(
        &[
            "Q5_K_M", "Q4_K_M", "Q6_K", "Q3_K_M", "Q2_K", "IQ4_XS", "IQ4_NL",
        ],
        "kquants",
    );
}

/// Fewer than 64 rows in a micro-batch: llama.cpp's one-row attention kernel (Q rounded to F16,
/// F16 V accumulator); and outputs of only the last positions (the last layer's row selection).
#[test]
fn short_sequence_and_partial_outputs_match_llama() {
    let Some(dir) = oracle_dir() else { return };
    let s = scratch("short");
    let tokens = eval_fixture_tokens(&dir, &s);
    let src = fixture("tiny-llama-eval-f16.gguf");
    let short = &tokens[..40];
    let d = compare(&dir, &src, short, 0, &s);
    let rel = d.max_abs / d.max_logit;
    eprintln!(
        "short: max|diff| {:.3e} rel {rel:.2e}, PPL {} vs {}",
        d.max_abs, d.ppl_ours, d.ppl_llama
    );
    assert!(
        rel <= MAX_REL_LOGIT_DIFF,
        "short sequence: rel logit diff {rel:.2e}"
    );
    let d = compare(&dir, &src, &tokens, 300, &s);
    let rel = d.max_abs / d.max_logit;
    eprintln!(
        "first_output 300: max|diff| {:.3e} rel {rel:.2e}",
        d.max_abs
    );
    assert!(
        rel <= MAX_REL_LOGIT_DIFF,
        "partial outputs: rel logit diff {rel:.2e}"
    );
}

/// Results do not depend on the number of threads.
#[test]
fn eval_is_deterministic_across_thread_counts() {
    let Some(dir) = oracle_dir() else { return };
    let s = scratch("threads");
    let tokens = eval_fixture_tokens(&dir, &s);
    let m = Model::open(fixture("tiny-llama-eval-f16.gguf")).unwrap();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| m.eval(&tokens, 0, None).unwrap())
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

/// The observer sees every weight product's input rows; the last layer's FFN only the outputs.
#[test]
fn observer_sees_every_product() {
    struct Count(std::collections::BTreeMap<String, (usize, usize)>);
    impl ActivationObserver for Count {
        fn observe(&mut self, w: &str, _e: Option<usize>, rows: &[f32], n_cols: usize) {
            let e = self.0.entry(w.to_string()).or_default();
            e.0 += rows.len() / n_cols;
            e.1 = n_cols;
        }
    }
    let m = Model::open(fixture("tiny-llama-eval-f16.gguf")).unwrap();
    let tokens: Vec<u32> = (0..100u32).map(|i| (i * 37 + 5) % 512).collect();
    let mut c = Count(Default::default());
    m.eval(&tokens, 60, Some(&mut c)).unwrap();
    let hp = m.hparams();
    assert_eq!(c.0.len(), 7 * hp.n_layer + 1);
    assert_eq!(c.0["blk.0.ffn_down.weight"], (100, hp.n_ff));
    assert_eq!(c.0["blk.1.attn_output.weight"], (100, hp.n_embd));
    assert_eq!(c.0["blk.1.ffn_up.weight"], (40, hp.n_embd));
    assert_eq!(c.0["output.weight"], (40, hp.n_embd));
}

/// The Mixtral-style MoE fixture (softmax gating, top-2 of 4 experts, normalised weights) and the
/// odd-width fixture (head dim 36, rows not multiples of 32), F16 as committed, on deterministic ids.
#[test]
fn moe_and_odd_width_fixtures_match_llama() {
    let Some(dir) = oracle_dir() else { return };
    let s = scratch("moe");
    let tokens: Vec<u32> = (0..512u32).map(|i| (i * 7919 + 13) % 509 + 3).collect();
    for name in ["tiny-moe-f16.gguf", "tiny-odd-f16.gguf"] {
        let d = compare(&dir, &fixture(name), &tokens, 0, &s);
        let rel = d.max_abs / d.max_logit;
        let ppl_rel = (d.ppl_ours / d.ppl_llama - 1.0).abs();
        eprintln!(
            "{name}: max|diff| {:.3e} rel {rel:.2e}, PPL {:.6} vs {:.6} (rel {ppl_rel:.2e})",
            d.max_abs, d.ppl_ours, d.ppl_llama
        );
        let (tl, tp) = tolerance("F16");
        assert!(
            rel <= tl && ppl_rel <= tp,
            "{name}: rel logit diff {rel:.2e}, rel PPL diff {ppl_rel:.2e}"
        );
    }
}
