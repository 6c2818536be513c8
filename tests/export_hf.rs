//! `qforge export-hf`: GGUF -> Hugging Face checkpoint.
//!
//! For every HF fixture: `qforge convert --type f32` then `qforge export-hf --dtype f32` gives back
//! the original tensors (same names and shapes; values equal bit for bit after widening to f32;
//! the one exception is Gemma's RMSNorm weights of an f32 checkpoint, stored `+ 1` by the
//! converter, which come back within one f32 rounding of `x + 1`). Then, with the converter venv
//! (torch + transformers), transformers loads the export with no missing or unexpected weight,
//! its logits equal the original's, and the rebuilt tokenizer.model tokenizes a probe as the
//! original does. A Q8_0 GGUF exports (bf16) and loads; a small `--max-shard-size` writes a
//! sharded checkpoint with its index; bad input fails naming the file and leaves nothing.

mod common;

use qforge_formats::safetensors::{Checkpoint, Dtype};
use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURES: &[&str] = &[
    "llama2", "mistral", "mixtral", "qwen3", "gemma2", "gemma3", "phi3",
];

fn hf(name: &str) -> PathBuf {
    common::fixture("hf").join(name)
}

/// `qforge convert SRC -o OUT --type TY`.
fn convert(src: &Path, out: &Path, ty: &str) {
    common::run_ok(
        common::qforge()
            .args(["convert"])
            .arg(src)
            .arg("-o")
            .arg(out)
            .args(["--type", ty]),
    );
}

/// `qforge export-hf IN -o DIR ARGS...`.
fn export(gguf: &Path, dir: &Path, args: &[&str]) {
    common::run_ok(
        common::qforge()
            .arg("export-hf")
            .arg(gguf)
            .arg("-o")
            .arg(dir)
            .args(args),
    );
}

/// Compares the exported tensors with the original checkpoint's; returns the number compared.
fn compare_tensors(orig: &Path, exported: &Path, gemma_f32_norms: bool) -> usize {
    let a = Checkpoint::open(orig).unwrap();
    let b = Checkpoint::open(exported).unwrap();
    let mut an: Vec<&str> = a.names().collect();
    let mut bn: Vec<&str> = b.names().collect();
    an.sort_unstable();
    bn.sort_unstable();
    assert_eq!(an, bn, "{}: tensor names differ", exported.display());
    for name in &an {
        let ta = a.tensor(name).unwrap();
        let tb = b.tensor(name).unwrap();
        assert_eq!(ta.shape(), tb.shape(), "{name}: shape");
        assert_eq!(tb.dtype(), Dtype::F32, "{name}: exported dtype");
        let va = ta.to_f32().unwrap();
        let vb = tb.to_f32().unwrap();
        let shifted = gemma_f32_norms && ta.dtype() == Dtype::F32 && name.ends_with("norm.weight");
        for (i, (x, y)) in va.iter().zip(&vb).enumerate() {
            if shifted {
                // (x + 1) - 1 in f32: off by at most half an ulp of x + 1
                let tol = f32::EPSILON * (x.abs() + 1.0);
                assert!((x - y).abs() <= tol, "{name}[{i}]: {x} vs {y}");
            } else {
                assert_eq!(x.to_bits(), y.to_bits(), "{name}[{i}]: {x} vs {y}");
            }
        }
    }
    an.len()
}

