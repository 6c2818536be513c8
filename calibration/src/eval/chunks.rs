//! How llama-perplexity cuts a token stream into evaluation chunks.

use std::ops::Range;

use super::{EvalError, EvalFn};

/// The chunking of a token stream: `n_chunk` chunks of `n_ctx` tokens, of which positions
/// `first..n_ctx-1` are scored (each predicts the token after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    /// Tokens per chunk.
    pub n_ctx: usize,
    /// Chunks evaluated.
    pub n_chunk: usize,
    /// First scored position in a chunk (`n_ctx / 2`).
    pub first: usize,
}

impl ChunkPlan {
    /// The plan for `n_tokens` tokens: as many whole chunks as fit, capped at `max_chunks`.
    /// Like llama-perplexity, at least `2 * n_ctx` tokens are required.
    pub fn new(
        n_tokens: usize,
        n_ctx: usize,
        max_chunks: Option<usize>,
    ) -> Result<Self, EvalError> {
        if n_ctx < 4 {
            return Err(EvalError::BadContext(n_ctx));
        }
        if n_tokens < 2 * n_ctx {
            return Err(EvalError::NotEnoughTokens { n_tokens, n_ctx });
        }
        let n_max = n_tokens / n_ctx;
        let n_chunk = max_chunks.map_or(n_max, |k| k.min(n_max));
        Ok(ChunkPlan {
            n_ctx,
            n_chunk,
            first: n_ctx / 2,
        })
    }

    /// Scored tokens per chunk (`n_ctx - 1 - first`).
    pub fn scored_per_chunk(&self) -> usize {
        self.n_ctx - 1 - self.first
    }

    /// The tokens fed to the model for chunk `i`: the chunk's slice of `tokens`, its first token
    /// replaced by `bos` when given (llama-perplexity does so when the vocabulary adds BOS).
    pub fn input(&self, tokens: &[u32], i: usize, bos: Option<u32>) -> Vec<u32> {
        let start = i * self.n_ctx;
        let mut v = tokens[start..start + self.n_ctx].to_vec();
        if let Some(b) = bos {
            v[0] = b;
        }
        v
    }

    /// The chunks of each forward call when `n_seq` go together: `0..n_seq`, `n_seq..2·n_seq`, ...
    pub fn groups(&self, n_seq: usize) -> impl Iterator<Item = Range<usize>> + '_ {
        let n_seq = n_seq.max(1);
        (0..self.n_chunk)
            .step_by(n_seq)
            .map(move |g| g..(g + n_seq).min(self.n_chunk))
    }

    /// Evaluates chunks `group` of `tokens` in one call of `eval` (each from position `first`, its
    /// first token replaced by `bos` when given) and checks that every chunk came back with
    /// `n_ctx - first` rows of `n_vocab` logits.
    pub fn eval_group(
        &self,
        tokens: &[u32],
        group: Range<usize>,
        bos: Option<u32>,
        n_vocab: usize,
        eval: &mut EvalFn<'_>,
    ) -> Result<Vec<Vec<f32>>, EvalError> {
        let inputs: Vec<Vec<u32>> = group.map(|i| self.input(tokens, i, bos)).collect();
        let outputs = eval(&inputs, self.first)?;
        if outputs.len() != inputs.len() {
            return Err(EvalError::LogitCount {
                got: outputs.len(),
                expected: inputs.len(),
            });
        }
        let expected = (self.n_ctx - self.first) * n_vocab;
        if let Some(bad) = outputs.iter().find(|l| l.len() != expected) {
            return Err(EvalError::LogitCount {
                got: bad.len(),
                expected,
            });
        }
        Ok(outputs)
    }

    /// The tokens each scored position predicts in chunk `i`: `tokens[start+first+1 .. start+n_ctx]`.
    pub fn targets<'t>(&self, tokens: &'t [u32], i: usize) -> &'t [u32] {
        let start = i * self.n_ctx;
        &tokens[start + self.first + 1..start + self.n_ctx]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_matches_llama_perplexity_rules() {
        assert!(matches!(
            ChunkPlan::new(1023, 512, None),
            Err(EvalError::NotEnoughTokens { .. })
        ));
        let p = ChunkPlan::new(1700, 512, None).unwrap();
        assert_eq!((p.n_chunk, p.first, p.scored_per_chunk()), (3, 256, 255));
        assert_eq!(ChunkPlan::new(1700, 512, Some(2)).unwrap().n_chunk, 2);
        assert_eq!(ChunkPlan::new(1700, 512, Some(9)).unwrap().n_chunk, 3);
        let toks: Vec<u32> = (0..1700).collect();
        let inp = p.input(&toks, 1, Some(7));
        assert_eq!((inp[0], inp[1], inp.len()), (7, 513, 512));
        let t = p.targets(&toks, 1);
        assert_eq!((t[0], *t.last().unwrap(), t.len()), (512 + 257, 1023, 255));
    }
}
