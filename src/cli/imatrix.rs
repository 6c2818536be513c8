//! `qforge imatrix`: llama-imatrix's importance matrix from qforge's forward pass.

use super::eval_model::EvalModel;
use anyhow::Result;
use qforge_calibration::imatrix::{compute_imatrix, ImatrixParams};
use qforge_calibration::model::N_UBATCH;
use std::io::Write;
use std::path::PathBuf;

/// Output formats of `qforge imatrix` (llama-imatrix's `--output-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// llama.cpp's GGUF imatrix (`<tensor>.in_sum2`, `<tensor>.counts`).
    Gguf,
    /// The legacy `.dat` format.
    Dat,
}

/// Arguments of `qforge imatrix` (llama-imatrix's names).
#[derive(Debug, clap::Args)]
pub struct ImatrixArgs {
    /// Model to run (GGUF of any type).
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: PathBuf,
    /// Calibration text (one trailing newline is ignored, as llama-imatrix does); its path as
    /// given is recorded in the file.
    #[arg(short = 'f', long = "file", value_name = "TEXT")]
    pub file: PathBuf,
    /// Output file.
    #[arg(
        short = 'o',
        long = "output-file",
        default_value = "imatrix.gguf",
        value_name = "OUT"
    )]
    pub out: PathBuf,
    /// Tokens per chunk.
    #[arg(
        short = 'c',
        long = "ctx-size",
        default_value_t = 512,
        value_name = "N"
    )]
    pub ctx_size: usize,
    /// Process at most this many chunks.
    #[arg(long = "chunks", value_name = "K")]
    pub chunks: Option<usize>,
    /// Logical batch size: llama-imatrix evaluates `max(1, B / N)` chunks together, which decides
    /// which micro-batches are too short to collect; values do not depend on it otherwise.
    #[arg(
        short = 'b',
        long = "batch-size",
        default_value_t = 2048,
        value_name = "B"
    )]
    pub batch_size: usize,
    /// File format (llama-imatrix writes GGUF whatever the file name unless told `dat`).
    #[arg(long = "output-format", value_enum, default_value = "gguf")]
    pub output_format: OutputFormat,
    /// Also collect the output layer (`output.weight`).
    #[arg(long = "process-output")]
    pub process_output: bool,
    /// Parse special tokens in the text.
    #[arg(long = "parse-special")]
    pub parse_special: bool,
    /// Print a JSON summary on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// Runs `qforge imatrix`.
pub fn run(a: ImatrixArgs) -> Result<()> {
    let model = EvalModel::open(&a.model)?;
    let tokens = model.tokenize_file_with(&a.file, a.parse_special)?;
    let params = ImatrixParams {
        n_ctx: a.ctx_size,
        n_chunks: a.chunks,
        n_batch: a.batch_size,
        n_ubatch: N_UBATCH,
        process_output: a.process_output,
        n_vocab: model.n_vocab(),
        n_expert: model.n_expert(),
        bos: model.chunk_bos(),
        dataset: a.file.to_string_lossy().into_owned(),
    };
    if a.output_format == OutputFormat::Gguf
        && a.out.extension().and_then(|e| e.to_str()) != Some("gguf")
    {
        eprintln!(
            "imatrix: saving in the GGUF format with a suffix other than .gguf; use --output-format dat for the legacy format"
        );
    }
    eprintln!(
        "imatrix: {} tokens, chunks of {}, scoring the second half of each",
        tokens.len(),
        a.ctx_size
    );
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
    let r = compute_imatrix(
        &tokens,
        &params,
        &mut |t, obs| model.eval_observed(t, obs),
        &mut on_chunk,
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", a.file.display()))?;
    match a.output_format {
        OutputFormat::Gguf => r.imatrix.save_gguf(&a.out)?,
        OutputFormat::Dat => r.imatrix.save_legacy(&a.out)?,
    }
    if json {
        eprintln!();
        let mut v = serde_json::to_value(&r.ppl)?;
        v["model"] = model.path().display().to_string().into();
        v["text"] = a.file.display().to_string().into();
        v["output"] = a.out.display().to_string().into();
        v["n_tokens"] = tokens.len().into();
        v["entries"] = r.imatrix.entries.len().into();
        v["chunk_count"] = r.imatrix.chunk_count.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!();
        match r.ppl.uncertainty {
            Some(u) => println!("Final estimate: PPL = {:.4} +/- {u:.5}", r.ppl.ppl),
            None => println!("Unexpected negative standard deviation of log(prob)"),
        }
        eprintln!(
            "imatrix: {} entries after {} chunks written to {}",
            r.imatrix.entries.len(),
            r.imatrix.chunk_count,
            a.out.display()
        );
    }
    Ok(())
}
