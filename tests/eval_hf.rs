//! The evaluations on a Hugging Face checkpoint directory (`-m DIR`, `--base DIR`), for every
//! checkpoint of fixtures/hf:
//!
//! - `qforge perplexity -m DIR` gives exactly the numbers of `qforge perplexity -m converted.gguf`
//!   on what `qforge convert DIR --type auto` writes (the logits are the same bits), and so do
//!   `qforge kld --base DIR` (against the converter's Q8_0 output) and `qforge imatrix -m DIR`
//!   (byte-identical imatrix file);
//! - transformers' float32 forward pass (scripts/oracle/hf_perplexity.py, llama-perplexity's
//!   algorithm on the same token ids) gives the same perplexity within [`HF_REL_TOL`].

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const CTX: &str = "128";
const CHUNKS: &str = "4";

/// Relative perplexity tolerance against transformers in float32.
///
/// qforge evaluates the converted model as llama.cpp's CPU backend does, with roundings
/// transformers in f32 does not make: K and V go through an f16 cache; f32 checkpoints become F16
/// weights (`--type auto`); and each weight product first rounds its activations to the weight's
/// type (ggml's `vec_dot_type`: f16, half an ulp = 2^-11 relative; bf16, 2^-9). These errors are
/// unbiased noise, and ln PPL is their mean effect over 252 scored tokens. Measured on these
/// fixtures (4 chunks of 128): 5e-7 .. 1e-5, and 7.6e-5 for the bf16 Mistral fixture, whose
/// `--type f32` conversion lands 1.7e-6 from transformers (so the 7.6e-5 is the bf16 activation
/// rounding). 1e-3 is 13 times the largest of those and still catches a real difference in the
/// computation: one layer of the Gemma 3 fixture run with another rope base moves the perplexity
/// by 3.0e-3 ([`gemma3_layer_types_matter`]).
const HF_REL_TOL: f64 = 1e-3;

fn text() -> PathBuf {
    fixture("text/gpl-3.txt")
}

fn hf(name: &str) -> PathBuf {
    fixture("hf").join(name)
}

/// The python of the converter's venv (torch + transformers), or `None` when
/// `QFORGE_SKIP_ORACLE` is set and it is missing.
fn venv_python() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/qforge/venv-convert/bin/python");
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("QFORGE_SKIP_ORACLE").is_some() {
        return None;
    }
    panic!(
        "{} is missing: run scripts/build-oracle.sh (or set QFORGE_SKIP_ORACLE=1)",
        p.display()
    );
}

/// `qforge convert DIR --type ty` into `dir`.
fn convert(dir: &Path, name: &str, ty: &str) -> PathBuf {
    let out = dir.join(format!("{name}-{ty}.gguf"));
    run_ok(
        qforge()
            .arg("convert")
            .arg(hf(name))
            .arg("-o")
            .arg(&out)
            .args(["--type", ty]),
    );
    out
}

