//! Loading `tokenizer.json` with the Hugging Face `tokenizers` crate the way
//! `transformers.AutoTokenizer` (4.57) sets it up for the converter.
//!
//! Two adjustments transformers makes at load time change token ids and so the
//! `tokenizer.ggml.pre` hash; both are applied to the JSON before loading:
//! - `PreTrainedTokenizerFast.__init__` sets a top-level pre-tokenizer's `add_prefix_space` to
//!   `tokenizer_config.json`'s `add_prefix_space` (default false) when they differ;
//! - the Llama, CodeLlama and Gemma fast tokenizers rebuild the post-processor from
//!   `add_bos_token` (default true) and `add_eos_token` (default false)
//!   (`update_post_processor`).
//!
//! Not reproduced: tokens that only `tokenizer_config.json` adds, and other model-specific
//! tokenizer classes; the BPE path verifies its result by tokenization where it can.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::{json, Map, Value};

use super::{read_json, TokenizerConvertError};

/// A loaded HF tokenizer with the files it came from.
pub(crate) struct HfTokenizer {
    pub tok: tokenizers::Tokenizer,
    /// `tokenizer.json` as read (before the adjustments).
    pub json: Value,
    /// `tokenizer_config.json`, or an empty object.
    pub config: Map<String, Value>,
    pub path: PathBuf,
}

impl HfTokenizer {
    pub(crate) fn err(&self, e: impl std::fmt::Display) -> TokenizerConvertError {
        hf_err(&self.path, e)
    }

    /// `tokenizer.encode(text)` (with special tokens, as `get_vocab_base_pre` calls it) or
    /// without.
    pub(crate) fn encode(
        &self,
        text: &str,
        add_special: bool,
    ) -> Result<Vec<u32>, TokenizerConvertError> {
        self.tok
            .encode(text, add_special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| self.err(e))
    }
}

/// `tokenizer_config.json`'s `{key}` as a string (plain, or an `AddedToken` dict).
fn token_content(config: &Map<String, Value>, key: &str) -> Option<String> {
    match config.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

fn hf_err(path: &Path, e: impl std::fmt::Display) -> TokenizerConvertError {
    TokenizerConvertError::HfTokenizer {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn is_llama_like(class: &str) -> bool {
    matches!(
        class,
        "LlamaTokenizer"
            | "LlamaTokenizerFast"
            | "CodeLlamaTokenizer"
            | "CodeLlamaTokenizerFast"
            | "GemmaTokenizer"
            | "GemmaTokenizerFast"
    )
}

/// Loads `dir/tokenizer.json` as `AutoTokenizer.from_pretrained(dir)` would use it.
pub(crate) fn load(dir: &Path) -> Result<HfTokenizer, TokenizerConvertError> {
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Err(TokenizerConvertError::Missing {
            path,
            what: "Hugging Face BPE",
        });
    }
    let json = read_json(&path)?;
    let tc_path = dir.join("tokenizer_config.json");
    let config = if tc_path.is_file() {
        match read_json(&tc_path)? {
            Value::Object(o) => o,
            _ => {
                return Err(TokenizerConvertError::Invalid {
                    path: tc_path,
                    reason: "not a JSON object".into(),
                })
            }
        }
    } else {
        Map::new()
    };
    let mut adjusted = json.clone();
    let add_prefix_space = config
        .get("add_prefix_space")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(Value::Object(pre)) = adjusted.get_mut("pre_tokenizer") {
        if let Some(v) = pre.get("add_prefix_space") {
            if v.as_bool() != Some(add_prefix_space) {
                pre.insert("add_prefix_space".into(), Value::Bool(add_prefix_space));
            }
        }
    }
    let class = config
        .get("tokenizer_class")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut tok =
        tokenizers::Tokenizer::from_str(&adjusted.to_string()).map_err(|e| hf_err(&path, e))?;
    if is_llama_like(class) {
        let add_bos = config
            .get("add_bos_token")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let add_eos = config
            .get("add_eos_token")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut single = Vec::new();
        let mut specials = Map::new();
        let mut push = |content: Option<String>, what: &str, single: &mut Vec<Value>| {
            let content = content.ok_or_else(|| TokenizerConvertError::Invalid {
                path: path.clone(),
                reason: format!("add_{what}_token = True but {what}_token = None"),
            })?;
            let id = tok
                .token_to_id(&content)
                .ok_or_else(|| TokenizerConvertError::Invalid {
                    path: path.clone(),
                    reason: format!("{what}_token {content:?} is not in the vocabulary"),
                })?;
            single.push(json!({"SpecialToken": {"id": content, "type_id": 0}}));
            specials.insert(
                content.clone(),
                json!({"id": content, "ids": [id], "tokens": [content]}),
            );
            Ok::<(), TokenizerConvertError>(())
        };
        if add_bos {
            push(token_content(&config, "bos_token"), "bos", &mut single)?;
        }
        single.push(json!({"Sequence": {"id": "A", "type_id": 0}}));
        if add_eos {
            push(token_content(&config, "eos_token"), "eos", &mut single)?;
        }
        let mut pair = single.clone();
        pair.extend(single.iter().map(|e| {
            let mut e = e.clone();
            if let Some(s) = e.get_mut("Sequence") {
                s["id"] = json!("B");
            }
            for k in ["Sequence", "SpecialToken"] {
                if let Some(s) = e.get_mut(k) {
                    s["type_id"] = json!(1);
                }
            }
            e
        }));
        let post = json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials});
        let mut full = adjusted;
        full["post_processor"] = post;
        tok = tokenizers::Tokenizer::from_str(&full.to_string()).map_err(|e| hf_err(&path, e))?;
    }
    Ok(HfTokenizer {
        tok,
        json,
        config,
        path,
    })
}
