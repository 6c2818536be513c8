//! Hugging Face safetensors: reading single files and sharded checkpoints, and writing them.
//!
//! A file is an 8-byte little-endian header length `n`, `n` bytes of JSON, then the data
//! section. [`SafetensorsFile`] validates the header of untrusted files completely (see
//! [`parse_header`]) and gives [`TensorView`]s over a memory map or buffered reads;
//! [`ShardedCheckpoint`] follows a `model.safetensors.index.json`; [`Checkpoint`] opens either.
//! [`write_file`] and [`write_checkpoint`] stream tensors from a [`TensorSource`] into files
//! laid out byte for byte as the reference `safetensors` writer (Rust crate and Python package)
//! lays them out, sharded as `transformers` shards them.

mod checkpoint;
mod dtype;
mod error;
mod float;
mod header;
mod layout;
mod py_json;
mod reader;
mod shard_plan;
mod sharded;
mod sharded_writer;
mod storage;
mod temp_file;
mod view;
mod writer;

#[cfg(test)]
mod tests;

pub use checkpoint::Checkpoint;
pub use dtype::Dtype;
pub use error::{ErrorKind, SafetensorsError};
pub use float::{f8_e4m3_to_f32, f8_e5m2_to_f32};
pub use header::{parse_header, Header, TensorInfo, METADATA_KEY};
pub use layout::{encode_header, layout, TensorSpec};
pub use reader::SafetensorsFile;
pub use shard_plan::{plan_shards, shard_file_name};
pub use sharded::{ShardedCheckpoint, INDEX_FILE_NAME};
pub use sharded_writer::{write_checkpoint, ShardOptions, WrittenCheckpoint};
pub use storage::ReadMode;
pub use temp_file::temp_path;
pub use view::TensorView;
pub use writer::{write_file, TensorSource};

/// Largest header accepted or written, in bytes (the `safetensors` crate's limit).
pub const MAX_HEADER_SIZE: u64 = 100_000_000;
