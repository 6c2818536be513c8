//! `qforge imatrix`: llama-imatrix's importance matrix from qforge's forward pass.

use super::eval_model::EvalModel;
use anyhow::Result;
use qforge_calibration::eval::ChunkPlan;
use qforge_calibration::imatrix::{compute_imatrix, ImatrixParams, ImatrixRun};
use qforge_calibration::model::N_UBATCH;
use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// Model to run: a GGUF of any type or a Hugging Face checkpoint directory.
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

/// What a calibration run needs besides the model and the text: `qforge imatrix`'s `-c`,
/// `--chunks`, `-b`, `--process-output` and `--parse-special`.
#[derive(Debug, Clone, Copy)]
pub struct CalibrationOptions {
    /// Tokens per chunk.
    pub n_ctx: usize,
    /// Process at most this many chunks.
    pub n_chunks: Option<usize>,
    /// Logical batch size.
    pub n_batch: usize,
    /// Also collect `output.weight`.
    pub process_output: bool,
    /// Parse special tokens in the text.
    pub parse_special: bool,
}

/// An importance-matrix computation ready to run: the model opened for evaluation, the text
/// read and tokenized, and the chunking checked (the text holds at least one chunk). Opening it
/// is cheap (the weights are mapped, not read), so every command validates its input with
/// [`Calibration::open`] before any long work.
pub struct Calibration {
    model: EvalModel,
    text: PathBuf,
    tokens: Vec<u32>,
    params: ImatrixParams,
}

impl Calibration {
    /// Opens `model` and tokenizes `text` (its path as given is the dataset name recorded).
    /// Errors name the file at fault.
    pub fn open(model: &Path, text: &Path, o: CalibrationOptions) -> Result<Self> {
        let model = EvalModel::open(model)?;
        let tokens = model.tokenize_file_with(text, o.parse_special)?;
        ChunkPlan::new(tokens.len(), o.n_ctx, o.n_chunks)
            .map_err(|e| anyhow::anyhow!("{}: {e}", text.display()))?;
        let params = ImatrixParams {
            n_ctx: o.n_ctx,
            n_chunks: o.n_chunks,
            n_batch: o.n_batch,
            n_ubatch: N_UBATCH,
            process_output: o.process_output,
            n_vocab: model.n_vocab(),
            n_expert: model.n_expert(),
            bos: model.chunk_bos(),
            dataset: text.to_string_lossy().into_owned(),
        };
        Ok(Calibration {
            model,
            text: text.to_path_buf(),
            tokens,
            params,
        })
    }

    /// Tokens in the text.
    pub fn n_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// The model file.
    pub fn model_path(&self) -> &Path {
        self.model.path()
    }

    /// Runs llama-imatrix's loop; `on_chunk(i, running_ppl)` after each chunk. Consumes the
    /// calibration, so the model's mapping and the forward pass's buffers are released when it
    /// returns.
    pub fn run(self, on_chunk: &mut dyn FnMut(usize, f64)) -> Result<ImatrixRun> {
        let Calibration {
            model,
            text,
            tokens,
            params,
        } = self;
        let r = compute_imatrix(
            &tokens,
            &params,
            &mut |t, obs| model.eval_observed(t, obs),
            on_chunk,
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", text.display()))?;
        Ok(r)
    }
}

/// Runs `qforge imatrix`.
pub fn run(a: ImatrixArgs) -> Result<()> {
    let calib = Calibration::open(
        &a.model,
        &a.file,
        CalibrationOptions {
            n_ctx: a.ctx_size,
            n_chunks: a.chunks,
            n_batch: a.batch_size,
            process_output: a.process_output,
            parse_special: a.parse_special,
        },
    )?;
    if a.output_format == OutputFormat::Gguf
        && a.out.extension().and_then(|e| e.to_str()) != Some("gguf")
    {
        eprintln!(
            "imatrix: saving in the GGUF format with a suffix other than .gguf; use --output-format dat for the legacy format"
        );
    }
    let n_tokens = calib.n_tokens();
    let model_path = calib.model_path().to_path_buf();
    eprintln!(
        "imatrix: {n_tokens} tokens, chunks of {}, scoring the second half of each",
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
    let r = calib.run(&mut on_chunk)?;
    match a.output_format {
        OutputFormat::Gguf => r.imatrix.save_gguf(&a.out)?,
        OutputFormat::Dat => r.imatrix.save_legacy(&a.out)?,
    }
    if json {
        eprintln!();
        let mut v = serde_json::to_value(&r.ppl)?;
        v["model"] = model_path.display().to_string().into();
        v["text"] = a.file.display().to_string().into();
        v["output"] = a.out.display().to_string().into();
        v["n_tokens"] = n_tokens.into();
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
