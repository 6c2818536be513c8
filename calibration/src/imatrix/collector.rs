//! The activation statistics llama-imatrix's `collect_imatrix` callback accumulates.

use super::layout::MIN_ROWS;
use super::ImatrixError;
use crate::model::ActivationObserver;
use qforge_formats::imatrix::{Imatrix, ImatrixEntry};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Columns per parallel task when accumulating one product's rows.
const COLS_PER_TASK: usize = 512;

/// One weight's sums of squared inputs per column (per expert for stacked experts) and the rows
/// seen (per expert).
#[derive(Debug, Clone, Default, PartialEq)]
struct Stats {
    values: Vec<f32>,
    counts: Vec<i64>,
}

/// Accumulates, for every weight product it observes, `Σ x²` per input column in f32, row by row
/// in the order the rows arrive, and the number of rows, as llama-imatrix does:
///
/// * dense products only for `blk.*` weights (and `output.weight` with `process_output`), and
///   not for a micro-batch of fewer than [`MIN_ROWS`] rows (llama-imatrix ignores such a
///   `MUL_MAT`; the observer shows one micro-batch per call);
/// * expert products (`expert` given) for every weight, one row of sums and one count per
///   expert, `n_expert` of them.
///
/// Each column's sum takes the rows in order whatever the thread count, so results are
/// deterministic.
#[derive(Debug)]
pub struct Collector {
    process_output: bool,
    n_expert: usize,
    stats: BTreeMap<String, Stats>,
    error: Option<ImatrixError>,
}

impl Collector {
    /// A collector for a model with `n_expert` experts per MoE layer (0 or 1 for dense models).
    pub fn new(process_output: bool, n_expert: usize) -> Self {
        Collector {
            process_output,
            n_expert,
            stats: BTreeMap::new(),
            error: None,
        }
    }

    /// The first error met while observing (overflow, inconsistent shapes), if any; observation
    /// stops at the first error.
    pub fn take_error(&mut self) -> Option<ImatrixError> {
        self.error.take()
    }

    /// Whether an observation failed (see [`Collector::take_error`]).
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Whether llama-imatrix collects dense products of `weight`.
    fn wants_dense(&self, weight: &str) -> bool {
        weight.starts_with("blk.") || (self.process_output && weight == "output.weight")
    }

    /// The statistics as an importance matrix for chunks of `chunk_size` tokens computed on
    /// `datasets`. The chunk count is llama-imatrix's: the largest count divided by the chunk
    /// size.
    pub fn into_imatrix(self, chunk_size: usize, datasets: Vec<String>) -> Imatrix {
        let max_count = self
            .stats
            .values()
            .flat_map(|s| s.counts.iter().copied())
            .max()
            .unwrap_or(0);
        let entries = self
            .stats
            .into_iter()
            .map(|(name, s)| {
                (
                    name,
                    ImatrixEntry {
                        sums: s.values,
                        counts: s.counts,
                    },
                )
            })
            .collect();
        Imatrix {
            entries,
            datasets,
            chunk_count: (max_count / chunk_size.max(1) as i64) as i32,
            chunk_size: chunk_size as i32,
            is_legacy: false,
            has_metadata: true,
        }
    }

    fn observe_dense(
        &mut self,
        weight: &str,
        rows: &[f32],
        n_cols: usize,
    ) -> Result<(), ImatrixError> {
        let kept: Vec<&[f32]> = rows.chunks_exact(n_cols).collect();
        if kept.len() < MIN_ROWS {
            return Ok(());
        }
        let e = self.stats.entry(weight.to_string()).or_default();
        if e.counts.len() > 1 && e.counts.iter().all(|&c| c == e.counts[0]) {
            e.counts.truncate(1);
        }
        if e.values.is_empty() {
            e.values = vec![0.0; n_cols];
            e.counts = vec![0];
        } else if e.values.len() != n_cols || e.counts.len() != 1 {
            return Err(ImatrixError::Inconsistent {
                weight: weight.to_string(),
                what: format!("{} values vs {n_cols} columns", e.values.len()),
            });
        }
        accumulate(&mut e.values, &kept);
        e.counts[0] += kept.len() as i64;
        if e.values.iter().any(|v| !v.is_finite()) {
            return Err(ImatrixError::NonFinite {
                weight: weight.to_string(),
            });
        }
        Ok(())
    }

    fn observe_expert(
        &mut self,
        weight: &str,
        expert: usize,
        rows: &[f32],
        n_cols: usize,
    ) -> Result<(), ImatrixError> {
        let n_as = self.n_expert;
        if expert >= n_as {
            return Err(ImatrixError::Inconsistent {
                weight: weight.to_string(),
                what: format!("expert {expert} of {n_as}"),
            });
        }
        let e = self.stats.entry(weight.to_string()).or_default();
        if e.values.is_empty() {
            e.values = vec![0.0; n_cols * n_as];
            e.counts = vec![0; n_as];
        } else if e.values.len() != n_cols * n_as || e.counts.len() != n_as {
            return Err(ImatrixError::Inconsistent {
                weight: weight.to_string(),
                what: format!(
                    "{} values and {} counts vs {n_cols} columns of {n_as} experts",
                    e.values.len(),
                    e.counts.len()
                ),
            });
        }
        let acc = &mut e.values[expert * n_cols..(expert + 1) * n_cols];
        let kept: Vec<&[f32]> = rows.chunks_exact(n_cols).collect();
        accumulate(acc, &kept);
        e.counts[expert] += kept.len() as i64;
        if acc.iter().any(|v| !v.is_finite()) {
            return Err(ImatrixError::NonFinite {
                weight: weight.to_string(),
            });
        }
        Ok(())
    }
}

