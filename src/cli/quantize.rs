//! `qforge quantize`: llama-quantize's command line, plus `--dry-run` plans, `--no-fallback`
//! and `--json` reports.

use super::progress::Bars;
use super::report::{human_bytes, Table};
use anyhow::{Context, Result};
use qforge::pipeline::{self, metadata::KvOverride, QuantizeJob};
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
    let job = QuantizeJob {
        input,
        output,
        recipe,
        imatrix: a.imatrix,
        include_weights: a.include_weights,
        exclude_weights: a.exclude_weights,
        allow_requantize: a.allow_requantize,
        overrides: a.override_kv,
        keep_split: a.keep_split,
        no_fallback: a.no_fallback,
        slab_bytes: 256 << 20,
    };
    let prepared = pipeline::prepare(&job)?;
    report_fallbacks(&prepared, a.json);

    if a.dry_run {
        print_plan(&job, &prepared, opt.name, a.json);
        if prepared.will_require_imatrix {
            eprintln!("warning: dry run completed successfully, but actually completing this quantization will require an imatrix!");
        }
        return Ok(());
    }
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
