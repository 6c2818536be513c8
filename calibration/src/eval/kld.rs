//! KL-divergence of a model against a base model's log-probabilities, llama-perplexity's
//! `--kl-divergence` method and statistics.

use rayon::prelude::*;

use super::log_softmax::{compressed_row_len, kld, TokenKld};
use super::stats::{covariance, median};
use super::{mean_and_uncertainty, percentile, ChunkPlan, EvalError, EvalFn};

/// Sums over scored tokens, with llama-perplexity's float types (`kl_divergence_result`).
#[derive(Debug, Clone, Default)]
pub struct KldSums {
    sum_nll: f64,
    sum_nll2: f64,
    sum_nll_base: f64,
    sum_nll_base2: f64,
    sum_nll_nll_base: f64,
    sum_kld: f64,
    sum_kld2: f64,
    sum_p_diff: f64,
    sum_p_diff2: f64,
    sum_p_diff4: f64,
    max_p_diff: f32,
    n_same_top: usize,
    count: usize,
    kld_values: Vec<f32>,
    p_diff_values: Vec<f32>,
}

/// One line of the running table llama-perplexity prints after each chunk.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct KldRunning {
    /// PPL of the model and its error.
    pub ppl: (f64, f64),
    /// ln(PPL(Q)/PPL(base)) and its error.
    pub ln_ppl_ratio: (f64, f64),
    /// Mean KLD and its error.
    pub kld: (f64, f64),
    /// RMS of Δp and its error (fractions, not percent).
    pub rms_p_diff: (f64, f64),
    /// Same-top-token rate and its error (fractions).
    pub same_top: (f64, f64),
}

/// The final statistics, as llama-perplexity prints them (fractions, not percent).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KldReport {
    /// Scored tokens.
    pub count: usize,
    /// Mean PPL(Q) and its error.
    pub ppl: (f64, f64),
    /// Mean PPL(base) and its error.
    pub ppl_base: (f64, f64),
    /// Correlation of ln PPL(Q) and ln PPL(base).
    pub ln_ppl_correlation: f64,
    /// Mean ln(PPL(Q)/PPL(base)) and its error.
    pub ln_ppl_ratio: (f64, f64),
    /// PPL(Q)/PPL(base) and its error.
    pub ppl_ratio: (f64, f64),
    /// PPL(Q)-PPL(base) and its error.
    pub ppl_diff: (f64, f64),
    /// Mean KLD and its error.
    pub kld: (f64, f64),
    /// KLD quantiles: maximum, 99.9%, 99%, 95%, 90%, median, 10%, 5%, 1%, 0.1%, minimum.
    pub kld_quantiles: Quantiles,
    /// Mean Δp and its error.
    pub p_diff: (f64, f64),
    /// Δp quantiles: maximum, 99.9%, 99%, 95%, 90%, 75%, median, 25%, 10%, 5%, 1%, 0.1%, minimum.
    pub p_diff_quantiles: Quantiles,
    /// RMS Δp and its error.
    pub rms_p_diff: (f64, f64),
    /// Same-top-token rate and its error.
    pub same_top: (f64, f64),
}

/// Named quantiles, in printing order (label, value).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Quantiles(pub Vec<(&'static str, f32)>);

impl Quantiles {
    /// The value of a label (`"max"`, `"99.9%"`, `"median"`, ...).
    pub fn get(&self, label: &str) -> Option<f32> {
        self.0.iter().find(|(l, _)| *l == label).map(|(_, v)| *v)
    }
}

impl KldSums {
    fn add(&mut self, t: &TokenKld) {
        let (nll, nll_base) = (t.nll, t.nll_base);
        self.sum_nll += f64::from(nll);
        self.sum_nll2 += f64::from(nll * nll);
        self.sum_nll_base += f64::from(nll_base);
        self.sum_nll_base2 += f64::from(nll_base * nll_base);
        self.sum_nll_nll_base += f64::from(nll * nll_base);
        self.sum_kld += t.kld;
        self.sum_kld2 += t.kld * t.kld;
        self.sum_p_diff += f64::from(t.p_diff);
        let p_diff2 = f64::from(t.p_diff * t.p_diff);
        self.sum_p_diff2 += p_diff2;
        self.sum_p_diff4 += p_diff2 * p_diff2;
        self.max_p_diff = self.max_p_diff.max(t.p_diff.abs());
        self.n_same_top += usize::from(t.same_top);
        self.count += 1;
        self.kld_values.push(t.kld as f32);
        self.p_diff_values.push(t.p_diff);
    }

