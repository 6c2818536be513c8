//! `qforge perplexity`, `qforge kld` and `qforge check` against the pinned llama-perplexity, on the
//! eval fixture (fixtures/tiny-llama-eval-f16.gguf) quantized by the pinned llama-quantize and an
//! English text (fixtures/text/gpl-3.txt).

mod common;

use common::*;
use std::path::{Path, PathBuf};

const CTX: &str = "128";
const CHUNKS: &str = "40";

fn text() -> PathBuf {
    fixture("text/gpl-3.txt")
}

/// The eval fixture in `ty`, made by llama-quantize (the F16 fixture itself for F16).
fn model(dir: &Path, oracle: &Path, ty: &str) -> PathBuf {
    let src = fixture("tiny-llama-eval-f16.gguf");
    if ty == "F16" {
        return src;
    }
    let out = dir.join(format!("eval-{ty}.gguf"));
    if !out.exists() {
        run_ok(llama(oracle, "llama-quantize").arg(&src).arg(&out).arg(ty));
    }
    out
}

fn stdout_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// The number after `label` on the first line containing it (`Final estimate: PPL = 12.3 +/- 0.4`).
fn value_after(out: &str, label: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no `{label}` in output:\n{out}"));
    let rest = &line[line.find(label).unwrap() + label.len()..];
    rest.split_whitespace()
        .next()
        .and_then(|w| w.trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("no number after `{label}` in `{line}`"))
}

/// Runs a llama.cpp tool until its output contains `label`: its logger runs on a thread that the
/// process does not join at exit, so the last lines are sometimes lost (llama.cpp issue #22142).
fn llama_until(mut make: impl FnMut() -> std::process::Command, label: &str) -> String {
    let mut out = String::new();
    for _ in 0..20 {
        out = stdout_of(&run_ok(&mut make()));
        if out.contains(label) {
            break;
        }
    }
    out
}

fn llama_ppl(oracle: &Path, m: &Path, extra: &[&str], label: &str) -> String {
    llama_until(
        || {
            let mut c = llama_logged(oracle, "llama-perplexity");
            c.arg("-m")
                .arg(m)
                .arg("-f")
                .arg(text())
                .args(["-c", CTX, "--chunks", CHUNKS, "-t", "2"])
                .args(extra);
            c
        },
        label,
    )
}

/// Final PPL of qforge against llama-perplexity at its default batch (16 chunks of 128 per batch,
/// cut into micro-batches of 32 positions per chunk). qforge's forward pass gives libllama's
/// logits bit for bit for every type here, so the printed estimates agree to their last digit
/// (the bound is the printing: 4 decimals).
#[test]
fn perplexity_matches_llama_perplexity() {
    let Some(oracle) = oracle_dir() else { return };
    let dir = scratch("eval_ppl");
    let mut report = Vec::new();
    for (ty, tol) in [
        ("F32", 1e-6),
        ("F16", 1e-6),
        ("BF16", 1e-6),
        ("Q8_0", 1e-6),
        ("Q4_0", 1e-6),
        ("Q4_K_M", 1e-6),
        ("Q6_K", 1e-6),
        ("IQ4_XS", 1e-6),
    ] {
        let m = model(&dir, &oracle, ty);
        let theirs = value_after(
            &llama_ppl(&oracle, &m, &[], "Final estimate"),
            "Final estimate: PPL =",
        );
        let o = run_ok(
            qforge()
                .args(["perplexity", "-m"])
                .arg(&m)
                .arg("-f")
                .arg(text())
                .args(["-c", CTX, "--chunks", CHUNKS]),
        );
        let ours = value_after(&stdout_of(&o), "Final estimate: PPL =");
        let rel = (ours - theirs).abs() / theirs;
        report.push(format!(
            "{ty:7} llama {theirs:.4} qforge {ours:.4} rel {rel:.2e}"
        ));
        assert!(
            rel <= tol,
            "{ty}: qforge {ours} vs llama-perplexity {theirs} ({rel:.2e} > {tol:e})"
        );
    }
    eprintln!("{}", report.join("\n"));
}

