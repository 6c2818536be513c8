//! `qforge perplexity`: llama-perplexity's perplexity over a text file.

use super::eval_model::EvalModel;
use anyhow::Result;
use qforge_calibration::eval::logits_file::LogitsWriter;
use qforge_calibration::eval::perplexity::{perplexity, PerplexityParams};
use qforge_calibration::eval::ChunkPlan;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `qforge perplexity` (llama-perplexity's names).
#[derive(Debug, clap::Args)]
pub struct PerplexityArgs {
    /// Model to evaluate: a GGUF of any type or a Hugging Face checkpoint directory.
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: PathBuf,
    /// Text file to score (one trailing newline is ignored, as llama-perplexity does).
    #[arg(short = 'f', long = "file", value_name = "TEXT")]
    pub file: PathBuf,
    /// Tokens per chunk; the second half of each chunk is scored.
    #[arg(
        short = 'c',
        long = "ctx-size",
        default_value_t = 512,
        value_name = "N"
    )]
    pub ctx_size: usize,
    /// Score at most this many chunks.
    #[arg(long = "chunks", value_name = "K")]
    pub chunks: Option<usize>,
    /// Logical batch size: like llama-perplexity, `batch-size / ctx-size` chunks are evaluated
    /// together, in llama.cpp's micro-batches (the same positions of every chunk, 512 rows in
    /// all), so the results follow llama-perplexity's with the same `-b`.
    #[arg(
        short = 'b',
        long = "batch-size",
        default_value_t = 2048,
        value_name = "B"
    )]
    pub batch_size: usize,
    /// Also save the base log-probabilities for `qforge kld` / `llama-perplexity --kl-divergence`.
    #[arg(
        long = "kl-divergence-base",
        alias = "save-all-logits",
        value_name = "FILE"
    )]
    pub save_logits: Option<PathBuf>,
    /// Print the result as JSON on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// Runs `qforge perplexity`.
pub fn run(a: PerplexityArgs) -> Result<()> {
    check_batch(a.batch_size)?;
    let model = EvalModel::open(&a.model)?;
    let tokens = model.tokenize_file(&a.file)?;
    let plan = ChunkPlan::new(tokens.len(), a.ctx_size, a.chunks)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.file.display()))?;
    eprintln!(
        "perplexity: {} tokens, {} chunks of {}, scoring the second half of each",
        tokens.len(),
        plan.n_chunk,
        plan.n_ctx
    );
    let mut writer = match &a.save_logits {
        Some(p) => Some(LogitsWriter::create(p, plan, model.n_vocab(), &tokens)?),
        None => None,
    };
    let params = PerplexityParams {
        plan,
        n_vocab: model.n_vocab(),
        bos: model.chunk_bos(),
        n_seq: n_seq(a.batch_size, a.ctx_size),
    };
    let json = a.json;
    let mut on_chunk = |i: usize, ppl: f64| {
        let line = format!("[{}]{ppl:.4},", i + 1);
        if json {
            eprint!("{line}");
        } else {
            print!("{line}");
            let _ = std::io::stdout().flush();
        }
    };
    let r = perplexity(
        &tokens,
        params,
        &mut |seqs, f| model.eval_batch(seqs, f),
        writer.as_mut(),
        &mut on_chunk,
    )?;
    if let Some(w) = writer {
        w.finish()?;
    }
    if json {
        eprintln!();
        let mut v = serde_json::to_value(&r)?;
        v["model"] = model.path().display().to_string().into();
        v["text"] = a.file.display().to_string().into();
        v["n_tokens"] = tokens.len().into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!();
        match r.uncertainty {
            Some(u) => println!("Final estimate: PPL = {:.4} +/- {u:.5}", r.ppl),
            None => println!(
                "Final estimate: PPL = {:.4} (the standard deviation of log(prob) came out negative)",
                r.ppl
            ),
        }
    }
    Ok(())
}

/// Chunks evaluated together for a logical batch of `n_batch` tokens (llama-perplexity's
/// `n_seq = max(1, n_batch / n_ctx)`).
pub fn n_seq(n_batch: usize, n_ctx: usize) -> usize {
    (n_batch / n_ctx.max(1)).max(1)
}

/// A batch size of 0 is refused; any other works (llama-perplexity rounds it to whole contexts).
pub fn check_batch(n_batch: usize) -> Result<()> {
    if n_batch == 0 {
        anyhow::bail!("batch size must be at least 1");
    }
    Ok(())
}
