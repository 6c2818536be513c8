//! Shared support for qforge-calibration's tests: locating the pinned llama.cpp oracle (see
//! scripts/build-oracle.sh), fixtures and scratch directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The directory holding the pinned llama.cpp binaries, or `None` when `QFORGE_SKIP_ORACLE` is
/// set and none is found. Panics with instructions otherwise.
pub fn oracle_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("QFORGE_ORACLE_DIR") {
        return Some(PathBuf::from(d));
    }
    let cache = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/qforge");
    let found = std::fs::read_dir(&cache).ok().and_then(|rd| {
        let mut v: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            // llama-logits is built last: its presence marks a complete build.
            .filter(|p| p.join("llama-quantize").is_file() && p.join("llama-logits").is_file())
            .collect();
        v.sort();
        v.pop()
    });
    match found {
        Some(d) => Some(d),
        None if std::env::var_os("QFORGE_SKIP_ORACLE").is_some() => None,
        None => panic!(
            "the llama.cpp oracle is not built: run scripts/build-oracle.sh (or set QFORGE_SKIP_ORACLE=1)"
        ),
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("calibration/ has a parent")
        .to_path_buf()
}

/// A fixture file by name.
pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// A fresh scratch directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qforge-calib-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs a command and returns its output; panics with both streams if it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A llama.cpp tool (or qforge harness) from the oracle directory.
pub fn llama(dir: &Path, tool: &str) -> Command {
    Command::new(dir.join(tool))
}

/// Token ids of `text` from the pinned `llama-tokenize` with `model`'s vocabulary (BOS added as
/// the model asks).
pub fn llama_tokenize(dir: &Path, model: &Path, text: &str, scratch: &Path) -> Vec<u32> {
    let f = scratch.join("tokenize-input.txt");
    std::fs::write(&f, text).unwrap();
    let out = run_ok(
        llama(dir, "llama-tokenize")
            .arg("-m")
            .arg(model)
            .arg("-f")
            .arg(&f)
            .args(["--ids", "--log-disable"]),
    );
    let s = String::from_utf8_lossy(&out.stdout);
    let line = s
        .lines()
        .rfind(|l| l.trim_start().starts_with('['))
        .expect("an id list");
    line.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().parse().expect("a token id"))
        .collect()
}

/// Logits of `tokens` (positions `first_output..`) from the pinned libllama through the
/// `llama-logits` harness (scripts/oracle/llama-logits.c), with llama-perplexity's context settings.
pub fn llama_logits(
    dir: &Path,
    model: &Path,
    tokens: &[u32],
    first_output: usize,
    threads: usize,
    scratch: &Path,
) -> Vec<f32> {
    let tf = scratch.join("logits-tokens.txt");
    let of = scratch.join("logits.bin");
    let ids: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
    std::fs::write(&tf, ids.join(" ")).unwrap();
    run_ok(
        llama(dir, "llama-logits")
            .arg(model)
            .arg(&tf)
            .arg(&of)
            .arg(threads.to_string())
            .arg(first_output.to_string()),
    );
    std::fs::read(&of)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The text stored in `model`'s metadata (`qforge.eval_text`) tokenized by llama-tokenize,
/// repeated (without its BOS) until it has `n` tokens, first `n` ids.
pub fn eval_tokens(dir: &Path, model: &Path, n: usize, scratch: &Path) -> Vec<u32> {
    let f = qforge_formats::gguf::GgufFile::open(model).unwrap();
    let text = f
        .header()
        .get("qforge.eval_text")
        .and_then(|v| v.as_str())
        .expect("qforge.eval_text")
        .to_string();
    let mut t = llama_tokenize(dir, model, &text, scratch);
    while t.len() < n {
        let again = t[1..].to_vec(); // without the second BOS
        t.extend(again);
    }
    t.truncate(n);
    t
}