fn json(cmd: &mut Command) -> serde_json::Value {
    let o = run_ok(cmd);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{cmd:?}: not JSON ({e}):\n{}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

/// The JSON output without the keys naming the input paths.
fn without_paths(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(m) = v.as_object_mut() {
        for k in ["model", "base"] {
            m.remove(k);
        }
    }
    v
}

fn perplexity_json(model: &Path) -> serde_json::Value {
    json(
        qforge()
            .arg("perplexity")
            .arg("-m")
            .arg(model)
            .arg("-f")
            .arg(text())
            .args(["-c", CTX, "--chunks", CHUNKS, "--json"]),
    )
}

/// The printed lines (`[i]ppl,...` and `Final estimate: ...`) of a plain perplexity run.
fn perplexity_lines(model: &Path) -> String {
    let o = run_ok(
        qforge()
            .arg("perplexity")
            .arg("-m")
            .arg(model)
            .arg("-f")
            .arg(text())
            .args(["-c", CTX, "--chunks", CHUNKS]),
    );
    let all = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = all
        .lines()
        .filter(|l| l.starts_with("[1]") || l.contains("Final estimate"))
        .collect();
    assert_eq!(lines.len(), 2, "unexpected perplexity output:\n{all}");
    lines.join("\n")
}

/// `-m DIR` and `-m converted.gguf` agree exactly: perplexity (printed and JSON), kld against
/// the Q8_0 conversion, and the imatrix file.
fn same_as_converted(name: &str) {
    let dir = scratch(&format!("eval-hf-{name}"));
    let auto = convert(&dir, name, "auto");
    let q8 = convert(&dir, name, "q8_0");

    let (a, b) = (perplexity_lines(&hf(name)), perplexity_lines(&auto));
    assert_eq!(
        a, b,
        "{name}: perplexity of the directory and of its conversion"
    );
    let (a, b) = (
        without_paths(perplexity_json(&hf(name))),
        without_paths(perplexity_json(&auto)),
    );
    assert_eq!(a, b, "{name}: perplexity JSON");
    eprintln!("{name}: {}", perplexity_lines(&hf(name)).replace('\n', " "));

    let kld = |base: &Path| {
        without_paths(json(
            qforge()
                .arg("kld")
                .arg("--base")
                .arg(base)
                .arg("-m")
                .arg(&q8)
                .arg("-f")
                .arg(text())
                .args(["-c", CTX, "--chunks", CHUNKS, "--json"]),
        ))
    };
    let k = kld(&hf(name));
    assert!(
        k.get("kld").is_some(),
        "{name}: kld JSON has no kld field: {k}"
    );
    assert_eq!(k, kld(&auto), "{name}: kld --base DIR vs --base converted");

    let imatrix = |model: &Path, out: &Path| {
        run_ok(
            qforge()
                .arg("imatrix")
                .arg("-m")
                .arg(model)
                .arg("-f")
                .arg(text())
                .arg("-o")
                .arg(out)
                .args(["-c", CTX, "--chunks", CHUNKS]),
        );
    };
    let (ia, ib) = (dir.join("dir.imatrix.gguf"), dir.join("gguf.imatrix.gguf"));
    imatrix(&hf(name), &ia);
    imatrix(&auto, &ib);
    assert_same_file(&ia, &ib);
    let _ = std::fs::remove_dir_all(&dir);
}

/// transformers' perplexity of checkpoint `name` on the token ids qforge uses, with config
/// overrides `set` (`KEY=JSON`).
fn transformers_ppl(py: &Path, dir: &Path, name: &str, gguf: &Path, set: &[String]) -> f64 {
    // the text as the evaluations read it: one trailing newline dropped
    let mut raw = std::fs::read(text()).unwrap();
    if raw.last() == Some(&b'\n') {
        raw.pop();
    }
    let txt = dir.join("text.txt");
    std::fs::write(&txt, &raw).unwrap();
    let ids = |extra: &[&str]| -> Vec<u64> {
        let o = run_ok(
            qforge()
                .arg("tokenize")
                .arg("-m")
                .arg(gguf)
                .arg("-f")
                .arg(&txt)
                .args(["--ids", "--no-parse-special", "--no-escape"])
                .args(extra),
        );
        serde_json::from_slice(&o.stdout).expect("token id list")
    };
    let with = ids(&[]);
    let without = ids(&["--no-bos"]);
    // BOS is what the vocabulary puts first when it adds one
    let bos = if with.len() == without.len() + 1 {
        with[0].to_string()
    } else {
        "none".to_string()
    };
    let ids_file = dir.join("ids.json");
    std::fs::write(&ids_file, serde_json::to_vec(&with).unwrap()).unwrap();
    let mut cmd = Command::new(py);
    cmd.arg(root().join("scripts/oracle/hf_perplexity.py"))
        .arg(hf(name))
        .arg(&txt)
        .args(["-c", CTX, "--chunks", CHUNKS, "--json", "--bos", &bos])
        .arg("--ids")
        .arg(&ids_file);
    for s in set {
        cmd.arg("--set").arg(s);
    }
    let v = json(&mut cmd);
    v["ppl"].as_f64().unwrap_or_else(|| panic!("no ppl in {v}"))
}

/// The relative difference between qforge's perplexity of the directory and transformers'.
fn vs_transformers(name: &str, set: &[String]) -> Option<(f64, f64, f64)> {
    let py = venv_python()?;
    // One directory per call: the gemma3 tests call this twice, possibly at the same time.
    let dir = scratch(&format!("eval-hf-tf-{name}-{}", set.len()));
    let auto = convert(&dir, name, "auto");
    let ours = perplexity_json(&hf(name))["ppl"]
        .as_f64()
        .expect("ppl in the JSON");
    let theirs = transformers_ppl(&py, &dir, name, &auto, set);
    let _ = std::fs::remove_dir_all(&dir);
    Some((ours, theirs, (ours - theirs).abs() / theirs))
}

/// llama.cpp's Gemma 3 layer kinds: the converter writes no pattern, so llama.cpp uses its fixed
/// one (`load_swa_pattern(ml, 6)`: layer `il` slides when `il % 6 < 5`).
fn gemma3_llama_layer_types() -> String {
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(hf("gemma3").join("config.json")).unwrap()).unwrap();
    let n = cfg["num_hidden_layers"].as_u64().unwrap();
    let kinds: Vec<&str> = (0..n)
        .map(|il| {
            if il % 6 < 5 {
                "sliding_attention"
            } else {
                "full_attention"
            }
        })
        .collect();
    format!("layer_types={}", serde_json::to_string(&kinds).unwrap())
}

