//! `qforge quantize`: llama-quantize's command line, plus `--dry-run` plans, `--no-fallback`
//! and `--json` reports.

use super::imatrix::{Calibration, CalibrationOptions};
use super::progress::Bars;
use super::quant_flags::QuantizeFlags;
use super::report::{human_bytes, Table};
use anyhow::{bail, Context, Result};
use qforge::pipeline::{self, imatrix::as_loaded, ImatrixSource, QuantizeJob};
use qforge::quantize::ftype::{allowed_types_help, parse_ftype};
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
    /// llama-quantize's per-tensor and importance-matrix options.
    #[command(flatten)]
    pub flags: QuantizeFlags,
    /// Write the output in the same shards as the input.
    #[arg(long)]
    pub keep_split: bool,
    /// Print the plan (tensor, old type, new type, bytes) and the resulting size; write nothing.
    #[arg(long)]
    pub dry_run: bool,
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

    let f = &a.flags;
    let imatrix = f.imatrix_source()?;
    let recipe = f.recipe(opt, a.dry_run)?;
    let mut job = QuantizeJob {
        input,
        output,
        recipe,
        imatrix,
        include_weights: f.include_weights.clone(),
        exclude_weights: f.exclude_weights.clone(),
        allow_requantize: a.allow_requantize,
        overrides: f.override_kv.clone(),
        keep_split: a.keep_split,
        no_fallback: f.no_fallback,
        slab_bytes: 256 << 20,
    };
    let prepared = pipeline::prepare(&job)?;
    let calibration = match &f.calibration_text {
        Some(text) => Some(open_calibration(
            &job,
            &prepared,
            text,
            f.save_imatrix.as_deref(),
            f.calibration_options(),
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
            let (source, summary) = calibrate(c, f.save_imatrix.as_deref(), &job)?;
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
