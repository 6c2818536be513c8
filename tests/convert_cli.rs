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
