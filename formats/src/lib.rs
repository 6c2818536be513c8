//! On-disk formats for qforge: GGUF, safetensors, imatrix files, and the ggml block codecs.
//!
//! This crate holds no model maths. Every reader treats its input as untrusted: headers are
//! validated with checked arithmetic and allocations are capped, so a malformed file gives an
//! error naming what is wrong, never a panic.
#![deny(missing_docs)]

pub mod ggml;
pub mod gguf;
pub mod imatrix;
#[cfg(test)]
pub(crate) mod oracle;
mod read_mode;
pub mod safetensors;

pub use read_mode::ReadMode;
