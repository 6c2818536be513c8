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
        "original_max_position_embeddings": 256,
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
        if k == "tokenizer.chat_templates" {
            // the converter writes a Python set: its order changes from run to run
            let sorted = |v: &GgufValue| match v {
                GgufValue::Array(GgufArray::String(s)) => {
                    let mut s = s.clone();
                    s.sort();
                    s
                }
                _ => panic!("{what}: {k} is not a string array"),
            };
            assert_eq!(sorted(a), sorted(b), "{what}: {k} differs");
            continue;
        }
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

/// Compares ours with the converter on `vocab` rebuilt for `arch`; `expect_pre` is the
/// converter's `tokenizer.ggml.pre` (the vocab file's own name unless its hash says otherwise).
fn check_vocab(vocab: &str, arch: &str, kind: VocabKind, expect_pre: Option<&str>) {
    if !have_reference() {
        return;
    }
    let (dir, cfg) = rebuilt_dir(vocab, arch);
    let ours = tk::tokenizer_metadata(&dir, kind, &cfg).unwrap();
    let theirs = converter_kvs(&dir);
    assert_same_kvs(vocab, &ours, &theirs);
    let want = expect_pre
        .map(str::to_string)
        .or_else(|| pre_of(&vocab_kvs(vocab)));
    assert_eq!(pre_of(&theirs), want, "{vocab}: converter's pre");
    let _ = std::fs::remove_dir_all(&dir);
}

fn check_bpe(vocab: &str, arch: &str, kind: VocabKind) {
    check_vocab(vocab, arch, kind, None)
}

#[test]
fn bpe_llama_bpe_matches_converter() {
    check_bpe("llama-bpe", "LlamaForCausalLM", VocabKind::Llama);
}

#[test]
fn bpe_qwen2_matches_converter() {
    check_bpe("qwen2", "Qwen2ForCausalLM", VocabKind::Qwen2);
}

/// The qwen35 vocab file carries Qwen2's 151936-token vocabulary; with it the probe's ids
/// (and so the converter's hash) are those of `qwen2`: the `\p{M}` difference of the two
/// regexes changes no token on `chktxt`.
#[test]
fn bpe_qwen35_matches_converter() {
    check_vocab(
        "qwen35",
        "Qwen2ForCausalLM",
        VocabKind::Qwen2,
        Some("qwen2"),
    );
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

#[test]
fn spm_llama_spm_matches_converter() {
    check_vocab("llama-spm", "LlamaForCausalLM", VocabKind::Llama, None);
}

#[test]
fn spm_phi3_matches_converter() {
    check_vocab("phi-3", "Phi3ForCausalLM", VocabKind::Phi3, None);
}

/// A SentencePiece model trained here from the GPL-3 text, with `added_tokens.json`,
/// `added_tokens_decoder` (special, look-special and `▁` user-defined tokens), padding up to
/// config's `vocab_size`, a chat template and special tokens from tokenizer_config.json.
#[test]
fn spm_trained_with_added_tokens_matches_converter() {
    if !have_reference() {
        return;
    }
    let dir = scratch("spm-trained");
    let text = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/text/gpl-3.txt");
    let script = format!(
        "import sentencepiece as spm\nspm.SentencePieceTrainer.train(input={:?}, model_prefix={:?}, vocab_size=400, model_type='bpe', byte_fallback=True, user_defined_symbols=['<tool>'], num_threads=1, minloglevel=2)\n",
        text.display().to_string(),
        dir.join("tokenizer").display().to_string()
    );
    let r = Command::new(python())
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    std::fs::write(
        dir.join("added_tokens.json"),
        r#"{"<|im_start|>": 400, "<|im_end|>": 401, "<far>": 999}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        json!({
            "tokenizer_class": "LlamaTokenizer",
            "bos_token": "<s>", "eos_token": {"content": "</s>", "special": true}, "unk_token": "<unk>",
            "add_bos_token": true, "add_eos_token": false,
            "added_tokens_decoder": {
                "401": {"content": "<|im_end|>", "special": false},
                "402": {"content": "a\u{2581}b", "special": false},
                "403": {"content": "<ctl>", "special": true}
            },
            "chat_template": [{"name": "default", "template": "{{ x }}"}, {"name": "tool use!", "template": "{{ y }}"}]
        })
        .to_string(),
    )
    .unwrap();
    let cfg = write_config(&dir, "LlamaForCausalLM", 410, Some(1), Some(2));
    let ours = tk::tokenizer_metadata(&dir, VocabKind::Llama, &cfg).unwrap();
    let theirs = converter_kvs(&dir);
    assert_same_kvs("trained spm", &ours, &theirs);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tokenizer whose probe hash the converter does not know (Llama 3's with the ids of two
/// tokens of the probe swapped): the converter refuses it, qforge recognises the declared
/// pre-tokenizer as `llama-bpe` and accepts it after tokenizing the probes both ways.
#[test]
fn unknown_hash_is_detected_and_verified() {
    if !have_reference() {
        return;
    }
    let (dir, cfg) = rebuilt_dir("llama-bpe", "Qwen2ForCausalLM");
    let path = dir.join("tokenizer.json");
    let mut tj: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let vocab = tj["model"]["vocab"].as_object_mut().unwrap();
    let (a, b) = (vocab["\u{120}sure"].clone(), vocab["\u{120}tea"].clone());
    vocab.insert("\u{120}sure".into(), b);
    vocab.insert("\u{120}tea".into(), a);
    std::fs::write(&path, tj.to_string()).unwrap();
    let ours = tk::tokenizer_metadata(&dir, VocabKind::Qwen2, &cfg).unwrap();
    assert_eq!(pre_of(&ours).as_deref(), Some("llama-bpe"));
    let r = Command::new(python())
        .arg(llama_cpp().join("convert_hf_to_gguf.py"))
        .arg(&dir)
        .args(["--vocab-only", "--outfile"])
        .arg(dir.join("x.gguf"))
        .env("PYTHONPATH", llama_cpp().join("gguf-py"))
        .output()
        .unwrap();
    assert!(
        !r.status.success(),
        "the converter accepted an unknown hash"
    );
    assert!(String::from_utf8_lossy(&r.stderr).contains("BPE pre-tokenizer was not recognized"));

    // a pre-tokenizer llama.cpp cannot express is a clear error
    tj["pre_tokenizer"]["pretokenizers"][0]["behavior"] = json!("Removed");
    std::fs::write(&path, tj.to_string()).unwrap();
    let err = tk::tokenizer_metadata(&dir, VocabKind::Qwen2, &cfg)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not recognised") && err.contains("Removed"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The rebuilt `tokenizer.json` loads in the `tokenizers` crate with every token of the vocab
/// file (ids kept, including the special ones).
#[test]
fn rebuilt_tokenizer_loads_and_round_trips_ids() {
    let kvs = vocab_kvs("gpt-2");
    let files = tk::hf_files_from_gguf(&kvs, Path::new("gpt-2")).unwrap();
    let tj = files.tokenizer_json.unwrap();
    let tok: tokenizers::Tokenizer = tj.to_string().parse().unwrap();
    let ids = tok.encode(tk::CHKTXT, false).unwrap().get_ids().to_vec();
    assert!(!ids.is_empty());
    assert_eq!(tok.get_vocab_size(true), n_tokens(&kvs));
}