    /// Scores one chunk: `logits` of the scored positions, the base's compressed rows, the targets.
    pub fn add_chunk(
        &mut self,
        logits: &[f32],
        n_vocab: usize,
        base_rows: &[u16],
        targets: &[u32],
    ) {
        let per_token: Vec<TokenKld> = logits
            .par_chunks(n_vocab)
            .zip(base_rows.par_chunks(compressed_row_len(n_vocab)))
            .zip(targets.par_iter())
            .map(|((l, b), &t)| kld(l, b, t as usize))
            .collect();
        for t in &per_token {
            self.add(t);
        }
    }

    /// Scored tokens so far.
    pub fn count(&self) -> usize {
        self.count
    }

    fn log_ppls(&self) -> ((f64, f64), (f64, f64), f64) {
        let q = mean_and_uncertainty(self.sum_nll, self.sum_nll2, self.count);
        let b = mean_and_uncertainty(self.sum_nll_base, self.sum_nll_base2, self.count);
        let cov = covariance(
            self.sum_nll,
            self.sum_nll_base,
            self.sum_nll_nll_base,
            self.count,
        );
        (q, b, cov)
    }

    /// The running line after the latest chunk.
    pub fn running(&self) -> KldRunning {
        let (q, b, cov) = self.log_ppls();
        let ppl = q.0.exp();
        let ratio = (q.0 - b.0, (q.1 * q.1 + b.1 * b.1 - 2.0 * cov).sqrt());
        let kld = mean_and_uncertainty(self.sum_kld, self.sum_kld2, self.count);
        let mse = mean_and_uncertainty(self.sum_p_diff2, self.sum_p_diff4, self.count);
        let rms = mse.0.sqrt();
        let top = self.n_same_top as f64 / self.count as f64;
        KldRunning {
            ppl: (ppl, ppl * q.1),
            ln_ppl_ratio: ratio,
            kld,
            rms_p_diff: (rms, 0.5 / rms * mse.1),
            same_top: (top, (top * (1.0 - top) / (self.count as f64 - 1.0)).sqrt()),
        }
    }

