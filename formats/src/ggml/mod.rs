//! ggml tensor types and their block codecs.

pub mod codec;
pub mod fp;
pub mod quants;
pub mod types;
pub mod validate;

pub use codec::{codec, dequantize, quantize, requires_imatrix, Codec, CodecError};
pub use types::{GgmlType, QK_K};
pub use validate::validate_row_data;
