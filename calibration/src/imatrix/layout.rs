//! How llama-imatrix's context cuts its chunks into micro-batches, and which of them it skips.
//!
//! llama-imatrix packs `n_seq = max(1, n_batch / n_ctx)` chunks into one batch, one sequence
//! each. With one sequence the batch is cut into consecutive micro-batches of `n_ubatch` tokens
//! (`split_simple`); with several, every micro-batch takes the same number of positions from each
//! sequence, `max(1, n_ubatch / n_seqs)` (`split_equal`). Its callback ignores dense products
//! whose micro-batch has fewer than 16 rows (`src1->ne[1] < 16`), so the positions of such
//! micro-batches contribute nothing to the dense weights' statistics.

use std::ops::Range;

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

    /// The position ranges of one chunk, each with the row count of the micro-batch it belongs
    /// to, when the chunk is evaluated in a batch of `n_seqs` sequences.
    pub fn ubatches(&self, n_seqs: usize) -> Vec<(Range<usize>, usize)> {
        let mut out = Vec::new();
        if self.n_seq == 1 {
            // one stream: split_simple over each batch of the chunk
            let mut b = 0;
            while b < self.n_ctx {
                let be = (b + self.n_batch).min(self.n_ctx);
                let mut s = b;
                while s < be {
                    let e = (s + self.n_ubatch).min(be);
                    out.push((s..e, e - s));
                    s = e;
                }
                b = be;
            }
        } else {
            // several streams: split_equal, the same positions of every sequence per micro-batch
            let n = n_seqs.max(1);
            let t = (self.n_ubatch / n).max(1);
            let mut s = 0;
            while s < self.n_ctx {
                let e = (s + t).min(self.n_ctx);
                out.push((s..e, n * (e - s)));
                s = e;
            }
        }
        out
    }

    /// The positions of a chunk that dense products ignore, evaluated in a batch of `n_seqs`.
    pub fn skipped(&self, n_seqs: usize) -> Vec<Range<usize>> {
        self.ubatches(n_seqs)
            .into_iter()
            .filter(|(_, rows)| *rows < MIN_ROWS)
            .map(|(r, _)| r)
            .collect()
    }

    /// Sequences in the batch that evaluates chunk `i` of `n_chunk`.
    pub fn seqs_in_batch(&self, i: usize, n_chunk: usize) -> usize {
        let start = i / self.n_seq * self.n_seq;
        self.n_seq.min(n_chunk - start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_imatrix_defaults() {
        // -c 128 -b 2048: 16 chunks per batch, 32 positions of each per micro-batch.
        let l = BatchLayout::new(128, 2048, 512);
        assert_eq!((l.n_seq, l.n_batch), (16, 2048));
        let u = l.ubatches(16);
        assert_eq!(u.len(), 4);
        assert_eq!(u[1], (32..64, 512));
        // a last batch of 3 chunks: one micro-batch of 3 x 128
        assert_eq!(l.ubatches(3), vec![(0..128, 384)]);
        assert_eq!(l.seqs_in_batch(17, 19), 3);
        assert_eq!(l.seqs_in_batch(3, 19), 16);
        assert!(l.skipped(16).is_empty());
    }

    #[test]
    fn short_tail_micro_batches_are_skipped() {
        // -c 520: 3 sequences of 170 + 170 + 170 + 10 positions; 30 rows are kept.
        let l = BatchLayout::new(520, 2048, 512);
        assert_eq!(l.n_seq, 3);
        assert_eq!(l.ubatches(3).last(), Some(&(510..520, 30)));
        // alone in its batch: 512 + 8, the 8 are skipped
        assert_eq!(l.skipped(1), vec![512..520]);
        // one stream (-c 4100): batches of 2048, micro-batches of 512, tail of 4
        let l = BatchLayout::new(4100, 2048, 512);
        assert_eq!((l.n_seq, l.n_batch), (1, 2048));
        assert_eq!(l.skipped(1), vec![4096..4100]);
        assert_eq!(l.ubatches(1).len(), 9);
    }
}
