//! Writing importance matrices as `llama-imatrix` writes them (`save_imatrix` and
//! `save_imatrix_legacy` in the pinned `tools/imatrix/imatrix.cpp`): the GGUF format with its
//! metadata keys in llama-imatrix's order and one `in_sum2` / `counts` tensor pair per weight in
//! name order, or the legacy `.dat` format. Both go through a temporary file renamed into place.

use super::{Imatrix, ImatrixError, KEY_CHUNK_COUNT, KEY_CHUNK_SIZE, KEY_DATASETS};
use crate::ggml::GgmlType;
use crate::gguf::{temp_path, GgufArray, GgufValue, GgufWriter, TensorSpec};
use std::io::Write;
use std::path::Path;

/// GGUF alignment llama-imatrix writes with (`gguf_init_empty`'s default, no key).
const ALIGNMENT: u64 = 32;

fn write_error(path: &Path, reason: impl Into<String>) -> ImatrixError {
    ImatrixError::Write {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Dimensions as ggml stores them: trailing dimensions of 1 dropped (`ggml_n_dims`), at least one.
fn trimmed(dims: [u64; 2]) -> Vec<u64> {
    if dims[1] == 1 {
        vec![dims[0]]
    } else {
        dims.to_vec()
    }
}

fn f32_bytes(v: impl Iterator<Item = f32>) -> Vec<u8> {
    v.flat_map(f32::to_le_bytes).collect()
}

impl Imatrix {
    /// Writes the GGUF imatrix format: `general.type = "imatrix"`, `imatrix.datasets`,
    /// `imatrix.chunk_count`, `imatrix.chunk_size` (in that order), then for every entry with
    /// data, in name order, `<name>.in_sum2` (F32, `ne0 × n_mat`) and `<name>.counts` (F32,
    /// `1 × n_mat`). Entries whose experts saw no tokens are kept, as llama-imatrix keeps them.
    pub fn save_gguf(&self, path: impl AsRef<Path>) -> Result<(), ImatrixError> {
        let path = path.as_ref();
        let kvs = vec![
            (
                "general.type".to_string(),
                GgufValue::String(b"imatrix".to_vec()),
            ),
            (
                KEY_DATASETS.to_string(),
                GgufValue::Array(GgufArray::String(
                    self.datasets
                        .iter()
                        .map(|d| d.as_bytes().to_vec())
                        .collect(),
                )),
            ),
            (
                KEY_CHUNK_COUNT.to_string(),
                GgufValue::U32(self.chunk_count as u32),
            ),
            (
                KEY_CHUNK_SIZE.to_string(),
                GgufValue::U32(self.chunk_size as u32),
            ),
        ];
        let mut specs = Vec::new();
        let mut data = Vec::new();
        for (name, e) in &self.entries {
            let n_mat = e.counts.len();
            if e.sums.is_empty() || n_mat == 0 {
                continue;
            }
            if e.sums.len() % n_mat != 0 {
                return Err(write_error(
                    path,
                    format!(
                        "'{name}': {} sums cannot be split over {n_mat} counts",
                        e.sums.len()
                    ),
                ));
            }
            let ne0 = (e.sums.len() / n_mat) as u64;
            specs.push(TensorSpec {
                name: format!("{name}.in_sum2"),
                ty: GgmlType::F32,
                dims: trimmed([ne0, n_mat as u64]),
            });
            data.push(f32_bytes(e.sums.iter().copied()));
            specs.push(TensorSpec {
                name: format!("{name}.counts"),
                ty: GgmlType::F32,
                dims: trimmed([1, n_mat as u64]),
            });
            data.push(f32_bytes(e.counts.iter().map(|&c| c as f32)));
        }
        let gguf_err = |e: crate::gguf::GgufError| write_error(path, e.to_string());
        let mut w = GgufWriter::create(path, &kvs, specs.clone(), ALIGNMENT).map_err(gguf_err)?;
        for (spec, bytes) in specs.iter().zip(&data) {
            w.write_tensor(&spec.name, bytes).map_err(gguf_err)?;
        }
        w.finish().map_err(gguf_err)?;
        Ok(())
    }

    /// Writes the legacy `.dat` format (`llama-imatrix --output-format dat`): entries in name
    /// order, skipping those with no data at all; each stores `ncall = ceil(max count /
    /// chunk_size)` and the values `sum / count * ncall` (1 for experts that saw no tokens); then
    /// the chunk count and the last dataset name. Needs a positive `chunk_size`.
    pub fn save_legacy(&self, path: impl AsRef<Path>) -> Result<(), ImatrixError> {
        let path = path.as_ref();
        if self.chunk_size <= 0 {
            return Err(write_error(
                path,
                "the legacy format needs the chunk size, which is not known",
            ));
        }
        let chunk_size = self.chunk_size as i64;
        let stored: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| e.counts.iter().any(|&c| c != 0))
            .collect();
        let mut out = Vec::new();
        out.extend_from_slice(&(stored.len() as i32).to_le_bytes());
        for (name, e) in stored {
            out.extend_from_slice(&(name.len() as i32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            let max = e.counts.iter().copied().max().unwrap_or(0);
            let ncall = ((max + chunk_size - 1) / chunk_size) as i32;
            out.extend_from_slice(&ncall.to_le_bytes());
            let nval = e.sums.len();
            let nmat = e.counts.len();
            out.extend_from_slice(&(nval as i32).to_le_bytes());
            if nval > 0 && nmat > 0 {
                if nval % nmat != 0 {
                    return Err(write_error(
                        path,
                        format!("'{name}': {nval} sums cannot be split over {nmat} counts"),
                    ));
                }
                let per = nval / nmat;
                for (i, &s) in e.sums.iter().enumerate() {
                    let mut count = e.counts[i / per] as f32;
                    let mut value = s;
                    if count == 0.0 {
                        value = 1.0;
                        count = 1.0;
                    }
                    out.extend_from_slice(&((value / count) * ncall as f32).to_le_bytes());
                }
            }
        }
        out.extend_from_slice(&self.chunk_count.to_le_bytes());
        let ds = self
            .datasets
            .last()
            .map(String::as_bytes)
            .unwrap_or_default();
        out.extend_from_slice(&(ds.len() as i32).to_le_bytes());
        out.extend_from_slice(ds);
        write_atomically(path, &out)
    }
}

/// Writes `bytes` to a temporary sibling of `path` and renames it into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ImatrixError> {
    let tmp = temp_path(path);
    let io = |p: &Path, error: std::io::Error| ImatrixError::Io {
        path: p.to_path_buf(),
        error,
    };
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::super::ImatrixEntry;
    use super::*;

    fn sample() -> Imatrix {
        let mut m = Imatrix {
            datasets: vec!["a.txt".into(), "text/b.txt".into()],
            chunk_count: 3,
            chunk_size: 4,
            has_metadata: true,
            ..Default::default()
        };
        m.entries.insert(
            "blk.0.attn_q.weight".into(),
            ImatrixEntry {
                sums: vec![1.5, 2.0, 0.25],
                counts: vec![12],
            },
        );
        m.entries.insert(
            "blk.0.ffn_up_exps.weight".into(),
            ImatrixEntry {
                sums: vec![3.0, 4.0, 0.0, 0.0, 5.0, 6.0],
                counts: vec![5, 0, 9],
            },
        );
        m.entries.insert(
            "blk.1.ffn_down_exps.weight".into(),
            ImatrixEntry {
                sums: vec![0.0, 0.0],
                counts: vec![0, 0],
            },
        );
        m
    }

    #[test]
    fn gguf_round_trips_through_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        let m = sample();
        m.save_gguf(&p).unwrap();
        let back = Imatrix::load(&p).unwrap();
        assert_eq!(back, m);
        let f = crate::gguf::GgufFile::open(&p).unwrap();
        let keys: Vec<_> = f.header().kvs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "general.type",
                KEY_DATASETS,
                KEY_CHUNK_COUNT,
                KEY_CHUNK_SIZE
            ]
        );
        let t: Vec<_> = f
            .header()
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), t.dims.clone()))
            .collect();
        assert_eq!(t[0], ("blk.0.attn_q.weight.in_sum2", vec![3]));
        assert_eq!(t[1], ("blk.0.attn_q.weight.counts", vec![1]));
        assert_eq!(t[2], ("blk.0.ffn_up_exps.weight.in_sum2", vec![2, 3]));
        assert_eq!(t[3], ("blk.0.ffn_up_exps.weight.counts", vec![1, 3]));
        assert_eq!(t.len(), 6);
    }

    #[test]
    fn legacy_stores_means_times_ncall_and_skips_empty_entries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.dat");
        sample().save_legacy(&p).unwrap();
        let back = Imatrix::load(&p).unwrap();
        assert!(back.is_legacy);
        assert_eq!(back.chunk_count, 3);
        assert_eq!(back.datasets, ["text/b.txt"]);
        assert_eq!(back.entries.len(), 2);
        // ncall = ceil(12 / 4) = 3: values are sum / 12 * 3.
        let q = &back.entries["blk.0.attn_q.weight"];
        assert_eq!(q.counts, [3]);
        assert_eq!(
            q.sums,
            [1.5 / 12.0 * 3.0, 2.0 / 12.0 * 3.0, 0.25 / 12.0 * 3.0]
        );
        // ncall = ceil(9 / 4) = 3; the unseen expert stores 1 * ncall.
        let u = &back.entries["blk.0.ffn_up_exps.weight"];
        assert_eq!(u.counts, [3]);
        assert_eq!(
            u.sums,
            [
                3.0 / 5.0 * 3.0,
                4.0 / 5.0 * 3.0,
                3.0,
                3.0,
                5.0 / 9.0 * 3.0,
                6.0 / 9.0 * 3.0
            ]
        );
        assert!(
            std::fs::read_dir(dir.path()).unwrap().count() == 1,
            "no temporary left"
        );
    }

    #[test]
    fn legacy_needs_a_chunk_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = sample();
        m.chunk_size = 0;
        let e = m.save_legacy(dir.path().join("m.dat")).unwrap_err();
        assert!(matches!(e, ImatrixError::Write { .. }), "{e}");
    }
}
