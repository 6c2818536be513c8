//! Evaluations over a forward pass: perplexity, KL-divergence against a base model, quality gates.
//!
//! Everything here follows `llama-perplexity` of the pinned llama.cpp: the token stream is cut into
//! chunks of `n_ctx` tokens, the first token of each chunk is replaced by BOS when the vocabulary adds
//! one, and only the second half of each chunk is scored (positions `n_ctx/2 .. n_ctx-1`, each
//! predicting the next token). The model is reached through a closure, so these functions work with
//! any forward pass (GGUF or Hugging Face weights, CPU or GPU backend).

mod chunks;
mod error;
pub mod gate;
pub mod kld;
pub mod log_softmax;
pub mod logits_file;
pub mod perplexity;
mod stats;

pub use chunks::ChunkPlan;
pub use error::EvalError;
pub use stats::{mean_and_uncertainty, percentile};

/// A forward pass as the evaluations see it: `eval(sequences, first)` evaluates each sequence from
/// a fresh context and returns, per sequence, the logits of positions `first..len`, row-major with
/// `n_vocab` values per row. The evaluations pass up to `n_seq` chunks at a time, as
/// llama-perplexity packs `n_batch / n_ctx` chunks into one decode.
pub type EvalFn<'a> = dyn FnMut(&[Vec<u32>], usize) -> Result<Vec<Vec<f32>>, EvalError> + 'a;