    /// The final statistics; `None` below 100 scored tokens (llama-perplexity prints none then).
    pub fn report(&self) -> Option<KldReport> {
        if self.count < 100 {
            return None;
        }
        let mut kv = self.kld_values.clone();
        let mut pv = self.p_diff_values.clone();
        kv.sort_by(f32::total_cmp);
        pv.sort_by(f32::total_cmp);
        let run = self.running();
        let (q, b, cov) = self.log_ppls();
        let ppl = q.0.exp();
        let ppl_unc = ppl * q.1;
        let base = b.0.exp();
        let base_unc = base * b.1;
        let ratio = run.ln_ppl_ratio;
        let r = ratio.0.exp();
        let ppl_cov = ppl * base * cov;
        let quant = |v: &[f32], labels: &[(&'static str, f32)]| {
            Quantiles(
                labels
                    .iter()
                    .map(|&(l, f)| {
                        let x = match l {
                            "max" => v[v.len() - 1],
                            "min" => v[0],
                            "median" => median(v),
                            _ => percentile(v, f),
                        };
                        (l, x)
                    })
                    .collect(),
            )
        };
        let kld_q = quant(
            &kv,
            &[
                ("max", 1.0),
                ("99.9%", 0.999),
                ("99.0%", 0.990),
                ("95.0%", 0.950),
                ("90.0%", 0.900),
                ("median", 0.5),
                ("10.0%", 0.100),
                ("5.0%", 0.050),
                ("1.0%", 0.010),
                ("0.1%", 0.001),
                ("min", 0.0),
            ],
        );
        let p_q = quant(
            &pv,
            &[
                ("max", 1.0),
                ("99.9%", 0.999),
                ("99.0%", 0.990),
                ("95.0%", 0.950),
                ("90.0%", 0.900),
                ("75.0%", 0.750),
                ("median", 0.5),
                ("25.0%", 0.250),
                ("10.0%", 0.100),
                ("5.0%", 0.050),
                ("1.0%", 0.010),
                ("0.1%", 0.001),
                ("min", 0.0),
            ],
        );
        Some(KldReport {
            count: self.count,
            ppl: (ppl, ppl_unc),
            ppl_base: (base, base_unc),
            ln_ppl_correlation: cov / (q.1 * b.1),
            ln_ppl_ratio: ratio,
            ppl_ratio: (r, r * ratio.1),
            ppl_diff: (
                ppl - base,
                (ppl_unc * ppl_unc + base_unc * base_unc - 2.0 * ppl_cov).sqrt(),
            ),
            kld: run.kld,
            kld_quantiles: kld_q,
            p_diff: mean_and_uncertainty(self.sum_p_diff, self.sum_p_diff2, self.count),
            p_diff_quantiles: p_q,
            rms_p_diff: run.rms_p_diff,
            same_top: run.same_top,
        })
    }
}

/// Where the base model's compressed log-probabilities come from, chunk by chunk: a file of
/// llama-perplexity or qforge, or a base model evaluated in the same run.
pub trait BaseLogProbs {
    /// The chunking and the tokens (`n_chunk * n_ctx`).
    fn plan(&self) -> ChunkPlan;
    /// Base vocabulary size.
    fn n_vocab(&self) -> usize;
    /// The evaluated tokens.
    fn tokens(&self) -> &[u32];
    /// The next chunk's rows, or false after the last.
    fn next_chunk(&mut self, rows: &mut Vec<u16>) -> Result<bool, EvalError>;
}

impl BaseLogProbs for super::logits_file::LogitsReader {
    fn plan(&self) -> ChunkPlan {
        self.plan()
    }
    fn n_vocab(&self) -> usize {
        self.n_vocab()
    }
    fn tokens(&self) -> &[u32] {
        self.tokens()
    }
    fn next_chunk(&mut self, rows: &mut Vec<u16>) -> Result<bool, EvalError> {
        self.next_chunk(rows)
    }
}

/// Scores a model against base log-probabilities, chunk by chunk, passing `n_seq` chunks to `eval`
/// at a time; `on_chunk(i, line)` sees the running table. `bos` is the model's BOS id when its
/// vocabulary adds BOS.
pub fn kl_divergence(
    base: &mut dyn BaseLogProbs,
    n_vocab: usize,
    bos: Option<u32>,
    n_seq: usize,
    eval: &mut EvalFn<'_>,
    on_chunk: &mut dyn FnMut(usize, &KldRunning),
) -> Result<KldSums, EvalError> {
    if n_vocab != base.n_vocab() {
        return Err(EvalError::Mismatch {
            path: Default::default(),
            what: format!(
                "the model's vocabulary has {n_vocab} tokens, the base's {}; KL-divergence needs the same vocabulary",
                base.n_vocab()
            ),
        });
    }
    let plan = base.plan();
    let tokens = base.tokens().to_vec();
    let mut sums = KldSums::default();
    let mut rows = Vec::new();
    for group in plan.groups(n_seq) {
        let outputs = plan.eval_group(&tokens, group.clone(), bos, n_vocab, eval)?;
        for (i, logits) in group.zip(outputs) {
            if !base.next_chunk(&mut rows)? {
                return Ok(sums);
            }
            // The last logits row (position n_ctx-1) predicts nothing inside the chunk.
            sums.add_chunk(
                &logits[..plan.scored_per_chunk() * n_vocab],
                n_vocab,
                &rows,
                plan.targets(&tokens, i),
            );
            on_chunk(i, &sums.running());
        }
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::super::log_softmax::compress;
    use super::*;

    struct Mem {
        plan: ChunkPlan,
        tokens: Vec<u32>,
        rows: Vec<Vec<u16>>,
    }
    impl BaseLogProbs for Mem {
        fn plan(&self) -> ChunkPlan {
            self.plan
        }
        fn n_vocab(&self) -> usize {
            8
        }
        fn tokens(&self) -> &[u32] {
            &self.tokens
        }
        fn next_chunk(&mut self, rows: &mut Vec<u16>) -> Result<bool, EvalError> {
            if self.rows.is_empty() {
                return Ok(false);
            }
            *rows = self.rows.remove(0);
            Ok(true)
        }
    }

    fn logits_for(inp: &[u32], first: usize, bump: f32) -> Vec<f32> {
        let mut out = vec![0f32; (inp.len() - first) * 8];
        for (r, &t) in inp[first..].iter().enumerate() {
            out[r * 8 + (t as usize + 1) % 8] = 2.0;
            out[r * 8 + (t as usize + 3) % 8] = bump;
        }
        out
    }

    /// Base and candidate are closed-form distributions; KLD and the PPLs are checked against the
    /// exact values computed in f64.
    #[test]
    fn kld_statistics_match_closed_form() {
        let plan = ChunkPlan {
            n_ctx: 64,
            n_chunk: 4,
            first: 32,
        };
        let tokens: Vec<u32> = (0..256u32).map(|i| (i * 5 + i / 7) % 8).collect();
        let rows = (0..4)
            .map(|i| {
                let inp = plan.input(&tokens, i, None);
                let l = logits_for(&inp, plan.first, 0.0);
                let mut rows = vec![0u16; plan.scored_per_chunk() * compressed_row_len(8)];
                for (j, (row, t)) in rows
                    .chunks_mut(12)
                    .zip(plan.targets(&tokens, i))
                    .enumerate()
                {
                    compress(&l[j * 8..j * 8 + 8], row, *t as usize);
                }
                rows
            })
            .collect();
        let mut base = Mem {
            plan,
            tokens: tokens.clone(),
            rows,
        };
        let mut eval = |inps: &[Vec<u32>], first: usize| {
            Ok(inps.iter().map(|inp| logits_for(inp, first, 1.0)).collect())
        };
        let mut lines = 0;
        let sums = kl_divergence(&mut base, 8, None, 3, &mut eval, &mut |_, _| lines += 1).unwrap();
        assert_eq!((lines, sums.count()), (4, 4 * 31));
        let rep = sums.report().unwrap();
        // Exact: P = softmax(2 at a, 0 else), Q = softmax(2 at a, 1 at b, 0 else).
        let (e2, e1) = (2f64.exp(), 1f64.exp());
        let (zp, zq) = (e2 + 7.0, e2 + e1 + 6.0);
        let p = [e2 / zp, 1.0 / zp, 1.0 / zp];
        let q = [e2 / zq, e1 / zq, 1.0 / zq];
        let exact =
            p[0] * (p[0] / q[0]).ln() + p[1] * (p[1] / q[1]).ln() + 6.0 * p[2] * (p[2] / q[2]).ln();
        assert!((rep.kld.0 - exact).abs() < 1e-4, "{} vs {exact}", rep.kld.0);
        assert!(
            rep.kld.1 < 1e-5,
            "constant KLD has no spread: {}",
            rep.kld.1
        );
        assert_eq!(rep.same_top.0, 1.0);
        // PPLs: every target is the rule's token? Not always; compare with exact per-token values.
        let mut nll_q = 0.0;
        let mut nll_p = 0.0;
        for i in 0..4 {
            let inp = plan.input(&tokens, i, None);
            for (j, &t) in plan.targets(&tokens, i).iter().enumerate() {
                let prev = inp[plan.first + j] as usize;
                let t = t as usize;
                let (pp, qq) = if t == (prev + 1) % 8 {
                    (p[0], q[0])
                } else if t == (prev + 3) % 8 {
                    (p[1], q[1])
                } else {
                    (p[2], q[2])
                };
                nll_p -= pp.ln();
                nll_q -= qq.ln();
            }
        }
        let n = (4 * 31) as f64;
        assert!((rep.ppl.0 - (nll_q / n).exp()).abs() < 1e-4 * rep.ppl.0);
        assert!((rep.ppl_base.0 - (nll_p / n).exp()).abs() < 1e-3 * rep.ppl_base.0);
        assert!((rep.ppl_ratio.0 - ((nll_q - nll_p) / n).exp()).abs() < 1e-3);
        assert_eq!(rep.kld_quantiles.0.len(), 11);
        assert_eq!(rep.p_diff_quantiles.0.len(), 13);
    }
}
