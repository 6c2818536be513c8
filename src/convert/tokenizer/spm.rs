//! SentencePiece vocabularies: the converter's `_create_vocab_sentencepiece` /
//! `_set_vocab_sentencepiece`, and `Phi3MiniModel.set_vocab`'s variant of it.

use std::path::Path;

use qforge_formats::gguf::GgufArray;
use serde_json::Value;

use super::kv::Kvs;
use super::sp_model::{PieceType, SentencePieceModel};
use super::special::{truthy, SpecialVocab};
use super::{does_token_look_special, hparam_usize, read_json, token_type, TokenizerConvertError};

/// Tokens, scores and types of a SentencePiece vocabulary, id-indexed.
pub(crate) struct SpmVocab {
    pub tokens: Vec<Vec<u8>>,
    pub scores: Vec<f32>,
    pub types: Vec<i32>,
}

fn base_type(kind: PieceType) -> i32 {
    // IsUnknown, IsControl, IsUnused, IsByte in that order; user-defined pieces stay NORMAL
    match kind {
        PieceType::Unknown => token_type::UNKNOWN,
        PieceType::Control => token_type::CONTROL,
        PieceType::Unused => token_type::UNUSED,
        PieceType::Byte => token_type::BYTE,
        PieceType::Normal | PieceType::UserDefined => token_type::NORMAL,
    }
}

fn load_model(dir: &Path) -> Result<SentencePieceModel, TokenizerConvertError> {
    let path = dir.join("tokenizer.model");
    if !path.is_file() {
        return Err(TokenizerConvertError::Missing {
            path,
            what: "SentencePiece",
        });
    }
    SentencePieceModel::load(&path)
}

fn out_of_range(path: &Path, id: i128, max: usize) -> TokenizerConvertError {
    TokenizerConvertError::Invalid {
        path: path.to_path_buf(),
        reason: format!("token id {id} is out of range, max={}", max as i128 - 1),
    }
}

/// `added_tokens.json`: `{content: id}`.
fn added_tokens_json(dir: &Path) -> Result<Vec<(String, i128)>, TokenizerConvertError> {
    let path = dir.join("added_tokens.json");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let Value::Object(map) = read_json(&path)? else {
        return Err(TokenizerConvertError::Invalid {
            path,
            reason: "not a JSON object".into(),
        });
    };
    map.into_iter()
        .map(|(k, v)| match v.as_i64() {
            Some(id) => Ok((k, id as i128)),
            None => Err(TokenizerConvertError::Invalid {
                path: path.clone(),
                reason: format!("id of {k:?} is not an integer"),
            }),
        })
        .collect()
}

/// `tokenizer_config.json`'s `added_tokens_decoder`: `(id, content, special)`.
fn added_tokens_decoder(dir: &Path) -> Result<Vec<(i128, String, bool)>, TokenizerConvertError> {
    let path = dir.join("tokenizer_config.json");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let cfg = read_json(&path)?;
    let Some(Value::Object(dec)) = cfg.get("added_tokens_decoder") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(dec.len());
    for (k, data) in dec {
        let id: i128 = k
            .trim()
            .parse()
            .map_err(|_| TokenizerConvertError::Invalid {
                path: path.clone(),
                reason: format!("added_tokens_decoder key {k:?} is not an integer"),
            })?;
        let Some(content) = data.get("content").and_then(Value::as_str) else {
            return Err(TokenizerConvertError::Invalid {
                path: path.clone(),
                reason: format!("added_tokens_decoder[{k}] has no string content"),
            });
        };
        out.push((id, content.to_string(), truthy(data.get("special"))));
    }
    Ok(out)
}

/// `_create_vocab_sentencepiece`.
pub(crate) fn create_vocab_sentencepiece(
    dir: &Path,
    config: &Value,
) -> Result<SpmVocab, TokenizerConvertError> {
    let model = load_model(dir)?;
    let n_pieces = model.pieces.len();
    // find_hparam(["vocab_size_per_layer_input", "vocab_size"]) or tokenizer.vocab_size()
    let vocab_size = hparam_usize(config, &["vocab_size_per_layer_input", "vocab_size"])
        .filter(|&v| v != 0)
        .unwrap_or(n_pieces);
    let mut v = SpmVocab {
        tokens: (0..vocab_size)
            .map(|i| format!("[PAD{i}]").into_bytes())
            .collect(),
        scores: vec![-10000.0; vocab_size],
        types: vec![token_type::UNUSED; vocab_size],
    };
    for (id, p) in model.pieces.iter().enumerate() {
        if id >= vocab_size {
            break; // "ignore tokens from {id}: id is out of range"
        }
        v.tokens[id] = p.piece.clone();
        v.scores[id] = p.score;
        v.types[id] = base_type(p.kind);
    }
    for (content, id) in added_tokens_json(dir)? {
        if id < 0 {
            return Err(out_of_range(&dir.join("added_tokens.json"), id, vocab_size));
        }
        if id >= vocab_size as i128 {
            continue;
        }
        let id = id as usize;
        v.tokens[id] = content.into_bytes();
        v.scores[id] = -1000.0;
        v.types[id] = token_type::USER_DEFINED;
    }
    for (id, content, special) in added_tokens_decoder(dir)? {
        if id < 0 {
            return Err(out_of_range(
                &dir.join("tokenizer_config.json"),
                id,
                vocab_size,
            ));
        }
        if id >= vocab_size as i128 {
            continue;
        }
        let id = id as usize;
        let mut token = content;
        if special || does_token_look_special(&token) {
            v.types[id] = token_type::CONTROL;
        } else {
            token = token.replace('\u{2581}', " ");
            v.types[id] = token_type::USER_DEFINED;
        }
        v.scores[id] = -1000.0;
        v.tokens[id] = token.into_bytes();
    }
    Ok(v)
}

