//! `qforge::convert::tokenizer` against the pinned `convert_hf_to_gguf.py --vocab-only`.
//!
//! Checkpoint directories are built from what exists offline: llama.cpp's vocabulary files
//! (`models/ggml-vocab-*.gguf`) are turned back into `tokenizer.json` / `tokenizer.model` by
//! `hf_files_from_gguf`, and a tiny SentencePiece model is trained from the GPL-3 text fixture.
//! For each directory the converter's `tokenizer.*` metadata (keys, types, values, order) must
//! equal ours. Needs the converter venv (`~/.cache/qforge/venv-convert`) and the pinned
//! llama.cpp tree; set `QFORGE_SKIP_ORACLE=1` to skip when they are absent.

use std::path::{Path, PathBuf};
use std::process::Command;

use qforge::convert::tokenizer::{self as tk, VocabKind};
use qforge_formats::gguf::{GgufArray, GgufFile, GgufValue};
use serde_json::{json, Value};

fn home() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_default())
}

fn llama_cpp() -> PathBuf {
    std::env::var("QFORGE_LLAMA_CPP_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|_| home().join(".cache/qforge/llama_cpp_python-0.3.36/vendor/llama.cpp"))
}

fn python() -> PathBuf {
    std::env::var("QFORGE_CONVERT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| home().join(".cache/qforge/venv-convert/bin/python"))
}

/// Whether the reference tools are present; panics with instructions when they are not and
/// `QFORGE_SKIP_ORACLE` is unset.
fn have_reference() -> bool {
    let ok = python().is_file() && llama_cpp().join("convert_hf_to_gguf.py").is_file();
    if !ok && std::env::var_os("QFORGE_SKIP_ORACLE").is_none() {
        panic!(
            "the converter venv ({}) or the pinned llama.cpp tree ({}) is missing (set QFORGE_SKIP_ORACLE=1 to skip)",
            python().display(),
            llama_cpp().display()
        );
    }
    ok
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qforge-convtok-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn vocab_kvs(name: &str) -> Vec<(String, GgufValue)> {
    let path = llama_cpp().join(format!("models/ggml-vocab-{name}.gguf"));
    GgufFile::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .header()
        .kvs
        .clone()
}

fn n_tokens(kvs: &[(String, GgufValue)]) -> usize {
    kvs.iter()
        .find(|(k, _)| k == "tokenizer.ggml.tokens")
        .and_then(|(_, v)| v.as_array())
        .map(|a| a.len())
        .unwrap()
}

fn id_of(kvs: &[(String, GgufValue)], key: &str) -> Option<u32> {
    kvs.iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.as_u32())
}

/// A minimal config.json the converter accepts for `--vocab-only`.
fn write_config(
    dir: &Path,
    arch: &str,
    vocab_size: usize,
    bos: Option<u32>,
    eos: Option<u32>,
) -> Value {
    let mut c = json!({
        "architectures": [arch],
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
        "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5, "vocab_size": vocab_size, "head_dim": 16,
    });
    if let Some(b) = bos {
        c["bos_token_id"] = json!(b);
    }
    if let Some(e) = eos {
        c["eos_token_id"] = json!(e);
    }
    std::fs::write(dir.join("config.json"), c.to_string()).unwrap();
    c
}

/// The converter's `tokenizer.*` metadata for `dir`.
fn converter_kvs(dir: &Path) -> Vec<(String, GgufValue)> {
    let out = dir.join("vocab.gguf");
    let r = Command::new(python())
        .arg(llama_cpp().join("convert_hf_to_gguf.py"))
        .arg(dir)
        .args(["--vocab-only", "--outtype", "f32", "--outfile"])
        .arg(&out)
        .env("PYTHONPATH", llama_cpp().join("gguf-py"))
        .output()
        .expect("run convert_hf_to_gguf.py");
    assert!(
        r.status.success(),
        "converter failed on {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&r.stderr)
    );
    let kvs = GgufFile::open(&out).unwrap().header().kvs.clone();
    kvs.into_iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
        .collect()
}

fn short(v: &GgufValue) -> String {
    match v {
        GgufValue::Array(a) => format!("{:?}[{}]", a.elem_type(), a.len()),
        GgufValue::String(s) if s.len() > 60 => {
            format!("String({:?}...)", String::from_utf8_lossy(&s[..60]))
        }
        other => format!("{other:?}"),
    }
}

fn first_array_diff(a: &GgufArray, b: &GgufArray) -> String {
    let n = a.len().min(b.len());
    let fmt = |x: &GgufArray, i: usize| match x {
        GgufArray::String(v) => format!("{:?}", String::from_utf8_lossy(&v[i])),
        GgufArray::I32(v) => v[i].to_string(),
        GgufArray::F32(v) => v[i].to_string(),
        _ => "?".into(),
    };
    let same = |i: usize| match (a, b) {
        (GgufArray::String(x), GgufArray::String(y)) => x[i] == y[i],
        (GgufArray::I32(x), GgufArray::I32(y)) => x[i] == y[i],
        (GgufArray::F32(x), GgufArray::F32(y)) => x[i].to_bits() == y[i].to_bits(),
        _ => false,
    };
    match (0..n).find(|&i| !same(i)) {
        Some(i) => format!("element {i}: ours {} vs converter {}", fmt(a, i), fmt(b, i)),
        None => format!("lengths {} vs {}", a.len(), b.len()),
    }
}

/// Asserts equal metadata (order, keys, types, values), describing the first difference.
fn assert_same_kvs(what: &str, ours: &[(String, GgufValue)], theirs: &[(String, GgufValue)]) {
    let keys = |v: &[(String, GgufValue)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(ours), keys(theirs), "{what}: key order differs");
    for ((k, a), (_, b)) in ours.iter().zip(theirs) {
        if a != b {
            let detail = match (a, b) {
                (GgufValue::Array(x), GgufValue::Array(y)) if x.elem_type() == y.elem_type() => {
                    first_array_diff(x, y)
                }
                _ => format!("ours {} vs converter {}", short(a), short(b)),
            };
            panic!("{what}: {k} differs: {detail}");
        }
    }
}

fn pre_of(kvs: &[(String, GgufValue)]) -> Option<String> {
    kvs.iter()
        .find(|(k, _)| k == "tokenizer.ggml.pre")
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string)
}

/// Rebuilds `vocab`'s HF files into a checkpoint dir for `arch`.
fn rebuilt_dir(vocab: &str, arch: &str) -> (PathBuf, Value) {
    let kvs = vocab_kvs(vocab);
    let dir = scratch(&format!("{vocab}-{arch}"));
    let files = tk::hf_files_from_gguf(&kvs, Path::new(vocab)).unwrap();
    files.write(&dir).unwrap();
    let cfg = write_config(
        &dir,
        arch,
        n_tokens(&kvs),
        id_of(&kvs, "tokenizer.ggml.bos_token_id"),
        id_of(&kvs, "tokenizer.ggml.eos_token_id"),
    );
    (dir, cfg)
}

fn check_bpe(vocab: &str, arch: &str, kind: VocabKind) {
    if !have_reference() {
        return;
    }
    let (dir, cfg) = rebuilt_dir(vocab, arch);
    let ours = tk::tokenizer_metadata(&dir, kind, &cfg).unwrap();
    let theirs = converter_kvs(&dir);
    assert_same_kvs(vocab, &ours, &theirs);
    // the converter recognised the rebuilt tokenizer as the vocab file's pre-tokenizer
    assert_eq!(
        pre_of(&theirs),
        pre_of(&vocab_kvs(vocab)),
        "{vocab}: converter's pre"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bpe_llama_bpe_matches_converter() {
    check_bpe("llama-bpe", "LlamaForCausalLM", VocabKind::Llama);
}

#[test]
fn bpe_qwen2_matches_converter() {
    check_bpe("qwen2", "Qwen2ForCausalLM", VocabKind::Qwen2);
}

#[test]
fn bpe_qwen35_matches_converter() {
    check_bpe("qwen35", "Qwen2ForCausalLM", VocabKind::Qwen2);
}

#[test]
fn bpe_gpt2_matches_converter() {
    check_bpe("gpt-2", "Qwen3MoeForCausalLM", VocabKind::Gpt2Bpe);
}

#[test]
fn bpe_starcoder_matches_converter() {
    check_bpe("starcoder", "Qwen2ForCausalLM", VocabKind::Qwen2);
}

#[test]
fn bpe_refact_matches_converter() {
    check_bpe("refact", "Qwen2ForCausalLM", VocabKind::Qwen2);
}

#[test]
fn bpe_deepseek_coder_matches_converter() {
    check_bpe("deepseek-coder", "LlamaForCausalLM", VocabKind::Llama);
}

#[test]
fn bpe_command_r_matches_converter() {
    check_bpe("command-r", "Qwen2ForCausalLM", VocabKind::Qwen2);
}
