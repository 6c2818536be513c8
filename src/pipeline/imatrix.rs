//! Where a quantization run's importance matrix comes from: a file (`--imatrix`), a matrix
//! computed in the same run (`--calibration-text`), or, while the run is being validated before
//! that computation, the entries the computation is going to produce.

use anyhow::Result;
use qforge_formats::gguf::TensorInfo;
use qforge_formats::imatrix::{Imatrix, ImatrixEntry};
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::metadata::ImatrixInfo;

/// The importance matrix of a [`super::QuantizeJob`].
#[derive(Clone, Debug)]
pub enum ImatrixSource {
    /// An imatrix file, GGUF or legacy `.dat`, loaded as llama-quantize loads it.
    File(PathBuf),
    /// A matrix already in memory, used exactly as if it had been loaded from a file holding
    /// it (see [`as_loaded`]).
    Computed {
        /// The matrix.
        imatrix: Imatrix,
        /// What `quantize.imatrix.file` records.
        name: String,
    },
    /// A matrix that will be computed from the input model before the real run: the plan is
    /// checked against the entries the forward pass collects ([`predicted_lengths`]). A
    /// [`super::Prepared`] made from it can be printed (`--dry-run`) but not executed.
    Pending {
        /// What `quantize.imatrix.file` will record.
        name: String,
        /// The dataset the matrix will be computed on.
        dataset: String,
    },
}

/// The imatrix side of a prepared run: weights per tensor (empty while pending), the length of
/// each tensor's weights, and the output metadata; `info` is `None` when there is no imatrix at
/// all (none given, or the filters left no entry, which llama-quantize treats the same way).
pub(super) struct Resolved {
    pub weights: BTreeMap<String, Vec<f32>>,
    pub lengths: BTreeMap<String, usize>,
    pub info: Option<ImatrixInfo>,
    pub pending: bool,
}

/// Resolves `source` for the input `tensors` with the `--include-weights` / `--exclude-weights`
/// filters.
pub(super) fn resolve(
    source: Option<&ImatrixSource>,
    tensors: &[(usize, TensorInfo)],
    include: &[String],
    exclude: &[String],
) -> Result<Resolved> {
    let (weights, lengths, file, dataset, chunks, pending) = match source {
        None => {
            return Ok(Resolved {
                weights: BTreeMap::new(),
                lengths: BTreeMap::new(),
                info: None,
                pending: false,
            })
        }
        Some(ImatrixSource::File(p)) => {
            let m = Imatrix::load(p)?;
            let w = m
                .weights(include, exclude)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            let lengths: BTreeMap<String, usize> =
                w.iter().map(|(k, v)| (k.clone(), v.len())).collect();
            let name = p.to_string_lossy().into_owned();
            (
                w,
                lengths,
                name,
                m.datasets.first().cloned(),
                m.chunk_count,
                false,
            )
        }
        Some(ImatrixSource::Computed { imatrix, name }) => {
            let w = imatrix
                .weights(include, exclude)
                .map_err(|e| anyhow::anyhow!("the computed importance matrix: {e}"))?;
            let lengths: BTreeMap<String, usize> =
                w.iter().map(|(k, v)| (k.clone(), v.len())).collect();
            let ds = imatrix.datasets.first().cloned();
            (w, lengths, name.clone(), ds, imatrix.chunk_count, false)
        }
        Some(ImatrixSource::Pending { name, dataset }) => {
            let lengths = predicted_lengths(tensors)
                .into_iter()
                .filter(|(k, _)| passes_filters(k, include, exclude))
                .collect();
            // The chunk count is only known after the run; metadata of a pending run is never
            // written.
            let ds = Some(dataset.clone());
            (BTreeMap::new(), lengths, name.clone(), ds, 0, true)
        }
    };
    let info = ImatrixInfo {
        file,
        dataset,
        entries: lengths.len(),
        chunks,
    };
    // llama-quantize passes no imatrix at all when the filters leave no entry.
    let info = (!lengths.is_empty()).then_some(info);
    Ok(Resolved {
        weights,
        lengths,
        info,
        pending,
    })
}

/// `--include-weights` / `--exclude-weights` as [`Imatrix::weights`] applies them.
fn passes_filters(name: &str, include: &[String], exclude: &[String]) -> bool {
    !exclude.iter().any(|x| name.contains(x.as_str()))
        && (include.is_empty() || include.iter().any(|x| name.contains(x.as_str())))
}

/// The entries (name, weights length) llama-imatrix's collection yields for a model with these
/// tensors, without `--process-output`: every matrix of a repeating block (`blk.*` with at least
/// two dimensions), `ne0` weights per matrix times the number of experts (`ne2`).
pub fn predicted_lengths(tensors: &[(usize, TensorInfo)]) -> BTreeMap<String, usize> {
    tensors
        .iter()
        .map(|(_, t)| t)
        .filter(|t| t.name.starts_with("blk.") && t.n_dims() >= 2)
        .map(|t| {
            let ne = t.ne();
            (t.name.clone(), (ne[0] * ne[2]) as usize)
        })
        .collect()
}

/// The matrix as [`Imatrix::load`] would return it after [`Imatrix::save_gguf`] wrote it: the
/// GGUF format keeps no entry without data and stores counts as f32. Using this in place of the
/// collected matrix makes a run with a computed matrix identical to one given its file.
pub fn as_loaded(mut m: Imatrix) -> Imatrix {
    m.entries
        .retain(|_, e| !e.sums.is_empty() && !e.counts.is_empty());
    for e in m.entries.values_mut() {
        let ImatrixEntry { counts, .. } = e;
        for c in counts.iter_mut() {
            *c = (*c as f32).round() as i64;
        }
    }
    m.chunk_count = m.chunk_count.max(0) as u32 as i32;
    m.is_legacy = false;
    m.has_metadata = true;
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_loaded_matches_a_saved_and_loaded_file() {
        let mut m = Imatrix {
            datasets: vec!["text.txt".into()],
            chunk_count: 3,
            chunk_size: 128,
            has_metadata: true,
            ..Imatrix::default()
        };
        m.entries.insert(
            "blk.0.attn_q.weight".into(),
            ImatrixEntry {
                sums: vec![1.5, 2.25, 0.0, 7.0],
                counts: vec![(1 << 24) + 1, 3],
            },
        );
        m.entries.insert(
            "blk.0.ffn_down.weight".into(),
            ImatrixEntry {
                sums: vec![],
                counts: vec![0],
            },
        );
        let dir = std::env::temp_dir().join(format!("qforge-as-loaded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.gguf");
        m.save_gguf(&path).unwrap();
        let loaded = Imatrix::load(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(as_loaded(m), loaded);
    }

    #[test]
    fn filters_match_imatrix_weights() {
        let inc = vec!["attn".to_string()];
        let exc = vec!["attn_k".to_string()];
        assert!(passes_filters("blk.0.attn_q.weight", &inc, &[]));
        assert!(!passes_filters("blk.0.ffn_up.weight", &inc, &[]));
        assert!(!passes_filters("blk.0.attn_k.weight", &[], &exc));
        assert!(passes_filters("blk.0.ffn_up.weight", &[], &exc));
    }
}
