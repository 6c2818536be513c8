//! Cutting a quantized model into a split set as `llama-gguf-split --split` cuts a GGUF file
//! (`split_strategy` in the pinned `tools/gguf-split/gguf-split.cpp`), so that a run writing a
//! split set directly gives the files llama-quantize followed by llama-gguf-split would give.
//!
//! llama-gguf-split takes one limit: a number of tensors per file, or a size per file counted
//! over the tensors' data, each padded to 32 bytes. Every file, the only one included, carries
//! `split.no`, `split.tensors.count` and `split.count` (in that order: the count is set last);
//! the first also carries all of the model's metadata before them.

use super::metadata::Metadata;
use qforge_formats::gguf::split::{KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT};
use qforge_formats::gguf::{GgufValue, GGUF_DEFAULT_ALIGNMENT};
use thiserror::Error;

/// How to cut the output into files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputSplit {
    /// At most this many tensors per file (`--split-max-tensors`).
    MaxTensors(usize),
    /// At most this many bytes of (padded) tensor data per file (`--split-max-size`), unless a
    /// single tensor is larger.
    MaxBytes(u64),
}

/// A split limit that cannot be applied.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum OutputSplitError {
    /// A limit of zero.
    #[error("a split limit of 0 {0} per file cannot hold anything")]
    Zero(&'static str),
    /// More files than `split.count` (u16) can number.
    #[error("the output would need {0} files; split.count holds at most 65535")]
    TooMany(usize),
}

/// Groups tensors (given by their data sizes, in output order) into files. A size limit never
/// leaves a file empty: a tensor larger than the limit gets a file of its own (where
/// llama-gguf-split stops with an error if it is the first).
pub fn groups(sizes: &[u64], split: OutputSplit) -> Result<Vec<Vec<usize>>, OutputSplitError> {
    let mut out: Vec<Vec<usize>> = vec![Vec::new()];
    match split {
        OutputSplit::MaxTensors(0) => return Err(OutputSplitError::Zero("tensors")),
        OutputSplit::MaxBytes(0) => return Err(OutputSplitError::Zero("bytes")),
        OutputSplit::MaxTensors(n) => {
            for i in 0..sizes.len() {
                if i > 0 && i % n == 0 {
                    out.push(Vec::new());
                }
                out.last_mut().expect("one group").push(i);
            }
        }
        OutputSplit::MaxBytes(max) => {
            let mut current = 0u64;
            for (i, &s) in sizes.iter().enumerate() {
                let padded = s.div_ceil(GGUF_DEFAULT_ALIGNMENT) * GGUF_DEFAULT_ALIGNMENT;
                let last = out.last().expect("one group");
                if current + padded > max && !last.is_empty() {
                    out.push(Vec::new());
                    current = 0;
                }
                current += padded;
                out.last_mut().expect("one group").push(i);
            }
        }
    }
    if out.len() > u16::MAX as usize {
        return Err(OutputSplitError::TooMany(out.len()));
    }
    Ok(out)
}

/// The metadata of file `i` of `n`: the model's metadata for the first file only, then the
/// split keys as llama-gguf-split sets them.
pub fn shard_metadata(model: &Metadata, i: usize, n: usize, n_tensors: usize) -> Metadata {
    let mut md = if i == 0 {
        model.clone()
    } else {
        Metadata::default()
    };
    md.set(KEY_SPLIT_NO, GgufValue::U16(i as u16));
    md.set(KEY_SPLIT_COUNT, GgufValue::U16(0));
    md.set(KEY_SPLIT_TENSORS_COUNT, GgufValue::I32(n_tensors as i32));
    md.set(KEY_SPLIT_COUNT, GgufValue::U16(n as u16));
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_limit_cuts_every_n() {
        let g = groups(&[1; 5], OutputSplit::MaxTensors(2)).unwrap();
        assert_eq!(g, vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert!(groups(&[1], OutputSplit::MaxTensors(0)).is_err());
    }

    #[test]
    fn size_limit_counts_padded_sizes_and_never_leaves_a_file_empty() {
        // 40 -> 64 padded; 64 + 64 > 100.
        let g = groups(&[40, 40, 10, 500, 1], OutputSplit::MaxBytes(100)).unwrap();
        assert_eq!(g, vec![vec![0], vec![1, 2], vec![3], vec![4]]);
        let g = groups(&[500], OutputSplit::MaxBytes(100)).unwrap();
        assert_eq!(g, vec![vec![0]]);
    }

    #[test]
    fn split_keys_come_last_with_the_count_set_last() {
        let mut m = Metadata::default();
        m.set("general.architecture", GgufValue::string("llama"));
        let keys =
            |m: &Metadata| -> Vec<String> { m.entries().iter().map(|(k, _)| k.clone()).collect() };
        assert_eq!(
            keys(&shard_metadata(&m, 0, 3, 7)),
            [
                "general.architecture",
                "split.no",
                "split.tensors.count",
                "split.count"
            ]
        );
        let second = shard_metadata(&m, 1, 3, 7);
        assert_eq!(
            keys(&second),
            ["split.no", "split.tensors.count", "split.count"]
        );
        assert_eq!(second.get("split.count"), Some(&GgufValue::U16(3)));
    }
}
