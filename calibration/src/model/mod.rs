//! Model definitions: hyper-parameters, weights and the forward pass of each architecture.
//!
//! [`Model::open`] loads a GGUF file of a supported architecture ([`Arch`]: llama, qwen2, qwen3,
//! qwen3moe, gemma2, gemma3, phi3) in any ggml type; [`Model::eval`] runs a sequence through it
//! and returns logits matching llama.cpp's CPU backend. Weights come through
//! the [`WeightSource`] trait, so sources other than GGUF can plug in.

mod arch;
#[cfg(test)]
mod batch_tests;
mod error;
mod hparams;
mod moe;
mod observer;
mod source;
mod transformer;

pub use arch::{Activation, Arch};
pub use error::ModelError;
pub use hparams::HParams;
pub use observer::ActivationObserver;
pub use source::{TensorMeta, WeightSource};
pub use transformer::{Model, N_UBATCH};
