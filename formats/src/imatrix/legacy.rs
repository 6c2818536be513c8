//! The legacy `.dat` importance-matrix format (`llama-imatrix --output-format dat`): native
//! little-endian `i32 n_entries`, then per entry `i32 len, name, i32 ncall, i32 nval,
//! f32[nval]`, then optionally `i32 chunk_count, i32 len, dataset`.

use super::{invalid, Imatrix, ImatrixEntry, ImatrixError};
use std::path::Path;

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|s| i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
}

pub(super) fn load(path: &Path) -> Result<Imatrix, ImatrixError> {
    let bytes = std::fs::read(path).map_err(|source| ImatrixError::Io {
        path: path.to_path_buf(),
        error: source,
    })?;
    let mut c = Cursor { b: &bytes, pos: 0 };
    let n_entries = c
        .i32()
        .filter(|n| *n >= 1)
        .ok_or_else(|| invalid(path, "neither GGUF nor legacy imatrix: no entries"))?;
    let mut m = Imatrix {
        is_legacy: true,
        ..Default::default()
    };
    for i in 0..n_entries {
        let len = c
            .i32()
            .filter(|l| *l >= 0)
            .ok_or_else(|| invalid(path, format!("entry {}: bad name length", i + 1)))?;
        let name = c
            .take(len as usize)
            .ok_or_else(|| invalid(path, format!("entry {}: truncated name", i + 1)))?;
        // The C loader stops the name at the first NUL.
        let name = name.split(|b| *b == 0).next().unwrap_or_default();
        let name = String::from_utf8_lossy(name).into_owned();
        let ncall = c
            .i32()
            .ok_or_else(|| invalid(path, format!("entry '{name}': truncated")))?;
        let nval = c
            .i32()
            .filter(|n| *n >= 1)
            .ok_or_else(|| invalid(path, format!("entry '{name}': bad number of values")))?;
        let raw = c.take(nval as usize * 4).ok_or_else(|| {
            invalid(
                path,
                format!("entry '{name}': {nval} values do not fit in the file"),
            )
        })?;
        let sums = raw
            .chunks_exact(4)
            .map(|s| f32::from_le_bytes([s[0], s[1], s[2], s[3]]))
            .collect();
        m.entries.insert(
            name,
            ImatrixEntry {
                sums,
                counts: vec![ncall as i64],
            },
        );
    }
    if let Some(n_calls) = c.i32() {
        m.chunk_count = n_calls;
        if let Some(len) = c.i32().filter(|l| *l > 0) {
            if let Some(ds) = c.take(len as usize) {
                let ds = ds.split(|b| *b == 0).next().unwrap_or_default();
                m.datasets.push(String::from_utf8_lossy(ds).into_owned());
            }
        }
    }
    Ok(m)
}
