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

/// The IQ grids as bytes per point (`iq2xxs_grid`, `iq2xs_grid`, `iq2s_grid`, `iq3xxs_grid`,
/// `iq3s_grid`, `iq1s_grid`), for kernels that compute with the quantized values directly.
pub use iq::{IQ1S, IQ2S, IQ2XS, IQ2XXS, IQ3S, IQ3XXS};