#[test]
fn f32_round_trip_gives_back_the_original_tensors() {
    let dir = common::scratch("export-f32");
    for name in FIXTURES {
        let gguf = dir.join(format!("{name}.gguf"));
        let out = dir.join(name);
        convert(&hf(name), &gguf, "f32");
        export(&gguf, &out, &["--dtype", "f32"]);
        let n = compare_tensors(&hf(name), &out, name.starts_with("gemma"));
        assert!(n > 10, "{name}: only {n} tensors");
        for f in [
            "config.json",
            "generation_config.json",
            "tokenizer.model",
            "tokenizer_config.json",
        ] {
            assert!(out.join(f).is_file(), "{name}: {f} missing");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bf16_and_f16_sources_come_back_byte_identical_in_their_dtype() {
    let dir = common::scratch("export-half");
    // mistral/mixtral/gemma3 are bf16 checkpoints, llama2 (sharded) and phi3 f16
    for (name, dtype, st) in [
        ("mistral", "bf16", Dtype::BF16),
        ("mixtral", "bf16", Dtype::BF16),
        ("llama2", "f16", Dtype::F16),
        ("phi3", "f16", Dtype::F16),
    ] {
        let gguf = dir.join(format!("{name}.gguf"));
        let out = dir.join(name);
        convert(&hf(name), &gguf, "f32");
        export(&gguf, &out, &["--dtype", dtype]);
        let a = Checkpoint::open(hf(name)).unwrap();
        let b = Checkpoint::open(&out).unwrap();
        assert_eq!(a.len(), b.len());
        for t in a.tensors() {
            let t = t.unwrap();
            let u = b.tensor(t.name()).unwrap();
            assert_eq!(t.dtype(), st, "{name}: fixture dtype");
            assert_eq!(u.dtype(), st);
            assert!(t.data() == u.data(), "{name}: {} bytes differ", t.name());
        }
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
        let torch = if dtype == "bf16" {
            "bfloat16"
        } else {
            "float16"
        };
        assert_eq!(config["torch_dtype"], torch);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn small_shard_size_writes_a_sharded_checkpoint_with_the_same_tensors() {
    let dir = common::scratch("export-shards");
    let gguf = dir.join("mixtral.gguf");
    convert(&hf("mixtral"), &gguf, "f32");
    let one = dir.join("one");
    let many = dir.join("many");
    export(&gguf, &one, &["--dtype", "f32"]);
    export(
        &gguf,
        &many,
        &["--dtype", "f32", "--max-shard-size", "200KB"],
    );
    assert!(!one.join("model.safetensors.index.json").exists());
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(many.join("model.safetensors.index.json")).unwrap())
            .unwrap();
    let files: std::collections::BTreeSet<&str> = index["weight_map"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(files.len() > 1, "{files:?}");
    for f in &files {
        assert!(many.join(f).is_file(), "{f}");
    }
    let a = Checkpoint::open(&one).unwrap();
    let b = Checkpoint::open(&many).unwrap();
    assert_eq!(a.len(), b.len());
    for t in a.tensors() {
        let t = t.unwrap();
        assert!(
            t.data() == b.tensor(t.name()).unwrap().data(),
            "{}",
            t.name()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_fails_naming_the_file_and_leaves_nothing() {
    let dir = common::scratch("export-bad");
    let junk = dir.join("junk.gguf");
    std::fs::write(&junk, b"not a gguf file at all").unwrap();
    let out = dir.join("out");
    let o = common::qforge()
        .arg("export-hf")
        .arg(&junk)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("junk.gguf"), "{err}");
    assert!(!out.exists());
    // a non-empty output directory is refused before anything is read
    let gguf = dir.join("qwen3.gguf");
    convert(&hf("qwen3"), &gguf, "f32");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), b"x").unwrap();
    let o = common::qforge()
        .arg("export-hf")
        .arg(&gguf)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("out") && err.contains("not an empty directory"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("qforge-tmp"))
        .collect();
    assert!(leftovers.is_empty());
    // --dtype is checked
    let o = common::qforge()
        .arg("export-hf")
        .arg(&gguf)
        .arg("-o")
        .arg(dir.join("x"))
        .args(["--dtype", "q4"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(!dir.join("x").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The converter venv's python, or `None` (the transformers checks are skipped) when it is
/// missing and QFORGE_SKIP_ORACLE is set.
fn python() -> Option<PathBuf> {
    let p = std::env::var_os("QFORGE_CONVERT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/qforge/venv-convert/bin/python")
        });
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os("QFORGE_SKIP_ORACLE").is_some() {
        return None;
    }
    panic!(
        "the converter venv is missing: run scripts/build-oracle.sh (or set QFORGE_SKIP_ORACLE=1)"
    );
}

/// Loads ORIG and EXP with AutoModelForCausalLM (float32) and prints one JSON line: the loading
/// info of the export, the largest logit difference and magnitude, and both tokenizer.model
/// encodings of a probe. `--layer-types-from-export` runs the original with the export's
/// `layer_types` (how llama.cpp reads the GGUF), for fixtures whose pattern llama.cpp does not
/// take from the checkpoint.
const LOGITS_PY: &str = r#"
import sys, json, torch
import sentencepiece as spm
from transformers import AutoConfig, AutoModelForCausalLM
orig, exp = sys.argv[1], sys.argv[2]
ids = torch.tensor([[1, 5, 17, 42, 99, 300, 7, 250, 11, 3, 600, 64]])
cfg = AutoConfig.from_pretrained(orig)
if "--layer-types-from-export" in sys.argv:
    cfg.layer_types = json.load(open(exp + "/config.json"))["layer_types"]
a = AutoModelForCausalLM.from_pretrained(orig, config=cfg, torch_dtype=torch.float32).eval()
b, info = AutoModelForCausalLM.from_pretrained(exp, torch_dtype=torch.float32, output_loading_info=True)
b = b.eval()
with torch.no_grad():
    la, lb = a(ids).logits, b(ids).logits
text = "Hello world, this is a test of 12 tokens."
enc = [spm.SentencePieceProcessor(model_file=d + "/tokenizer.model").encode(text) for d in (orig, exp)]
print(json.dumps({
    "missing": info["missing_keys"], "unexpected": info["unexpected_keys"],
    "mismatched": [str(m) for m in info["mismatched_keys"]],
    "max_diff": (la - lb).abs().max().item(), "max_abs": la.abs().max().item(),
    "finite": bool(torch.isfinite(lb).all()), "tok_same": enc[0] == enc[1],
}))
"#;

fn logits(
    python: &Path,
    script: &Path,
    orig: &Path,
    exp: &Path,
    extra: &[&str],
) -> serde_json::Value {
    let o = common::run_ok(
        Command::new(python)
            .arg(script)
            .arg(orig)
            .arg(exp)
            .args(extra)
            .env("TRANSFORMERS_VERBOSITY", "error"),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn transformers_loads_the_exports_and_their_logits_match() {
    let Some(py) = python() else {
        eprintln!("skipped: no converter venv");
        return;
    };
    let dir = common::scratch("export-logits");
    let script = dir.join("logits.py");
    std::fs::write(&script, LOGITS_PY).unwrap();
    for name in FIXTURES {
        let gguf = dir.join(format!("{name}.gguf"));
        let out = dir.join(name);
        convert(&hf(name), &gguf, "f32");
        export(&gguf, &out, &["--dtype", "f32"]);
        // llama.cpp reads Gemma 3's sliding-window layers as every 6th layer global, whatever
        // the checkpoint's pattern (this fixture's is 2): compared as llama.cpp runs it
        let extra: &[&str] = if *name == "gemma3" {
            &["--layer-types-from-export"]
        } else {
            &[]
        };
        let r = logits(&py, &script, &hf(name), &out, extra);
        eprintln!("{name}: {r}");
        assert_eq!(r["missing"], serde_json::json!([]), "{name}: {r}");
        assert_eq!(r["unexpected"], serde_json::json!([]), "{name}: {r}");
        assert_eq!(r["mismatched"], serde_json::json!([]), "{name}: {r}");
        assert_eq!(r["tok_same"], true, "{name}: {r}");
        let d = r["max_diff"].as_f64().unwrap();
        assert!(d <= 1e-5, "{name}: logits differ by {d}");
    }
    // a quantized GGUF: dequantized to bf16, loads, and stays close to the original
    for name in ["llama2", "mixtral", "qwen3"] {
        let gguf = dir.join(format!("{name}-q8.gguf"));
        let out = dir.join(format!("{name}-q8"));
        convert(&hf(name), &gguf, "q8_0");
        export(&gguf, &out, &[]);
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["torch_dtype"], "bfloat16");
        let r = logits(&py, &script, &hf(name), &out, &[]);
        eprintln!("{name} Q8_0: {r}");
        assert_eq!(r["missing"], serde_json::json!([]), "{name}: {r}");
        assert_eq!(r["unexpected"], serde_json::json!([]), "{name}: {r}");
        assert_eq!(r["finite"], true);
        let (d, m) = (
            r["max_diff"].as_f64().unwrap(),
            r["max_abs"].as_f64().unwrap(),
        );
        assert!(
            d < 0.05 * m.max(1.0),
            "{name} Q8_0: logits differ by {d} (max {m})"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
