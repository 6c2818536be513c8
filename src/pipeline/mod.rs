//! `qforge quantize`: a GGUF model in, a GGUF model out, byte-identical to what the pinned
//! `llama-quantize` writes for the same input and flags (`llama_model_quantize_impl`).
//!
//! The run is split in two: [`prepare`] reads and validates everything (model, imatrix, plan,
//! imatrix requirements) before any output exists, so bad input fails fast and leaves nothing
//! behind; [`execute`] then streams tensor by tensor into a temporary file renamed on success.

pub mod imatrix;
pub mod metadata;
pub mod rows;

use crate::quantize::recipe::order::sort_for_quantize;
use crate::quantize::{
    check_conversion, plan_quantization, ImatrixEntry, ImatrixUse, LlamaFtype, ModelDesc,
    RecipeParams, TensorDesc, TensorPlan,
};
use anyhow::{bail, Context, Result};
pub use imatrix::ImatrixSource;
use metadata::{output_metadata, KvOverride, Metadata};
use qforge_formats::ggml::GgmlType;
use qforge_formats::gguf::split::{self, GgufSet};
use qforge_formats::gguf::{GgufValue, GgufWriter, ReadMode, TensorInfo, TensorSpec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything `qforge quantize` was asked to do.
#[derive(Clone, Debug)]
pub struct QuantizeJob {
    /// Input GGUF (the first shard of a split set).
    pub input: PathBuf,
    /// Output path (with `keep_split`, the shard prefix plus `.gguf`).
    pub output: PathBuf,
    /// Type selection: file type, `--pure`, overrides, ... (`has_imatrix` is set by [`prepare`]).
    pub recipe: RecipeParams,
    /// Importance matrix: a file, or one computed in this run.
    pub imatrix: Option<ImatrixSource>,
    /// `--include-weights` substrings.
    pub include_weights: Vec<String>,
    /// `--exclude-weights` substrings.
    pub exclude_weights: Vec<String>,
    /// `--allow-requantize`.
    pub allow_requantize: bool,
    /// `--override-kv` entries.
    pub overrides: Vec<KvOverride>,
    /// `--keep-split`: one output shard per input shard.
    pub keep_split: bool,
    /// Fail instead of falling back to another type when a row does not fit the target's blocks.
    pub no_fallback: bool,
    /// Bytes of output kept in memory per tensor slab.
    pub slab_bytes: usize,
}

/// One tensor of the prepared run.
#[derive(Clone, Debug)]
pub struct PlannedTensor {
    /// Shard index of the input.
    pub shard: usize,
    /// Input tensor info.
    pub info: TensorInfo,
    /// What the recipe decided.
    pub plan: TensorPlan,
    /// How the imatrix is used for it.
    pub imatrix: ImatrixUse,
    /// Bytes after conversion.
    pub new_bytes: u64,
}

/// A validated run, ready to execute or to print as a plan (`--dry-run`).
pub struct Prepared {
    set: GgufSet,
    /// Output metadata.
    pub metadata: Metadata,
    /// Tensors in output order.
    pub tensors: Vec<PlannedTensor>,
    weights: BTreeMap<String, Vec<f32>>,
    /// The ftype written to `general.file_type`.
    pub ftype_id: u32,
    /// A dry run without an imatrix found tensors that will need one.
    pub will_require_imatrix: bool,
    /// Prepared against an imatrix still to be computed: can be printed, not executed.
    pub imatrix_pending: bool,
}

impl Prepared {
    /// Total input tensor bytes.
    pub fn bytes_in(&self) -> u64 {
        self.tensors.iter().map(|t| t.info.n_bytes()).sum()
    }
    /// Total output tensor bytes.
    pub fn bytes_out(&self) -> u64 {
        self.tensors.iter().map(|t| t.new_bytes).sum()
    }
    /// Total elements.
    pub fn elements(&self) -> u64 {
        self.tensors.iter().map(|t| t.info.n_elements()).sum()
    }
}

/// Reads the input, the imatrix and the recipe, and checks everything that can fail before
/// writing, in llama-quantize's order: unknown types, missing imatrix data, requantization,
/// rows that fit no block.
pub fn prepare(job: &QuantizeJob) -> Result<Prepared> {
    let set = GgufSet::open(&job.input, ReadMode::Mmap).context("cannot read the input model")?;
    let header = set.first().header();

    // The model loader reads hyperparameters with --override-kv applied.
    let mut kvs = header.kvs.clone();
    for o in &job.overrides {
        match kvs.iter_mut().find(|(k, _)| *k == o.key) {
            Some(kv) => kv.1 = o.value.clone(),
            None => kvs.push((o.key.clone(), o.value.clone())),
        }
    }
    let model = ModelDesc::from_metadata(&kvs)
        .with_context(|| format!("{}: cannot quantize this model", job.input.display()))?;

    // llama-quantize's tensor order: by (layer, name), or by (shard, offset) with --keep-split.
    let mut tensors: Vec<(usize, TensorInfo)> =
        set.tensors().map(|(s, t)| (s, t.clone())).collect();
    if job.keep_split {
        tensors.sort_by_key(|(s, t)| (*s, t.offset));
    } else {
        sort_for_quantize(&mut tensors, |(_, t)| t.name.as_str());
    }

    let resolved = imatrix::resolve(
        job.imatrix.as_ref(),
        &tensors,
        &job.include_weights,
        &job.exclude_weights,
    )?;
    let imatrix_info = resolved.info;

    let descs: Vec<TensorDesc> = tensors
        .iter()
        .map(|(_, t)| TensorDesc::new(t.name.clone(), t.ty, &t.dims))
        .collect();
    let mut params = job.recipe.clone();
    params.has_imatrix = imatrix_info.is_some();
    let plan = plan_quantization(&model, &params, &descs)?;
    if job.no_fallback {
        plan.refuse_fallbacks()?;
    }

    let ftype_id = if params.only_copy {
        file_type_of(header, &tensors)
    } else {
        params.ftype.id()
    };
    let mut planned = Vec::with_capacity(tensors.len());
    for ((shard, info), tp) in tensors.into_iter().zip(plan.tensors) {
        let entry = match (&imatrix_info, resolved.lengths.get(&info.name)) {
            (None, _) => ImatrixEntry::NoImatrix,
            (Some(_), None) => ImatrixEntry::NotFound,
            (Some(_), Some(&len)) => ImatrixEntry::Found { len },
        };
        let imatrix = if params.dry_run {
            ImatrixUse::None
        } else {
            check_conversion(&tp, entry, job.allow_requantize)?
        };
        if tp.converts() && !params.dry_run {
            qforge_formats::ggml::codec(tp.target)
                .and_then(|c| c.quantize)
                .with_context(|| {
                    format!(
                        "tensor '{}': qforge cannot produce type {} yet",
                        info.name, tp.target
                    )
                })?;
            qforge_formats::ggml::codec(info.ty).with_context(|| {
                format!(
                    "tensor '{}': qforge cannot read type {}",
                    info.name, info.ty
                )
            })?;
        }
        let new_bytes = tp.target.row_size(info.n_elements()).unwrap_or(0);
        planned.push(PlannedTensor {
            shard,
            info,
            plan: tp,
            imatrix,
            new_bytes,
        });
    }
    let metadata = output_metadata(&header.kvs, ftype_id, &job.overrides, imatrix_info.as_ref());
    Ok(Prepared {
        set,
        metadata,
        tensors: planned,
        weights: resolved.weights,
        ftype_id,
        will_require_imatrix: plan.will_require_imatrix,
        imatrix_pending: resolved.pending,
    })
}

/// `general.file_type` of the input for a COPY run, as llama.cpp's model loader reports it:
/// the stored key, or else a guess from the most common tensor type, marked guessed (1024).
fn file_type_of(header: &qforge_formats::gguf::GgufHeader, sorted: &[(usize, TensorInfo)]) -> u32 {
    if let Some(v) = header.get("general.file_type").and_then(GgufValue::as_u32) {
        return v;
    }
    const GUESSED: u32 = 1024;
    let mut counts: BTreeMap<GgmlType, u32> = BTreeMap::new();
    let (mut best, mut best_n) = (GgmlType::F32, 0);
    for (_, t) in sorted {
        let n = counts.entry(t.ty).or_default();
        *n += 1;
        if *n > best_n {
            best_n = *n;
            best = t.ty;
        }
    }
    use GgmlType as T;
    use LlamaFtype as F;
    let guessed = match best {
        T::F32 => F::ALL_F32,
        T::F16 => F::MOSTLY_F16,
        T::BF16 => F::MOSTLY_BF16,
        T::Q4_0 => F::MOSTLY_Q4_0,
        T::Q4_1 => F::MOSTLY_Q4_1,
        T::Q5_0 => F::MOSTLY_Q5_0,
        T::Q5_1 => F::MOSTLY_Q5_1,
        T::Q8_0 => F::MOSTLY_Q8_0,
        T::Q2_K => F::MOSTLY_Q2_K,
        T::Q3_K => F::MOSTLY_Q3_K_M,
        T::Q4_K => F::MOSTLY_Q4_K_M,
        T::Q5_K => F::MOSTLY_Q5_K_M,
        T::Q6_K => F::MOSTLY_Q6_K,
        T::TQ1_0 => F::MOSTLY_TQ1_0,
        T::TQ2_0 => F::MOSTLY_TQ2_0,
        T::IQ2_XXS => F::MOSTLY_IQ2_XXS,
        T::IQ2_XS => F::MOSTLY_IQ2_XS,
        T::IQ2_S => F::MOSTLY_IQ2_S,
        T::IQ3_XXS => F::MOSTLY_IQ3_XXS,
        T::IQ1_S => F::MOSTLY_IQ1_S,
        T::IQ1_M => F::MOSTLY_IQ1_M,
        T::IQ4_NL => F::MOSTLY_IQ4_NL,
        T::IQ4_XS => F::MOSTLY_IQ4_XS,
        T::IQ3_S => F::MOSTLY_IQ3_S,
        T::NVFP4 => F::MOSTLY_NVFP4,
        T::Q1_0 => F::MOSTLY_Q1_0,
        T::Q2_0 => F::MOSTLY_Q2_0,
        _ => F::ALL_F32,
    };
    guessed.id() | GUESSED
}

/// Progress reporting hooks for [`execute`].
pub trait Progress: Sync {
    /// Called before tensor `i` of `n` is converted.
    fn tensor(&self, i: usize, n: usize, t: &PlannedTensor);
    /// Called after each slab of output bytes.
    fn bytes(&self, n: u64);
}

/// Writes the output file(s) of a prepared run. Returns the paths written.
pub fn execute(job: &QuantizeJob, p: &Prepared, progress: &dyn Progress) -> Result<Vec<PathBuf>> {
    if p.imatrix_pending {
        bail!("internal error: the importance matrix of this run has not been computed");
    }
    let out_paths = check_outputs(job, p)?;
    let n_split = out_paths.len();
    let align = p.set.first().header().alignment;
    let mut written = Vec::new();
    let mut writers: Vec<Option<GgufWriter>> = Vec::new();
    for (i, path) in out_paths.iter().enumerate() {
        let mut md = if i == 0 {
            p.metadata.clone()
        } else {
            Metadata::default()
        };
        if n_split > 1 {
            md.set(split::KEY_SPLIT_NO, GgufValue::U16(i as u16));
            md.set(split::KEY_SPLIT_COUNT, GgufValue::U16(n_split as u16));
            md.set(
                split::KEY_SPLIT_TENSORS_COUNT,
                GgufValue::I32(p.tensors.len() as i32),
            );
        }
        let specs: Vec<TensorSpec> = p
            .tensors
            .iter()
            .filter(|t| !job.keep_split || t.shard == i)
            .map(|t| TensorSpec {
                name: t.info.name.clone(),
                ty: t.plan.target,
                dims: c_dims(&t.info),
            })
            .collect();
        let w = GgufWriter::create(path, md.entries(), specs, align)?;
        writers.push(Some(w));
    }
    let n = p.tensors.len();
    for (i, t) in p.tensors.iter().enumerate() {
        progress.tensor(i, n, t);
        let w = writers[if job.keep_split { t.shard } else { 0 }]
            .as_mut()
            .expect("open writer");
        let src = p.set.shards()[t.shard].tensor_data(&t.info)?;
        // The model loader validates every tensor it reads (check_tensors).
        validate_parallel(t.info.ty, &src)
            .map_err(|e| anyhow::anyhow!("tensor '{}' has invalid data: {e}", t.info.name))?;
        let shard = &p.set.shards()[t.shard];
        if !t.plan.converts() {
            w.write_tensor(&t.info.name, &src)?;
            progress.bytes(src.len() as u64);
            drop(src);
            shard.release(&t.info);
            continue;
        }
        let ne = t.info.ne();
        let shape = rows::RowShape {
            n_per_row: ne[0] as usize,
            rows_per_expert: ne[1] as usize,
            rows: (ne[1] * ne[2] * ne[3]) as usize,
        };
        let imatrix = match t.imatrix {
            ImatrixUse::Use => p.weights.get(&t.info.name).map(Vec::as_slice),
            _ => None,
        };
        let mut tw = w.begin_tensor(&t.info.name)?;
        rows::convert_rows(
            t.info.ty,
            &src,
            t.plan.target,
            shape,
            imatrix,
            job.slab_bytes,
            &mut |bytes| {
                tw.write(bytes)?;
                progress.bytes(bytes.len() as u64);
                Ok(())
            },
        )
        .with_context(|| {
            format!(
                "tensor '{}': converting {} to {}",
                t.info.name, t.info.ty, t.plan.target
            )
        })?;
        tw.finish()?;
        drop(src);
        shard.release(&t.info);
    }
    for w in writers.iter_mut() {
        written.push(w.take().expect("open writer").finish()?);
    }
    Ok(written)
}

/// The output paths of a prepared run (one per shard with `keep_split`), refusing any that is
/// one of the input files. [`execute`] checks this too; calling it earlier lets a run that has
/// long work to do before writing fail first.
pub fn check_outputs(job: &QuantizeJob, p: &Prepared) -> Result<Vec<PathBuf>> {
    let n_split = if job.keep_split {
        p.set.shards().len()
    } else {
        1
    };
    let out_paths: Vec<PathBuf> = if job.keep_split {
        let s = job.output.to_string_lossy();
        let prefix = s.strip_suffix(".gguf").unwrap_or(&s).to_string();
        (0..n_split)
            .map(|i| split::split_path(&prefix, i, n_split))
            .collect()
    } else {
        vec![job.output.clone()]
    };
    for o in &out_paths {
        if is_input(job, p, o) {
            bail!("input and output files are the same: '{}'", o.display());
        }
    }
    Ok(out_paths)
}

/// Whether `path` is the input or one of its shards.
pub fn is_input(job: &QuantizeJob, p: &Prepared, path: &Path) -> bool {
    same_file(&job.input, path) || p.set.shards().iter().any(|s| same_file(s.path(), path))
}

/// `ggml_validate_row_data` over a whole tensor, in parallel pieces of whole blocks.
fn validate_parallel(ty: GgmlType, data: &[u8]) -> Result<(), String> {
    use rayon::prelude::*;
    let ts = ty.type_size();
    let piece = ((1 << 20) / ts).max(1) * ts;
    data.par_chunks(piece)
        .try_for_each(|c| qforge_formats::ggml::validate_row_data(ty, c))
}

/// Dimensions as ggml's C writer stores them: trailing ones dropped (`ggml_n_dims`).
fn c_dims(t: &TensorInfo) -> Vec<u64> {
    t.ne()[..t.n_dims()].to_vec()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
