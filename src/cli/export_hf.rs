//! `qforge export-hf`: a GGUF model back to a Hugging Face checkpoint directory.

use anyhow::{bail, Result};
use qforge::export::{export_hf, ExportDtype, ExportOptions};
use std::path::PathBuf;

/// Arguments of `qforge export-hf`.
#[derive(Debug, clap::Args)]
pub struct ExportHfArgs {
    /// GGUF model (the first file of a split set).
    pub input: PathBuf,
    /// Output directory (must not exist, or be empty).
    #[arg(short = 'o', long = "outdir", value_name = "DIR")]
    pub out: PathBuf,
    /// Tensor dtype: bf16, f16 or f32 (default: f32 for an all-F32 model, f16 for F16, bf16 otherwise).
    #[arg(long, value_name = "DTYPE")]
    pub dtype: Option<String>,
    /// Largest tensor data per safetensors shard: a number, optionally followed by KB, MB or GB
    /// (powers of 1000, as transformers' max_shard_size).
    #[arg(long, default_value = "5GB", value_name = "SIZE")]
    pub max_shard_size: String,
    /// Hugging Face architecture to write, when the GGUF metadata cannot tell (e.g.
    /// MistralForCausalLM for a llama model).
    #[arg(long, value_name = "NAME")]
    pub architecture: Option<String>,
}

/// `5GB`, `200MB`, `1000`.
fn parse_size(s: &str) -> Result<u64> {
    let u = s.to_ascii_uppercase();
    let (num, mul) = [
        ("GB", 1_000_000_000u64),
        ("MB", 1_000_000),
        ("KB", 1000),
        ("B", 1),
    ]
    .iter()
    .find_map(|(suf, m)| u.strip_suffix(suf).map(|n| (n.to_string(), *m)))
    .unwrap_or((u.clone(), 1));
    match num.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n * mul),
        _ => bail!(
            "--max-shard-size {s}: expected a positive number, optionally followed by KB, MB or GB"
        ),
    }
}

/// Runs `qforge export-hf`.
pub fn run(a: ExportHfArgs) -> Result<()> {
    let dtype = match &a.dtype {
        None => None,
        Some(s) => match ExportDtype::parse(s) {
            Some(d) => Some(d),
            None => bail!("--dtype {s}: expected bf16, f16 or f32"),
        },
    };
    let opts = ExportOptions {
        dtype,
        max_shard_size: parse_size(&a.max_shard_size)?,
        architecture: a.architecture,
    };
    let s = export_hf(&a.input, &a.out, &opts)?;
    eprintln!(
        "wrote {} ({}, {} tensors in {} file(s), {})",
        s.dir.display(),
        s.architecture,
        s.n_tensors,
        s.shards.len(),
        s.dtype.torch_name()
    );
    Ok(())
}
