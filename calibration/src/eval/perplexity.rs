//! Perplexity over a token stream, llama-perplexity's method.

use rayon::prelude::*;

use super::log_softmax::{compress_chunk, compressed_row_len, score};
use super::logits_file::LogitsWriter;
use super::{ChunkPlan, EvalError, EvalFn};

/// Running sums of the negative log-likelihood.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NllSums {
    /// Sum of −log p.
    pub nll: f64,
    /// Sum of (−log p)².
    pub nll2: f64,
    /// Scored tokens.
    pub count: usize,
}

impl NllSums {
    /// Adds values in the given order.
    fn add(&mut self, values: &[f64]) {
        for &v in values {
            self.nll += v;
            self.nll2 += v * v;
        }
        self.count += values.len();
    }

    /// Perplexity so far: `exp(mean nll)`.
    pub fn ppl(&self) -> f64 {
        (self.nll / self.count as f64).exp()
    }

    /// Final estimate `(ppl, uncertainty)` as llama-perplexity prints it (`PPL = x +/- y`); the
    /// uncertainty is `None` where llama-perplexity reports a negative variance.
    pub fn estimate(&self) -> (f64, Option<f64>) {
        let n = self.count as f64;
        let nll = self.nll / n;
        let ppl = nll.exp();
        let var = self.nll2 / n - nll * nll;
        if var > 0.0 {
            (ppl, Some((var / (n - 1.0)).sqrt() * ppl))
        } else {
            (ppl, None)
        }
    }
}

/// What one perplexity run needs besides the model.
#[derive(Debug, Clone, Copy)]
pub struct PerplexityParams {
    /// The chunking.
    pub plan: ChunkPlan,
    /// Vocabulary size (logits per row).
    pub n_vocab: usize,
    /// BOS id put at the start of every chunk, when the vocabulary adds BOS.
    pub bos: Option<u32>,
    /// Chunks passed to `eval` together (llama-perplexity's `n_seq = max(1, n_batch / n_ctx)`).
    pub n_seq: usize,
}

/// The result of a perplexity run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PerplexityResult {
    /// Final perplexity.
    pub ppl: f64,
    /// Its standard error (None where the variance came out non-positive).
    pub uncertainty: Option<f64>,
    /// Running perplexity after each chunk (what llama-perplexity prints as `[i]x,`).
    pub running: Vec<f64>,
    /// Scored tokens.
    pub count: usize,
    /// Context size.
    pub n_ctx: usize,
    /// Chunks evaluated.
    pub n_chunk: usize,
}

/// Computes perplexity over `tokens` (as tokenized with BOS, llama-perplexity's `common_tokenize(..,
/// true)`), calling `eval` once per chunk and `on_chunk(i, running_ppl)` after each. With `save`,
/// the base log-probabilities for a later KL-divergence are written as llama-perplexity
/// `--kl-divergence-base` writes them (and the per-token values are computed its way).
pub fn perplexity(
    tokens: &[u32],
    params: PerplexityParams,
    eval: &mut EvalFn<'_>,
    mut save: Option<&mut LogitsWriter>,
    on_chunk: &mut dyn FnMut(usize, f64),
) -> Result<PerplexityResult, EvalError> {
    let plan = params.plan;
    let nv = params.n_vocab;
    let scored = plan.scored_per_chunk();
    let mut sums = NllSums::default();
    let mut running = Vec::with_capacity(plan.n_chunk);
    let mut rows = vec![
        0u16;
        if save.is_some() {
            scored * compressed_row_len(nv)
        } else {
            0
        }
    ];
    for group in plan.groups(params.n_seq) {
        let outputs = plan.eval_group(tokens, group.clone(), params.bos, nv, eval)?;
        for (i, logits) in group.zip(outputs) {
            let targets = plan.targets(tokens, i);
            let nll: Vec<f64> = if save.is_some() {
                compress_chunk(&logits, nv, targets, &mut rows)
            } else {
                logits
                    .par_chunks(nv)
                    .zip(targets.par_iter())
                    .map(|(l, &t)| -score(l, t as usize).0)
                    .collect()
            };
            if let Some(w) = save.as_deref_mut() {
                w.write_chunk(&rows)?;
            }
            sums.add(&nll);
            running.push(sums.ppl());
            on_chunk(i, sums.ppl());
        }
    }
    let (ppl, uncertainty) = sums.estimate();
    Ok(PerplexityResult {
        ppl,
        uncertainty,
        running,
        count: sums.count,
        n_ctx: plan.n_ctx,
        n_chunk: plan.n_chunk,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "model" whose next-token distribution is known in closed form: logit 2·[v == (t+1) % n]
    /// after token t. PPL is then exp(-log p_hit) when the text follows the rule.
    #[test]
    fn perplexity_of_a_closed_form_model() {
        let n = 16usize;
        let tokens: Vec<u32> = (0..64u32).map(|i| i % n as u32).collect();
        let plan = ChunkPlan::new(tokens.len(), 16, None).unwrap();
        let mut calls = 0;
        let mut eval = |inps: &[Vec<u32>], first: usize| -> Result<Vec<Vec<f32>>, EvalError> {
            calls += 1;
            assert!(inps.len() <= 3);
            Ok(inps
                .iter()
                .map(|inp| {
                    assert_eq!(inp[0], 99 % n as u32, "BOS substituted");
                    let mut out = vec![0f32; (inp.len() - first) * n];
                    for (r, &t) in inp[first..].iter().enumerate() {
                        out[r * n + (t as usize + 1) % n] = 2.0;
                    }
                    out
                })
                .collect())
        };
        let params = PerplexityParams {
            plan,
            n_vocab: n,
            bos: Some(99 % n as u32),
            n_seq: 3,
        };
        let mut seen = Vec::new();
        let r = perplexity(&tokens, params, &mut eval, None, &mut |i, p| {
            seen.push((i, p))
        })
        .unwrap();
        let p_hit = 2f64.exp() / (2f64.exp() + (n - 1) as f64);
        assert_eq!(calls, 2, "4 chunks in groups of 3");
        assert_eq!(r.count, 4 * 7);
        assert!((r.ppl * p_hit - 1.0).abs() < 1e-6, "{}", r.ppl);
        assert!(r.uncertainty.unwrap_or(0.0) < 1e-6, "zero variance");
        assert_eq!(seen.len(), 4);
    }
}
