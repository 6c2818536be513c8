//! `qforge inspect` for safetensors files and Hugging Face checkpoint directories.

use super::report::{human_bytes, Table};
use anyhow::{Context, Result};
use qforge_formats::safetensors::Checkpoint;
use serde_json::{json, Value};
use std::path::Path;

/// Hyperparameters worth showing from `config.json`, when present.
const CONFIG_KEYS: &[&str] = &[
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "max_position_embeddings",
    "rope_theta",
    "rms_norm_eps",
    "tie_word_embeddings",
    "num_local_experts",
    "num_experts",
    "num_experts_per_tok",
    "torch_dtype",
    "dtype",
];

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v = serde_json::from_str(&text)
        .with_context(|| format!("{}: malformed JSON", path.display()))?;
    Ok(Some(v))
}

/// Summarises a safetensors file or checkpoint directory.
pub fn inspect(path: &Path, json_out: bool) -> Result<()> {
    let ckpt = Checkpoint::open(path).context("cannot inspect")?;
    let dir = if path.is_dir() {
        Some(path)
    } else {
        path.parent()
    };
    let config = match dir {
        Some(d) => read_json(&d.join("config.json"))?,
        None => None,
    };
    let architecture = config
        .as_ref()
        .and_then(|c| c.get("architectures"))
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .map(str::to_string);
    let hparams: serde_json::Map<String, Value> = CONFIG_KEYS
        .iter()
        .filter_map(|k| {
            config
                .as_ref()
                .and_then(|c| c.get(*k))
                .map(|v| (k.to_string(), v.clone()))
        })
        .collect();
    let tokenizer = match dir {
        Some(d) => tokenizer_summary(d)?,
        None => Value::Null,
    };

    let mut rows = Vec::new();
    let (mut elems, mut bytes) = (0u64, 0u64);
    let mut by_dtype: std::collections::BTreeMap<&str, (usize, u64)> = Default::default();
    for f in ckpt.files() {
        for t in f.infos() {
            elems += t.n_elements();
            bytes += t.byte_len();
            let e = by_dtype.entry(t.dtype().name()).or_default();
            e.0 += 1;
            e.1 += t.byte_len();
            rows.push((
                t.name().to_string(),
                t.dtype().name(),
                t.shape().to_vec(),
                t.byte_len(),
            ));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let bpw = if elems > 0 {
        bytes as f64 * 8.0 / elems as f64
    } else {
        0.0
    };

    if json_out {
        let out = json!({
            "format": "safetensors",
            "path": path,
            "files": ckpt.files().len(),
            "architecture": architecture,
            "hyperparameters": hparams,
            "tokenizer": tokenizer,
            "tensors": rows.iter().map(|(n, d, s, b)| json!({"name": n, "dtype": d, "shape": s, "bytes": b})).collect::<Vec<_>>(),
            "totals": {"tensors": rows.len(), "elements": elems, "bytes": bytes, "bits_per_weight": bpw},
            "dtypes": by_dtype.iter().map(|(k, (n, b))| (k.to_string(), json!({"tensors": n, "bytes": b}))).collect::<serde_json::Map<_, _>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{}: safetensors, {} file(s)",
        path.display(),
        ckpt.files().len()
    );
    println!(
        "architecture: {}",
        architecture.as_deref().unwrap_or("(no config.json)")
    );
    if !hparams.is_empty() {
        println!("\nhyperparameters:");
        for (k, v) in &hparams {
            println!("  {k:<28} {v}");
        }
    }
    if !tokenizer.is_null() {
        println!("\ntokenizer: {tokenizer}");
    }
    let mut table = Table::new(&["tensor", "dtype", "shape", "bytes"]);
    for (n, d, s, b) in &rows {
        table.row(vec![
            n.clone(),
            d.to_string(),
            format!("{s:?}"),
            human_bytes(*b),
        ]);
    }
    println!();
    table.print();
    println!("\ndtypes:");
    for (k, (n, b)) in &by_dtype {
        println!("  {k:<8} {n:>5} tensors  {}", human_bytes(*b));
    }
    println!(
        "\ntotal: {} tensors, {elems} elements, {} ({bpw:.4} bits per weight)",
        rows.len(),
        human_bytes(bytes)
    );
    Ok(())
}

fn tokenizer_summary(dir: &Path) -> Result<Value> {
    let tok = read_json(&dir.join("tokenizer.json"))?;
    let cfg = read_json(&dir.join("tokenizer_config.json"))?;
    if tok.is_none() && cfg.is_none() && !dir.join("tokenizer.model").is_file() {
        return Ok(Value::Null);
    }
    let model = tok.as_ref().and_then(|t| t.pointer("/model/type")).cloned();
    let vocab = tok
        .as_ref()
        .and_then(|t| t.pointer("/model/vocab"))
        .map(|v| match v {
            Value::Object(m) => m.len(),
            Value::Array(a) => a.len(),
            _ => 0,
        });
    let added = tok
        .as_ref()
        .and_then(|t| t.get("added_tokens"))
        .and_then(Value::as_array)
        .map(Vec::len);
    let field = |k: &str| cfg.as_ref().and_then(|c| c.get(k)).cloned();
    Ok(json!({
        "model": model,
        "vocab": vocab,
        "added_tokens": added,
        "sentencepiece_model": dir.join("tokenizer.model").is_file(),
        "bos_token": field("bos_token"),
        "eos_token": field("eos_token"),
        "chat_template": field("chat_template").is_some() || dir.join("chat_template.jinja").is_file(),
    }))
}
