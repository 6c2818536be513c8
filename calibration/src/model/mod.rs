//! Model definitions: hyper-parameters, weights and the forward pass of each architecture.
//!
//! [`Model::open`] loads a llama-architecture GGUF file of any ggml type; [`Model::eval`] runs a
//! sequence through it and returns logits matching llama.cpp's CPU backend. Weights come through
//! the [`WeightSource`] trait, so sources other than GGUF can plug in.

#[cfg(test)]
mod batch_tests;
mod error;
mod hparams;
mod llama;
mod moe;
mod observer;
mod source;

pub use error::ModelError;
pub use hparams::HParams;
pub use llama::{Model, N_UBATCH};
pub use observer::ActivationObserver;
pub use source::{TensorMeta, WeightSource};
