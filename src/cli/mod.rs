//! Command-line interface: argument definitions and dispatch.

mod check;
mod convert;
mod eval_model;
mod export_hf;
mod imatrix;
mod inspect_gguf;
mod inspect_hf;
mod kld;
mod perplexity;
mod progress;
mod quant_flags;
mod quantize;
mod report;
mod tokenize;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// qforge: quantize and convert LLM checkpoints (GGUF, safetensors) in one fast binary.
#[derive(Debug, Parser)]
#[command(name = "qforge", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Worker threads (default: all cores).
    #[arg(short = 'j', long = "threads", global = true, value_name = "N")]
    pub threads: Option<usize>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Quantize a GGUF model, as llama-quantize does, byte for byte.
    Quantize(quantize::QuantizeArgs),
    /// Describe a model file: GGUF (or split set), safetensors file, or Hugging Face checkpoint.
    Inspect(InspectArgs),
    /// Perplexity of a model on a text, as llama-perplexity computes it.
    Perplexity(perplexity::PerplexityArgs),
    /// Importance matrix of a model over a calibration text, as llama-imatrix computes it.
    Imatrix(imatrix::ImatrixArgs),
    /// KL-divergence of a model against a base model or saved base log-probabilities.
    Kld(kld::KldArgs),
    /// Token ids of a text under a model's vocabulary, as llama-tokenize prints them.
    Tokenize(tokenize::TokenizeArgs),
    /// Quality gate: KL-divergence and perplexity limits against a base; exit status 3 when crossed.
    Check(check::CheckArgs),
    /// Convert a Hugging Face checkpoint directory to GGUF, as convert_hf_to_gguf.py does.
    Convert(convert::ConvertArgs),
    /// Export a GGUF model to a Hugging Face checkpoint directory (safetensors, config, tokenizer).
    ExportHf(export_hf::ExportHfArgs),
}

/// Arguments of `qforge inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Model to describe.
    pub path: std::path::PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    let threads = cli.threads.filter(|n| *n > 0);
    match cli.command {
        Command::Quantize(a) => quantize::run(a, threads),
        Command::Inspect(a) => inspect(&a.path, a.json),
        Command::Perplexity(a) => with_threads(threads, || perplexity::run(a)),
        Command::Imatrix(a) => with_threads(threads, || imatrix::run(a)),
        Command::Kld(a) => with_threads(threads, || kld::run(a)),
        Command::Tokenize(a) => tokenize::run(a),
        Command::Check(a) => with_threads(threads, || check::run(a)),
        Command::Convert(a) => with_threads(threads, || convert::run(a)),
        Command::ExportHf(a) => with_threads(threads, || export_hf::run(a)),
    }
}

/// Exit status of a run whose quality gate failed (errors exit with 1).
pub const EXIT_GATE_FAILED: u8 = 3;

/// Whether an error is a failed quality gate rather than a failure to run.
pub fn is_gate_failure(e: &anyhow::Error) -> bool {
    e.downcast_ref::<check::GateFailed>().is_some()
}

/// Runs `f` on a rayon pool of `threads` workers (the global pool when not given).
fn with_threads<T: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    match threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()?
            .install(f),
        None => f(),
    }
}

/// Dispatches `inspect` on the kind of file: GGUF by its magic, safetensors otherwise.
fn inspect(path: &std::path::Path, json: bool) -> Result<()> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let is_gguf = path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
        && &magic == b"GGUF";
    if is_gguf {
        inspect_gguf::inspect(path, json)
    } else if path.exists() {
        inspect_hf::inspect(path, json)
    } else {
        anyhow::bail!("{}: no such file or directory", path.display())
    }
}
