//! Log-softmax of one row of logits, in the three forms llama-perplexity uses, with its float
//! types and operation order (so the numbers agree to the last bits that matter).

/// Scores one position: `(log p(tok), logit of tok, p(tok))`, as llama-perplexity's plain
/// `log_softmax` (maximum in f32, sum of `expf` in f64).
pub fn score(logits: &[f32], tok: usize) -> (f64, f32, f32) {
    let max = logits.iter().copied().fold(logits[0], f32::max);
    let sum_exp: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    let lp = f64::from(logits[tok] - max) - sum_exp.ln();
    let p = (logits[tok] - max).exp() / sum_exp as f32;
    (lp, logits[tok], p)
}

/// u16 values per token in llama-perplexity's compressed log-probability rows: two f32 (scale,
/// minimum log-probability) then one u16 per vocabulary entry, padded to an even count.
pub fn compressed_row_len(n_vocab: usize) -> usize {
    2 * n_vocab.div_ceil(2) + 4
}

/// llama.cpp's `nearest_int`: rounds to the nearest integer (ties to even) by adding 1.5·2^23.
fn nearest_int(v: f32) -> i32 {
    let bits = (v + 12_582_912.0f32).to_bits() as i32;
    (bits & 0x007f_ffff) - 0x0040_0000
}

/// Compresses one row of logits into llama-perplexity's `--kl-divergence-base` form (`out` has
/// [`compressed_row_len`] values) and returns the negative log-likelihood of `tok`.
/// Log-probabilities more than 16 below the maximum are clamped; the rest are quantized to 16 bits.
pub fn compress(logits: &[f32], out: &mut [u16], tok: usize) -> f64 {
    let mut max = logits[0];
    let mut min = logits[0];
    for &l in &logits[1..] {
        max = max.max(l);
        min = min.min(l);
    }
    let min = min.max(max - 16.0);
    let sum_exp: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    let log_sum_exp = sum_exp.ln() as f32;
    let min_log_prob = min - max - log_sum_exp;
    let scale = (max - min) / 65535.0;
    let (head, body) = out.split_at_mut(4);
    let s = scale.to_le_bytes();
    let m = min_log_prob.to_le_bytes();
    head[0] = u16::from_le_bytes([s[0], s[1]]);
    head[1] = u16::from_le_bytes([s[2], s[3]]);
    head[2] = u16::from_le_bytes([m[0], m[1]]);
    head[3] = u16::from_le_bytes([m[2], m[3]]);
    body.fill(0);
    if scale != 0.0 {
        let inv = 1.0 / scale;
        for (o, &l) in body.iter_mut().zip(logits) {
            *o = if l > min {
                nearest_int(inv * (l - min)) as u16
            } else {
                0
            };
        }
    }
    f64::from(max + log_sum_exp - logits[tok])
}

/// Compresses one chunk: row `j` of `logits` (n_vocab values each, from the first scored
/// position) into row `j` of `rows`, one per target; returns each target's negative
/// log-likelihood. Rows are independent, so this runs in parallel with a fixed result order.
pub fn compress_chunk(
    logits: &[f32],
    n_vocab: usize,
    targets: &[u32],
    rows: &mut [u16],
) -> Vec<f64> {
    use rayon::prelude::*;
    rows.par_chunks_mut(compressed_row_len(n_vocab))
        .zip(logits.par_chunks(n_vocab))
        .zip(targets.par_iter())
        .map(|((row, l), &t)| compress(l, row, t as usize))
        .collect()
}

/// The scale and minimum log-probability stored at the head of a compressed row.
pub fn compressed_head(row: &[u16]) -> (f32, f32) {
    let f = |a: u16, b: u16| {
        let (a, b) = (a.to_le_bytes(), b.to_le_bytes());
        f32::from_le_bytes([a[0], a[1], b[0], b[1]])
    };
    (f(row[0], row[1]), f(row[2], row[3]))
}

/// Per-token comparison of a model's logits with a base model's compressed log-probabilities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenKld {
    /// Negative log-likelihood of the target under the model.
    pub nll: f32,
    /// Negative log-likelihood of the target under the base model.
    pub nll_base: f32,
    /// KL(base ‖ model) over the vocabulary (base log-probabilities below -16 are skipped).
    pub kld: f64,
    /// Probability of the target under the model minus under the base.
    pub p_diff: f32,
    /// Whether both put their highest probability on the same token.
    pub same_top: bool,
}

