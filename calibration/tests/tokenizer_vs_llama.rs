//! The tokenizer against llama.cpp: the pinned tree's vocab-only GGUFs with their expected ids
//! (`models/ggml-vocab-*.gguf.inp/.out`, compared as `tests/test-tokenizer-0.cpp` does), and the
//! live pinned `llama-tokenize` on extra texts and edge cases, with and without BOS/EOS and
//! special-token parsing.
//!
//! The llama.cpp tree and binaries come from `scripts/build-oracle.sh` (override with
//! `QFORGE_LLAMA_SRC` / `QFORGE_ORACLE_DIR`). When they are missing the tests fail, unless
//! `QFORGE_SKIP_ORACLE=1` is set.

use qforge_calibration::tokenizer::{Tokenizer, TokenizerError};
use qforge_formats::gguf::{GgufFile, GgufHeader, GgufValue};
use std::path::{Path, PathBuf};
use std::process::Command;

fn skip_allowed() -> bool {
    std::env::var_os("QFORGE_SKIP_ORACLE").is_some()
}

fn cache() -> PathBuf {
    std::env::var_os("QFORGE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/qforge")
        })
}

/// The pinned llama.cpp source tree, or `None` when skipping is allowed.
fn llama_src() -> Option<PathBuf> {
    let dir = std::env::var_os("QFORGE_LLAMA_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("llama_cpp_python-0.3.36/vendor/llama.cpp"));
    if dir.join("models").is_dir() {
        return Some(dir);
    }
    if skip_allowed() {
        return None;
    }
    panic!(
        "the pinned llama.cpp tree is not at {}: run scripts/build-oracle.sh (or set QFORGE_SKIP_ORACLE=1)",
        dir.display()
    );
}

/// The directory holding `llama-tokenize`, or `None` when skipping is allowed.
fn oracle_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("QFORGE_ORACLE_DIR") {
        return Some(PathBuf::from(d));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache())
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("llama-tokenize").is_file())
        .collect();
    found.sort();
    match found.pop() {
        Some(d) => Some(d),
        None if skip_allowed() => None,
        None => panic!(
            "the llama.cpp oracle is not built: run scripts/build-oracle.sh (or set QFORGE_SKIP_ORACLE=1)"
        ),
    }
}

/// Serializes the tests that launch llama-tokenize many times with the timing test, so that the
/// timings are not taken while the oracle runs.
fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn header(path: &Path) -> GgufHeader {
    GgufFile::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .header()
        .clone()
}

fn load(path: &Path) -> Result<Tokenizer, TokenizerError> {
    Tokenizer::from_gguf(&header(path))
}

fn vocab_files(src: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(src.join("models"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("ggml-vocab-") && n.ends_with(".gguf")
        })
        .collect();
    v.sort();
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// The cases of a `.inp`/`.out` pair, split as `read_tests` in test-tokenizer-0.cpp does.
fn read_cases(inp: &Path, out: &Path) -> Vec<(Vec<u8>, Vec<u32>)> {
    let raw = std::fs::read(inp).unwrap();
    let sep = b"\n__ggml_vocab_test__\n";
    let mut texts = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        match raw[pos..].windows(sep.len()).position(|w| w == sep) {
            Some(i) => {
                texts.push(raw[pos..pos + i].to_vec());
                pos += i + sep.len();
            }
            None => {
                texts.push(raw[pos..].to_vec());
                break;
            }
        }
    }
    let outs: Vec<Vec<u32>> = std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect();
    assert_eq!(texts.len(), outs.len(), "{}", inp.display());
    texts.into_iter().zip(outs).collect()
}

