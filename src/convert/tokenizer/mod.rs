//! Tokenizer files of a Hugging Face checkpoint -> GGUF `tokenizer.*` metadata, as the pinned
//! `convert_hf_to_gguf.py` and gguf-py's `SpecialVocab` write them (keys, value types, values
//! and order), plus the reverse direction ([`hf_files_from_gguf`]) that rebuilds a
//! `tokenizer.json` from a GGUF vocabulary.
//!
//! [`tokenizer_metadata`] is the entry point: the [`VocabKind`] names the converter's
//! `set_vocab` function for the architecture. Byte-level BPE vocabularies go through the
//! Hugging Face `tokenizers` crate (as the converter goes through `transformers`), which
//! tokenizes the converter's probe text for the `tokenizer.ggml.pre` hash. A hash the pinned
//! table does not know is not refused outright: [`pre_detect`] maps the `pre_tokenizer` that
//! `tokenizer.json` declares onto a llama.cpp pre-tokenizer and then checks, by tokenizing
//! probe texts with both the HF tokenizer and qforge's llama.cpp tokenizer built from the
//! produced metadata, that they agree.

mod bpe;
mod error;
mod hf;
mod kv;
mod llama_hf;
pub mod pre_detect;
mod pre_hashes;
mod pre_table;
mod rebuild;
pub mod sp_model;
mod special;
mod spm;

use std::path::Path;

use qforge_formats::gguf::GgufValue;
use serde_json::Value;

pub use error::TokenizerConvertError;
pub use pre_hashes::{CHKTXT, PRE_HASHES};
pub use rebuild::{hf_files_from_gguf, HfTokenizerFiles};

use kv::Kvs;
use special::SpecialVocab;

/// llama.cpp token types (`gguf.TokenType` / `SentencePieceTokenTypes`), as written in
/// `tokenizer.ggml.token_type` (INT32).
pub mod token_type {
    /// A regular token.
    pub const NORMAL: i32 = 1;
    /// The unknown token.
    pub const UNKNOWN: i32 = 2;
    /// A control (special) token.
    pub const CONTROL: i32 = 3;
    /// A user-defined (added, not special) token.
    pub const USER_DEFINED: i32 = 4;
    /// An unused slot (`[PAD{i}]` padding).
    pub const UNUSED: i32 = 5;
    /// A byte token `<0xXX>`.
    pub const BYTE: i32 = 6;
}

/// Which of the converter's vocabulary builders an architecture uses; each variant is named
/// after the `set_vocab` method it reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabKind {
    /// `TextModel._set_vocab_sentencepiece`: `tokenizer.model` (+ `added_tokens.json`,
    /// `tokenizer_config.json`'s `added_tokens_decoder`), padded to `vocab_size`.
    SentencePiece,
    /// `TextModel._set_vocab_gpt2`: byte-level BPE from `tokenizer.json` (the default
    /// `TextModel.set_vocab`, used by e.g. Qwen2-MoE and Qwen3-MoE).
    Gpt2Bpe,
    /// `TextModel._set_vocab_llama_hf` (gguf-py's `LlamaHfVocab`): a SentencePiece-style BPE
    /// with byte fallback given only as `tokenizer.json`.
    LlamaHf,
    /// `LlamaModel.set_vocab` (Llama, Mistral, Mixtral): `add_prefix_space` from
    /// `tokenizer_config.json`, then SentencePiece, else `LlamaHf`, else GPT-2 BPE (Llama 3);
    /// CodeLlama's EOT id (vocab size 32016) and no BOS for vocab size 49152.
    Llama,
    /// `Qwen2Model.set_vocab` (Qwen2, Qwen3): SentencePiece if `tokenizer.model` exists,
    /// else GPT-2 BPE.
    Qwen2,
    /// `Gemma2Model.set_vocab`: SentencePiece, then `add_space_prefix = false`.
    Gemma2,
    /// `Gemma3Model.set_vocab`: SentencePiece and `add_space_prefix = false` if
    /// `tokenizer.model` exists, else GPT-2 BPE.
    Gemma3,
    /// `Phi3MiniModel.set_vocab`: GPT-2 BPE if `tokenizer_class` is `GPT2Tokenizer`, else its
    /// own SentencePiece variant.
    Phi3,
}

