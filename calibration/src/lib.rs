//! qforge-calibration: runs models.
//!
//! The forward pass of each supported architecture on a CPU backend (a CUDA backend can join behind
//! a cargo feature without touching the model code), the tokenizers that turn text into the token
//! ids llama.cpp would produce, and the evaluations built on them: perplexity, KL-divergence against
//! a base model, and activation statistics (importance matrices).
//!
//! Depends on `qforge-formats` for reading weights; holds no file-format code of its own beyond the
//! small result files of the evaluations.

pub mod backend;
pub mod eval;
pub mod imatrix;
pub mod model;
pub mod tokenizer;
