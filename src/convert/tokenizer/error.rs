//! The error type of the tokenizer conversion.

use std::path::PathBuf;
use thiserror::Error;

/// Why tokenizer files could not be turned into GGUF tokenizer metadata.
#[derive(Debug, Error)]
pub enum TokenizerConvertError {
    /// A file that the chosen vocabulary needs is absent.
    #[error("{path}: not found (needed for the {what} vocabulary)")]
    Missing {
        /// The file looked for.
        path: PathBuf,
        /// Which vocabulary builder needed it.
        what: &'static str,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file does not parse.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A file parses but holds something the converter would reject.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `tokenizer.model` is not a well-formed SentencePiece `ModelProto`.
    #[error("{path}: malformed SentencePiece model: {reason}")]
    BadSentencePiece {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the byte offset where it was found.
        reason: String,
    },
    /// The Hugging Face `tokenizers` library refused `tokenizer.json`.
    #[error("{path}: the Hugging Face tokenizer failed: {message}")]
    HfTokenizer {
        /// The file.
        path: PathBuf,
        /// The library's message.
        message: String,
    },
    /// The BPE pre-tokenizer is not in the converter's hash table and could not be recognised
    /// from what `tokenizer.json` declares.
    #[error(
        "{path}: BPE pre-tokenizer not recognised (chktxt hash {hash} is not in the pinned \
         converter's table) and {detail}"
    )]
    UnknownPreTokenizer {
        /// The `tokenizer.json` file.
        path: PathBuf,
        /// sha256 of the probe's token ids, as the converter computes it.
        hash: String,
        /// Why the declared pre-tokenizer could not be mapped or verified.
        detail: String,
    },
    /// A vocabulary kind that qforge does not convert (the converter's Mistral-format or
    /// HybridDNA vocabularies, for example).
    #[error("{path}: unsupported tokenizer: {reason}")]
    Unsupported {
        /// The file or directory that selects it.
        path: PathBuf,
        /// What is not supported.
        reason: String,
    },
}
