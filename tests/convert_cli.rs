//! `qforge convert` on bad input: one clear error naming the file (and tensor), exit status 1,
//! and no output file left behind.

mod common;

use qforge_formats::safetensors::{write_file, Dtype, TensorInfo, TensorSpec};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const H: u64 = 32;
const NH: u64 = 4;
const NKV: u64 = 2;
const FF: u64 = 48;
const V: u64 = 40;
const L: u64 = 2;

fn config(arch: &str) -> String {
    format!(
        r#"{{"architectures": ["{arch}"], "model_type": "llama", "hidden_size": {H},
        "num_attention_heads": {NH}, "num_key_value_heads": {NKV}, "num_hidden_layers": {L},
        "intermediate_size": {FF}, "vocab_size": {V}, "rms_norm_eps": 1e-5}}"#
    )
}

/// The tensors of a tiny Llama checkpoint (HF names and shapes).
fn llama_tensors() -> Vec<(String, Vec<u64>)> {
    let hd = H / NH;
    let mut t = vec![
        ("model.embed_tokens.weight".to_string(), vec![V, H]),
        ("model.norm.weight".to_string(), vec![H]),
        ("lm_head.weight".to_string(), vec![V, H]),
    ];
    for b in 0..L {
        let p = format!("model.layers.{b}.");
        t.extend([
            (format!("{p}input_layernorm.weight"), vec![H]),
            (format!("{p}post_attention_layernorm.weight"), vec![H]),
            (format!("{p}self_attn.q_proj.weight"), vec![NH * hd, H]),
            (format!("{p}self_attn.k_proj.weight"), vec![NKV * hd, H]),
            (format!("{p}self_attn.v_proj.weight"), vec![NKV * hd, H]),
            (format!("{p}self_attn.o_proj.weight"), vec![H, NH * hd]),
            (format!("{p}mlp.gate_proj.weight"), vec![FF, H]),
            (format!("{p}mlp.up_proj.weight"), vec![FF, H]),
            (format!("{p}mlp.down_proj.weight"), vec![H, FF]),
        ]);
    }
    t
}

fn write_safetensors(path: &Path, tensors: &[(String, Vec<u64>)]) {
    let specs: Vec<TensorSpec> = tensors
        .iter()
        .map(|(n, s)| TensorSpec::new(n.clone(), Dtype::F32, s.clone()))
        .collect();
    let mut source = |t: &TensorInfo, out: &mut dyn Write| -> std::io::Result<()> {
        let n = t.n_elements() as usize;
        let data: Vec<u8> = (0..n)
            .flat_map(|i| ((i % 7) as f32 * 0.01).to_le_bytes())
            .collect();
        out.write_all(&data)
    };
    write_file(path, &specs, None, &mut source).expect("write fixture");
}

/// A checkpoint directory under `base`.
fn checkpoint(base: &Path, cfg: Option<&str>, tensors: &[(String, Vec<u64>)]) -> PathBuf {
    let dir = base.join("ckpt");
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(c) = cfg {
        std::fs::write(dir.join("config.json"), c).unwrap();
    }
    write_safetensors(&dir.join("model.safetensors"), tensors);
    dir
}

/// Runs `qforge convert dir -o out.gguf` and checks: exit 1, every `needles` in stderr, and no
/// file of any kind left in the output directory.
fn expect_failure(base: &Path, dir: &Path, needles: &[&str]) {
    let out_dir = base.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("model.gguf");
    let o = common::qforge()
        .arg("convert")
        .arg(dir)
        .arg("-o")
        .arg(&out)
        .args(["--type", "f16"])
        .output()
        .expect("run qforge");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {stderr}");
    for n in needles {
        assert!(
            stderr.contains(n),
            "stderr {stderr:?} does not mention {n:?}"
        );
    }
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "one error expected: {stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
    assert!(left.is_empty(), "output directory not empty: {left:?}");
}

#[test]
fn missing_config() {
    let base = common::scratch("convert_missing_config");
    let dir = checkpoint(&base, None, &llama_tensors());
    expect_failure(&base, &dir, &["config.json", "not found"]);
}

#[test]
fn malformed_config() {
    let base = common::scratch("convert_malformed_config");
    let dir = checkpoint(
        &base,
        Some("{\"architectures\": [\"Llama"),
        &llama_tensors(),
    );
    expect_failure(&base, &dir, &["config.json", "malformed JSON"]);
}

