//! Activation observers: what `llama-imatrix` sees of each matrix product.

/// Receives, for every product with a weight tensor, the f32 input rows llama.cpp's graph feeds to
/// that `MUL_MAT` (its `src1`, before any activation rounding), one call per micro-batch of up to
/// 512 tokens, in position order. For the experts of a MoE layer (`MUL_MAT_ID`), one call per
/// expert with the rows routed to it.
pub trait ActivationObserver {
    /// `rows` holds `rows.len() / n_cols` rows of `n_cols` values, the inputs to weight `weight`
    /// (its GGUF name); `expert` is the expert index for stacked expert tensors.
    fn observe(&mut self, weight: &str, expert: Option<usize>, rows: &[f32], n_cols: usize);
}
