//! `qforge convert`: a Hugging Face checkpoint directory to GGUF, as convert_hf_to_gguf.py
//! writes it, or, for a llama-quantize type, straight to the file llama-quantize would make of
//! the converter's f32 output (in one pass: the f32 file is never written).

use super::imatrix::Calibration;
use super::progress::Bars;
use super::quant_flags::QuantizeFlags;
use super::report::human_bytes;
use anyhow::{bail, Context, Result};
use qforge::convert::{hub, write_gguf, HfModel, OutType, SplitOptions};
use qforge::pipeline::{self, InputModel, OutputSplit, QuantizeJob};
use qforge::quantize::ftype::{allowed_types_help, parse_ftype, QuantOption};
use std::path::PathBuf;

/// Arguments of `qforge convert`.
#[derive(Debug, clap::Args)]
#[command(after_help = after_help())]
pub struct ConvertArgs {
    /// Checkpoint directory (config.json, *.safetensors, tokenizer files), or a Hugging Face
    /// repo id `org/name[@revision]` (from the cache, else downloaded; HF_HOME, HF_HUB_CACHE,
    /// HF_HUB_OFFLINE, HF_ENDPOINT, HF_TOKEN as huggingface_hub reads them).
    pub source: PathBuf,
    /// Output GGUF file (split sets are named `<stem>-0000i-of-0000n.gguf` beside it).
    #[arg(short = 'o', long = "outfile", value_name = "OUT.gguf")]
    pub out: PathBuf,
    /// Output type. Lower-case f32, f16, bf16, q8_0, auto: the converter's --outtype. Any
    /// llama-quantize type (Q4_K_M, IQ4_XS, Q8_0, F16, ... or its number): the converter's f32
    /// output quantized as llama-quantize would, in one pass.
    #[arg(short = 't', long = "type", alias = "outtype", default_value = "auto")]
    pub ty: String,
    /// Most tensors per output file.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub split_max_tensors: usize,
    /// Most bytes per output file: a number, optionally followed by K, M or G (powers of 1000).
    #[arg(long, default_value = "0", value_name = "SIZE")]
    pub split_max_size: String,
    /// Print the files that would be written and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// llama-quantize's options (llama-quantize types only).
    #[command(
        flatten,
        next_help_heading = "Quantization (llama-quantize types only)"
    )]
    pub quantize: QuantizeFlags,
}

fn after_help() -> String {
    format!(
        "Types: f32, f16, bf16, q8_0, auto (the converter's), or one of llama-quantize's:\n{}",
        allowed_types_help()
    )
}

