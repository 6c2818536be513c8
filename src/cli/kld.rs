//! `qforge kld`: KL-divergence of a model against a base, as llama-perplexity `--kl-divergence`.

use super::eval_model::{EvalModel, ModelBase};
use anyhow::{Context, Result};
use qforge_calibration::eval::kld::{kl_divergence, BaseLogProbs, KldReport, KldRunning, KldSums};
use qforge_calibration::eval::logits_file::LogitsReader;
use qforge_calibration::eval::ChunkPlan;
use std::path::{Path, PathBuf};

/// Where the base comes from: a log-probability file or a model evaluated in the same run.
#[derive(Debug, clap::Args)]
pub struct BaseArgs {
    /// Base: a log-probability file (`qforge perplexity --kl-divergence-base`, or llama-perplexity's)
    /// or a base model evaluated on `-f TEXT` in the same run.
    #[arg(long = "base", value_name = "BASE")]
    pub base: PathBuf,
    /// Text file (needed when the base is a model).
    #[arg(short = 'f', long = "file", value_name = "TEXT")]
    pub file: Option<PathBuf>,
    /// Tokens per chunk when the base is a model; with a base file, as llama-perplexity's
    /// context size it caps the chunks per batch at `max(1, B / N)`.
    #[arg(
        short = 'c',
        long = "ctx-size",
        default_value_t = 512,
        value_name = "N"
    )]
    pub ctx_size: usize,
    /// Score at most this many chunks when the base is a model.
    #[arg(long = "chunks", value_name = "K")]
    pub chunks: Option<usize>,
    /// Logical batch size: `max(1, B / N)` chunks go through the model together, in llama.cpp's
    /// micro-batches, so the results follow llama-perplexity's with the same `-b`.
    #[arg(
        short = 'b',
        long = "batch-size",
        default_value_t = 2048,
        value_name = "B"
    )]
    pub batch_size: usize,
}

