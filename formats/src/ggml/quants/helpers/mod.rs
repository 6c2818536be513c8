//! Numeric helpers shared by llama.cpp's quantization routines (`ggml-quants.c`).
//!
//! Every function reproduces the pinned C source operation for operation: f32 arithmetic in
//! the same order, no fused multiply-add, divisions where the C divides, and the same
//! integer truncations where the C stores into narrow integer arrays. Comparisons are written
//! out as the C `MIN`/`MAX` macros expand them, so NaN inputs take the same branches.

mod asymmetric;
pub mod lanes;
#[cfg(test)]
pub(crate) mod oracle_check;
mod rounding;
mod rows;
mod scales;
mod symmetric;

pub use asymmetric::{make_qkx2_quants, make_qkx3_quants};
pub use rounding::{nearest_int, round_all, trunc_all, trunc_to_i32};
pub use rows::for_each_row;
pub use scales::make_qp_quants;
pub use symmetric::{make_q3_quants, make_qx_quants};

/// Groups whose largest magnitude is below this are treated as all zero (`GROUP_MAX_EPS`).
pub const GROUP_MAX_EPS: f32 = 1e-15;

/// Longest group whose scratch the scale searches keep on the stack (ggml's groups have 16 or
/// 32 elements; longer ones use the heap).
const MAX_GROUP: usize = 64;
