//! `qforge inspect` for GGUF files and split sets.

use super::report::{human_bytes, Table};
use anyhow::{Context, Result};
use qforge_formats::gguf::split::GgufSet;
use qforge_formats::gguf::{GgufArray, GgufValue, ReadMode};
use serde_json::{json, Value};
use std::path::Path;

/// Summarises a GGUF model: metadata, tokenizer, tensors, totals.
pub fn inspect(path: &Path, json_out: bool) -> Result<()> {
    let set = GgufSet::open(path, ReadMode::Mmap).context("cannot inspect")?;
    let h = set.first().header();
    let arch = h.architecture().unwrap_or("(none)").to_string();
    let prefix = format!("{arch}.");

    let mut hparams = serde_json::Map::new();
    for (k, v) in &h.kvs {
        if let Some(rest) = k.strip_prefix(&prefix) {
            hparams.insert(rest.to_string(), value_json(v));
        }
    }
    let tok = |k: &str| h.get(&format!("tokenizer.ggml.{k}"));
    let n_tokens = tok("tokens")
        .and_then(GgufValue::as_array)
        .map(GgufArray::len);
    let n_merges = tok("merges")
        .and_then(GgufValue::as_array)
        .map(GgufArray::len);
    let tokenizer = json!({
        "model": tok("model").and_then(GgufValue::as_str),
        "pre": tok("pre").and_then(GgufValue::as_str),
        "tokens": n_tokens,
        "merges": n_merges,
        "bos_token_id": tok("bos_token_id").and_then(GgufValue::as_int).map(|v| v as i64),
        "eos_token_id": tok("eos_token_id").and_then(GgufValue::as_int).map(|v| v as i64),
        "chat_template": h.get("tokenizer.chat_template").is_some(),
    });

    let mut tensors = Vec::new();
    let (mut n_elems, mut n_bytes) = (0u64, 0u64);
    let mut by_type: std::collections::BTreeMap<String, (usize, u64)> = Default::default();
    for (shard, t) in set.tensors() {
        n_elems += t.n_elements();
        n_bytes += t.n_bytes();
        let e = by_type.entry(t.ty.name().to_string()).or_default();
        e.0 += 1;
        e.1 += t.n_bytes();
        tensors.push(json!({"name": t.name, "type": t.ty.name(), "shape": t.dims, "bytes": t.n_bytes(), "shard": shard}));
    }
    let bpw = if n_elems > 0 {
        n_bytes as f64 * 8.0 / n_elems as f64
    } else {
        0.0
    };
    let file_bytes: u64 = set.shards().iter().map(|s| s.len()).sum();

    if json_out {
        let metadata: serde_json::Map<String, Value> = h
            .kvs
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect();
        let out = json!({
            "format": "gguf",
            "path": path,
            "version": h.version,
            "shards": set.shards().len(),
            "architecture": arch,
            "hyperparameters": hparams,
            "tokenizer": tokenizer,
            "metadata": metadata,
            "tensors": tensors,
            "totals": {"tensors": tensors.len(), "elements": n_elems, "tensor_bytes": n_bytes, "file_bytes": file_bytes, "bits_per_weight": bpw},
            "types": by_type.iter().map(|(k, (n, b))| (k.clone(), json!({"tensors": n, "bytes": b}))).collect::<serde_json::Map<_, _>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }

    println!(
        "{}: GGUF v{}, {} shard(s), {}",
        path.display(),
        h.version,
        set.shards().len(),
        human_bytes(file_bytes)
    );
    println!("architecture: {arch}");
    if let Some(name) = h.get("general.name").and_then(GgufValue::as_str) {
        println!("name: {name}");
    }
    println!("\nhyperparameters:");
    for (k, v) in &h.kvs {
        if let Some(rest) = k.strip_prefix(&prefix) {
            println!("  {rest:<40} {v}");
        }
    }
    println!("\ntokenizer: {}", tokenizer);
    println!("\nmetadata: {} keys", h.kvs.len());
    let mut table = Table::new(&["tensor", "type", "shape", "bytes"]);
    for (_, t) in set.tensors() {
        table.row(vec![
            t.name.clone(),
            t.ty.name().to_string(),
            format!("{:?}", t.dims),
            human_bytes(t.n_bytes()),
        ]);
    }
    println!();
    table.print();
    println!("\ntypes:");
    for (k, (n, b)) in &by_type {
        println!("  {k:<8} {n:>5} tensors  {}", human_bytes(*b));
    }
    println!(
        "\ntotal: {} tensors, {} elements, {} ({bpw:.4} bits per weight)",
        tensors.len(),
        n_elems,
        human_bytes(n_bytes)
    );
    Ok(())
}

fn value_json(v: &GgufValue) -> Value {
    match v {
        GgufValue::Array(a) if a.len() > 64 => {
            json!({"array": a.elem_type().name(), "len": a.len()})
        }
        GgufValue::Array(a) => array_json(a),
        GgufValue::String(s) => Value::String(String::from_utf8_lossy(s).into_owned()),
        GgufValue::Bool(b) => json!(b),
        GgufValue::F32(f) => json!(f),
        GgufValue::F64(f) => json!(f),
        other => other.as_int().map_or(Value::Null, |i| json!(i as i64)),
    }
}

fn array_json(a: &GgufArray) -> Value {
    use GgufArray as A;
    match a {
        A::String(v) => v
            .iter()
            .map(|s| Value::String(String::from_utf8_lossy(s).into_owned()))
            .collect(),
        A::F32(v) => v.iter().map(|x| json!(x)).collect(),
        A::F64(v) => v.iter().map(|x| json!(x)).collect(),
        A::Bool(v) => v.iter().map(|x| json!(x)).collect(),
        _ => (0..a.len())
            .map(|i| a.get_int(i).map_or(Value::Null, |x| json!(x as i64)))
            .collect(),
    }
}
