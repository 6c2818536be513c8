//! Block codecs, one module per family of ggml types. Each module exposes
//! `codec(ty) -> Option<Codec>` for the types it owns.

pub(crate) mod float;
pub(crate) mod fp4;
pub mod helpers;
pub(crate) mod iq;
pub(crate) mod kquants;
pub(crate) mod legacy;
pub(crate) mod low_bit;
pub(crate) mod ternary;
