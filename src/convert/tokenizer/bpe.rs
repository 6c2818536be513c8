//! Byte-level BPE: the converter's `get_vocab_base`, `get_vocab_base_pre` and
//! `_set_vocab_gpt2`.

use std::collections::HashMap;
use std::path::Path;

use qforge_formats::gguf::GgufArray;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::hf::{self, HfTokenizer};
use super::kv::Kvs;
use super::special::SpecialVocab;
use super::{
    does_token_look_special, pre_detect, token_type, TokenizerConvertError, CHKTXT, PRE_HASHES,
};

/// `sha256(str(ids).encode()).hexdigest()`: Python's list repr is `[1, 2, 3]`.
pub fn chktxt_hash(ids: &[u32]) -> String {
    let mut s = String::with_capacity(ids.len() * 7 + 2);
    s.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&id.to_string());
    }
    s.push(']');
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The converter's name for `hash`; the last matching entry wins, as its `if` chain does.
pub fn pre_name_for_hash(hash: &str) -> Option<&'static str> {
    PRE_HASHES
        .iter()
        .rev()
        .find(|(h, _)| *h == hash)
        .map(|(_, n)| *n)
}

/// `transformers`' `clean_up_tokenization`.
fn clean_up_tokenization(s: &str) -> String {
    s.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

/// What `get_vocab_base` returns.
pub(crate) struct BaseVocab {
    pub tokens: Vec<String>,
    pub types: Vec<i32>,
    /// The pre-tokenizer name, or `None` when the hash is unknown (resolved by the caller,
    /// which needs the finished metadata to verify a detected pre-tokenizer).
    pub pre: Option<&'static str>,
    pub hash: String,
}

/// `get_vocab_base` (tokens and types) and the hash half of `get_vocab_base_pre`.
pub(crate) fn get_vocab_base(
    hf: &HfTokenizer,
    config: &Value,
) -> Result<BaseVocab, TokenizerConvertError> {
    let vocab = hf.tok.get_vocab(true);
    let vocab_size = match config.get("vocab_size") {
        Some(v) => {
            v.as_u64()
                .map(|x| x as usize)
                .ok_or_else(|| TokenizerConvertError::Invalid {
                    path: hf.path.with_file_name("config.json"),
                    reason: "vocab_size is not a non-negative integer".into(),
                })?
        }
        None => vocab.len(),
    };
    let max_id = vocab.values().copied().max().unwrap_or(0) as usize;
    if !vocab.is_empty() && max_id >= vocab_size {
        return Err(TokenizerConvertError::Invalid {
            path: hf.path.clone(),
            reason: format!("token id {max_id} is not below the model's vocab_size {vocab_size}"),
        });
    }
    let ids = hf.encode(CHKTXT, true)?;
    let hash = chktxt_hash(&ids);
    let pre = pre_name_for_hash(&hash);

    let mut reverse: HashMap<u32, &str> = HashMap::with_capacity(vocab.len());
    // when two strings share an id, prefer the added token's text (deterministic choice;
    // Python's dict order decides in the converter)
    for (t, id) in &vocab {
        reverse.entry(*id).or_insert(t.as_str());
    }
    let decoder = hf.tok.get_added_tokens_decoder();
    for (id, at) in &decoder {
        if vocab.get(&at.content) == Some(id) {
            reverse.insert(*id, at.content.as_str());
        }
    }
    let added_vocab: HashMap<&str, u32> = decoder
        .iter()
        .map(|(id, t)| (t.content.as_str(), *id))
        .collect();
    let clean_up = hf
        .config
        .get("clean_up_tokenization_spaces")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let mut tokens = Vec::with_capacity(vocab_size);
    let mut types = Vec::with_capacity(vocab_size);
    for i in 0..vocab_size as u32 {
        let Some(&text) = reverse.get(&i) else {
            tokens.push(format!("[PAD{i}]"));
            types.push(token_type::UNUSED);
            continue;
        };
        let mut token = text.to_string();
        if added_vocab.contains_key(text) {
            let at = decoder
                .get(&i)
                .ok_or_else(|| TokenizerConvertError::Invalid {
                    path: hf.path.clone(),
                    reason: format!("added token {text:?} is listed under another id than {i}"),
                })?;
            if !at.normalized {
                let ids = hf.encode(&token, false)?;
                let mut back = hf.tok.decode(&ids, false).map_err(|e| hf.err(e))?;
                if clean_up {
                    back = clean_up_tokenization(&back);
                }
                token = back;
            }
            if at.special || does_token_look_special(&token) {
                types.push(token_type::CONTROL);
            } else {
                token = token.replace('\u{2581}', " ");
                types.push(token_type::USER_DEFINED);
            }
        } else {
            types.push(token_type::NORMAL);
        }
        tokens.push(token);
    }
    Ok(BaseVocab {
        tokens,
        types,
        pre,
        hash,
    })
}

/// `_set_vocab_gpt2`, with an unknown pre-tokenizer hash resolved by [`pre_detect`].
pub(crate) fn set_vocab_gpt2(
    kv: &mut Kvs,
    dir: &Path,
    config: &Value,
) -> Result<(), TokenizerConvertError> {
    let hf = hf::load(dir)?;
    let base = get_vocab_base(&hf, config)?;
    let start = kv.clone();
    let write = |kv: &mut Kvs, pre: &str, base: &BaseVocab| -> Result<(), TokenizerConvertError> {
        kv.set_str("tokenizer.ggml.model", "gpt2");
        kv.set_str("tokenizer.ggml.pre", pre);
        kv.set_array(
            "tokenizer.ggml.tokens",
            GgufArray::String(base.tokens.iter().map(|t| t.as_bytes().to_vec()).collect()),
        );
        kv.set_array(
            "tokenizer.ggml.token_type",
            GgufArray::I32(base.types.clone()),
        );
        SpecialVocab::load(dir, true, None, None)?.add_to_gguf(kv, dir)
    };
    match base.pre {
        Some(name) => write(kv, name, &base),
        None => {
            let candidates = pre_detect::candidates(&hf.json).map_err(|detail| {
                TokenizerConvertError::UnknownPreTokenizer {
                    path: hf.path.clone(),
                    hash: base.hash.clone(),
                    detail,
                }
            })?;
            let mut why = Vec::new();
            for name in candidates {
                let mut trial = start.clone();
                write(&mut trial, name, &base)?;
                let kvs = trial.clone().into_vec();
                match pre_detect::verify(&hf, &kvs) {
                    Ok(()) => {
                        *kv = trial;
                        return Ok(());
                    }
                    Err(e) => why.push(format!("{name}: {e}")),
                }
            }
            Err(TokenizerConvertError::UnknownPreTokenizer {
                path: hf.path.clone(),
                hash: base.hash,
                detail: format!(
                    "the llama.cpp pre-tokenizers matching its pre_tokenizer do not tokenize like it: {}",
                    why.join("; ")
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_uses_python_list_repr() {
        // sha256(b"[1, 2, 3]") and sha256(b"[]"), computed with Python's hashlib
        assert_eq!(
            chktxt_hash(&[1, 2, 3]),
            "a36b1f2c3f84522dd1005145646617d7054c0851e97c72a039c0bdfac9fa07f3"
        );
        assert_eq!(
            chktxt_hash(&[]),
            "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
        );
    }
}
