//! `qforge convert`: a Hugging Face checkpoint directory to GGUF, as convert_hf_to_gguf.py
//! writes it.

use anyhow::{bail, Result};
use qforge::convert::{write_gguf, HfModel, OutType, SplitOptions};
use std::path::PathBuf;

/// Arguments of `qforge convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// Checkpoint directory (config.json, *.safetensors, tokenizer files).
    pub source: PathBuf,
    /// Output GGUF file (split sets are named `<stem>-0000i-of-0000n.gguf` beside it).
    #[arg(short = 'o', long = "outfile", value_name = "OUT.gguf")]
    pub out: PathBuf,
    /// Output type: f32, f16, bf16, q8_0 or auto (the converter's --outtype).
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
pub fn run(a: ConvertArgs) -> Result<()> {
    let Some(outtype) = OutType::parse(&a.ty) else {
        bail!(
            "--type {}: expected f32, f16, bf16, q8_0 or auto (quantized types are not supported by convert yet; convert to f32 and run qforge quantize)",
            a.ty
        );
    };
    let opts = SplitOptions {
        max_tensors: a.split_max_tensors,
        max_bytes: parse_size(&a.split_max_size)?,
    };
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
