//! Tokenizers that give the token ids llama.cpp gives: SentencePiece, byte-level BPE, WordPiece
//! and Unigram.
//!
//! [`Tokenizer::from_gguf`] reads llama.cpp's tokenizer metadata the way the pinned
//! `llama_vocab::impl::load` does (defaults per tokenizer and pre-tokenizer type, special and
//! end-of-generation tokens, per-model attribute fixes), and [`Tokenizer::encode`] reproduces
//! `llama_tokenize`: special-token partitioning, then SPM merges or BPE pre-tokenization and
//! merges per fragment, then BOS/EOS.
//!
//! Supported: `tokenizer.ggml.model` = `llama` (SPM), `bert` (WPM), `t5` (UGM), `gpt2` and
//! `gemma4` (BPE) with every pre-tokenizer the pinned llama.cpp lists (an unknown name is
//! [`TokenizerError::UnsupportedPre`], as llama.cpp refuses it too). RWKV, PLaMo-2 and the
//! `hybriddna`/`whitespace` models are refused with [`TokenizerError::UnsupportedModel`].

mod bpe;
mod error;
mod pre_patterns;
mod pretokenize;
mod special;
mod spm;
mod ugm;
mod unicode;
mod unicode_table;
mod vocab;
mod wpm;

pub use error::TokenizerError;
pub use pre_patterns::PreType;
pub use vocab::{attr, VocabType};

use qforge_formats::gguf::GgufHeader;
use special::Fragment;

/// A tokenizer built from a GGUF file's metadata.
#[derive(Debug)]
pub struct Tokenizer {
    vocab: vocab::Vocab,
    pre: Option<pretokenize::PreTokenizer>,
    ugm: Option<ugm::Ugm>,
}

impl Tokenizer {
    /// Builds the tokenizer from the metadata of `header`, validating it (a malformed or
    /// unsupported vocabulary is an error, never a panic).
    pub fn from_gguf(header: &GgufHeader) -> Result<Tokenizer, TokenizerError> {
        let vocab = vocab::Vocab::load(header)?;
        let pre = match vocab.vtype {
            VocabType::Bpe => Some(pretokenize::PreTokenizer::new(vocab.pre_type)?),
            _ => None,
        };
        let ugm = (vocab.vtype == VocabType::Ugm).then(|| ugm::Ugm::new(&vocab));
        Ok(Tokenizer { vocab, pre, ugm })
    }

