//! Importance matrices as llama-imatrix computes them: for every weight matrix of the model, the
//! sum over the calibration text of each input column's squared activation, and the number of
//! rows summed (per expert for MoE layers).
//!
//! [`compute_imatrix`] runs llama-imatrix's loop (chunks of `n_ctx` tokens with BOS substituted,
//! every position output, the second half of each chunk scored for the running perplexity) over a
//! forward pass that reports its products to a [`Collector`]; the result is a
//! [`qforge_formats::imatrix::Imatrix`], which that crate writes in llama.cpp's GGUF or legacy
//! format.
//!
//! Accumulation order: each column's sum takes the rows chunk by chunk in position order. That
//! is llama-imatrix's order when it evaluates one chunk per batch (`-b` not above `-c`) or when
//! all chunks of a batch fit one micro-batch; otherwise llama.cpp interleaves the chunks of a
//! batch by micro-batch (and the experts' rows by routing slot), which only changes the f32
//! rounding of the sums.

mod collector;
mod error;
pub mod layout;
mod run;

pub use collector::Collector;
pub use error::ImatrixError;
pub use run::{compute_imatrix, ImatrixParams, ImatrixRun, ObservedEvalFn};