/// The `tokenizer.*` metadata for the checkpoint in `dir`, in the order the converter writes
/// it. `config` is the model's hyper-parameters (`config.json`, as the converter's
/// `self.hparams`); `vocab_size` and friends are read from it, while `SpecialVocab` reads
/// `config.json` from `dir` itself, as gguf-py does.
pub fn tokenizer_metadata(
    dir: &Path,
    vocab: VocabKind,
    config: &Value,
) -> Result<Vec<(String, GgufValue)>, TokenizerConvertError> {
    let mut kv = Kvs::default();
    let has_model = dir.join("tokenizer.model").is_file();
    match vocab {
        VocabKind::SentencePiece => spm::set_vocab_sentencepiece(&mut kv, dir, config)?,
        VocabKind::Gpt2Bpe => bpe::set_vocab_gpt2(&mut kv, dir, config)?,
        VocabKind::LlamaHf => llama_hf::set_vocab_llama_hf(&mut kv, dir)?,
        VocabKind::Llama => set_vocab_llama(&mut kv, dir, config)?,
        VocabKind::Qwen2 => {
            if has_model {
                spm::set_vocab_sentencepiece(&mut kv, dir, config)?
            } else {
                bpe::set_vocab_gpt2(&mut kv, dir, config)?
            }
        }
        VocabKind::Gemma2 => {
            spm::set_vocab_sentencepiece(&mut kv, dir, config)?;
            kv.set_bool("tokenizer.ggml.add_space_prefix", false);
        }
        VocabKind::Gemma3 => {
            if has_model {
                spm::set_vocab_sentencepiece(&mut kv, dir, config)?;
                kv.set_bool("tokenizer.ggml.add_space_prefix", false);
            } else {
                bpe::set_vocab_gpt2(&mut kv, dir, config)?
            }
        }
        VocabKind::Phi3 => {
            let tc = dir.join("tokenizer_config.json");
            let gpt2 = tc.is_file()
                && read_json(&tc)?
                    .get("tokenizer_class")
                    .and_then(Value::as_str)
                    == Some("GPT2Tokenizer");
            if gpt2 {
                bpe::set_vocab_gpt2(&mut kv, dir, config)?
            } else {
                spm::set_vocab_phi3_sentencepiece(&mut kv, dir, config)?
            }
        }
    }
    Ok(kv.into_vec())
}

/// `LlamaModel.set_vocab` (without the EAGLE-3 and GLM-ASR branches).
fn set_vocab_llama(kv: &mut Kvs, dir: &Path, config: &Value) -> Result<(), TokenizerConvertError> {
    if dir.join("tekken.json").is_file() && !dir.join("tokenizer.json").is_file() {
        return Err(TokenizerConvertError::Unsupported {
            path: dir.join("tekken.json"),
            reason: "Mistral-format (tekken.json) vocabularies are not converted".into(),
        });
    }
    let tc = dir.join("tokenizer_config.json");
    if tc.is_file() {
        let cfg = read_json(&tc)?;
        if let Some(v) = cfg.get("add_prefix_space").filter(|v| !v.is_null()) {
            let b = v.as_bool().ok_or_else(|| TokenizerConvertError::Invalid {
                path: tc.clone(),
                reason: "add_prefix_space is not a boolean".into(),
            })?;
            kv.set_bool("tokenizer.ggml.add_space_prefix", b);
        }
        if cfg.get("tokenizer_class").and_then(Value::as_str) == Some("HybridDNATokenizer") {
            return Err(TokenizerConvertError::Unsupported {
                path: tc,
                reason: "HybridDNATokenizer vocabularies are not converted".into(),
            });
        }
    }
    if dir.join("tokenizer.model").is_file() {
        spm::set_vocab_sentencepiece(kv, dir, config)?;
    } else if llama_hf::is_llama_hf(dir)? {
        llama_hf::set_vocab_llama_hf(kv, dir)?;
    } else {
        bpe::set_vocab_gpt2(kv, dir, config)?;
    }
    let vocab_size = match config.get("vocab_size") {
        None => Some(32000),
        Some(v) => v.as_u64(),
    };
    if vocab_size == Some(32016) {
        // CodeLlama: prefix/suffix/middle have no GGUF handler in the pinned gguf-py, so only
        // the EOT id is written
        let mut sv = SpecialVocab::load(
            dir,
            false,
            Some(&["prefix", "suffix", "middle", "eot"]),
            None,
        )?;
        sv.set_special_id("prefix", 32007);
        sv.set_special_id("suffix", 32008);
        sv.set_special_id("middle", 32009);
        sv.set_special_id("eot", 32010);
        sv.add_to_gguf(kv, dir)?;
    }
    if vocab_size == Some(49152) {
        kv.set_bool("tokenizer.ggml.add_bos_token", false);
    }
    Ok(())
}

/// The converter's `does_token_look_special`.
pub(crate) fn does_token_look_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<\u{ff5c}") && t.ends_with("\u{ff5c}>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// `find_hparam(keys, optional=True)` for a non-negative integer.
pub(crate) fn hparam_usize(config: &Value, keys: &[&str]) -> Option<usize> {
    keys.iter()
        .find_map(|k| config.get(*k))
        .and_then(Value::as_u64)
        .map(|v| v as usize)
}

pub(crate) fn read_text(path: &Path) -> Result<String, TokenizerConvertError> {
    std::fs::read_to_string(path).map_err(|source| TokenizerConvertError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn read_json(path: &Path) -> Result<Value, TokenizerConvertError> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|source| TokenizerConvertError::Json {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_special_matches_the_converter_rules() {
        for t in [
            "<pad>",
            "<|im_start|>",
            "<\u{ff5c}begin\u{2581}of\u{2581}sentence\u{ff5c}>",
            "<unused12>",
            "[@BOS@]",
        ] {
            assert!(does_token_look_special(t), "{t}");
        }
        for t in ["<s>", "pad", "<|x", "unused>", "<mask2>"] {
            assert!(!does_token_look_special(t), "{t}");
        }
    }
}
