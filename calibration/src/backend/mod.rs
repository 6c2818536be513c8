//! Compute backends: the trait the model code is written against, and the CPU implementation.
//!
//! The model code ([`crate::model`]) only calls [`Backend`]; the CPU implementation
//! ([`CpuBackend`]) reproduces the rounding of llama.cpp's CPU backend (activations converted to
//! the weight type's `vec_dot_type` before each matrix product, the F16 KV cache, the flash
//! attention kernel's softmax), so that logits agree with llama.cpp to float summation order.
//! Another backend (CUDA) can implement the same trait behind a cargo feature.

mod cpu;
mod weights;

pub use cpu::CpuBackend;
pub use weights::{ActRounding, WeightView};

use half::f16;
use thiserror::Error;

/// Why a backend refused an operation.
#[derive(Debug, Error)]
pub enum BackendError {
    /// A weight's bytes could not be converted to f32.
    #[error("weight '{name}': {source}")]
    Codec {
        /// Weight tensor name.
        name: String,
        /// The codec's complaint.
        #[source]
        source: qforge_formats::ggml::CodecError,
    },
    /// A weight whose shape or byte length does not fit the request.
    #[error("weight '{name}': {reason}")]
    Shape {
        /// Weight tensor name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Rotary position embedding parameters, as ggml's `rope_ext` takes them (no YaRN extrapolation).
#[derive(Clone, Debug, PartialEq)]
pub struct RopeParams {
    /// NEOX mode: dimension `i` pairs with `i + n_dims / 2`; otherwise (NORM) adjacent pairs.
    pub neox: bool,
    /// Number of rotated dimensions per head (`n_rot`).
    pub n_dims: usize,
    /// `rope.freq_base`.
    pub freq_base: f32,
    /// `1 / rope.scaling.factor` for linear scaling, else 1.
    pub freq_scale: f32,
    /// Per-pair frequency divisors (llama3 `rope_freqs.weight`, phi3 LongRoPE
    /// `rope_factors_long/short`), `n_dims / 2` values.
    pub freq_factors: Option<Vec<f32>>,
    /// `attn_factor`: multiplies the cached cosines and sines (`rope.scaling.attn_factor`), 1
    /// unless set.
    pub attn_factor: f32,
}

/// The shape of one attention call over a batch of consecutive query positions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnShape {
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (`n_head` is a multiple).
    pub n_head_kv: usize,
    /// Head dimension (keys and values).
    pub head_dim: usize,
    /// Position of the first query row; query row `i` sees keys `0..=first_pos + i`.
    pub first_pos: usize,
    /// Sliding window (`n_swa`, standard type): query position `p` sees only keys `k` with
    /// `p - k < window`; 0 for none.
    pub window: usize,
    /// Attention logit soft-capping (`c * tanh(s / c)` on the scaled scores); 0 for none.
    pub softcap: f32,
}

/// One attention call: the query rows of one micro-batch of one sequence, that sequence's F16
/// key/value caches, and where the result goes.
#[derive(Debug)]
pub struct AttnJob<'a> {
    /// Query rows, `n × n_head × head_dim`.
    pub q: &'a [f32],
    /// Key cache, `(first_pos + n) × n_head_kv × head_dim` (or more rows; the extra are unused).
    pub k: &'a [f16],
    /// Value cache, laid out as `k`.
    pub v: &'a [f16],
    /// Heads, head dimension and the position of the first query row.
    pub shape: AttnShape,
    /// Output rows, `n × n_head × head_dim`.
    pub out: &'a mut [f32],
}

/// A weight-tensor matrix prepared for products (implementation-defined storage).
pub trait Matrix: Send + Sync {
    /// Row length (`ne0`, the input width).
    fn n_cols(&self) -> usize;
    /// Rows per matrix (`ne1`, the output width).
    fn n_rows(&self) -> usize;
    /// Stacked matrices (`ne2`: experts), 1 for a plain matrix.
    fn n_mat(&self) -> usize;
}

/// The operations a forward pass needs. Activations are host `f32` rows, row-major.
pub trait Backend: Send + Sync {
    /// A weight matrix prepared for [`Backend::matmul`]; reused across loads to keep memory flat.
    type Matrix: Matrix;

    /// An empty matrix, to be filled by [`Backend::load_matrix`].
    fn new_matrix(&self) -> Self::Matrix;

    /// Prepares weight `w` (2-D, or 3-D for stacked experts) into `m`, reusing its storage.
    fn load_matrix(&self, w: &WeightView<'_>, m: &mut Self::Matrix) -> Result<(), BackendError>;

    /// `out[r] = W[expert] · x[r]` for `n` rows of `x` (`n × n_cols`), giving `n × n_rows`; the
    /// activations are first rounded as llama.cpp's CPU backend rounds them for this weight type.
    fn matmul(&self, m: &Self::Matrix, expert: usize, x: &[f32], n: usize, out: &mut [f32]);

    /// Rows `ids` of weight `w` (an embedding table), dequantized to f32 into `out`.
    fn get_rows(
        &self,
        w: &WeightView<'_>,
        ids: &[u32],
        out: &mut [f32],
    ) -> Result<(), BackendError>;

    /// RMS norm of each `weight.len()`-wide row of `x`, times `weight`, into `out`.
    fn rms_norm(&self, x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]);

    /// Rotates each head of each row of `x` (`positions.len()` rows of `n_head × head_dim`) in place.
    fn rope(
        &self,
        x: &mut [f32],
        n_head: usize,
        head_dim: usize,
        positions: &[u32],
        p: &RopeParams,
    );

    /// Causal attention of each job's query rows over its F16 caches with scores scaled by
    /// `scale`, rounded as llama.cpp's CPU flash-attention kernel rounds a micro-batch of one
    /// sequence; the jobs are independent (they may run in parallel) and each job's result does
    /// not depend on the others.
    fn attention(&self, jobs: &mut [AttnJob<'_>], scale: f32);

    /// `out = silu(gate) * up`, elementwise over rows of `n_cols`.
    fn swiglu(&self, gate: &[f32], up: &[f32], n_cols: usize, out: &mut [f32]);

    /// `out = gelu(gate) * up` (`ggml_geglu_split`: tanh GELU through ggml's F16 table).
    fn geglu(&self, gate: &[f32], up: &[f32], n_cols: usize, out: &mut [f32]);

    /// `x[r] += bias` for each `bias.len()`-wide row of `x` (a broadcast `ggml_add`).
    fn add_bias(&self, x: &mut [f32], bias: &[f32]);

    /// `x *= s`, elementwise (`ggml_scale`).
    fn scale(&self, x: &mut [f32], s: f32);

    /// `x = c * tanh(x * (1 / c))`, elementwise (soft-capping as a `scale`, `tanh`, `scale`).
    fn softcap(&self, x: &mut [f32], c: f32);

    /// Softmax of each `n_cols`-wide row of `x` in place (`ggml_soft_max`, MoE gating).
    fn soft_max(&self, x: &mut [f32], n_cols: usize);

    /// `dst += src`, elementwise.
    fn add(&self, dst: &mut [f32], src: &[f32]);

    /// Rounds `src` to F16 into `dst` (writing the KV cache).
    fn to_f16(&self, src: &[f32], dst: &mut [f16]);
}
