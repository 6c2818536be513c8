//! GGUF tokenizer metadata -> Hugging Face tokenizer files: `tokenizer.json` (byte-level BPE
//! vocabularies) or `tokenizer.model` (SentencePiece vocabularies), with a
//! `tokenizer_config.json`. Used by `qforge export-hf` and to build test checkpoints from
//! llama.cpp's vocabulary files.
//!
//! BPE: every token but the UNUSED ones is in the BPE model's vocabulary; CONTROL tokens are
//! also special added tokens and USER_DEFINED tokens non-special added tokens (not normalized);
//! UNUSED tokens are left out (the converter pads them back as `[PAD{i}]`). The
//! pre-tokenizer, normalizer and `ignore_merges` come from the `tokenizer.ggml.pre` entry of
//! [`super::pre_table`]; BOS is added by a `TemplateProcessing` post-processor when
//! `tokenizer.ggml.add_bos_token` (or llama.cpp's default for that pre-tokenizer) says so.
//! SentencePiece: the pieces, scores and types go into a `ModelProto` with
//! `normalizer_spec.add_dummy_prefix` from `tokenizer.ggml.add_space_prefix`; UNKNOWN tokens
//! after the first are written as UNUSED (SentencePiece allows one unknown piece).

use std::path::Path;

use qforge_formats::gguf::{GgufArray, GgufValue};
use serde_json::{json, Map, Value};

use super::pre_table::{self, Step};
use super::{token_type, TokenizerConvertError};

/// Hugging Face tokenizer files rebuilt from GGUF metadata.
#[derive(Debug, Clone)]
pub struct HfTokenizerFiles {
    /// `tokenizer.json` (BPE vocabularies).
    pub tokenizer_json: Option<Value>,
    /// `tokenizer.model` bytes (SentencePiece vocabularies).
    pub tokenizer_model: Option<Vec<u8>>,
    /// `tokenizer_config.json`.
    pub tokenizer_config: Value,
}

impl HfTokenizerFiles {
    /// Writes the files into `dir` (which must exist).
    pub fn write(&self, dir: &Path) -> Result<(), TokenizerConvertError> {
        let put = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes)
                .map_err(|source| TokenizerConvertError::Io { path, source })
        };
        if let Some(j) = &self.tokenizer_json {
            put("tokenizer.json", j.to_string().as_bytes())?;
        }
        if let Some(m) = &self.tokenizer_model {
            put("tokenizer.model", m)?;
        }
        put(
            "tokenizer_config.json",
            self.tokenizer_config.to_string().as_bytes(),
        )
    }
}

fn get<'a>(kvs: &'a [(String, GgufValue)], key: &str) -> Option<&'a GgufValue> {
    kvs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Rebuilds HF tokenizer files from the `tokenizer.*` metadata in `kvs`; `origin` names the
