//! Errors of the tokenizer module.

use thiserror::Error;

/// Why a tokenizer could not be built from a GGUF header.
#[derive(Debug, Error)]
pub enum TokenizerError {
    /// A required metadata key is absent.
    #[error("tokenizer metadata: missing key {0}")]
    MissingKey(&'static str),
    /// A metadata key has a type llama.cpp does not accept for it.
    #[error("tokenizer metadata: key {key} has wrong type {found}, expected {expected}")]
    WrongType {
        /// The key.
        key: &'static str,
        /// The type found.
        found: String,
        /// The type llama.cpp expects.
        expected: &'static str,
    },
    /// An array is shorter than the token list.
    #[error("tokenizer metadata: {key} has {found} entries for {n_tokens} tokens")]
    ShortArray {
        /// The key.
        key: &'static str,
        /// Its number of entries.
        found: usize,
        /// The number of tokens.
        n_tokens: usize,
    },
    /// Two tokens have the same text (llama.cpp aborts on this).
    #[error("tokenizer metadata: token {id} duplicates the text of token {first}")]
    DuplicateToken {
        /// The later token id.
        id: usize,
        /// The earlier token id with the same text.
        first: u32,
    },
    /// The vocabulary is too large for 32-bit token ids.
    #[error("tokenizer metadata: {0} tokens do not fit 32-bit ids")]
    TooManyTokens(usize),
    /// `tokenizer.ggml.model` names a tokenizer this crate does not implement.
    #[error("unsupported tokenizer model '{0}'")]
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer llama.cpp does not know, or one this crate does
    /// not implement.
    #[error("unsupported pre-tokenizer '{0}'")]
    UnsupportedPre(String),
    /// A token llama.cpp requires by name is missing (it throws in that case).
    #[error("tokenizer metadata: required token '{0}' is not in the vocabulary")]
    MissingToken(String),
    /// The UGM precompiled character map is malformed.
    #[error("tokenizer metadata: tokenizer.ggml.precompiled_charsmap is malformed: {0}")]
    BadCharsmap(&'static str),
    /// A pre-tokenizer regular expression failed to compile.
    #[error("pre-tokenizer regex {pattern:?}: {message}")]
    Regex {
        /// The translated pattern.
        pattern: String,
        /// The compiler's message.
        message: String,
    },
}