/// `acc[j] += x[j] * x[j]` for each row in order (a separate multiply and add, as ggml's build
/// of llama-imatrix does), columns split across threads.
fn accumulate(acc: &mut [f32], rows: &[&[f32]]) {
    acc.par_chunks_mut(COLS_PER_TASK)
        .enumerate()
        .for_each(|(b, a)| {
            let cols = b * COLS_PER_TASK..b * COLS_PER_TASK + a.len();
            for row in rows {
                for (v, &x) in a.iter_mut().zip(&row[cols.clone()]) {
                    *v += x * x;
                }
            }
        });
}

impl ActivationObserver for Collector {
    fn observe(&mut self, weight: &str, expert: Option<usize>, rows: &[f32], n_cols: usize) {
        if self.error.is_some() || n_cols == 0 || rows.is_empty() {
            return;
        }
        let r = match expert {
            Some(e) => self.observe_expert(weight, e, rows, n_cols),
            None if self.wants_dense(weight) => self.observe_dense(weight, rows, n_cols),
            None => Ok(()),
        };
        if let Err(e) = r {
            self.error = Some(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` rows of two columns: `[i, 1]`.
    fn rows(n: usize) -> Vec<f32> {
        (0..n).flat_map(|i| [i as f32, 1.0]).collect()
    }

    #[test]
    fn sums_squares_per_column_and_counts_rows() {
        let mut c = Collector::new(false, 0);
        c.observe("blk.0.attn_q.weight", None, &rows(16), 2);
        c.observe("blk.0.attn_q.weight", None, &rows(20), 2);
        // Fewer than 16 rows: ignored, as llama-imatrix ignores such a product.
        c.observe("blk.0.attn_q.weight", None, &rows(15), 2);
        c.observe("output.weight", None, &rows(16), 2);
        c.observe("token_embd.weight", None, &rows(16), 2);
        let m = c.into_imatrix(12, vec!["t.txt".into()]);
        assert_eq!(m.entries.len(), 1);
        let e = &m.entries["blk.0.attn_q.weight"];
        let sq = |n: usize| (0..n).map(|i| (i * i) as f32).sum::<f32>();
        assert_eq!(e.sums, [sq(16) + sq(20), 36.0]);
        assert_eq!(e.counts, [36]);
        assert_eq!((m.chunk_count, m.chunk_size), (3, 12));
    }

    #[test]
    fn output_only_with_process_output_and_short_micro_batches_ignored() {
        let mut c = Collector::new(true, 0);
        c.observe("output.weight", None, &rows(16), 2);
        c.observe("output.weight", None, &rows(3), 2);
        let m = c.into_imatrix(16, vec![]);
        let e = &m.entries["output.weight"];
        assert_eq!(e.counts, [16]);
        assert_eq!(e.sums[1], 16.0);
    }

    #[test]
    fn experts_have_their_own_rows_and_counts() {
        let mut c = Collector::new(false, 3);
        c.observe(
            "blk.0.ffn_up_exps.weight",
            Some(2),
            &[1.0, 2.0, 3.0, 4.0],
            2,
        );
        c.observe("blk.0.ffn_up_exps.weight", Some(0), &[1.0, 1.0], 2);
        let m = c.into_imatrix(1, vec![]);
        let e = &m.entries["blk.0.ffn_up_exps.weight"];
        assert_eq!(e.sums, [1.0, 1.0, 0.0, 0.0, 10.0, 20.0]);
        assert_eq!(e.counts, [1, 0, 2]);
        assert_eq!(m.chunk_count, 2);
    }

    #[test]
    fn overflow_and_bad_experts_are_errors() {
        let mut c = Collector::new(false, 2);
        c.observe("blk.0.ffn_up_exps.weight", Some(5), &[1.0], 1);
        assert!(matches!(
            c.take_error(),
            Some(ImatrixError::Inconsistent { .. })
        ));
        c.observe("blk.0.attn_q.weight", None, &[f32::MAX; 16], 1);
        c.observe("blk.0.attn_q.weight", None, &[f32::MAX; 16], 1);
        assert!(matches!(
            c.take_error(),
            Some(ImatrixError::NonFinite { .. })
        ));
    }

    #[test]
    fn same_result_on_any_thread_count() {
        let rows: Vec<f32> = (0..64 * 1500)
            .map(|i| ((i * 7919) % 1013) as f32 * 1e-3)
            .collect();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let mut c = Collector::new(false, 0);
                    c.observe("blk.0.ffn_down.weight", None, &rows, 1500);
                    c.into_imatrix(64, vec![])
                })
        };
        assert_eq!(run(1), run(3));
    }
}