/// What `--type` asks for.
enum Target {
    /// The converter's `--outtype` (`None`: auto).
    Float(Option<OutType>),
    /// A llama-quantize type.
    Quantized(&'static QuantOption),
}

/// The converter's outtypes are its (lower-case) argparse choices; anything else is a
/// llama-quantize type name or number.
fn parse_target(s: &str) -> Result<Target> {
    match s {
        "f32" | "f16" | "bf16" | "q8_0" | "auto" => {
            let t = OutType::parse(s).expect("a converter outtype");
            return Ok(Target::Float(t));
        }
        "tq1_0" | "tq2_0" => bail!(
            "--type {s}: the converter's ternary outtypes are not supported; use {} for llama-quantize's",
            s.to_ascii_uppercase()
        ),
        _ => {}
    }
    match parse_ftype(s) {
        Some(o) => Ok(Target::Quantized(o)),
        None => bail!(
            "--type {s}: expected f32, f16, bf16, q8_0, auto or a llama-quantize type (Q4_K_M, IQ4_XS, ...; see --help)"
        ),
    }
}

/// `split_str_to_n_bytes`.
fn parse_size(s: &str) -> Result<u64> {
    let (num, mul) = match s.chars().last() {
        Some('K') => (&s[..s.len() - 1], 1000u64),
        Some('M') => (&s[..s.len() - 1], 1000 * 1000),
        Some('G') => (&s[..s.len() - 1], 1000 * 1000 * 1000),
        _ => (s, 1),
    };
    match num.parse::<u64>() {
        Ok(n) => Ok(n * mul),
        Err(_) => {
            bail!("invalid split size: {s}, must be a number, optionally followed by K, M, or G")
        }
    }
}

/// Runs `qforge convert`.
pub fn run(mut a: ConvertArgs) -> Result<()> {
    // SOURCE: a local directory, else a Hugging Face repo id (cached or downloaded); the
    // resolved directory lives as long as `_resolved`.
    let _resolved = hub::resolve(&a.source, &hub::HubEnv::from_env())?;
    a.source = _resolved.dir().to_path_buf();
    let target = parse_target(&a.ty)?;
    let opts = SplitOptions {
        max_tensors: a.split_max_tensors,
        max_bytes: parse_size(&a.split_max_size)?,
    };
    let outtype = match target {
        Target::Float(t) => t,
        Target::Quantized(o) => return run_quantized(&a, o, opts),
    };
    let given = a.quantize.given();
    if !given.is_empty() {
        bail!(
            "{}: options for llama-quantize types only, not for --type {}",
            given.join(", "),
            a.ty
        );
    }
    let model = HfModel::open(&a.source, outtype)?;
    if a.dry_run {
        let specs = model.tensor_specs();
        let shards = qforge::convert::write::split_plan(&specs, opts);
        let paths = qforge::convert::write::shard_paths(&a.out, shards.len());
        for (p, idx) in paths.iter().zip(&shards) {
            let bytes: u64 = idx.iter().map(|&i| specs[i].n_bytes().unwrap_or(0)).sum();
            eprintln!(
                "{}: n_tensors = {}, total_size = {bytes} bytes",
                p.display(),
                idx.len()
            );
            println!("{}", p.display());
        }
        return Ok(());
    }
    let files = write_gguf(&model, &a.out, opts, |_, _| {})?;
    for f in files {
        eprintln!("wrote {}", f.display());
    }
    Ok(())
}

/// `--type` a llama-quantize type: the checkpoint opened as the converter's f32 file and fed to
/// the quantization pipeline tensor by tensor. With a split limit the output is cut as
/// `llama-gguf-split --split` cuts llama-quantize's output, which takes one limit only.
fn run_quantized(a: &ConvertArgs, opt: &'static QuantOption, opts: SplitOptions) -> Result<()> {
    let split = match (opts.max_tensors, opts.max_bytes) {
        (0, 0) => None,
        (n, 0) => Some(OutputSplit::MaxTensors(n)),
        (0, b) => Some(OutputSplit::MaxBytes(b)),
        _ => bail!(
            "--type {}: give --split-max-tensors or --split-max-size, not both (a quantized output is split as llama-gguf-split splits it, by one limit)",
            a.ty
        ),
    };
    let q = &a.quantize;
    let recipe = q.recipe(opt, a.dry_run)?;
    let imatrix = q.imatrix_source()?;
    let mut job = QuantizeJob {
        input: a.source.clone(),
        output: a.out.clone(),
        recipe,
        imatrix,
        include_weights: q.include_weights.clone(),
        exclude_weights: q.exclude_weights.clone(),
        allow_requantize: false,
        overrides: q.override_kv.clone(),
        keep_split: false,
        no_fallback: q.no_fallback,
        slab_bytes: 256 << 20,
    };
    // Everything is checked before any output exists: the checkpoint, the imatrix, the plan.
    let model = HfModel::open(&a.source, Some(OutType::F32))?;
    let prepared = pipeline::prepare_input(&job, InputModel::Virtual(Box::new(model)))
        .with_context(|| format!("{}: --type {}", a.source.display(), opt.name))?;
    let files = pipeline::output_files(&job, &prepared, split)?;
    for t in prepared.tensors.iter() {
        if let Some(f) = &t.plan.fallback {
            eprintln!(
                "warning: tensor {} has {} columns, not a multiple of the {} block of {}: using {} instead",
                t.info.name,
                t.info.ne()[0],
                f.wanted.block_size(),
                f.wanted,
                f.used
            );
        }
    }
    // The calibration text and model are checked before any long work too.
    let calibration = match &q.calibration_text {
        Some(text) => {
            if let Some(s) = &q.save_imatrix {
                if files.iter().any(|f| &f.path == s) {
                    anyhow::bail!("--save-imatrix {}: this is the output model", s.display());
                }
            }
            Some(Calibration::open(&a.source, text, q.calibration_options())?)
        }
        None => None,
    };
    if a.dry_run {
        for f in &files {
            let bytes: u64 = f
                .tensors
                .iter()
                .map(|&i| prepared.tensors[i].new_bytes)
                .sum();
            eprintln!(
                "{}: n_tensors = {}, total_size = {bytes} bytes",
                f.path.display(),
                f.tensors.len()
            );
            println!("{}", f.path.display());
        }
        if prepared.will_require_imatrix {
            eprintln!("warning: this conversion will require an imatrix (--imatrix)");
        }
        return Ok(());
    }
    let prepared = match calibration {
        None => prepared,
        Some(c) => {
            // Nothing of the validation run is kept while the model is evaluated.
            drop(prepared);
            let (source, _summary) =
                super::quantize::calibrate(c, q.save_imatrix.as_deref(), &job)?;
            job.imatrix = Some(source);
            let model = HfModel::open(&a.source, Some(OutType::F32))?;
            pipeline::prepare_input(&job, InputModel::Virtual(Box::new(model)))
                .with_context(|| format!("{}: --type {}", a.source.display(), opt.name))?
        }
    };
    let bars = Bars::new(prepared.bytes_out());
    let t0 = std::time::Instant::now();
    let written = pipeline::execute_split(&job, &prepared, split, &bars)?;
    bars.finish();
    for w in &written {
        eprintln!("wrote {}", w.display());
    }
    let bpw = |b: u64| b as f64 * 8.0 / prepared.elements().max(1) as f64;
    eprintln!(
        "{} ({:.2} bpw as f32) -> {} ({:.2} bpw) as {} in {:.2} s",
        human_bytes(prepared.bytes_in()),
        bpw(prepared.bytes_in()),
        human_bytes(prepared.bytes_out()),
        bpw(prepared.bytes_out()),
        opt.name,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
