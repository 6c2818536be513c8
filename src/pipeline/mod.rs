//! `qforge quantize`: a GGUF model in, a GGUF model out, byte-identical to what the pinned
//! `llama-quantize` writes for the same input and flags (`llama_model_quantize_impl`).
//!
//! The run is split in two: [`prepare`] reads and validates everything (model, imatrix, plan,
//! imatrix requirements) before any output exists, so bad input fails fast and leaves nothing
//! behind; [`execute`] then streams tensor by tensor into a temporary file renamed on success.

pub mod imatrix;
pub mod input;
pub mod metadata;
pub mod output_split;
pub mod rows;

use crate::quantize::recipe::order::sort_for_quantize;
use crate::quantize::{
    check_conversion, plan_quantization, ImatrixEntry, ImatrixUse, LlamaFtype, ModelDesc,
    RecipeParams, TensorDesc, TensorPlan,
};
use anyhow::{bail, Context, Result};
pub use imatrix::ImatrixSource;
pub use input::{InputModel, TensorData, VirtualModel};
use metadata::{output_metadata, KvOverride, Metadata};
pub use output_split::OutputSplit;
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
    /// Position of the tensor in the input's tensor list (file order, all shards).
    pub index: usize,
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
    input: InputModel,
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
    prepare_input(job, InputModel::File(set))
}