fn write_spm(kv: &mut Kvs, v: SpmVocab) -> usize {
    let n = v.tokens.len();
    kv.set_str("tokenizer.ggml.model", "llama");
    kv.set_str("tokenizer.ggml.pre", "default");
    kv.set_array("tokenizer.ggml.tokens", GgufArray::String(v.tokens));
    kv.set_array("tokenizer.ggml.scores", GgufArray::F32(v.scores));
    kv.set_array("tokenizer.ggml.token_type", GgufArray::I32(v.types));
    n
}

/// `_set_vocab_sentencepiece`.
pub(crate) fn set_vocab_sentencepiece(
    kv: &mut Kvs,
    dir: &Path,
    config: &Value,
) -> Result<(), TokenizerConvertError> {
    let v = create_vocab_sentencepiece(dir, config)?;
    let n = write_spm(kv, v);
    SpecialVocab::load(dir, false, None, Some(n))?.add_to_gguf(kv, dir)
}

/// `Phi3MiniModel.set_vocab`'s SentencePiece branch: no range checks on the model's pieces,
/// `added_tokens_decoder` and then `tokenizer.json`'s `added_tokens` overwrite entries as
/// USER_DEFINED (CONTROL when `special`), with no look-special test or `▁` replacement.
pub(crate) fn set_vocab_phi3_sentencepiece(
    kv: &mut Kvs,
    dir: &Path,
    config: &Value,
) -> Result<(), TokenizerConvertError> {
    let model = load_model(dir)?;
    let vocab_size = match config.get("vocab_size") {
        Some(v) => {
            v.as_u64()
                .map(|x| x as usize)
                .ok_or_else(|| TokenizerConvertError::Invalid {
                    path: dir.join("config.json"),
                    reason: "vocab_size is not a non-negative integer".into(),
                })?
        }
        None => model.pieces.len(),
    };
    let mut v = SpmVocab {
        tokens: (0..vocab_size)
            .map(|i| format!("[PAD{i}]").into_bytes())
            .collect(),
        scores: vec![-10000.0; vocab_size],
        types: vec![token_type::UNUSED; vocab_size],
    };
    let model_path = dir.join("tokenizer.model");
    for (id, p) in model.pieces.iter().enumerate() {
        if id >= vocab_size {
            // the converter fails with an IndexError here
            return Err(out_of_range(&model_path, id as i128, vocab_size));
        }
        v.tokens[id] = p.piece.clone();
        v.scores[id] = p.score;
        v.types[id] = base_type(p.kind);
    }
    let mut set = |path: &Path, id: i128, content: &str, special: bool| {
        if id < 0 || id >= vocab_size as i128 {
            return Err(out_of_range(path, id, vocab_size));
        }
        let id = id as usize;
        v.tokens[id] = content.as_bytes().to_vec();
        v.scores[id] = -1000.0;
        v.types[id] = if special {
            token_type::CONTROL
        } else {
            token_type::USER_DEFINED
        };
        Ok(())
    };
    for (content, id) in added_tokens_json(dir)? {
        if id >= vocab_size as i128 {
            continue;
        }
        set(&dir.join("added_tokens.json"), id, &content, false)?;
    }
    for (id, content, special) in added_tokens_decoder(dir)? {
        set(&dir.join("tokenizer_config.json"), id, &content, special)?;
    }
    let tj = dir.join("tokenizer.json");
    if tj.is_file() {
        let t = read_json(&tj)?;
        if let Some(Value::Array(list)) = t.get("added_tokens") {
            for item in list {
                let (Some(id), Some(content)) = (
                    item.get("id").and_then(Value::as_i64),
                    item.get("content").and_then(Value::as_str),
                ) else {
                    return Err(TokenizerConvertError::Invalid {
                        path: tj.clone(),
                        reason: "added_tokens entry without integer id and string content".into(),
                    });
                };
                set(&tj, id as i128, content, truthy(item.get("special")))?;
            }
        }
    }
    let n = write_spm(kv, v);
    SpecialVocab::load(dir, false, None, Some(n))?.add_to_gguf(kv, dir)
}
