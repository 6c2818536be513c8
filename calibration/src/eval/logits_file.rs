//! llama-perplexity's base log-probability file (`--kl-divergence-base`), read and written.
//!
//! Layout (little-endian): the 8 bytes `_logits_`, `n_ctx` (u32), `n_vocab` (i32), `n_chunk` (i32),
//! the evaluated tokens (`n_chunk * n_ctx` i32), then for each chunk and each scored position
//! (`n_ctx - 1 - n_ctx/2` of them) one compressed row of [`compressed_row_len`] u16: the f32 scale
//! and minimum log-probability, then each token's log-probability quantized to 16 bits. Files of
//! qforge and of llama-perplexity are interchangeable.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::log_softmax::compressed_row_len;
use super::{ChunkPlan, EvalError};

const MAGIC: &[u8; 8] = b"_logits_";
const HEADER: u64 = 8 + 4 + 4 + 4;

/// A base log-probability file opened for reading, chunk by chunk.
#[derive(Debug)]
pub struct LogitsReader {
    path: PathBuf,
    reader: BufReader<File>,
    plan: ChunkPlan,
    n_vocab: usize,
    tokens: Vec<u32>,
    next_chunk: usize,
}

impl LogitsReader {
    /// Opens and validates a file: magic, sizes, exact file length, token ids inside the vocabulary.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, EvalError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
        let len = file.metadata().map_err(|e| EvalError::io(path, e))?.len();
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut head = [0u8; HEADER as usize];
        if len < HEADER {
            return Err(EvalError::file(
                path,
                "too short to be a log-probability file",
            ));
        }
        reader
            .read_exact(&mut head)
            .map_err(|e| EvalError::io(path, e))?;
        if &head[..8] != MAGIC {
            return Err(EvalError::file(
                path,
                "does not start with `_logits_`: not a log-probability file of llama-perplexity --kl-divergence-base or qforge",
            ));
        }
        let n_ctx = u32::from_le_bytes(head[8..12].try_into().unwrap());
        let n_vocab = i32::from_le_bytes(head[12..16].try_into().unwrap());
        let n_chunk = i32::from_le_bytes(head[16..20].try_into().unwrap());
        if !(4..=1 << 24).contains(&n_ctx) {
            return Err(EvalError::file(
                path,
                format!("implausible context size {n_ctx}"),
            ));
        }
        if !(1..=1 << 24).contains(&n_vocab) {
            return Err(EvalError::file(
                path,
                format!("implausible vocabulary size {n_vocab}"),
            ));
        }
        if n_chunk < 1 {
            return Err(EvalError::file(
                path,
                format!("implausible chunk count {n_chunk}"),
            ));
        }
        let (n_ctx, n_vocab, n_chunk) = (n_ctx as u64, n_vocab as u64, n_chunk as u64);
        let scored = n_ctx - 1 - n_ctx / 2;
        let row = compressed_row_len(n_vocab as usize) as u64;
        let expected = n_chunk
            .checked_mul(n_ctx * 4)
            .and_then(|t| {
                n_chunk
                    .checked_mul(scored * row * 2)
                    .and_then(|l| l.checked_add(t))
            })
            .and_then(|b| b.checked_add(HEADER));
        if expected != Some(len) {
            return Err(EvalError::file(
                path,
                format!(
                    "is {len} bytes, but n_ctx {n_ctx}, n_vocab {n_vocab} and {n_chunk} chunks need {} (truncated or not a log-probability file)",
                    expected.map_or_else(|| "more than 2^64".to_string(), |e| e.to_string())
                ),
            ));
        }
        let n_tok = (n_chunk * n_ctx) as usize;
        let mut raw = vec![0u8; n_tok * 4];
        reader
            .read_exact(&mut raw)
            .map_err(|e| EvalError::io(path, e))?;
        let mut tokens = Vec::with_capacity(n_tok);
        for (pos, c) in raw.chunks_exact(4).enumerate() {
            let t = i32::from_le_bytes(c.try_into().unwrap());
            if t < 0 || t as u64 >= n_vocab {
                return Err(EvalError::TokenOutOfRange {
                    path: path.to_path_buf(),
                    token: i64::from(t),
                    pos,
                    n_vocab: n_vocab as usize,
                });
            }
            tokens.push(t as u32);
        }
        Ok(LogitsReader {
            path: path.to_path_buf(),
            reader,
            plan: ChunkPlan {
                n_ctx: n_ctx as usize,
                n_chunk: n_chunk as usize,
                first: (n_ctx / 2) as usize,
            },
            n_vocab: n_vocab as usize,
            tokens,
            next_chunk: 0,
        })
    }

    /// The chunking the file was computed with.
    pub fn plan(&self) -> ChunkPlan {
        self.plan
    }

    /// Vocabulary size of the base model.
    pub fn n_vocab(&self) -> usize {
        self.n_vocab
    }

    /// The evaluated tokens (`n_chunk * n_ctx`, before BOS substitution).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the next chunk's compressed rows into `rows` (resized to
    /// `scored_per_chunk * compressed_row_len(n_vocab)`); returns false after the last chunk.
    pub fn next_chunk(&mut self, rows: &mut Vec<u16>) -> Result<bool, EvalError> {
        if self.next_chunk == self.plan.n_chunk {
            return Ok(false);
        }
        let n = self.plan.scored_per_chunk() * compressed_row_len(self.n_vocab);
        rows.resize(n, 0);
        let mut bytes = vec![0u8; n * 2];
        self.reader
            .read_exact(&mut bytes)
            .map_err(|e| EvalError::io(&self.path, e))?;
        for (r, b) in rows.iter_mut().zip(bytes.chunks_exact(2)) {
            *r = u16::from_le_bytes([b[0], b[1]]);
        }
        self.next_chunk += 1;
        Ok(true)
    }
}