#[test]
fn unsupported_architecture() {
    let base = common::scratch("convert_unsupported");
    let dir = checkpoint(
        &base,
        Some(&config("GPTBigCodeForCausalLM")),
        &llama_tensors(),
    );
    expect_failure(
        &base,
        &dir,
        &[
            "config.json",
            "GPTBigCodeForCausalLM",
            "not supported",
            "LlamaForCausalLM",
        ],
    );
}

#[test]
fn missing_tensor() {
    let mut t = llama_tensors();
    t.retain(|(n, _)| n != "model.layers.1.self_attn.q_proj.weight");
    let base = common::scratch("convert_missing_tensor");
    let dir = checkpoint(&base, Some(&config("LlamaForCausalLM")), &t);
    expect_failure(
        &base,
        &dir,
        &[
            "model.safetensors",
            "model.layers.1.self_attn.q_proj.weight",
            "missing",
        ],
    );
}

#[test]
fn wrong_shape() {
    let mut t = llama_tensors();
    for (n, s) in &mut t {
        if n == "model.layers.0.mlp.down_proj.weight" {
            *s = vec![H, FF + 8];
        }
    }
    let base = common::scratch("convert_wrong_shape");
    let dir = checkpoint(&base, Some(&config("LlamaForCausalLM")), &t);
    expect_failure(
        &base,
        &dir,
        &[
            "model.safetensors",
            "model.layers.0.mlp.down_proj.weight",
            "shape",
        ],
    );
}

