//! GGUF: llama.cpp's model file format (`ggml/src/gguf.cpp`).
//!
//! [`GgufFile`] reads and validates v2 and v3 files; [`GgufWriter`] writes v3 files the way
//! ggml's C writer does, so that a file produced by qforge can equal llama.cpp's byte for byte.
//! [`split`] handles `-00001-of-0000N.gguf` split sets.

mod error;
mod reader;
pub mod split;
mod value;
mod writer;

pub use error::GgufError;
pub use reader::{parse_header, GgufFile, GgufHeader, ReadMode, TensorInfo};
pub use value::{GgufArray, GgufValue, GgufValueType};
pub use writer::{encode_header, layout, temp_path, GgufWriter, TensorSink, TensorSpec};

/// The four magic bytes at the start of every GGUF file.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// The version qforge writes.
pub const GGUF_VERSION: u32 = 3;
/// Alignment used when `general.alignment` is absent.
pub const GGUF_DEFAULT_ALIGNMENT: u64 = 32;
/// Tensor names must be shorter than this many bytes (`GGML_MAX_NAME`).
pub const GGML_MAX_NAME: usize = 64;
/// Maximum number of tensor dimensions (`GGML_MAX_DIMS`).
pub const GGML_MAX_DIMS: usize = 4;

/// `GGML_PAD`: `x` rounded up to a multiple of `n`.
pub fn pad(x: u64, n: u64) -> u64 {
    x.div_ceil(n) * n
}
