//! The llama-quantize options shared by `qforge quantize` and `qforge convert --type <quant type>`:
//! one definition, so both commands take the same flags with the same meaning.

use super::imatrix::CalibrationOptions;
use anyhow::{bail, Context, Result};
use qforge::pipeline::{metadata::KvOverride, ImatrixSource};
use qforge::quantize::ftype::QuantOption;
use qforge::quantize::{parse_tensor_type_file, RecipeParams, TensorTypeOverride};
use qforge_formats::ggml::GgmlType;
use std::path::PathBuf;

/// llama-quantize's per-tensor and importance-matrix options, plus qforge's `--calibration-text`.
#[derive(Debug, Default, clap::Args)]
pub struct QuantizeFlags {
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
    /// Override metadata in the output: KEY=TYPE:VALUE with TYPE int, float, bool or str (repeatable).
    #[arg(long, value_name = "KEY=TYPE:VALUE")]
    pub override_kv: Vec<KvOverride>,
    /// Fail instead of silently using another type when a tensor's rows do not fit the target's blocks.
    #[arg(long)]
    pub no_fallback: bool,
}

fn parse_ggml_type(s: &str) -> Result<GgmlType, String> {
    GgmlType::from_name(s).ok_or_else(|| format!("invalid ggml_type '{s}'"))
}

impl QuantizeFlags {
    /// The flags given, by name (`convert` refuses them for the converter's own types).
    pub fn given(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut flag = |on: bool, name| {
            if on {
                v.push(name)
            }
        };
        flag(self.leave_output_tensor, "--leave-output-tensor");
        flag(self.pure, "--pure");
        flag(self.imatrix.is_some(), "--imatrix");
        flag(self.calibration_text.is_some(), "--calibration-text");
        flag(!self.include_weights.is_empty(), "--include-weights");
        flag(!self.exclude_weights.is_empty(), "--exclude-weights");
        flag(self.output_tensor_type.is_some(), "--output-tensor-type");
        flag(
            self.token_embedding_type.is_some(),
            "--token-embedding-type",
        );
        flag(!self.tensor_type.is_empty(), "--tensor-type");
        flag(self.tensor_type_file.is_some(), "--tensor-type-file");
        flag(!self.override_kv.is_empty(), "--override-kv");
        flag(self.no_fallback, "--no-fallback");
        v
    }

    /// The per-tensor recipe for `opt` with these flags (`--tensor-type-file` is read here).
    pub fn recipe(&self, opt: &QuantOption, dry_run: bool) -> Result<RecipeParams> {
        let mut tensor_types = self
            .tensor_type
            .iter()
            .map(|t| TensorTypeOverride::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(f) = &self.tensor_type_file {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            tensor_types.extend(
                parse_tensor_type_file(&text).with_context(|| format!("in {}", f.display()))?,
            );
        }
        let mut recipe = RecipeParams::for_option(opt);
        recipe.pure = self.pure;
        recipe.quantize_output_tensor = !self.leave_output_tensor;
        recipe.output_tensor_type = self.output_tensor_type;
        recipe.token_embedding_type = self.token_embedding_type;
        recipe.tensor_types = tensor_types;
        recipe.dry_run = dry_run;
        Ok(recipe)
    }

    /// Where the importance matrix comes from: `--imatrix FILE`, or pending computation from
    /// `--calibration-text` (recorded under the `--save-imatrix` path, else the text's); both
    /// together are refused.
    pub fn imatrix_source(&self) -> Result<Option<ImatrixSource>> {
        match (&self.calibration_text, &self.imatrix) {
            (Some(text), Some(file)) => bail!(
                "--calibration-text {} and --imatrix {}: give one importance matrix, not both",
                text.display(),
                file.display()
            ),
            (Some(text), None) => {
                if self.calibration_chunks == Some(0) {
                    bail!(
                        "{}: --calibration-chunks 0 leaves nothing to compute",
                        text.display()
                    );
                }
                let dataset = text.to_string_lossy().into_owned();
                let name = self
                    .save_imatrix
                    .as_ref()
                    .map_or_else(|| dataset.clone(), |p| p.to_string_lossy().into_owned());
                Ok(Some(ImatrixSource::Pending { name, dataset }))
            }
            (None, file) => Ok(file.clone().map(ImatrixSource::File)),
        }
    }

    /// The `qforge imatrix` settings `--calibration-*` stand for.
    pub fn calibration_options(&self) -> CalibrationOptions {
        CalibrationOptions {
            n_ctx: self.calibration_ctx.unwrap_or(512),
            n_chunks: self.calibration_chunks,
            n_batch: 2048,
            process_output: false,
            parse_special: false,
        }
    }
}