#[test]
fn missing_shard() {
    let base = common::scratch("convert_missing_shard");
    let dir = base.join("ckpt");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), config("LlamaForCausalLM")).unwrap();
    let t = llama_tensors();
    let (a, b) = t.split_at(t.len() / 2);
    let names = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    write_safetensors(&dir.join(names[0]), a);
    let mut map = BTreeMap::new();
    for (part, ts) in names.iter().zip([a, b]) {
        for (n, _) in ts {
            map.insert(n.clone(), part.to_string());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    expect_failure(
        &base,
        &dir,
        &[
            "model.safetensors.index.json",
            "model-00002-of-00002.safetensors",
            "missing",
        ],
    );
}

#[test]
fn bad_type() {
    let base = common::scratch("convert_bad_type");
    let dir = checkpoint(&base, Some(&config("LlamaForCausalLM")), &llama_tensors());
    let out_dir = base.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let o = common::qforge()
        .arg("convert")
        .arg(&dir)
        .arg("-o")
        .arg(out_dir.join("m.gguf"))
        .args(["--type", "f8"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--type f8"));
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);
}

/// The converter and its venv, or `None` (test skipped) when QFORGE_SKIP_ORACLE is set and they
/// are not built.
fn converter() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let oracle = common::oracle_dir()?;
    let cache = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/qforge");
    let llama_cpp = std::env::var_os("QFORGE_LLAMA_CPP")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("llama_cpp_python-0.3.36/vendor/llama.cpp"));
    let python = std::env::var_os("QFORGE_CONVERT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("venv-convert/bin/python"));
    if !python.exists() || !llama_cpp.join("convert_hf_to_gguf.py").is_file() {
        if std::env::var_os("QFORGE_SKIP_ORACLE").is_some() {
            return None;
        }
        panic!("the converter venv is missing: run scripts/build-oracle.sh (or set QFORGE_SKIP_ORACLE=1)");
    }
    Some((oracle, llama_cpp, python))
}

/// `convert_hf_to_gguf.py SRC --outtype f32 --outfile OUT` with the pinned gguf-py.
fn converter_f32(llama_cpp: &Path, python: &Path, src: &Path, out: &Path) {
    common::run_ok(
        std::process::Command::new(python)
            .arg(llama_cpp.join("convert_hf_to_gguf.py"))
            .arg(src)
            .args(["--outtype", "f32", "--outfile"])
            .arg(out)
            .env("PYTHONPATH", llama_cpp.join("gguf-py"))
            .env("NO_LOCAL_GGUF", ""),
    );
}

/// `qforge convert --type IQ4_XS --imatrix` equals convert_hf_to_gguf.py --outtype f32 followed
/// by llama-quantize --imatrix ... IQ4_XS, with the imatrix `qforge imatrix` computes on the
/// converter's f32 file. The Mistral fixture has 192-wide rows (IQ4_NL fallback) and 256-wide
/// ones (real IQ4_XS), so both paths of the imatrix are exercised.
#[test]
fn iq4_xs_with_imatrix_matches_converter_and_llama_quantize() {
    let Some((oracle, llama_cpp, python)) = converter() else {
        return;
    };
    let base = common::scratch("convert_iq4_xs");
    let src = common::root().join("fixtures/hf/mistral");
    let f32 = base.join("f32.gguf");
    converter_f32(&llama_cpp, &python, &src, &f32);
    // The same path string goes to both tools: quantize.imatrix.file records it.
    let im = base.join("imatrix.gguf");
    common::run_ok(
        common::qforge()
            .args(["-j", "2", "imatrix", "-m"])
            .arg(&f32)
            .arg("-f")
            .arg(common::fixture("text/gpl-3.txt"))
            .arg("-o")
            .arg(&im)
            .args(["-c", "128", "--chunks", "4"]),
    );
    let theirs = base.join("llama.gguf");
    common::run_ok(
        common::llama(&oracle, "llama-quantize")
            .arg("--imatrix")
            .arg(&im)
            .arg(&f32)
            .arg(&theirs)
            .args(["IQ4_XS", "2"]),
    );
    let ours = base.join("qforge.gguf");
    common::run_ok(
        common::qforge()
            .args(["-j", "2", "convert"])
            .arg(&src)
            .arg("-o")
            .arg(&ours)
            .args(["--type", "IQ4_XS", "--imatrix"])
            .arg(&im),
    );
    common::assert_same_file(&ours, &theirs);
    let _ = std::fs::remove_dir_all(&base);
}

/// `qforge convert --type Q4_K_M --pure --output-tensor-type q8_0 --split-max-tensors 7` equals
/// llama-quantize with the same flags on the converter's f32 file, cut by
/// `llama-gguf-split --split --split-max-tensors 7`, file for file.
#[test]
fn split_quantized_output_matches_llama_gguf_split() {
    let Some((oracle, llama_cpp, python)) = converter() else {
        return;
    };
    let base = common::scratch("convert_q4km_split");
    let src = common::root().join("fixtures/hf/llama2");
    let f32 = base.join("f32.gguf");
    converter_f32(&llama_cpp, &python, &src, &f32);
    let flags = [
        "--pure",
        "--output-tensor-type",
        "q8_0",
        "--override-kv",
        "general.name=str:split test",
    ];
    let whole = base.join("llama.gguf");
    common::run_ok(
        common::llama(&oracle, "llama-quantize")
            .args(flags)
            .arg(&f32)
            .arg(&whole)
            .args(["Q4_K_M", "2"]),
    );
    common::run_ok(
        common::llama(&oracle, "llama-gguf-split")
            .args(["--split", "--split-max-tensors", "7"])
            .arg(&whole)
            .arg(base.join("theirs")),
    );
    let o = common::run_ok(
        common::qforge()
            .args(["-j", "2", "convert"])
            .arg(&src)
            .arg("-o")
            .arg(base.join("ours.gguf"))
            .args(["--type", "Q4_K_M", "--split-max-tensors", "7"])
            .args(flags),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    let mut n = 0;
    for i in 1.. {
        let name = |p: &str| base.join(format!("{p}-{i:05}-of-"));
        let theirs: Vec<PathBuf> = std::fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.to_string_lossy()
                    .starts_with(&*name("theirs").to_string_lossy())
            })
            .collect();
        if theirs.is_empty() {
            break;
        }
        let suffix =
            theirs[0].to_string_lossy()[name("theirs").to_string_lossy().len()..].to_string();
        let ours = PathBuf::from(format!("{}{suffix}", name("ours").display()));
        assert!(
            ours.is_file(),
            "{} missing; qforge said: {stderr}",
            ours.display()
        );
        common::assert_same_file(&ours, &theirs[0]);
        n += 1;
    }
    assert!(n > 1, "llama-gguf-split wrote {n} file(s)");
    let ours_count = std::fs::read_dir(&base)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("ours-")
        })
        .count();
    assert_eq!(ours_count, n, "qforge wrote a different number of files");
    let _ = std::fs::remove_dir_all(&base);
}

