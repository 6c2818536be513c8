//! Streaming an [`HfModel`] to GGUF: one file or a split set laid out as gguf-py's `GGUFWriter`
//! splits it, each written through a temporary file and renamed when complete.

use super::error::ConvertError;
use super::HfModel;
use qforge_formats::gguf::{GgufValue, GgufWriter, TensorSpec, GGUF_DEFAULT_ALIGNMENT};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Split limits (`--split-max-tensors`, `--split-max-size`); zero means no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SplitOptions {
    /// Most tensors per file.
    pub max_tensors: usize,
    /// Most tensor bytes per file.
    pub max_bytes: u64,
}

/// Computed tensors that may wait for the writer: with the one being written and the one being
/// computed, at most `QUEUED + 2` tensors are in memory at once.
const QUEUED: usize = 1;

/// Groups tensor indices into files as `GGUFWriter.add_tensor_info` does.
pub fn split_plan(specs: &[TensorSpec], opts: SplitOptions) -> Vec<Vec<usize>> {
    let mut shards: Vec<Vec<usize>> = vec![Vec::new()];
    let mut size = 0u64;
    for (i, s) in specs.iter().enumerate() {
        let nbytes = s.n_bytes().unwrap_or(0);
        let cur = shards.last().expect("at least one shard");
        if !cur.is_empty()
            && ((opts.max_tensors != 0 && cur.len() >= opts.max_tensors)
                || (opts.max_bytes != 0 && size + nbytes > opts.max_bytes))
        {
            shards.push(Vec::new());
            size = 0;
        }
        shards.last_mut().expect("at least one shard").push(i);
        size += nbytes;
    }
    shards
}

/// The file names of a split set (`{stem}-00001-of-0000N.gguf`), or just `path`.
pub fn shard_paths(path: &Path, n: usize) -> Vec<PathBuf> {
    if n == 1 {
        return vec![path.to_path_buf()];
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    (0..n)
        .map(|i| path.with_file_name(format!("{stem}-{:05}-of-{n:05}.gguf", i + 1)))
        .collect()
}

/// Writes `model` to `path` (or a split set named after it). Returns the files written.
///
/// One thread computes the tensors in order (each one in parallel chunks, see
/// [`HfModel::tensor_encoded`]) while the calling thread writes them; the two are joined by a
/// queue of [`QUEUED`] tensors, so memory stays at a few tensors whatever the model size. Each
/// tensor's checkpoint pages are released once it is written. `progress(done, total)` is called
/// after each tensor is written.
pub fn write_gguf(
    model: &HfModel,
    path: &Path,
    opts: SplitOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<PathBuf>, ConvertError> {
    let specs = model.tensor_specs();
    let shards = split_plan(&specs, opts);
    let paths = shard_paths(path, shards.len());
    let total = specs.len();
    let mut written: Vec<PathBuf> = Vec::new();
    let result = std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Computed<'_>>(QUEUED);
        let producer = scope.spawn(move || {
            for i in 0..total {
                let r = model.tensor_encoded(i);
                let failed = r.is_err();
                // A closed queue means the writer stopped on an error of its own.
                if tx.send((i, r)).is_err() || failed {
                    break;
                }
            }
        });
        let r = write_shards(
            model,
            &specs,
            &shards,
            &paths,
            &rx,
            &mut written,
            &mut progress,
        );
        drop(rx);
        if let Err(panic) = producer.join() {
            std::panic::resume_unwind(panic);
        }
        r
    });
    if let Err(e) = result {
        for p in &written {
            let _ = std::fs::remove_file(p);
        }
        return Err(e);
    }
    Ok(written)
}

/// A tensor's index and its encoded data (or the error computing it).
type Computed<'a> = (usize, Result<Cow<'a, [u8]>, ConvertError>);

/// The writing side of [`write_gguf`]: takes the computed tensors from `rx` in order and writes
/// them into the files of `shards`, pushing each completed file onto `written`.
fn write_shards(
    model: &HfModel,
    specs: &[TensorSpec],
    shards: &[Vec<usize>],
    paths: &[PathBuf],
    rx: &mpsc::Receiver<Computed<'_>>,
    written: &mut Vec<PathBuf>,
    progress: &mut impl FnMut(usize, usize),
) -> Result<(), ConvertError> {
    let total = specs.len();
    let mut done = 0usize;
    for (si, (idx, p)) in shards.iter().zip(paths).enumerate() {
        let mut kvs: Vec<(String, GgufValue)> = if si == 0 {
            model.kvs().to_vec()
        } else {
            Vec::new()
        };
        if shards.len() > 1 {
            kvs.push(("split.no".into(), GgufValue::U16(si as u16)));
            kvs.push(("split.count".into(), GgufValue::U16(shards.len() as u16)));
            kvs.push(("split.tensors.count".into(), GgufValue::I32(total as i32)));
        }
        let shard_specs: Vec<TensorSpec> = idx.iter().map(|&i| specs[i].clone()).collect();
        let mut w = GgufWriter::create(p, &kvs, shard_specs, GGUF_DEFAULT_ALIGNMENT)?;
        for &i in idx {
            let (j, data) = rx.recv().map_err(|_| {
                ConvertError::Usage(format!(
                    "internal: tensor {} was not computed",
                    specs[i].name
                ))
            })?;
            if j != i {
                return Err(ConvertError::Usage(format!(
                    "internal: tensor {j} computed where {i} was expected"
                )));
            }
            w.write_tensor(&specs[i].name, &data?)?;
            model.release(i);
            done += 1;
            progress(done, total);
        }
        written.push(w.finish()?);
    }
    Ok(())
}
