//! `qforge quantize`: llama-quantize's command line, plus `--dry-run` plans, `--no-fallback`
//! and `--json` reports.

use super::imatrix::{Calibration, CalibrationOptions};
use super::progress::Bars;
use super::report::{human_bytes, Table};
use anyhow::{bail, Context, Result};
use qforge::pipeline::{
    self, imatrix::as_loaded, metadata::KvOverride, ImatrixSource, QuantizeJob,
};
use qforge::quantize::ftype::{allowed_types_help, parse_ftype};
use qforge::quantize::{parse_tensor_type_file, RecipeParams, TensorTypeOverride};
use qforge_formats::ggml::GgmlType;
use serde_json::json;
use std::path::PathBuf;

/// Arguments of `qforge quantize`, in llama-quantize's order:
/// `IN.gguf [OUT.gguf] TYPE [NTHREADS]`.
#[derive(Debug, clap::Args)]
#[command(after_help = after_help(), override_usage = "qforge quantize [OPTIONS] IN.gguf [OUT.gguf] TYPE [NTHREADS]")]
pub struct QuantizeArgs {
    /// Allow requantizing tensors that are already quantized (this can severely reduce quality).
    #[arg(long)]
    pub allow_requantize: bool,
    /// Leave output.weight un(re)quantized.
    #[arg(long)]
    pub leave_output_tensor: bool,
    /// Disable k-quant mixtures and quantize all tensors to the same type.
    #[arg(long)]
    pub pure: bool,
    /// Importance matrix (llama.cpp's GGUF format or the legacy .dat format).
    #[arg(long, value_name = "FILE")]
    pub imatrix: Option<PathBuf>,
    /// Compute the importance matrix in this run, from the input model on this text, exactly as
    /// `qforge imatrix -m IN -f TEXT -c N [--chunks K]` would, and use it as if given with
    /// --imatrix. quantize.imatrix.dataset records TEXT as given; quantize.imatrix.file records
    /// the --save-imatrix path, or else TEXT as given (the file the matrix is computed from).
    #[arg(long, value_name = "TEXT")]
    pub calibration_text: Option<PathBuf>,
    /// Tokens per chunk for --calibration-text (`qforge imatrix -c`) [default: 512].
    #[arg(long, value_name = "N", requires = "calibration_text")]
    pub calibration_ctx: Option<usize>,
    /// Use at most this many chunks of --calibration-text (`qforge imatrix --chunks`) [default: all].
    #[arg(long, value_name = "K", requires = "calibration_text")]
    pub calibration_chunks: Option<usize>,
    /// Also write the importance matrix computed from --calibration-text to FILE (GGUF imatrix
    /// format, as `qforge imatrix -o FILE` writes it).
    #[arg(long, value_name = "FILE", requires = "calibration_text")]
    pub save_imatrix: Option<PathBuf>,
    /// Use the importance matrix only for tensors whose name contains this (repeatable).
    #[arg(long, value_name = "NAME", conflicts_with = "exclude_weights")]
    pub include_weights: Vec<String>,
    /// Do not use the importance matrix for tensors whose name contains this (repeatable).
    #[arg(long, value_name = "NAME")]
    pub exclude_weights: Vec<String>,
    /// Type of the output.weight tensor.
    #[arg(long, value_name = "GGML_TYPE", value_parser = parse_ggml_type)]
    pub output_tensor_type: Option<GgmlType>,
    /// Type of the token embeddings tensor.
    #[arg(long, value_name = "GGML_TYPE", value_parser = parse_ggml_type)]
    pub token_embedding_type: Option<GgmlType>,
    /// Quantize tensors whose (lower-cased) name matches the regex PATTERN to TYPE (repeatable; first match wins).
    #[arg(long, value_name = "PATTERN=TYPE")]
    pub tensor_type: Vec<String>,
    /// Read PATTERN=TYPE entries, separated by spaces or newlines, from FILE.
    #[arg(long, value_name = "FILE")]
    pub tensor_type_file: Option<PathBuf>,
    /// Write the output in the same shards as the input.
    #[arg(long)]
    pub keep_split: bool,
    /// Override metadata in the output: KEY=TYPE:VALUE with TYPE int, float, bool or str (repeatable).
    #[arg(long, value_name = "KEY=TYPE:VALUE")]
    pub override_kv: Vec<KvOverride>,
    /// Print the plan (tensor, old type, new type, bytes) and the resulting size; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Fail instead of silently using another type when a tensor's rows do not fit the target's blocks.
    #[arg(long)]
    pub no_fallback: bool,
    /// Print a machine-readable JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// IN.gguf [OUT.gguf] TYPE [NTHREADS]: input (first shard of a split set), output (default
    /// IN's directory/ggml-model-TYPE.gguf), type name or number, threads (default: all cores).
    #[arg(required = true, num_args = 2..=4, value_name = "ARG")]
    pub positional: Vec<String>,
}