/// Arguments of `qforge kld`.
#[derive(Debug, clap::Args)]
pub struct KldArgs {
    /// Model to score against the base (GGUF or Hugging Face checkpoint directory).
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: PathBuf,
    #[command(flatten)]
    pub base: BaseArgs,
    /// Print the statistics as JSON on stdout (the running table goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// Whether a path is a log-probability file (by its magic).
fn is_logits_file(p: &Path) -> bool {
    use std::io::Read;
    let mut m = [0u8; 8];
    p.is_file()
        && std::fs::File::open(p)
            .and_then(|mut f| f.read_exact(&mut m))
            .is_ok()
        && &m == b"_logits_"
}

/// Scores `model` against the base; prints the running table to stdout or stderr.
pub fn score(model: &EvalModel, base: &BaseArgs, table_to_stderr: bool) -> Result<KldSums> {
    let print = |s: &str| {
        if table_to_stderr {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    };
    print("chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p");
    let mut on_chunk = |i: usize, r: &KldRunning| print(&running_line(i, r));
    super::perplexity::check_batch(base.batch_size)?;
    let mut eval = |seqs: &[Vec<u32>], f: usize| model.eval_batch(seqs, f);
    let n_seq = |n_ctx: usize| super::perplexity::n_seq(base.batch_size, n_ctx);
    let sums = if is_logits_file(&base.base) {
        let mut reader = LogitsReader::open(&base.base)?;
        // llama-perplexity sizes its context from -c (n_seq_max = n_batch / c streams) and then
        // batches n_batch / (the file's n_ctx) chunks, capped at n_seq_max.
        let n_seq = n_seq(reader.plan().n_ctx).min(n_seq(base.ctx_size));
        kl_divergence(
            &mut reader,
            model.n_vocab(),
            model.chunk_bos(),
            n_seq,
            &mut eval,
            &mut on_chunk,
        )
        .with_context(|| format!("scoring against {}", base.base.display()))?
    } else {
        let text = base.file.as_ref().with_context(|| {
            format!(
                "{} is a model, not a log-probability file: give the text to evaluate with -f",
                base.base.display()
            )
        })?;
        let base_model = EvalModel::open(&base.base)?;
        let tokens = base_model.tokenize_file(text)?;
        let plan = ChunkPlan::new(tokens.len(), base.ctx_size, base.chunks)
            .map_err(|e| anyhow::anyhow!("{}: {e}", text.display()))?;
        let n_seq = n_seq(plan.n_ctx);
        let mut src = ModelBase::new(&base_model, plan, tokens, n_seq);
        check_vocab(&src, model)?;
        kl_divergence(
            &mut src,
            model.n_vocab(),
            model.chunk_bos(),
            n_seq,
            &mut eval,
            &mut on_chunk,
        )?
    };
    Ok(sums)
}

fn check_vocab(base: &dyn BaseLogProbs, model: &EvalModel) -> Result<()> {
    if base.n_vocab() != model.n_vocab() {
        anyhow::bail!(
            "{}: vocabulary of {} tokens, the base has {}; KL-divergence needs the same vocabulary",
            model.path().display(),
            model.n_vocab(),
            base.n_vocab()
        );
    }
    Ok(())
}

fn running_line(i: usize, r: &KldRunning) -> String {
    format!(
        "{:4}    {:9.4} ± {:9.4}    {:10.5} ± {:10.5}    {:10.5} ± {:10.5}    {:6.3} ± {:6.3} %    {:6.3} ± {:6.3} %",
        i + 1,
        r.ppl.0,
        r.ppl.1,
        r.ln_ppl_ratio.0,
        r.ln_ppl_ratio.1,
        r.kld.0,
        r.kld.1,
        100.0 * r.rms_p_diff.0,
        100.0 * r.rms_p_diff.1,
        100.0 * r.same_top.0,
        100.0 * r.same_top.1
    )
}

/// Prints the final statistics as llama-perplexity does.
pub fn print_report(r: &KldReport) {
    println!("====== Perplexity statistics ======");
    println!(
        "Mean PPL(Q)                   : {:10.6} ± {:10.6}",
        r.ppl.0, r.ppl.1
    );
    println!(
        "Mean PPL(base)                : {:10.6} ± {:10.6}",
        r.ppl_base.0, r.ppl_base.1
    );
    println!(
        "Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2}%",
        100.0 * r.ln_ppl_correlation
    );
    println!(
        "Mean ln(PPL(Q)/PPL(base))     : {:10.6} ± {:10.6}",
        r.ln_ppl_ratio.0, r.ln_ppl_ratio.1
    );
    println!(
        "Mean PPL(Q)/PPL(base)         : {:10.6} ± {:10.6}",
        r.ppl_ratio.0, r.ppl_ratio.1
    );
    println!(
        "Mean PPL(Q)-PPL(base)         : {:10.6} ± {:10.6}",
        r.ppl_diff.0, r.ppl_diff.1
    );
    println!();
    println!("====== KL divergence statistics ======");
    println!("Mean    KLD: {:10.6} ± {:10.6}", r.kld.0, r.kld.1);
    for (label, v) in &r.kld_quantiles.0 {
        println!("{}KLD: {v:10.6}", quantile_label(label));
    }
    println!();
    println!("====== Token probability statistics ======");
    println!(
        "Mean    Δp: {:6.3} ± {:5.3} %",
        100.0 * r.p_diff.0,
        100.0 * r.p_diff.1
    );
    for (label, v) in &r.p_diff_quantiles.0 {
        println!("{}Δp: {:6.3}%", quantile_label(label), 100.0 * v);
    }
    println!(
        "RMS Δp    : {:6.3} ± {:5.3} %",
        100.0 * r.rms_p_diff.0,
        100.0 * r.rms_p_diff.1
    );
    println!(
        "Same top p: {:6.3} ± {:5.3} %",
        100.0 * r.same_top.0,
        100.0 * r.same_top.1
    );
}

/// The label column as llama-perplexity prints it (`Maximum `, `99.9%   `, ` 5.0%   `, `Median  `).
fn quantile_label(l: &str) -> String {
    match l {
        "max" => "Maximum ".into(),
        "min" => "Minimum ".into(),
        "median" => "Median  ".into(),
        p => format!("{p:>5}   "),
    }
}

/// Runs `qforge kld`.
pub fn run(a: KldArgs) -> Result<()> {
    let model = EvalModel::open(&a.model)?;
    let sums = score(&model, &a.base, a.json)?;
    let report = sums.report().with_context(|| {
        format!(
            "only {} tokens were scored; statistics need at least 100 (use a longer text or more chunks)",
            sums.count()
        )
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!();
        print_report(&report);
    }
    Ok(())
}