/// A base log-probability file being written; it appears under its name only after
/// [`LogitsWriter::finish`] (written to a temporary name beside it, then renamed).
#[derive(Debug)]
pub struct LogitsWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    row_values: usize,
    chunks_left: usize,
}

impl LogitsWriter {
    /// Starts a file for `plan.n_chunk` chunks of `tokens` (the first `n_chunk * n_ctx` are stored).
    pub fn create(
        path: impl AsRef<Path>,
        plan: ChunkPlan,
        n_vocab: usize,
        tokens: &[u32],
    ) -> Result<Self, EvalError> {
        let path = path.as_ref().to_path_buf();
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let tmp = path.with_file_name(name);
        let f = File::create(&tmp).map_err(|e| EvalError::io(&tmp, e))?;
        let mut w = LogitsWriter {
            path,
            tmp,
            out: Some(BufWriter::with_capacity(1 << 20, f)),
            row_values: plan.scored_per_chunk() * compressed_row_len(n_vocab),
            chunks_left: plan.n_chunk,
        };
        let mut head = Vec::with_capacity(HEADER as usize + plan.n_chunk * plan.n_ctx * 4);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&(plan.n_ctx as u32).to_le_bytes());
        head.extend_from_slice(&(n_vocab as i32).to_le_bytes());
        head.extend_from_slice(&(plan.n_chunk as i32).to_le_bytes());
        for &t in &tokens[..plan.n_chunk * plan.n_ctx] {
            head.extend_from_slice(&(t as i32).to_le_bytes());
        }
        w.write(&head)?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), EvalError> {
        let out = self.out.as_mut().expect("writer used after finish");
        out.write_all(bytes)
            .map_err(|e| EvalError::io(&self.tmp, e))
    }

    /// Appends one chunk's compressed rows.
    pub fn write_chunk(&mut self, rows: &[u16]) -> Result<(), EvalError> {
        assert_eq!(rows.len(), self.row_values, "chunk rows of the wrong size");
        assert!(self.chunks_left > 0, "more chunks than announced");
        let bytes: Vec<u8> = rows.iter().flat_map(|r| r.to_le_bytes()).collect();
        self.write(&bytes)?;
        self.chunks_left -= 1;
        Ok(())
    }

    /// Flushes and renames the file into place; fails if chunks are missing.
    pub fn finish(mut self) -> Result<(), EvalError> {
        if self.chunks_left != 0 {
            return Err(EvalError::file(
                &self.path,
                format!("{} chunks were never written", self.chunks_left),
            ));
        }
        let out = self.out.take().expect("finished twice");
        let f = out
            .into_inner()
            .map_err(|e| EvalError::io(&self.tmp, e.into_error()))?;
        f.sync_all().map_err(|e| EvalError::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| EvalError::io(&self.path, e))
    }
}

impl Drop for LogitsWriter {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_validation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("base.logits");
        let plan = ChunkPlan {
            n_ctx: 8,
            n_chunk: 2,
            first: 4,
        };
        let tokens: Vec<u32> = (0..20).map(|i| i % 5).collect();
        let mut w = LogitsWriter::create(&p, plan, 5, &tokens).unwrap();
        let rows: Vec<u16> = (0..3 * 10).map(|i| i as u16).collect();
        w.write_chunk(&rows).unwrap();
        assert!(!p.exists(), "visible before finish");
        w.write_chunk(&rows).unwrap();
        w.finish().unwrap();
        let mut r = LogitsReader::open(&p).unwrap();
        assert_eq!(
            (r.plan(), r.n_vocab(), r.tokens()),
            (plan, 5, &tokens[..16])
        );
        let mut got = Vec::new();
        assert!(r.next_chunk(&mut got).unwrap());
        assert_eq!(got, rows);
        assert!(r.next_chunk(&mut got).unwrap());
        assert!(!r.next_chunk(&mut got).unwrap());

        // Truncation, a bad magic and an out-of-range token are refused with the file named.
        let bytes = std::fs::read(&p).unwrap();
        let bad = dir.path().join("bad.logits");
        std::fs::write(&bad, &bytes[..bytes.len() - 2]).unwrap();
        let e = LogitsReader::open(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.logits") && e.contains("truncated"), "{e}");
        let mut b2 = bytes.clone();
        b2[0] = b'X';
        std::fs::write(&bad, &b2).unwrap();
        assert!(LogitsReader::open(&bad)
            .unwrap_err()
            .to_string()
            .contains("_logits_"));
        let mut b3 = bytes.clone();
        b3[20..24].copy_from_slice(&7i32.to_le_bytes());
        std::fs::write(&bad, &b3).unwrap();
        assert!(matches!(
            LogitsReader::open(&bad),
            Err(EvalError::TokenOutOfRange {
                token: 7,
                pos: 0,
                ..
            })
        ));
    }

    #[test]
    fn unfinished_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.logits");
        let plan = ChunkPlan {
            n_ctx: 8,
            n_chunk: 2,
            first: 4,
        };
        let w = LogitsWriter::create(&p, plan, 5, &[0; 16]).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