/// Base log-probabilities are interchangeable both ways, and the KL-divergence statistics equal
/// llama-perplexity's. The candidate is the F32 model, whose forward pass matches libllama to ~1e-8
/// in PPL, so both tools see the same logits and any difference is in the statistics.
#[test]
fn kld_statistics_and_base_files_match_llama_perplexity() {
    let Some(oracle) = oracle_dir() else { return };
    let dir = scratch("eval_kld");
    let base_model = model(&dir, &oracle, "Q4_K_M");
    let cand = model(&dir, &oracle, "F32");
    // Their base file, scored by both tools.
    let theirs_base = dir.join("llama.logits");
    llama_ppl(
        &oracle,
        &base_model,
        &["--kl-divergence-base", theirs_base.to_str().unwrap()],
        "Final estimate",
    );
    let llama_kld = |base: &Path| {
        llama_until(
            || {
                let mut c = llama_logged(&oracle, "llama-perplexity");
                c.arg("-m").arg(&cand).arg("--kl-divergence-base").arg(base);
                c.args(["--kl-divergence", "-t", "2"]);
                c
            },
            "Same top p:",
        )
    };
    let llama_out = llama_kld(&theirs_base);
    let ours_out = stdout_of(&run_ok(
        qforge()
            .args(["kld", "-m"])
            .arg(&cand)
            .arg("--base")
            .arg(&theirs_base),
    ));
    for (label, tol) in [
        ("Mean PPL(Q)                   :", 1e-5),
        ("Mean PPL(base)                :", 1e-7),
        ("Mean PPL(Q)/PPL(base)         :", 1e-5),
        ("Mean    KLD:", 1e-3),
        ("99.0%   KLD:", 2e-3),
        ("RMS Δp    :", 1e-3),
        ("Same top p:", 1e-3),
    ] {
        let (a, b) = (
            value_after(&llama_out, label),
            value_after(&ours_out, label),
        );
        let rel = (a - b).abs() / a.abs().max(1e-12);
        assert!(rel <= tol, "{label} llama {a} vs qforge {b} ({rel:.2e})");
    }
    // Our base file, read by llama-perplexity: the same model scored against it gives KLD ~ 0.
    let ours_base = dir.join("qforge.logits");
    run_ok(
        qforge()
            .args(["perplexity", "-m"])
            .arg(&cand)
            .arg("-f")
            .arg(text())
            .args(["-c", CTX, "--chunks", CHUNKS, "--kl-divergence-base"])
            .arg(&ours_base),
    );
    let o = llama_kld(&ours_base);
    let kld = value_after(&o, "Mean    KLD:");
    assert!(
        kld < 1e-5,
        "llama-perplexity on qforge's base file: KLD {kld}\n{o}"
    );
    assert!((value_after(&o, "Same top p:") - 100.0).abs() < 0.5);
    // The same tokens were stored: the headers and token lists of both files agree.
    let (a, b) = (
        std::fs::read(&theirs_base).unwrap(),
        std::fs::read(&ours_base).unwrap(),
    );
    let head = 20 + 40 * 128 * 4;
    assert_eq!(
        a[..head],
        b[..head],
        "header and tokens of the base files differ"
    );
    assert_eq!(a.len(), b.len());
}

/// The gate passes within limits, exits with 3 past them (CLI or TOML), and refuses bad configs.
#[test]
fn check_gate_exit_codes() {
    let Some(oracle) = oracle_dir() else { return };
    let dir = scratch("eval_check");
    let base = model(&dir, &oracle, "F16");
    let cand = model(&dir, &oracle, "Q4_0");
    let check = |extra: &[&str]| {
        qforge()
            .args(["check", "--base"])
            .arg(&base)
            .arg("--model")
            .arg(&cand)
            .arg("-f")
            .arg(text())
            .args(["-c", CTX, "--chunks", "8"])
            .args(extra)
            .output()
            .unwrap()
    };
    let report = dir.join("report.json");
    let ok = check(&[
        "--max-kld",
        "5",
        "--max-ppl-increase",
        "50",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout_of(&ok));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(v["passed"], true);
    let kld = v["statistics"]["kld"][0].as_f64().unwrap();
    assert!(kld > 0.0 && kld < 5.0, "{kld}");

    let bad = check(&["--max-kld", &format!("{}", kld / 2.0)]);
    assert_eq!(bad.status.code(), Some(3), "{}", stdout_of(&bad));
    assert!(stdout_of(&bad).contains("quality gate failed: max_kld"));

    let toml = dir.join("gate.toml");
    std::fs::write(
        &toml,
        format!("max_kld = {}\nmin_same_top = 101.0\n", kld * 2.0),
    )
    .unwrap();
    let t = check(&["--config", toml.to_str().unwrap()]);
    assert_eq!(t.status.code(), Some(3), "{}", stdout_of(&t));
    assert!(stdout_of(&t).contains("min_same_top"));

    std::fs::write(&toml, "max_kdl = 1\n").unwrap();
    let e = check(&["--config", toml.to_str().unwrap()]);
    assert_eq!(e.status.code(), Some(1));
    assert!(stdout_of(&e).contains("gate.toml"), "{}", stdout_of(&e));
}
