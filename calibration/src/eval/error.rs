//! Errors of the evaluations.

use std::path::PathBuf;

/// What can go wrong while evaluating a model.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The text is too short for even one scored chunk.
    #[error(
        "the text tokenizes to only {n_tokens} tokens; a context of {n_ctx} needs at least {} (two chunks' worth, as llama-perplexity)",
        2 * n_ctx
    )]
    NotEnoughTokens {
        /// Tokens in the text.
        n_tokens: usize,
        /// Requested context size.
        n_ctx: usize,
    },
    /// The context size cannot be used.
    #[error("invalid context size {0}: it must be at least 4")]
    BadContext(usize),
    /// The forward pass failed.
    #[error("forward pass failed: {0}")]
    Model(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The forward pass returned the wrong number of logits.
    #[error("forward pass returned {got} logits, expected {expected}")]
    LogitCount {
        /// Values returned.
        got: usize,
        /// Values expected (rows × n_vocab).
        expected: usize,
    },
    /// A token id is not in the vocabulary.
    #[error("{path}: token id {token} at position {pos} is outside the vocabulary of {n_vocab}", path = .path.display())]
    TokenOutOfRange {
        /// File holding the tokens.
        path: PathBuf,
        /// The token id.
        token: i64,
        /// Its position in the file's token list.
        pos: usize,
        /// Vocabulary size.
        n_vocab: usize,
    },
    /// A log-probability file is malformed.
    #[error("{path}: {what}", path = .path.display())]
    LogitsFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// The model does not match the log-probability file.
    #[error("{path}: {what}", path = .path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What does not match.
        what: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl EvalError {
    /// Wraps any forward-pass error.
    pub fn model(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        EvalError::Model(Box::new(e))
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn file(path: &std::path::Path, what: impl Into<String>) -> Self {
        EvalError::LogitsFile {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
}