fn after_help() -> String {
    format!("Allowed quantization types:\n{}", allowed_types_help())
}

fn parse_ggml_type(s: &str) -> Result<GgmlType, String> {
    GgmlType::from_name(s).ok_or_else(|| format!("invalid ggml_type '{s}'"))
}

/// Runs `qforge quantize`.
pub fn run(a: QuantizeArgs, threads: Option<usize>) -> Result<()> {
    let mut pos = a.positional.iter();
    let input = PathBuf::from(pos.next().expect("clap requires IN"));
    let second = pos.next().expect("clap requires TYPE");
    // As llama-quantize: if the second argument is a type, the output name is derived.
    let (output, opt) = match parse_ftype(second) {
        Some(o) => {
            let dir = input.parent().map(PathBuf::from).unwrap_or_default();
            let mut name = format!("ggml-model-{}", o.name);
            if !a.keep_split {
                name.push_str(".gguf");
            }
            (dir.join(name), o)
        }
        None => {
            let ty = pos.next().with_context(|| "missing ftype")?;
            let o = parse_ftype(ty).with_context(|| format!("invalid ftype '{ty}'"))?;
            (PathBuf::from(second), o)
        }
    };
    let nthreads = match pos.next() {
        Some(n) => Some(
            n.trim()
                .parse::<i64>()
                .with_context(|| format!("invalid nthread '{n}'"))?,
        ),
        None => None,
    };
    if let Some(n) = nthreads.filter(|n| *n > 0).map(|n| n as usize).or(threads) {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }

    let imatrix = match (&a.calibration_text, &a.imatrix) {
        (Some(text), Some(file)) => bail!(
            "--calibration-text {} and --imatrix {}: give one importance matrix, not both",
            text.display(),
            file.display()
        ),
        (Some(text), None) => {
            if a.calibration_chunks == Some(0) {
                bail!(
                    "{}: --calibration-chunks 0 leaves nothing to compute",
                    text.display()
                );
            }
            let text = text.to_string_lossy().into_owned();
            let name = match &a.save_imatrix {
                Some(p) => p.to_string_lossy().into_owned(),
                None => text.clone(),
            };
            Some(ImatrixSource::Pending {
                name,
                dataset: text,
            })
        }
        (None, file) => file.clone().map(ImatrixSource::File),
    };

    let mut tensor_types = a
        .tensor_type
        .iter()
        .map(|t| TensorTypeOverride::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(f) = &a.tensor_type_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        tensor_types
            .extend(parse_tensor_type_file(&text).with_context(|| format!("in {}", f.display()))?);
    }
    let mut recipe = RecipeParams::for_option(opt);
    recipe.pure = a.pure;
    recipe.quantize_output_tensor = !a.leave_output_tensor;
    recipe.output_tensor_type = a.output_tensor_type;
    recipe.token_embedding_type = a.token_embedding_type;
    recipe.tensor_types = tensor_types;
    recipe.dry_run = a.dry_run;
    let mut job = QuantizeJob {
        input,
        output,
        recipe,
        imatrix,
        include_weights: a.include_weights,
        exclude_weights: a.exclude_weights,
        allow_requantize: a.allow_requantize,
        overrides: a.override_kv,
        keep_split: a.keep_split,
        no_fallback: a.no_fallback,
        slab_bytes: 256 << 20,
    };
    let prepared = pipeline::prepare(&job)?;
    let calibration = match &a.calibration_text {
        Some(text) => Some(open_calibration(
            &job,
            &prepared,
            text,
            a.save_imatrix.as_deref(),
            CalibrationOptions {
                n_ctx: a.calibration_ctx.unwrap_or(512),
                n_chunks: a.calibration_chunks,
                n_batch: 2048,
                process_output: false,
                parse_special: false,
            },
        )?),
        None => None,
    };
    report_fallbacks(&prepared, a.json);

    if a.dry_run {
        print_plan(&job, &prepared, opt.name, a.json);
        if prepared.will_require_imatrix {
            eprintln!("warning: dry run completed successfully, but actually completing this quantization will require an imatrix!");
        }
        return Ok(());
    }
    let (prepared, calibrated) = match calibration {
        None => (prepared, None),
        Some(c) => {
            // Nothing of the validation run is kept while the model is evaluated.
            drop(prepared);
            let (source, summary) = calibrate(c, a.save_imatrix.as_deref(), &job)?;
            job.imatrix = Some(source);
            (pipeline::prepare(&job)?, Some(summary))
        }
    };
    let bars = Bars::new(prepared.bytes_out());
    let t0 = std::time::Instant::now();
    let written = pipeline::execute(&job, &prepared, &bars)?;
    bars.finish();
    let secs = t0.elapsed().as_secs_f64();
    let bpw = |b: u64| b as f64 * 8.0 / prepared.elements().max(1) as f64;
    if a.json {
        let out = json!({
            "input": job.input, "outputs": written, "type": opt.name, "ftype": prepared.ftype_id,
            "bytes_in": prepared.bytes_in(), "bytes_out": prepared.bytes_out(),
            "bpw_in": bpw(prepared.bytes_in()), "bpw_out": bpw(prepared.bytes_out()),
            "fallbacks": prepared.tensors.iter().filter(|t| t.plan.fallback.is_some()).count(),
            "seconds": secs,
            "calibration": calibrated,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for w in &written {
            eprintln!("wrote {}", w.display());
        }
        eprintln!(
            "model size {} ({:.2} bpw) -> {} ({:.2} bpw) as {} in {secs:.2} s",
            human_bytes(prepared.bytes_in()),
            bpw(prepared.bytes_in()),
            human_bytes(prepared.bytes_out()),
            bpw(prepared.bytes_out()),
            opt.name
        );
    }
    Ok(())
}

/// Validates the `--calibration-text` part of a run before any long work: the model can be
/// evaluated, the text read and long enough for one chunk, and `--save-imatrix` overwrites
/// neither the input nor the output.
fn open_calibration(
    job: &QuantizeJob,
    prepared: &pipeline::Prepared,
    text: &std::path::Path,
    save: Option<&std::path::Path>,
    options: CalibrationOptions,
) -> Result<Calibration> {
    let outputs = pipeline::check_outputs(job, prepared)?;
    if let Some(s) = save {
        let clash = pipeline::is_input(job, prepared, s) || outputs.iter().any(|o| o == s);
        if clash {
            bail!(
                "--save-imatrix {}: this is the input or the output model",
                s.display()
            );
        }
    }
    Calibration::open(&job.input, text, options)
}

/// Computes the importance matrix (the forward pass's memory is released on return), writes it
/// with `--save-imatrix`, and returns it as a source for the quantization plus a JSON summary.
pub(super) fn calibrate(
    c: Calibration,
    save: Option<&std::path::Path>,
    job: &QuantizeJob,
) -> Result<(ImatrixSource, serde_json::Value)> {
    let Some(ImatrixSource::Pending { name, dataset }) = &job.imatrix else {
        bail!("internal error: no pending importance matrix");
    };
    eprintln!(
        "calibration: {} tokens of {}, computing the importance matrix",
        c.n_tokens(),
        dataset
    );
    let t0 = std::time::Instant::now();
    let r = c.run(&mut |i, ppl| eprint!("[{}]{ppl:.4},", i + 1))?;
    let secs = t0.elapsed().as_secs_f64();
    eprintln!();
    if let Some(p) = save {
        r.imatrix.save_gguf(p)?;
        eprintln!("calibration: importance matrix written to {}", p.display());
    }
    eprintln!(
        "calibration: {} entries from {} chunks in {secs:.2} s (PPL {:.4})",
        r.imatrix.entries.len(),
        r.imatrix.chunk_count,
        r.ppl.ppl
    );
    let summary = json!({
        "text": dataset, "chunks": r.imatrix.chunk_count, "chunk_size": r.imatrix.chunk_size,
        "entries": r.imatrix.entries.len(), "ppl": r.ppl.ppl, "seconds": secs, "saved": save,
    });
    Ok((
        ImatrixSource::Computed {
            imatrix: as_loaded(r.imatrix),
            name: name.clone(),
        },
        summary,
    ))
}

fn report_fallbacks(p: &pipeline::Prepared, json_out: bool) {
    let fb: Vec<_> = p
        .tensors
        .iter()
        .filter_map(|t| t.plan.fallback.as_ref().map(|f| (t, f)))
        .collect();
    if json_out || fb.is_empty() {
        return;
    }
    for (t, f) in &fb {
        eprintln!(
            "warning: tensor {} has {} columns, not a multiple of the {} block of {}: using {} instead",
            t.info.name,
            t.info.ne()[0],
            f.wanted.block_size(),
            f.wanted,
            f.used
        );
    }
    eprintln!(
        "warning: {} of {} tensor(s) required fallback quantization (use --no-fallback to refuse)",
        fb.len(),
        p.tensors.len()
    );
}

fn print_plan(job: &QuantizeJob, p: &pipeline::Prepared, type_name: &str, json_out: bool) {
    let bpw = |b: u64| b as f64 * 8.0 / p.elements().max(1) as f64;
    if json_out {
        let tensors: Vec<_> = p
            .tensors
            .iter()
            .map(|t| {
                json!({
                    "name": t.info.name, "shape": t.info.dims, "old_type": t.info.ty.name(), "new_type": t.plan.target.name(),
                    "old_bytes": t.info.n_bytes(), "new_bytes": t.new_bytes,
                    "fallback_from": t.plan.fallback.as_ref().map(|f| f.wanted.name()),
                })
            })
            .collect();
        let out = json!({
            "input": job.input, "type": type_name, "ftype": p.ftype_id, "tensors": tensors,
            "bytes_in": p.bytes_in(), "bytes_out": p.bytes_out(), "bpw_in": bpw(p.bytes_in()), "bpw_out": bpw(p.bytes_out()),
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return;
    }
    let mut table = Table::new(&["tensor", "shape", "old type", "new type", "bytes"]);
    for t in &p.tensors {
        let mark = if t.plan.fallback.is_some() {
            " (fallback)"
        } else {
            ""
        };
        table.row(vec![
            t.info.name.clone(),
            format!("{:?}", t.info.dims),
            t.info.ty.name().to_string(),
            format!("{}{mark}", t.plan.target.name()),
            format!(
                "{} -> {}",
                human_bytes(t.info.n_bytes()),
                human_bytes(t.new_bytes)
            ),
        ]);
    }
    table.print();
    println!(
        "\nmodel size {} ({:.2} bpw) -> {} ({:.2} bpw) as {type_name}",
        human_bytes(p.bytes_in()),
        bpw(p.bytes_in()),
        human_bytes(p.bytes_out()),
        bpw(p.bytes_out())
    );
}
