//! A whole llama-imatrix run: chunks of the text through the model, statistics collected from
//! every chunk, perplexity of each chunk's second half printed as it goes.

use super::layout::BatchLayout;
use super::{Collector, ImatrixError};
use crate::eval::perplexity::{perplexity, PerplexityParams, PerplexityResult};
use crate::eval::{ChunkPlan, EvalError};
use crate::model::ActivationObserver;
use qforge_formats::imatrix::Imatrix;

/// A forward pass that returns the logits of every position of each sequence (independent
/// sequences evaluated together as `Model::eval_batch` does) and shows the inputs of its weight
/// products to the observer, micro-batch by micro-batch.
pub type ObservedEvalFn<'a> =
    dyn FnMut(&[Vec<u32>], &mut dyn ActivationObserver) -> Result<Vec<Vec<f32>>, EvalError> + 'a;

/// What an imatrix run needs besides the model and the tokens.
#[derive(Debug, Clone)]
pub struct ImatrixParams {
    /// Tokens per chunk (`-c`).
    pub n_ctx: usize,
    /// Process at most this many chunks (`--chunks`).
    pub n_chunks: Option<usize>,
    /// Logical batch size (`-b`); decides how many chunks llama-imatrix batches together, which
    /// decides which short micro-batches it skips.
    pub n_batch: usize,
    /// Micro-batch size (`-ub`).
    pub n_ubatch: usize,
    /// Also collect `output.weight` (`--process-output`).
    pub process_output: bool,
    /// Vocabulary size (logits per position).
    pub n_vocab: usize,
    /// Experts per MoE layer (0 for dense models).
    pub n_expert: usize,
    /// BOS id put at the start of every chunk, when the vocabulary adds BOS.
    pub bos: Option<u32>,
    /// The dataset name recorded in the file (llama-imatrix records the `-f` path as given).
    pub dataset: String,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct ImatrixRun {
    /// The collected importance matrix.
    pub imatrix: Imatrix,
    /// The perplexity llama-imatrix prints along the way.
    pub ppl: PerplexityResult,
}

/// Runs llama-imatrix's loop over `tokens` (as tokenized with BOS): each chunk, its first token
/// replaced by BOS when the vocabulary adds one, goes through `eval` with every position output;
/// the collector sees every weight product, and the second half of each chunk is scored.
/// `on_chunk(i, running_ppl)` is called after each chunk.
pub fn compute_imatrix(
    tokens: &[u32],
    params: &ImatrixParams,
    eval: &mut ObservedEvalFn<'_>,
    on_chunk: &mut dyn FnMut(usize, f64),
) -> Result<ImatrixRun, ImatrixError> {
    if params.n_batch == 0 || params.n_ubatch == 0 {
        return Err(ImatrixError::Params(
            "batch and micro-batch sizes must be at least 1".into(),
        ));
    }
    let plan = ChunkPlan::new(tokens.len(), params.n_ctx, params.n_chunks)?;
    let layout = BatchLayout::new(plan.n_ctx, params.n_batch, params.n_ubatch);
    let mut collector = Collector::new(params.process_output, params.n_expert);
    let nv = params.n_vocab;
    let result = {
        // The chunks of one llama-imatrix batch go through the model together, so the collector
        // sees llama.cpp's micro-batches (the same positions of every chunk) in its order.
        let mut observed =
            |inputs: &[Vec<u32>], first: usize| -> Result<Vec<Vec<f32>>, EvalError> {
                let outs = eval(inputs, &mut collector)?;
                if collector.failed() {
                    // The collector keeps its error for the caller; the perplexity loop only stops.
                    return Err(EvalError::model(StopCollection));
                }
                let mut kept = Vec::with_capacity(outs.len());
                for (input, mut logits) in inputs.iter().zip(outs) {
                    if logits.len() != input.len() * nv {
                        return Err(EvalError::LogitCount {
                            got: logits.len(),
                            expected: input.len() * nv,
                        });
                    }
                    logits.drain(..first * nv);
                    kept.push(logits);
                }
                Ok(kept)
            };
        perplexity(
            tokens,
            PerplexityParams {
                plan,
                n_vocab: nv,
                bos: params.bos,
                n_seq: layout.n_seq,
            },
            &mut observed,
            None,
            on_chunk,
        )
    };
    let ppl = match result {
        Ok(r) => r,
        Err(e) => return Err(collector.take_error().map_or(ImatrixError::Eval(e), |c| c)),
    };
    let imatrix = collector.into_imatrix(plan.n_ctx, vec![params.dataset.clone()]);
    Ok(ImatrixRun { imatrix, ppl })
}

/// Marker error ending the perplexity loop after the collector failed.
#[derive(Debug, thiserror::Error)]
#[error("activation statistics could not be collected")]
struct StopCollection;
