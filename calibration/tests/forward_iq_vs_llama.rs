//! The forward pass against the pinned llama.cpp for the grid IQ types, which llama-quantize
//! makes only with an importance matrix: the eval fixture's imatrix from the oracle's
//! llama-imatrix, the fixture's layer weights quantized by llama-quantize with it (all to the
//! type under test), and the logits of
//! `Model::eval` compared with libllama's (the `llama-logits` harness) for a long sequence (the
//! tiled kernel, 8 input rows or more) and a short one (`vec_dot`, fewer than 8 rows). Every
//! logit must be identical.

mod common;

use common::*;
use qforge_calibration::model::Model;
use std::path::Path;

/// The layer weights, all quantized to the type under test (llama-quantize's mixes would bring
/// in other types), with the embeddings and output in Q8_0 (exact already).
const LAYER_TENSORS: [&str; 7] = [
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

/// Tokens of the long sequence: one llama-perplexity chunk.
const N_TOKENS: usize = 512;

/// Tokens of the short sequence: fewer than the tiled kernel's 8 rows.
const N_SHORT: usize = 5;

/// The eval fixture's text (stored in the file) tokenized by llama-tokenize, first 512 ids.
fn eval_fixture_tokens(dir: &Path, scratch: &Path) -> Vec<u32> {
    eval_tokens(dir, &fixture("tiny-llama-eval-f16.gguf"), N_TOKENS, scratch)
}

/// `max |ours - libllama's|` over the logits of `tokens` (all positions) for `model`.
fn max_diff(dir: &Path, model: &Path, tokens: &[u32], scratch: &Path) -> f64 {
    let theirs = llama_logits(dir, model, tokens, 0, 2, scratch);
    let ours = Model::open(model).unwrap().eval(tokens, 0, None).unwrap();
    assert_eq!(ours.len(), theirs.len(), "{}", model.display());
    ours.iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs() as f64)
        .fold(0.0, f64::max)
}

#[test]
fn grid_iq_quants_with_an_imatrix_match_llama() {
    let Some(dir) = oracle_dir() else { return };
    let s = scratch("grid-iq");
    let tokens = eval_fixture_tokens(&dir, &s);
    let src = fixture("tiny-llama-eval-f16.gguf");
    let imatrix = s.join("eval.imatrix");
    run_ok(
        llama(&dir, "llama-imatrix")
            .arg("-m")
            .arg(&src)
            .arg("-f")
            .arg(root().join("fixtures/text/gpl-3.txt"))
            .arg("-o")
            .arg(&imatrix)
            .args(["-c", "128", "--chunks", "8", "-t", "2"]),
    );
    let mut failures = Vec::new();
    for ty in [
        "IQ3_S", "IQ2_XXS", "IQ3_XXS", "IQ2_XS", "IQ2_S", "IQ1_S", "IQ1_M",
    ] {
        let q = s.join(format!("eval-{ty}.gguf"));
        let mut cmd = llama(&dir, "llama-quantize");
        cmd.arg("--imatrix").arg(&imatrix);
        for t in LAYER_TENSORS {
            cmd.arg("--tensor-type").arg(format!("{t}={ty}"));
        }
        run_ok(
            cmd.args([
                "--output-tensor-type",
                "q8_0",
                "--token-embedding-type",
                "q8_0",
            ])
            .arg(&src)
            .arg(&q)
            .arg(ty)
            .arg("2"),
        );
        let long = max_diff(&dir, &q, &tokens, &s);
        let short = max_diff(&dir, &q, &tokens[..N_SHORT], &s);
        eprintln!(
            "{ty:8} max|diff| {long:.3e} ({N_TOKENS} tokens), {short:.3e} ({N_SHORT} tokens)"
        );
        if long != 0.0 || short != 0.0 {
            failures.push(format!("{ty}: max|diff| {long:.3e} / {short:.3e}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
