//! How many chunks llama-imatrix evaluates together, and the smallest product it collects.
//!
//! llama-imatrix packs `n_seq = max(1, n_batch / n_ctx)` chunks into one batch, one sequence
//! each; the model cuts such a batch into llama.cpp's micro-batches (`Model::eval_batch`). Its
//! callback ignores dense products whose micro-batch has fewer than 16 rows
//! (`src1->ne[1] < 16`), so such micro-batches contribute nothing to the dense weights' statistics.

/// Dense products with fewer rows than this are ignored by llama-imatrix.
pub const MIN_ROWS: usize = 16;

/// The batching parameters llama-imatrix derives from `-c`, `-b` and `-ub`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLayout {
    /// Tokens per chunk (`-c`).
    pub n_ctx: usize,
    /// Chunks per batch, one sequence each.
    pub n_seq: usize,
    /// Tokens per batch after llama-imatrix's clamping (`min(n_batch, n_seq * n_ctx)`).
    pub n_batch: usize,
    /// Tokens per micro-batch (`-ub`, 512 by default).
    pub n_ubatch: usize,
}

impl BatchLayout {
    /// The layout for chunk size `n_ctx`, logical batch `n_batch` and micro-batch `n_ubatch`.
    pub fn new(n_ctx: usize, n_batch: usize, n_ubatch: usize) -> Self {
        let n_seq = (n_batch / n_ctx.max(1)).max(1);
        let n_batch = n_batch.min(n_seq * n_ctx).max(1);
        BatchLayout {
            n_ctx,
            n_seq,
            n_batch,
            n_ubatch: n_ubatch.min(n_batch).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_imatrix_defaults() {
        let l = BatchLayout::new(512, 2048, 512);
        assert_eq!((l.n_seq, l.n_batch, l.n_ubatch), (4, 2048, 512));
        let l = BatchLayout::new(4096, 2048, 512);
        assert_eq!((l.n_seq, l.n_batch), (1, 2048));
        let l = BatchLayout::new(128, 2048, 512);
        assert_eq!(l.n_seq, 16);
    }
}
