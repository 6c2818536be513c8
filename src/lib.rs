//! qforge: quantization and model-conversion toolchain for large language models.
//!
//! The library half of the `qforge` package. The binary (`src/main.rs`) is a thin CLI over it;
//! everything that must match llama.cpp at the pinned commit `0c1e57098` lives here, so that it
//! can be tested without going through the command line.
#![deny(missing_docs)]

pub mod convert;
pub mod export;
pub mod pipeline;
pub mod quantize;