/// Compares one row of logits with the base row, as llama-perplexity's KL-divergence `log_softmax`.
pub fn kld(logits: &[f32], base_row: &[u16], tok: usize) -> TokenKld {
    let mut max = logits[0];
    let mut imax = 0;
    for (i, &l) in logits.iter().enumerate().skip(1) {
        if l > max {
            max = l;
            imax = i;
        }
    }
    let sum_exp: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    let log_sum_exp = sum_exp.ln() as f32;
    let (scale, min_log_prob) = compressed_head(base_row);
    let base = &base_row[4..];
    let nll = max + log_sum_exp - logits[tok];
    let nll_base = -(scale * f32::from(base[tok]) + min_log_prob);
    let max = max + log_sum_exp;
    let mut sum = 0.0f64;
    let mut imax_base = 0;
    let mut p_log_base_max = 0.0f32;
    for (i, (&q, &l)) in base.iter().zip(logits).enumerate() {
        let p_log_base = scale * f32::from(q) + min_log_prob;
        if i == 0 || p_log_base > p_log_base_max {
            p_log_base_max = p_log_base;
            imax_base = i;
        }
        if p_log_base > -16.0 {
            let p_base = p_log_base.exp();
            sum += f64::from(p_base * (p_log_base - l + max));
        }
    }
    let p_diff = (-nll).exp() - (-nll_base).exp();
    TokenKld {
        nll,
        nll_base,
        kld: sum,
        p_diff,
        same_top: imax == imax_base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_log_softmax(logits: &[f32]) -> Vec<f64> {
        let m = logits.iter().fold(f64::MIN, |a, &b| a.max(f64::from(b)));
        let s: f64 = logits.iter().map(|&l| (f64::from(l) - m).exp()).sum();
        logits.iter().map(|&l| f64::from(l) - m - s.ln()).collect()
    }

    fn row(n: usize, seed: u32) -> Vec<f32> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 8) as f32 / (1u32 << 24) as f32 * 12.0 - 6.0
            })
            .collect()
    }

    #[test]
    fn score_is_the_log_softmax() {
        let l = row(1000, 1);
        let exact = exact_log_softmax(&l);
        for tok in [0, 17, 999] {
            let (lp, logit, p) = score(&l, tok);
            assert!((lp - exact[tok]).abs() < 1e-5, "{lp} vs {}", exact[tok]);
            assert_eq!(logit, l[tok]);
            assert!((f64::from(p) - exact[tok].exp()).abs() < 1e-6);
        }
    }

    #[test]
    fn compressed_rows_decode_to_the_log_softmax() {
        let l = row(333, 2);
        let exact = exact_log_softmax(&l);
        let mut out = vec![0u16; compressed_row_len(l.len())];
        assert_eq!(out.len(), 338);
        let nll = compress(&l, &mut out, 5);
        assert!((nll + exact[5]).abs() < 1e-5);
        let (scale, minlp) = compressed_head(&out);
        // The logits span 12 < 16, so nothing is clamped; the 16-bit step is span/65535.
        for (i, &q) in out[4..4 + l.len()].iter().enumerate() {
            let lp = f64::from(scale * f32::from(q) + minlp);
            assert!((lp - exact[i]).abs() < 1e-4, "{i}: {lp} vs {}", exact[i]);
        }
    }

    #[test]
    fn kld_of_a_model_against_itself_is_zero_and_grows_with_change() {
        let l = row(500, 3);
        let mut base = vec![0u16; compressed_row_len(l.len())];
        compress(&l, &mut base, 9);
        let same = kld(&l, &base, 9);
        assert!(same.kld.abs() < 1e-4, "{}", same.kld);
        assert!(same.same_top && same.p_diff.abs() < 1e-4);
        // Perturb: the exact KL(P||Q) of the two distributions.
        let l2: Vec<f32> = l
            .iter()
            .enumerate()
            .map(|(i, &v)| v + if i % 3 == 0 { 0.7 } else { 0.0 })
            .collect();
        let (p, q) = (exact_log_softmax(&l), exact_log_softmax(&l2));
        let exact: f64 = p.iter().zip(&q).map(|(a, b)| a.exp() * (a - b)).sum();
        let got = kld(&l2, &base, 9);
        assert!(
            (got.kld - exact).abs() < 2e-4 * exact.max(1e-3),
            "{} vs {exact}",
            got.kld
        );
        assert!((f64::from(got.nll) + q[9]).abs() < 1e-5);
        assert!((f64::from(got.nll_base) + p[9]).abs() < 1e-4);
    }
}