/// GGUF file in errors.
pub fn hf_files_from_gguf(
    kvs: &[(String, GgufValue)],
    origin: &Path,
) -> Result<HfTokenizerFiles, TokenizerConvertError> {
    let bad = |reason: String| TokenizerConvertError::Invalid {
        path: origin.to_path_buf(),
        reason,
    };
    let model = get(kvs, "tokenizer.ggml.model")
        .and_then(GgufValue::as_str)
        .unwrap_or("");
    let tokens: Vec<String> = match get(kvs, "tokenizer.ggml.tokens") {
        Some(GgufValue::Array(GgufArray::String(t))) => t
            .iter()
            .map(|b| String::from_utf8(b.clone()).map_err(|_| bad("a token is not UTF-8".into())))
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(bad(
                "tokenizer.ggml.tokens is missing or not a string array".into(),
            ))
        }
    };
    let n = tokens.len();
    let types: Vec<i32> = match get(kvs, "tokenizer.ggml.token_type") {
        Some(GgufValue::Array(GgufArray::I32(t))) if t.len() == n => t.clone(),
        None => vec![token_type::NORMAL; n],
        _ => {
            return Err(bad(
                "tokenizer.ggml.token_type is not an int32 array of the token count".into(),
            ))
        }
    };
    let id = |key: &str| {
        get(kvs, key)
            .and_then(GgufValue::as_u32)
            .filter(|&i| (i as usize) < n)
    };
    let flag = |key: &str| match get(kvs, key) {
        Some(GgufValue::Bool(b)) => Some(*b),
        _ => None,
    };
    let mut config = Map::new();
    config.insert("clean_up_tokenization_spaces".into(), json!(false));
    for (typ, key) in [
        ("bos", "tokenizer.ggml.bos_token_id"),
        ("eos", "tokenizer.ggml.eos_token_id"),
        ("unk", "tokenizer.ggml.unknown_token_id"),
        ("pad", "tokenizer.ggml.padding_token_id"),
        ("sep", "tokenizer.ggml.seperator_token_id"),
        ("mask", "tokenizer.ggml.mask_token_id"),
    ] {
        if let Some(i) = id(key) {
            config.insert(format!("{typ}_token"), json!(tokens[i as usize]));
        }
    }
    for typ in ["bos", "eos"] {
        if let Some(b) = flag(&format!("tokenizer.ggml.add_{typ}_token")) {
            config.insert(format!("add_{typ}_token"), json!(b));
        }
    }
    if let Some(t) = chat_template(kvs) {
        config.insert("chat_template".into(), t);
    }
    match model {
        "gpt2" => {
            let pre = get(kvs, "tokenizer.ggml.pre")
                .and_then(GgufValue::as_str)
                .unwrap_or("default");
            let spec = pre_table::by_name(pre).ok_or_else(|| {
                bad(format!(
                    "no tokenizer.json form known for pre-tokenizer {pre:?}"
                ))
            })?;
            let merges: Vec<Value> = match get(kvs, "tokenizer.ggml.merges") {
                Some(GgufValue::Array(GgufArray::String(m))) => m
                    .iter()
                    .map(|b| {
                        String::from_utf8(b.clone())
                            .map(Value::String)
                            .map_err(|_| bad("a merge is not UTF-8".into()))
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(bad("tokenizer.ggml.merges is missing".into())),
            };
            let mut vocab = Map::new();
            let mut added = Vec::new();
            for (i, (t, ty)) in tokens.iter().zip(&types).enumerate() {
                match *ty {
                    token_type::CONTROL | token_type::USER_DEFINED => {
                        // also in the model's vocabulary: `tokenizers` gives an added token that
                        // the model lacks the next free id, whatever its JSON id says
                        vocab.insert(t.clone(), json!(i));
                        added.push(json!({
                            "id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                            "normalized": false, "special": *ty == token_type::CONTROL,
                        }))
                    }
                    token_type::UNUSED => {}
                    _ => {
                        vocab.insert(t.clone(), json!(i));
                    }
                }
            }
            let add_bos = flag("tokenizer.ggml.add_bos_token").unwrap_or(spec.add_bos);
            let byte_level_post = json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true});
            let post = match id("tokenizer.ggml.bos_token_id").filter(|_| add_bos) {
                Some(b) => {
                    let bt = &tokens[b as usize];
                    config.insert("bos_token".into(), json!(bt));
                    json!({"type": "Sequence", "processors": [byte_level_post, {
                        "type": "TemplateProcessing",
                        "single": [{"SpecialToken": {"id": bt, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                        "pair": [{"SpecialToken": {"id": bt, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                 {"SpecialToken": {"id": bt, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                        "special_tokens": {bt.clone(): {"id": bt, "ids": [b], "tokens": [bt]}},
                    }]})
                }
                None => byte_level_post,
            };
            let steps: Vec<Value> = spec.steps.iter().map(step_json).collect();
            let pre_tokenizer = if steps.len() == 1 {
                steps[0].clone()
            } else {
                json!({"type": "Sequence", "pretokenizers": steps})
            };
            config.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
            let tj = json!({
                "version": "1.0",
                "truncation": null,
                "padding": null,
                "added_tokens": added,
                "normalizer": if spec.nfc { json!({"type": "NFC"}) } else { Value::Null },
                "pre_tokenizer": pre_tokenizer,
                "post_processor": post,
                "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
                "model": {
                    "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                    "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                    "ignore_merges": spec.ignore_merges, "vocab": vocab, "merges": merges,
                },
            });
            Ok(HfTokenizerFiles {
                tokenizer_json: Some(tj),
                tokenizer_model: None,
                tokenizer_config: Value::Object(config),
            })
        }
        "llama" => {
            let scores: Vec<f32> = match get(kvs, "tokenizer.ggml.scores") {
                Some(GgufValue::Array(GgufArray::F32(s))) if s.len() == n => s.clone(),
                None => vec![0.0; n],
                _ => {
                    return Err(bad(
                        "tokenizer.ggml.scores is not an f32 array of the token count".into(),
                    ))
                }
            };
            let add_prefix = flag("tokenizer.ggml.add_space_prefix").unwrap_or(true);
            config.insert("tokenizer_class".into(), json!("LlamaTokenizer"));
            config.insert("legacy".into(), json!(true));
            Ok(HfTokenizerFiles {
                tokenizer_json: None,
                tokenizer_model: Some(sentencepiece_proto(&tokens, &scores, &types, add_prefix)),
                tokenizer_config: Value::Object(config),
            })
        }
        other => Err(bad(format!(
            "rebuilding a {other:?} tokenizer is not supported (gpt2 and llama are)"
        ))),
    }
}

fn step_json(s: &Step) -> Value {
    match *s {
        Step::Split(r) => {
            json!({"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": false})
        }
        Step::Digits(ind) => json!({"type": "Digits", "individual_digits": ind}),
        Step::ByteLevel(use_regex) => {
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
        }
    }
}

/// `tokenizer.chat_template` (+ named templates) as `tokenizer_config.json`'s field.
fn chat_template(kvs: &[(String, GgufValue)]) -> Option<Value> {
    let default = get(kvs, "tokenizer.chat_template").and_then(GgufValue::as_str);
    let names: Vec<String> = match get(kvs, "tokenizer.chat_templates") {
        Some(GgufValue::Array(GgufArray::String(v))) => v
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        return default.map(|d| json!(d));
    }
    let mut list = Vec::new();
    if let Some(d) = default {
        list.push(json!({"name": "default", "template": d}));
    }
    for n in names {
        if let Some(t) =
            get(kvs, &format!("tokenizer.chat_template.{n}")).and_then(GgufValue::as_str)
        {
            list.push(json!({"name": n, "template": t}));
        }
    }
    Some(Value::Array(list))
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn field_bytes(field: u64, payload: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// A SentencePiece `ModelProto` (BPE model type) with the given pieces.
fn sentencepiece_proto(
    tokens: &[String],
    scores: &[f32],
    types: &[i32],
    add_dummy_prefix: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut unk_id: Option<u64> = None;
    for (i, ((t, s), ty)) in tokens.iter().zip(scores).zip(types).enumerate() {
        let mut ty = *ty;
        if ty == token_type::UNKNOWN {
            // SentencePiece allows one unknown piece; old converters typed padding UNKNOWN too
            if unk_id.is_some() {
                ty = token_type::UNUSED;
            } else {
                unk_id = Some(i as u64);
            }
        }
        let mut p = Vec::new();
        field_bytes(1, t.as_bytes(), &mut p);
        varint(2 << 3 | 5, &mut p);
        p.extend_from_slice(&s.to_le_bytes());
        let kind = if (1..=6).contains(&ty) { ty as u64 } else { 1 };
        varint(3 << 3, &mut p);
        varint(kind, &mut p);
        field_bytes(1, &p, &mut out);
    }
    let byte_fallback = types.contains(&token_type::BYTE);
    let mut ts = Vec::new();
    varint(3 << 3, &mut ts); // model_type = BPE
    varint(2, &mut ts);
    varint(4 << 3, &mut ts); // vocab_size
    varint(tokens.len() as u64, &mut ts);
    varint(35 << 3, &mut ts); // byte_fallback
    varint(byte_fallback as u64, &mut ts);
    varint(40 << 3, &mut ts); // unk_id
    varint(unk_id.unwrap_or(0), &mut ts);
    field_bytes(2, &ts, &mut out);
    let mut ns = Vec::new();
    field_bytes(1, b"identity", &mut ns);
    varint(3 << 3, &mut ns);
    varint(add_dummy_prefix as u64, &mut ns);
    varint(4 << 3, &mut ns); // remove_extra_whitespaces
    varint(0, &mut ns);
    field_bytes(3, &ns, &mut out);
    out
}
