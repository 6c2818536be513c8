//! Hardening of the GGUF reader and writer against hostile counts, foreign tensor infos and
//! headers the readers would refuse (defects found by review, each pinned by a test).

mod common;

use common::oracle::fixture;
use qforge_formats::ggml::GgmlType;
use qforge_formats::gguf::{GgufFile, GgufValue, GgufWriter, ReadMode, TensorInfo, TensorSpec};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::Command;

const CHILD_ENV: &str = "QFORGE_SPARSE_CASE";

/// A sparse file of 1 TiB (64 GiB where the filesystem allows no more) holding only a header
/// with the given counts; the rest reads as zeros.
fn sparse_file(path: &Path, n_tensors: impl Fn(u64) -> u64, n_kv: impl Fn(u64) -> u64) -> u64 {
    for len in [1u64 << 40, 1 << 36] {
        let mut f = std::fs::File::create(path).unwrap();
        let mut h = b"GGUF".to_vec();
        h.extend(3u32.to_le_bytes());
        h.extend(n_tensors(len).to_le_bytes());
        h.extend(n_kv(len).to_le_bytes());
        f.write_all(&h).unwrap();
        if f.set_len(len).is_ok() {
            return len;
        }
    }
    panic!("cannot make a sparse file in {}", path.display());
}

/// One case, run in a child process (an allocation failure aborts the whole process).
fn sparse_case(case: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse.gguf");
    // Counts as large as the reader's plausibility checks (12 bytes per KV, 24 per tensor
    // info) allow for the file's size; the zeros that follow make the first or second record fail.
    let (want, _len) = match case {
        "n_kv" => (
            "key of metadata entry 0 is empty",
            sparse_file(&path, |_| 0, |len| len / 12),
        ),
        "n_tensors" => (
            "duplicate tensor name ''",
            sparse_file(&path, |len| len / 24, |_| 0),
        ),
        other => panic!("unknown case {other}"),
    };
    for mode in [ReadMode::Mmap, ReadMode::Buffered] {
        let err = GgufFile::open_with(&path, mode).err().expect("refused");
        assert!(err.to_string().contains(want), "{case}: {err}");
    }
}

/// `Vec::with_capacity(n_kv)` and `Vec::with_capacity(n_tensors)` in `read_header` trust the
/// counts up to the file size: a corrupt count in a large model file (here a sparse one) asks
/// for terabytes up front, and the process aborts with "memory allocation of N bytes failed"
/// before the first record is read. Fix: cap the initial capacities (e.g. `.min(4096)`).
#[test]
fn huge_counts_in_a_large_file_are_refused_without_aborting() {
    if let Ok(case) = std::env::var(CHILD_ENV) {
        sparse_case(&case);
        return;
    }
    let me = std::env::current_exe().unwrap();
    for case in ["n_kv", "n_tensors"] {
        let out = Command::new(&me)
            .args([
                "--exact",
                "huge_counts_in_a_large_file_are_refused_without_aborting",
            ])
            .args(["--include-ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, case)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{case}: the reader did not refuse the file cleanly ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `GgufFile::tensor_data` trusts its argument: a `TensorInfo` that does not describe this
/// file (from another shard, or edited) panics on the slice in mmap mode and allocates its
/// claimed size in buffered mode. Fix: check `data_offset + offset + n_bytes <= len` (with
/// checked arithmetic) and return `GgufError::Usage` otherwise.
#[test]
fn tensor_data_of_a_foreign_tensor_is_an_error() {
    let path = fixture("malformed/valid.gguf");
    let foreign = TensorInfo {
        name: "big".into(),
        ty: GgmlType::F32,
        dims: vec![1 << 20],
        offset: 1 << 30,
    };
    for mode in [ReadMode::Mmap, ReadMode::Buffered] {
        let f = GgufFile::open_with(&path, mode).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| f.tensor_data(&foreign).is_err()));
        assert!(
            matches!(r, Ok(true)),
            "{mode:?}: tensor_data on a tensor beyond the file did not return Err"
        );
    }
}

fn f32_tensor(name: &str, dims: &[u64]) -> TensorSpec {
    TensorSpec {
        name: name.into(),
        ty: GgmlType::F32,
        dims: dims.to_vec(),
    }
}

/// `GgufWriter::create` writes headers that llama.cpp's reader (and qforge's) refuses, so the
/// error only shows when the file is loaded. Fix: validate in `encode_header` what
/// `read_header` checks: non-empty unique keys; `general.alignment`, when present, a U32 equal
/// to the `alignment` argument; unique tensor names; at most 4 dims, each at most `i64::MAX`,
/// with an element count that fits in `i64` (checked before `TensorSpec::n_bytes`, whose
/// unchecked `product()` overflows: a panic in debug builds, a wrong size in release builds).
#[test]
fn the_writer_refuses_headers_readers_refuse() {
    let kv = |k: &str, v: GgufValue| (k.to_string(), v);
    type Case<'a> = (&'a str, Vec<(String, GgufValue)>, Vec<TensorSpec>);
    let cases: Vec<Case> = vec![
        (
            "duplicate key",
            vec![kv("a", GgufValue::U8(1)), kv("a", GgufValue::U8(2))],
            vec![],
        ),
        ("empty key", vec![kv("", GgufValue::U8(1))], vec![]),
        (
            "general.alignment 64 with alignment 32",
            vec![kv("general.alignment", GgufValue::U32(64))],
            vec![f32_tensor("x", &[3]), f32_tensor("y", &[3])],
        ),
        (
            "general.alignment as u64",
            vec![kv("general.alignment", GgufValue::U64(32))],
            vec![f32_tensor("x", &[3])],
        ),
        (
            "duplicate tensor name",
            vec![],
            vec![f32_tensor("x", &[3]), f32_tensor("x", &[3])],
        ),
        ("5 dims", vec![], vec![f32_tensor("x", &[1, 1, 1, 1, 1])]),
        (
            "dim above i64::MAX",
            vec![],
            vec![f32_tensor("x", &[0, u64::MAX])],
        ),
        (
            "element count above i64::MAX",
            vec![],
            vec![f32_tensor("x", &[1 << 32, 1 << 32])],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    for (what, kvs, tensors) in cases {
        let path = dir.path().join("out.gguf");
        match catch_unwind(AssertUnwindSafe(|| {
            GgufWriter::create(&path, &kvs, tensors, 32).is_ok()
        })) {
            Ok(false) => {}
            Ok(true) => wrong.push(format!("{what}: accepted")),
            Err(_) => wrong.push(format!("{what}: panicked")),
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}