    /// The token ids of `text`, as `llama_tokenize(vocab, text, add_special, parse_special)`:
    /// `add_special` adds BOS/EOS where the vocabulary asks for them, `parse_special` turns the
    /// text of control tokens into those tokens (user-defined tokens always are).
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        self.encode_bytes(text.as_bytes(), add_special, parse_special)
    }

    /// [`encode`](Self::encode) for raw bytes (invalid UTF-8 is handled as llama.cpp does).
    pub fn encode_bytes(&self, text: &[u8], add_special: bool, parse_special: bool) -> Vec<u32> {
        let v = &self.vocab;
        let fragments = if text.is_empty() {
            Vec::new()
        } else {
            special::partition(v, text, parse_special)
        };
        let mut out = Vec::new();
        let bos_wanted = add_special && v.add_bos;
        let eos_wanted = add_special && v.add_eos;
        match (v.vtype, &self.pre) {
            (VocabType::Bpe, Some(pre)) => {
                if bos_wanted {
                    out.extend(v.bos);
                }
                for f in &fragments {
                    match *f {
                        Fragment::Token(id) => out.push(id),
                        Fragment::Text(a, b) => {
                            let words = if v.escape_whitespaces {
                                pre.split(&escape_spaces(&text[a..b]))
                            } else {
                                pre.split(&text[a..b])
                            };
                            bpe::tokenize(v, &words, pre.byte_encode(), &mut out);
                        }
                    }
                }
                if eos_wanted {
                    out.extend(v.eos);
                }
            }
            (VocabType::Ugm, _) => {
                if bos_wanted {
                    out.extend(v.bos);
                }
                if let Some(u) = &self.ugm {
                    for f in &fragments {
                        match *f {
                            Fragment::Token(id) => out.push(id),
                            Fragment::Text(a, b) => u.tokenize(v, &text[a..b], &mut out),
                        }
                    }
                }
                if eos_wanted {
                    out.extend(v.eos);
                }
            }
            (VocabType::Wpm, _) => {
                // WPM adds BOS and SEP whenever special tokens are asked for
                if add_special {
                    out.extend(v.bos);
                }
                for f in &fragments {
                    match *f {
                        Fragment::Token(id) => out.push(id),
                        Fragment::Text(a, b) => wpm::tokenize(v, &text[a..b], &mut out),
                    }
                }
                if add_special {
                    out.extend(v.sep);
                }
            }
            _ => {
                if bos_wanted {
                    out.extend(v.bos);
                }
                let mut prev_special = true;
                let mut buf = Vec::new();
                for f in &fragments {
                    match *f {
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                        Fragment::Text(a, b) => {
                            buf.clear();
                            if v.add_space_prefix && prev_special {
                                buf.push(b' ');
                            }
                            buf.extend_from_slice(&text[a..b]);
                            spm::tokenize(v, &escape_spaces(&buf), &mut out);
                            prev_special = false;
                        }
                    }
                }
                if eos_wanted {
                    out.extend(v.eos);
                }
            }
        }
        out
    }

    /// The text of token `id` (`llama_token_to_piece` with no left-strip): control and unknown
    /// tokens give their text only when `special` is set; unknown ids give nothing.
    pub fn token_to_piece(&self, id: u32, special: bool) -> Vec<u8> {
        let v = &self.vocab;
        let Some(t) = v.tokens.get(id as usize) else {
            return Vec::new();
        };
        let a = t.attr;
        if !special && a & (attr::UNKNOWN | attr::CONTROL) != 0 {
            return Vec::new();
        }
        if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            return t.text.clone();
        }
        if a & attr::NORMAL != 0 {
            if v.vtype != VocabType::Bpe || v.escape_whitespaces {
                return unescape_spaces(&t.text);
            }
            return decode_byte_level(&t.text);
        }
        if a & attr::BYTE != 0 {
            return vec![hex_byte(&t.text)];
        }
        Vec::new()
    }

    /// The beginning-of-sequence token, if any.
    pub fn bos(&self) -> Option<u32> {
        self.vocab.bos
    }

    /// The end-of-sequence token, if any.
    pub fn eos(&self) -> Option<u32> {
        self.vocab.eos
    }

    /// The end-of-turn token, if any.
    pub fn eot(&self) -> Option<u32> {
        self.vocab.eot
    }

    /// Whether `encode(.., add_special = true, ..)` prepends BOS (WPM always adds BOS and SEP).
    pub fn add_bos(&self) -> bool {
        self.vocab.add_bos
    }

    /// Whether `encode(.., add_special = true, ..)` appends EOS.
    pub fn add_eos(&self) -> bool {
        self.vocab.add_eos
    }

    /// Whether generation stops at `id` (llama.cpp's end-of-generation set).
    pub fn is_eog(&self, id: u32) -> bool {
        self.vocab.eog.contains(&id)
    }

    /// The number of tokens in the vocabulary.
    pub fn n_vocab(&self) -> usize {
        self.vocab.tokens.len()
    }

    /// The tokenizer family.
    pub fn vocab_type(&self) -> VocabType {
        self.vocab.vtype
    }

    /// The pre-tokenizer type (`Default` for SPM).
    pub fn pre_type(&self) -> PreType {
        self.vocab.pre_type
    }

    /// The attribute bits ([`attr`]) of token `id`, if it exists.
    pub fn token_attr(&self, id: u32) -> Option<u32> {
        self.vocab.tokens.get(id as usize).map(|t| t.attr)
    }
}

/// Replaces every space with U+2581 (`llama_escape_whitespace`).
fn escape_spaces(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 4);
    for &b in text {
        if b == b' ' {
            out.extend_from_slice("\u{2581}".as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

/// Replaces every U+2581 with a space (`llama_unescape_whitespace`).
fn unescape_spaces(text: &[u8]) -> Vec<u8> {
    let pat = "\u{2581}".as_bytes();
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(pat) {
            out.push(b' ');
            i += pat.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

/// Maps a GPT-2 byte-level token text back to bytes (`llama_decode_text`).
fn decode_byte_level(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in unicode::cpts_from_utf8(text) {
        match unicode::cpt_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                let mut utf8 = Vec::new();
                unicode::push_utf8(c, &mut utf8);
                out.extend_from_slice(b"[UNK_BYTE_0x");
                for b in &utf8 {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text);
                out.push(b']');
            }
        }
    }
    out
}

/// The byte of a `<0xXX>` token (`strtol` of the two characters after `<0x`).
fn hex_byte(text: &[u8]) -> u8 {
    let digits = text.get(3..text.len().min(5)).unwrap_or(&[]);
    let mut v: u32 = 0;
    for &d in digits {
        match (d as char).to_digit(16) {
            Some(x) => v = v * 16 + x,
            None => break,
        }
    }
    v as u8
}