/// Bad input to a quantized conversion fails before any output: an unknown type, and a type
/// that needs an importance matrix given none (llama-quantize's refusal), each with exit 1,
/// one error naming the problem, and nothing written.
#[test]
fn quantized_type_bad_input() {
    let base = common::scratch("convert_quantized_bad");
    // ffn_down has 256-wide rows: IQ2_XS really applies there and needs the imatrix.
    let dir = common::root().join("fixtures/hf/mistral");
    let out_dir = base.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--type", "Q4_K_X"],
            &["--type Q4_K_X", "llama-quantize type"],
        ),
        (&["--type", "IQ2_XS"], &["imatrix"]),
        (
            &["--type", "f16", "--pure"],
            &["--pure", "llama-quantize types only"],
        ),
        (
            &["--type", "Q4_K_M", "--imatrix", "/nonexistent/imatrix.gguf"],
            &["/nonexistent/imatrix.gguf"],
        ),
    ];
    for (args, needles) in cases {
        let o = common::qforge()
            .arg("convert")
            .arg(&dir)
            .arg("-o")
            .arg(out_dir.join("m.gguf"))
            .args(*args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {stderr}");
        for n in *needles {
            assert!(
                stderr.contains(n),
                "{args:?}: {stderr:?} does not mention {n:?}"
            );
        }
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error")).count(),
            1,
            "{args:?}: one error expected: {stderr}"
        );
        assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0, "{args:?}");
    }
}

/// A quantized conversion of a checkpoint without a 256-multiple width (the Llama 2 fixture is
/// 128 wide): --no-fallback refuses
/// it (before writing), and without it the run succeeds with the fallback types.
#[test]
fn quantized_type_no_fallback() {
    let base = common::scratch("convert_quantized_fallback");
    let dir = common::root().join("fixtures/hf/llama2");
    let out_dir = base.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("m.gguf");
    let run = |extra: &[&str]| {
        common::qforge()
            .arg("convert")
            .arg(&dir)
            .arg("-o")
            .arg(&out)
            .args(["--type", "Q4_K_M"])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&["--no-fallback"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);
    let o = run(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.is_file());
}

/// `convert --type IQ2_XS --calibration-text` computes in the same run the importance matrix that
/// `qforge imatrix -m DIR` writes, and gives the model `convert --imatrix` gives with that file.
/// Both runs use the same relative imatrix name and absolute text path, so the recorded
/// `quantize.imatrix.*` metadata agrees too.
#[test]
fn calibration_text_equals_imatrix_then_convert() {
    let src = common::root().join("fixtures/hf/mistral");
    let text = common::fixture("text/gpl-3.txt");
    let root = common::scratch("convert-calibration-text");
    let (a, b) = (root.join("a"), root.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let calib = ["-c", "128", "--chunks", "3"];
    common::run_ok(
        common::qforge()
            .current_dir(&a)
            .args([
                "convert",
                "--type",
                "IQ2_XS",
                "-o",
                "out.gguf",
                "--calibration-text",
            ])
            .arg(&text)
            .args(["--calibration-ctx", "128", "--calibration-chunks", "3"])
            .args(["--save-imatrix", "im.gguf"])
            .arg(&src),
    );
    common::run_ok(
        common::qforge()
            .current_dir(&b)
            .args(["imatrix", "-m"])
            .arg(&src)
            .arg("-f")
            .arg(&text)
            .args(calib)
            .args(["-o", "im.gguf"]),
    );
    common::run_ok(
        common::qforge()
            .current_dir(&b)
            .args([
                "convert",
                "--type",
                "IQ2_XS",
                "-o",
                "out.gguf",
                "--imatrix",
                "im.gguf",
            ])
            .arg(&src),
    );
    common::assert_same_file(&a.join("im.gguf"), &b.join("im.gguf"));
    common::assert_same_file(&a.join("out.gguf"), &b.join("out.gguf"));

    // With a float type the flag is refused; with --imatrix too; a missing text names the file.
    for (extra, needle) in [
        (vec!["--type", "f16"], "--calibration-text"),
        (vec!["--type", "IQ2_XS", "--imatrix", "x.gguf"], "--imatrix"),
    ] {
        let o = common::qforge()
            .current_dir(&a)
            .arg("convert")
            .args(&extra)
            .args(["-o", "bad.gguf", "--calibration-text"])
            .arg(&text)
            .arg(&src)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(needle),
            "{extra:?}: {err}"
        );
        assert!(!a.join("bad.gguf").exists());
    }
    let o = common::qforge()
        .current_dir(&a)
        .args([
            "convert",
            "--type",
            "IQ2_XS",
            "-o",
            "bad.gguf",
            "--calibration-text",
            "nope.txt",
        ])
        .arg(&src)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("nope.txt") && !a.join("bad.gguf").exists(),
        "{err}"
    );
}
