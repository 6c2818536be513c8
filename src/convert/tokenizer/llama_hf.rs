//! `_set_vocab_llama_hf` (gguf-py's `LlamaHfVocab`): a byte-fallback BPE given as
//! `tokenizer.json` only, written as a `llama` (SentencePiece-style) vocabulary with every
//! score -1000.

use std::collections::HashSet;
use std::path::Path;

use qforge_formats::gguf::GgufArray;
use serde_json::Value;

use super::hf;
use super::kv::Kvs;
use super::special::SpecialVocab;
use super::{read_json, token_type, TokenizerConvertError};

/// Whether `LlamaHfVocab` accepts `dir` (`tokenizer.json` with a byte-fallback BPE model and a
/// `Sequence` decoder; Llama-3-style tokenizers are refused so the caller falls back to GPT-2).
pub(crate) fn is_llama_hf(dir: &Path) -> Result<bool, TokenizerConvertError> {
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Ok(false);
    }
    let j = read_json(&path)?;
    let model = j.get("model").cloned().unwrap_or(Value::Null);
    let is_bpe = model.get("type").and_then(Value::as_str) == Some("BPE");
    let flag = |k: &str, d: bool| model.get(k).and_then(Value::as_bool).unwrap_or(d);
    if is_bpe && flag("ignore_merges", false) && !flag("byte_fallback", true) {
        return Ok(false); // "Llama 3 must be converted with BpeVocab"
    }
    let decoder = j
        .get("decoder")
        .and_then(|d| d.get("type"))
        .and_then(Value::as_str);
    Ok(is_bpe && flag("byte_fallback", false) && decoder == Some("Sequence"))
}

fn is_byte_token(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 6
        && t.starts_with("<0x")
        && t.ends_with('>')
        && b[3].is_ascii_hexdigit()
        && b[4].is_ascii_hexdigit()
}

/// transformers' `all_special_tokens`: the special-token attributes of `tokenizer_config.json`
/// (then `special_tokens_map.json` for the ones it lacks), with `additional_special_tokens`.
fn special_tokens(
    dir: &Path,
    config: &serde_json::Map<String, Value>,
) -> Result<Vec<String>, TokenizerConvertError> {
    let map_path = dir.join("special_tokens_map.json");
    let map = if map_path.is_file() {
        read_json(&map_path)?
    } else {
        Value::Null
    };
    let content = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
            _ => None,
        }
    };
    let mut out = Vec::new();
    for key in [
        "bos_token",
        "eos_token",
        "unk_token",
        "sep_token",
        "pad_token",
        "cls_token",
        "mask_token",
        "additional_special_tokens",
    ] {
        let v = config
            .get(key)
            .filter(|v| !v.is_null())
            .or_else(|| map.get(key).filter(|v| !v.is_null()));
        match v {
            Some(Value::Array(a)) => out.extend(a.iter().filter_map(content)),
            Some(v) => out.extend(content(v)),
            None => {}
        }
    }
    Ok(out)
}

/// `_set_vocab_llama_hf`.
pub(crate) fn set_vocab_llama_hf(kv: &mut Kvs, dir: &Path) -> Result<(), TokenizerConvertError> {
    if !is_llama_hf(dir)? {
        return Err(TokenizerConvertError::Missing {
            path: dir.join("tokenizer.json"),
            what: "Llama BPE (byte-fallback tokenizer.json)",
        });
    }
    let hf = hf::load(dir)?;
    let base = hf.tok.get_vocab_size(false);
    let vocab = hf.tok.get_vocab(true);
    let specials = special_tokens(dir, &hf.config)?;
    let special_ids: HashSet<u32> = specials
        .iter()
        .filter_map(|t| vocab.get(t).copied())
        .collect();
    let mut reverse = vec![None; base];
    for (t, &id) in &vocab {
        if (id as usize) < base {
            reverse[id as usize] = Some(t.as_str());
        }
    }
    let mut added: Vec<(u32, String)> = hf
        .tok
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(id, _)| *id as usize >= base)
        .map(|(id, t)| (id, t.content))
        .collect();
    added.sort();
    let mut tokens = Vec::with_capacity(base + added.len());
    let mut types = Vec::with_capacity(base + added.len());
    for (id, t) in reverse.iter().enumerate() {
        let t = t.ok_or_else(|| TokenizerConvertError::Invalid {
            path: hf.path.clone(),
            reason: format!("no token has id {id}"),
        })?;
        types.push(if is_byte_token(t) {
            token_type::BYTE
        } else if special_ids.contains(&(id as u32)) {
            token_type::CONTROL
        } else {
            token_type::NORMAL
        });
        tokens.push(t.as_bytes().to_vec());
    }
    for (_, t) in &added {
        types.push(if specials.contains(t) {
            token_type::CONTROL
        } else {
            token_type::USER_DEFINED
        });
        tokens.push(t.as_bytes().to_vec());
    }
    let n = tokens.len();
    kv.set_str("tokenizer.ggml.model", "llama");
    kv.set_str("tokenizer.ggml.pre", "default");
    kv.set_array("tokenizer.ggml.tokens", GgufArray::String(tokens));
    kv.set_array("tokenizer.ggml.scores", GgufArray::F32(vec![-1000.0; n]));
    kv.set_array("tokenizer.ggml.token_type", GgufArray::I32(types));
    SpecialVocab::load(dir, false, None, Some(n))?.add_to_gguf(kv, dir)
}