#[test]
fn vocab_files_match_expected_ids() {
    let Some(src) = llama_src() else { return };
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in vocab_files(&src) {
        let n = name(&path);
        let inp = PathBuf::from(format!("{}.inp", path.display()));
        let out = PathBuf::from(format!("{}.out", path.display()));
        let tok = load(&path).unwrap_or_else(|e| panic!("{n}: {e}"));
        if !inp.is_file() {
            continue;
        }
        let cases = read_cases(&inp, &out);
        eprintln!("{n}: {} cases", cases.len());
        for (text, want) in cases {
            let got = tok.encode_bytes(&text, false, false);
            if got != want {
                failures.push(format!(
                    "{n}: {:?}\n  llama.cpp {want:?}\n  qforge    {got:?}",
                    String::from_utf8_lossy(&text)
                ));
            }
            checked += 1;
        }
    }
    assert!(checked > 300, "only {checked} cases found");
    assert!(
        failures.is_empty(),
        "{} of {checked} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs the pinned `llama-tokenize` on `text`.
fn llama_tokenize(
    bin: &Path,
    model: &Path,
    text: &[u8],
    add_special: bool,
    parse_special: bool,
) -> Vec<u32> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = std::env::temp_dir().join(format!("qforge-tok-{}-{k}.txt", std::process::id()));
    std::fs::write(&file, text).unwrap();
    let mut cmd = Command::new(bin.join("llama-tokenize"));
    cmd.arg("-m")
        .arg(model)
        .arg("-f")
        .arg(&file)
        .args(["--ids", "--log-disable", "--no-escape"]);
    if !add_special {
        cmd.arg("--no-bos");
    }
    if !parse_special {
        cmd.arg("--no-parse-special");
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    let line = s
        .lines()
        .rev()
        .find(|l| l.starts_with('['))
        .unwrap_or_else(|| panic!("{cmd:?}: no ids in {s:?}"));
    line.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().parse().unwrap())
        .collect()
}

/// Edge cases for every vocabulary.
fn edge_texts() -> Vec<String> {
    [
        "",
        " ",
        "   ",
        "\n",
        "\n\n\n",
        "\t",
        " \t \n \r\n x",
        "Hello world",
        " Hello  World!  ",
        "The quick brown fox jumps over the lazy dog.\nIt's 2024, isn't it? I'll say we'd've known.",
        "DON'T SHOUT'S 'Re 'LL",
        "1234567890 12 123 1234 3.14159 1,000,000",
        "日本語のテキストと中文字符 한국어",
        "emoji 🦙🤗👍🏽 and flags 🇫🇷",
        "combining: e\u{301} a\u{308}\u{304} Z\u{335}\u{336}",
        "Ελληνικά Русский עברית العربية हिन्दी ไทย",
        "tabs\tand\u{a0}nbsp\u{3000}ideographic space\u{2028}line sep",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "fn main() { let x = vec![1, 2, 3]; println!(\"{x:?}\"); } // code",
        "    indented\n        more\n\n\n   trailing   ",
        "mixed123abc!!!???...---___",
        "'s 't 're 've 'm 'll 'd",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Texts that put the vocabulary's own special tokens (BOS, EOS, EOT and up to three more
/// control or user-defined tokens) inside text, next to spaces and newlines.
fn special_texts(tok: &Tokenizer) -> Vec<Vec<u8>> {
    let mut ids: Vec<u32> = [tok.bos(), tok.eos(), tok.eot()]
        .into_iter()
        .flatten()
        .collect();
    let mut extra = 0;
    for id in (0..tok.n_vocab() as u32).rev() {
        let a = tok.token_attr(id).unwrap_or(0);
        let special = a
            & (qforge_calibration::tokenizer::attr::CONTROL
                | qforge_calibration::tokenizer::attr::USER_DEFINED)
            != 0;
        if special && !ids.contains(&id) && extra < 3 {
            ids.push(id);
            extra += 1;
        }
    }
    let mut texts = Vec::new();
    for id in ids {
        let piece = tok.token_to_piece(id, true);
        if piece.is_empty() {
            continue;
        }
        let mut t = b"Hello ".to_vec();
        t.extend_from_slice(&piece);
        t.extend_from_slice(b" world\n");
        t.extend_from_slice(&piece);
        t.extend_from_slice(&piece);
        t.extend_from_slice(b"  x ");
        t.extend_from_slice(&piece);
        texts.push(t);
    }
    texts
}

fn compare_live(
    bin: &Path,
    model: &Path,
    tok: &Tokenizer,
    texts: &[Vec<u8>],
    failures: &mut Vec<String>,
) {
    for text in texts {
        for (add, parse) in [(true, true), (false, false), (true, false), (false, true)] {
            let want = llama_tokenize(bin, model, text, add, parse);
            let got = tok.encode_bytes(text, add, parse);
            if got != want {
                failures.push(format!(
                    "{} add_special={add} parse_special={parse} {:?}\n  llama.cpp {want:?}\n  qforge    {got:?}",
                    name(model),
                    String::from_utf8_lossy(text)
                ));
            }
        }
    }
}

#[test]
fn tiny_llama_fixture_matches_live_llama_tokenize() {
    let Some(bin) = oracle_dir() else { return };
    let model = repo_root().join("fixtures/tiny-llama-f16.gguf");
    let tok = load(&model).unwrap();
    let mut texts: Vec<Vec<u8>> = edge_texts().into_iter().map(String::into_bytes).collect();
    texts.extend(special_texts(&tok));
    let mut failures = Vec::new();
    compare_live(&bin, &model, &tok, &texts, &mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn vocab_files_match_live_llama_tokenize() {
    let _serial = heavy();
    let (Some(src), Some(bin)) = (llama_src(), oracle_dir()) else {
        return;
    };
    let mut failures = Vec::new();
    for path in vocab_files(&src) {
        let tok = load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // one long text of all edge cases keeps the number of llama-tokenize runs small
        let texts = vec![
            edge_texts().join("\n \n").into_bytes(),
            special_texts(&tok).join(&b"\n"[..]),
        ];
        compare_live(&bin, &path, &tok, &texts, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A long, varied text: llama.cpp's own documentation (markdown, code, links, tables, some
/// non-ASCII), every `.inp` test input, and generated English.
fn long_text(src: &Path) -> Vec<u8> {
    let mut t = Vec::new();
    for f in [
        "README.md",
        "docs/build.md",
        "docs/function-calling.md",
        "CONTRIBUTING.md",
    ] {
        if let Ok(b) = std::fs::read(src.join(f)) {
            t.extend_from_slice(&b);
            t.extend_from_slice(b"\n\n");
        }
    }
    for p in vocab_files(src) {
        if let Ok(b) = std::fs::read(format!("{}.inp", p.display())) {
            t.extend_from_slice(&b);
        }
    }
    t.extend_from_slice(english(100_000).as_bytes());
    t
}

#[test]
fn long_texts_match_live_llama_tokenize() {
    let _serial = heavy();
    let (Some(src), Some(bin)) = (llama_src(), oracle_dir()) else {
        return;
    };
    let text = long_text(&src);
    assert!(text.len() > 150_000, "{} bytes", text.len());
    let mut failures = Vec::new();
    let mut models = vocab_files(&src);
    models.push(repo_root().join("fixtures/tiny-llama-f16.gguf"));
    for path in models {
        let tok = load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // perplexity's mode (BOS, no special parsing) and the chat mode (both on)
        for (add, parse) in [(true, false), (true, true)] {
            let want = llama_tokenize(&bin, &path, &text, add, parse);
            let got = tok.encode_bytes(&text, add, parse);
            if got != want {
                let first = want
                    .iter()
                    .zip(&got)
                    .position(|(a, b)| a != b)
                    .unwrap_or(want.len().min(got.len()));
                failures.push(format!(
                    "{} parse_special={parse}: {} vs {} tokens, first difference at {first}\n  llama.cpp {:?}\n  qforge    {:?}",
                    name(&path),
                    want.len(),
                    got.len(),
                    &want[first.saturating_sub(3)..want.len().min(first + 8)],
                    &got[first.saturating_sub(3)..got.len().min(first + 8)]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every `tokenizer.ggml.pre` name with its own splitting rules, applied to the GPT-2 vocabulary
/// (the splitting does not depend on the vocabulary, so each pre-tokenizer's regexes and
/// hand-written splitters get checked against llama-tokenize). `whitespace` is left out: with a
/// `gpt2` model its unencoded words keep their spaces and llama.cpp aborts in `find_bpe_rank`.
const PRE_VARIANTS: &[&str] = &[
    "",
    "llama3",
    "deepseek-llm",
    "deepseek-coder",
    "deepseek-v3",
    "spark2_5",
    "youtu",
    "falcon",
    "mpt",
    "starcoder",
    "gpt-2",
    "jais-2",
    "gemma4",
    "sarvam-moe",
    "refact",
    "command-r",
    "qwen2",
    "qwen35",
    "stablelm2",
    "olmo",
    "dbrx",
    "smaug-bpe",
    "poro-chat",
    "chatglm-bpe",
    "glm4",
    "viking",
    "jais",
    "tekken",
    "smollm",
    "codeshell",
    "bloom",
    "gpt3-finnish",
    "exaone",
    "exaone-moe",
    "chameleon",
    "minerva-7b",
    "gpt-4o",
    "granite-embed-multi-97m",
    "superbpe",
    "trillion",
    "granite-docling",
    "bailingmoe",
    "seed-coder",
    "hunyuan",
    "hunyuan-dense",
    "joyai-llm",
    "ufakzeka",
    "grok-2",
    "laguna",
    "minimax-m2",
    "solar-open",
    "mellum2",
    "minicpm5",
    "kimi-k2",
    "afmoe",
    "tiny_aya",
];

#[test]
fn pre_tokenizer_variants_match_live_llama_tokenize() {
    let _serial = heavy();
    let (Some(src), Some(bin)) = (llama_src(), oracle_dir()) else {
        return;
    };
    let base = header(&src.join("models/ggml-vocab-gpt-2.gguf"));
    let dir = std::env::temp_dir().join(format!("qforge-tok-pre-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = edge_texts().join("\n \n").into_bytes();
    let mut failures = Vec::new();
    for pre in PRE_VARIANTS {
        let value = (!pre.is_empty()).then(|| GgufValue::string(*pre));
        let h = with_key(&base, "tokenizer.ggml.pre", value);
        let path = dir.join(format!("pre-{pre}.gguf"));
        let (bytes, _) = qforge_formats::gguf::encode_header(&h.kvs, &[], h.alignment).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let tok = Tokenizer::from_gguf(&h).unwrap_or_else(|e| panic!("{pre}: {e}"));
        for (add, parse) in [(true, true), (false, false)] {
            let want = llama_tokenize(&bin, &path, &text, add, parse);
            let got = tok.encode_bytes(&text, add, parse);
            if got != want {
                let first = want
                    .iter()
                    .zip(&got)
                    .position(|(a, b)| a != b)
                    .unwrap_or(want.len().min(got.len()));
                failures.push(format!(
                    "pre {pre:?} add_special={add}: first difference at {first}\n  llama.cpp {:?}\n  qforge    {:?}",
                    &want[first.saturating_sub(3)..want.len().min(first + 8)],
                    &got[first.saturating_sub(3)..got.len().min(first + 8)]
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A copy of `h` with `key` replaced (or removed when `value` is `None`).
fn with_key(h: &GgufHeader, key: &str, value: Option<GgufValue>) -> GgufHeader {
    let mut h = h.clone();
    h.kvs.retain(|(k, _)| k != key);
    if let Some(v) = value {
        h.kvs.push((key.to_string(), v));
    }
    h
}

#[test]
fn malformed_metadata_is_an_error_not_a_panic() {
    let model = repo_root().join("fixtures/tiny-llama-f16.gguf");
    let h = header(&model);
    use qforge_formats::gguf::GgufArray;
    let cases: Vec<(&str, GgufHeader)> = vec![
        ("no model", with_key(&h, "tokenizer.ggml.model", None)),
        ("no tokens", with_key(&h, "tokenizer.ggml.tokens", None)),
        (
            "unknown model",
            with_key(
                &h,
                "tokenizer.ggml.model",
                Some(GgufValue::string("nonsense")),
            ),
        ),
        (
            "short scores",
            with_key(
                &h,
                "tokenizer.ggml.scores",
                Some(GgufValue::Array(GgufArray::F32(vec![0.0; 3]))),
            ),
        ),
        (
            "short types",
            with_key(
                &h,
                "tokenizer.ggml.token_type",
                Some(GgufValue::Array(GgufArray::I32(vec![1; 3]))),
            ),
        ),
        (
            "scores of wrong type",
            with_key(&h, "tokenizer.ggml.scores", Some(GgufValue::U32(3))),
        ),
        (
            "bos of wrong type",
            with_key(&h, "tokenizer.ggml.bos_token_id", Some(GgufValue::I64(1))),
        ),
        (
            "duplicate tokens",
            with_key(
                &h,
                "tokenizer.ggml.tokens",
                Some(GgufValue::Array(GgufArray::String(vec![
                    b"a".to_vec();
                    600
                ]))),
            ),
        ),
        (
            "gpt2 without merges",
            with_key(&h, "tokenizer.ggml.model", Some(GgufValue::string("gpt2"))),
        ),
        (
            "unknown pre-tokenizer",
            with_key(
                &with_key(&h, "tokenizer.ggml.model", Some(GgufValue::string("gpt2"))),
                "tokenizer.ggml.pre",
                Some(GgufValue::string("no-such-pre")),
            ),
        ),
    ];
    for (what, bad) in cases {
        assert!(Tokenizer::from_gguf(&bad).is_err(), "{what}: accepted");
    }
    // an out-of-range special id is ignored, as llama.cpp does, and never used
    let t = Tokenizer::from_gguf(&with_key(
        &h,
        "tokenizer.ggml.bos_token_id",
        Some(GgufValue::U32(u32::MAX)),
    ))
    .unwrap();
    assert!(t.bos().is_none_or(|b| (b as usize) < t.n_vocab()));
}

/// Deterministic English-like text.
fn english(bytes: usize) -> String {
    let words = [
        "the",
        "of",
        "and",
        "to",
        "in",
        "a",
        "is",
        "that",
        "for",
        "it",
        "as",
        "was",
        "with",
        "be",
        "by",
        "on",
        "not",
        "he",
        "this",
        "are",
        "or",
        "his",
        "from",
        "at",
        "which",
        "but",
        "have",
        "King",
        "Queen",
        "1923",
        "world's",
        "(see",
        "below),",
        "\"quoted\"",
        "@-@",
        "time.",
    ];
    let mut s = String::with_capacity(bytes + 16);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut i = 0;
    while s.len() < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(words[(x % words.len() as u64) as usize]);
        s.push_str(if i % 23 == 22 { " \n \n" } else { " " });
        i += 1;
    }
    s
}

#[test]
fn tokenizes_megabytes_quickly() {
    let _serial = heavy();
    let Some(src) = llama_src() else { return };
    let text = english(1 << 20);
    let nospace = "x".repeat(200_000) + &"7".repeat(100_000) + &"!?".repeat(50_000);
    // every vocabulary: SPM, WPM, UGM and each BPE pre-tokenizer path (hand-written splitters
    // and regexes)
    for path in vocab_files(&src) {
        let v = name(&path);
        let tok = load(&path).unwrap();
        // best of two runs, to keep other processes on a shared machine out of the numbers
        let best = |f: &dyn Fn()| {
            (0..2)
                .map(|_| {
                    let t = std::time::Instant::now();
                    f();
                    t.elapsed().as_secs_f64()
                })
                .fold(f64::MAX, f64::min)
        };
        assert!(tok.encode(&text, true, false).len() > 100_000);
        let per_mb = best(&|| {
            tok.encode(&text, true, false);
        });
        let long = best(&|| {
            tok.encode(&nospace, true, false);
        });
        let special_per_mb = best(&|| {
            tok.encode(&text, true, true);
        });
        eprintln!(
            "{v}: {per_mb:.3} s/MB ({special_per_mb:.3} with special parsing), 400 kB without spaces {long:.3} s"
        );
        assert!(
            special_per_mb < 0.75,
            "{v}: {special_per_mb:.3} s per MB with special parsing"
        );
        assert!(per_mb < 0.75, "{v}: {per_mb:.3} s per MB");
        assert!(long < 2.0, "{v}: {long:.3} s on a long word");
    }
}