/// [`prepare`] for an input already open: a GGUF set, or a virtual model such as a Hugging Face
/// checkpoint (then `job.input` only names it in messages).
pub fn prepare_input(job: &QuantizeJob, input: InputModel) -> Result<Prepared> {
    // The model loader reads hyperparameters with --override-kv applied.
    let mut kvs = input.kvs().to_vec();
    for o in &job.overrides {
        match kvs.iter_mut().find(|(k, _)| *k == o.key) {
            Some(kv) => kv.1 = o.value.clone(),
            None => kvs.push((o.key.clone(), o.value.clone())),
        }
    }
    let model = ModelDesc::from_metadata(&kvs)
        .with_context(|| format!("{}: cannot quantize this model", job.input.display()))?;

    // llama-quantize's tensor order: by (layer, name), or by (shard, offset) with --keep-split.
    let mut tensors: Vec<(usize, usize, TensorInfo)> = input
        .tensors()
        .into_iter()
        .enumerate()
        .map(|(i, (s, t))| (s, i, t))
        .collect();
    if job.keep_split {
        tensors.sort_by_key(|(s, _, t)| (*s, t.offset));
    } else {
        sort_for_quantize(&mut tensors, |(_, _, t)| t.name.as_str());
    }

    let listed: Vec<(usize, TensorInfo)> =
        tensors.iter().map(|(s, _, t)| (*s, t.clone())).collect();
    let resolved = imatrix::resolve(
        job.imatrix.as_ref(),
        &listed,
        &job.include_weights,
        &job.exclude_weights,
    )?;
    drop(listed);
    let imatrix_info = resolved.info;

    let descs: Vec<TensorDesc> = tensors
        .iter()
        .map(|(_, _, t)| TensorDesc::new(t.name.clone(), t.ty, &t.dims))
        .collect();
    let mut params = job.recipe.clone();
    params.has_imatrix = imatrix_info.is_some();
    let plan = plan_quantization(&model, &params, &descs)?;
    if job.no_fallback {
        plan.refuse_fallbacks()?;
    }

    let ftype_id = if params.only_copy {
        file_type_of(input.kvs(), &tensors)
    } else {
        params.ftype.id()
    };
    let mut planned = Vec::with_capacity(tensors.len());
    for ((shard, index, info), tp) in tensors.into_iter().zip(plan.tensors) {
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
            index,
            info,
            plan: tp,
            imatrix,
            new_bytes,
        });
    }
    let metadata = output_metadata(input.kvs(), ftype_id, &job.overrides, imatrix_info.as_ref());
    Ok(Prepared {
        input,
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
fn file_type_of(kvs: &[(String, GgufValue)], sorted: &[(usize, usize, TensorInfo)]) -> u32 {
    let stored = kvs.iter().find(|(k, _)| k == "general.file_type");
    if let Some(v) = stored.and_then(|(_, v)| v.as_u32()) {
        return v;
    }
    const GUESSED: u32 = 1024;
    let mut counts: BTreeMap<GgmlType, u32> = BTreeMap::new();
    let (mut best, mut best_n) = (GgmlType::F32, 0);
    for (_, _, t) in sorted {
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
    execute_split(job, p, None, progress)
}

/// One output file of a run: its path, the tensors it holds (indices into
/// [`Prepared::tensors`], in order) and its metadata.
pub struct OutputFile {
    /// Where it is written.
    pub path: PathBuf,
    /// Which tensors it holds.
    pub tensors: Vec<usize>,
    /// Its metadata.
    pub metadata: Metadata,
}

/// The output files of a run: one file; one per input shard with `keep_split` (as
/// llama-quantize writes them); or, with `split`, the quantized model cut into a set as
/// `llama-gguf-split --split` cuts llama-quantize's output (see [`output_split`]).
pub fn output_files(
    job: &QuantizeJob,
    p: &Prepared,
    split: Option<OutputSplit>,
) -> Result<Vec<OutputFile>> {
    let n_tensors = p.tensors.len();
    let prefix = || {
        let s = job.output.to_string_lossy();
        s.strip_suffix(".gguf").unwrap_or(&s).to_string()
    };
    let files: Vec<OutputFile> = if let Some(sp) = split {
        if job.keep_split {
            bail!("--keep-split and an output split cannot be combined");
        }
        let sizes: Vec<u64> = p.tensors.iter().map(|t| t.new_bytes).collect();
        let groups = output_split::groups(&sizes, sp)?;
        let n = groups.len();
        groups
            .into_iter()
            .enumerate()
            .map(|(i, tensors)| OutputFile {
                path: split::split_path(&prefix(), i, n),
                tensors,
                metadata: output_split::shard_metadata(&p.metadata, i, n, n_tensors),
            })
            .collect()
    } else if job.keep_split {
        let n = p.input.n_shards();
        (0..n)
            .map(|i| {
                let mut md = if i == 0 {
                    p.metadata.clone()
                } else {
                    Metadata::default()
                };
                if n > 1 {
                    md.set(split::KEY_SPLIT_NO, GgufValue::U16(i as u16));
                    md.set(split::KEY_SPLIT_COUNT, GgufValue::U16(n as u16));
                    md.set(
                        split::KEY_SPLIT_TENSORS_COUNT,
                        GgufValue::I32(n_tensors as i32),
                    );
                }
                OutputFile {
                    path: split::split_path(&prefix(), i, n),
                    tensors: (0..n_tensors)
                        .filter(|&k| p.tensors[k].shard == i)
                        .collect(),
                    metadata: md,
                }
            })
            .collect()
    } else {
        vec![OutputFile {
            path: job.output.clone(),
            tensors: (0..n_tensors).collect(),
            metadata: p.metadata.clone(),
        }]
    };
    for f in &files {
        if is_input(job, p, &f.path) {
            bail!(
                "input and output files are the same: '{}'",
                f.path.display()
            );
        }
    }
    Ok(files)
}

/// [`execute`] with the output cut into a split set by `split` (see [`output_files`]).
pub fn execute_split(
    job: &QuantizeJob,
    p: &Prepared,
    split: Option<OutputSplit>,
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>> {
    if p.imatrix_pending {
        bail!("internal error: the importance matrix of this run has not been computed");
    }
    let files = output_files(job, p, split)?;
    let align = p.input.alignment();
    // Which file each tensor goes to.
    let mut file_of = vec![0usize; p.tensors.len()];
    let mut writers: Vec<Option<GgufWriter>> = Vec::new();
    for (fi, f) in files.iter().enumerate() {
        let specs: Vec<TensorSpec> = f
            .tensors
            .iter()
            .map(|&k| {
                file_of[k] = fi;
                let t = &p.tensors[k];
                TensorSpec {
                    name: t.info.name.clone(),
                    ty: t.plan.target,
                    dims: c_dims(&t.info),
                }
            })
            .collect();
        writers.push(Some(GgufWriter::create(
            &f.path,
            f.metadata.entries(),
            specs,
            align,
        )?));
    }
    let n = p.tensors.len();
    for (i, t) in p.tensors.iter().enumerate() {
        progress.tensor(i, n, t);
        let w = writers[file_of[i]].as_mut().expect("open writer");
        let data = p.input.data(t.shard, t.index, &t.info)?;
        let src = data.bytes();
        // The model loader validates every tensor it reads (check_tensors).
        validate_parallel(t.info.ty, src)
            .map_err(|e| anyhow::anyhow!("tensor '{}' has invalid data: {e}", t.info.name))?;
        if !t.plan.converts() {
            w.write_tensor(&t.info.name, src)?;
            progress.bytes(src.len() as u64);
            drop(data);
            p.input.release(t.shard, &t.info);
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
            src,
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
        drop(data);
        p.input.release(t.shard, &t.info);
    }
    let mut written = Vec::new();
    for w in writers.iter_mut() {
        written.push(w.take().expect("open writer").finish()?);
    }
    Ok(written)
}

/// The output paths of a prepared run (one per shard with `keep_split`), refusing any that is
/// one of the input files. [`execute`] checks this too; calling it earlier lets a run that has
/// long work to do before writing fail first.
pub fn check_outputs(job: &QuantizeJob, p: &Prepared) -> Result<Vec<PathBuf>> {
    Ok(output_files(job, p, None)?
        .into_iter()
        .map(|f| f.path)
        .collect())
}

/// Whether `path` is the input or one of its shards.
pub fn is_input(job: &QuantizeJob, p: &Prepared, path: &Path) -> bool {
    same_file(&job.input, path) || p.input.has_file(path)
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

pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