fn transformers_within_tolerance(name: &str) {
    let set = if name == "gemma3" {
        vec![gemma3_llama_layer_types()]
    } else {
        Vec::new()
    };
    let Some((ours, theirs, rel)) = vs_transformers(name, &set) else {
        return;
    };
    eprintln!("{name}: qforge PPL {ours:.6}, transformers f32 PPL {theirs:.6}, relative difference {rel:.3e}");
    assert!(
        rel <= HF_REL_TOL,
        "{name}: qforge PPL {ours} vs transformers {theirs}: relative difference {rel:.3e} > {HF_REL_TOL:e}"
    );
}

/// The tolerance is tight enough to see a real difference: transformers reading the Gemma 3
/// fixture's own `layer_types` (layer 1 global, rope base 1e6) instead of llama.cpp's fixed
/// pattern (both layers sliding, rope base 1e4) lands outside it.
#[test]
fn gemma3_layer_types_matter() {
    let Some((ours, theirs, rel)) = vs_transformers("gemma3", &[]) else {
        return;
    };
    eprintln!("gemma3 with the config's layer_types: qforge {ours:.6}, transformers {theirs:.6}, relative {rel:.3e}");
    assert!(
        rel > HF_REL_TOL,
        "gemma3: the layer kinds changed nothing measurable ({rel:.3e})"
    );
}

#[test]
fn directory_refused_when_not_a_checkpoint() {
    let dir = scratch("eval-hf-empty");
    let o = qforge()
        .arg("perplexity")
        .arg("-m")
        .arg(&dir)
        .arg("-f")
        .arg(text())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&dir.display().to_string()) && err.contains("config.json"),
        "error should name the directory and config.json: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

macro_rules! fixture_tests {
    ($($name:ident),*) => {$(
        mod $name {
            #[test]
            fn same_as_converted() {
                super::same_as_converted(stringify!($name));
            }
            #[test]
            fn transformers_within_tolerance() {
                super::transformers_within_tolerance(stringify!($name));
            }
        }
    )*};
}

fixture_tests!(llama2, mistral, mixtral, qwen3, gemma2, gemma3, phi3);
