//! The GGUF reader on hostile input: the malformed corpus in fixtures/malformed/ (each file
//! breaks one rule of llama.cpp's gguf.cpp and must be refused with a message naming it), and
//! thousands of truncations and byte flips of the tiny model fixture, in both read modes, which
//! must give `Err` or a fully readable file, never a panic.

mod common;

use common::oracle::{fixture, oracle};
use common::Rng;
use qforge_formats::gguf::{parse_header, GgufFile, ReadMode};
use std::io::{Seek, SeekFrom, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

const MODES: [ReadMode; 2] = [ReadMode::Mmap, ReadMode::Buffered];

/// Each corpus file with a fragment the error message must contain.
const CORPUS: &[(&str, &str)] = &[
    ("empty_file", "magic needs 4 bytes at byte 0"),
    ("bad_magic", "bad magic \"GGML\""),
    ("version_0", "bad GGUF version 0"),
    ("version_1", "GGUF version 1 is no longer supported"),
    (
        "version_4",
        "GGUF version 4 is newer than the supported version 3",
    ),
    ("version_byteswapped", "byte-swapped"),
    (
        "huge_n_tensors",
        "tensor count 4611686018427387904 is impossible",
    ),
    ("negative_n_tensors", "tensor count -1 is impossible"),
    ("huge_n_kv", "metadata count 1099511627776 is impossible"),
    ("negative_n_kv", "metadata count -5 is impossible"),
    (
        "key_length_over_1gib",
        "string length 1073741825 exceeds the maximum 1073741824",
    ),
    ("string_past_eof", "value of 's' needs 4096 bytes"),
    (
        "array_over_1g_elements",
        "array of 1073741825 elements exceeds the maximum 1073741824",
    ),
    ("array_past_eof", "value of 'a' needs 400000 bytes"),
    ("string_array_past_eof", "value of 'a' needs 8388608 bytes"),
    ("nested_array", "nested arrays are not supported"),
    ("invalid_value_type", "key 'k' has invalid GGUF type 13"),
    (
        "invalid_array_element_type",
        "invalid array element type 200",
    ),
    ("duplicate_key", "duplicate key 'general.architecture'"),
    ("empty_key", "key of metadata entry 1 is empty"),
    (
        "alignment_not_power_of_two",
        "general.alignment 48 is not a power of 2",
    ),
    ("alignment_zero", "general.alignment 0 is not a power of 2"),
    (
        "alignment_wrong_type",
        "general.alignment must be of type u32 but is u64",
    ),
    (
        "tensor_name_too_long",
        "tensor 0 name is too long: 64 >= 64",
    ),
    ("duplicate_tensor_name", "duplicate tensor name 'a'"),
    ("too_many_dims", "tensor 'a' has 5 dimensions, more than 4"),
    ("negative_dim", "tensor 'a' dimension 1 is negative (-1)"),
    ("type_4", "tensor 'a' has invalid or removed ggml type 4"),
    ("type_31", "tensor 'a' has invalid or removed ggml type 31"),
    ("type_36", "tensor 'a' has invalid or removed ggml type 36"),
    ("type_99", "tensor 'a' has invalid or removed ggml type 99"),
    (
        "type_negative",
        "tensor 'a' has invalid or removed ggml type 4294967295",
    ),
    (
        "row_not_block_multiple",
        "16 elements per row, not a multiple of the block size 32",
    ),
    ("shape_overflow", "shape [4294967296, 4294967296] overflows"),
    ("bytes_overflow", "tensor 'a' size in bytes overflows"),
    (
        "first_offset_not_zero",
        "tensor 'a' has offset 32, expected 0",
    ),
    (
        "offset_not_contiguous",
        "tensor 'b' has offset 48, expected 32",
    ),
    ("offsets_overlap", "tensor 'b' has offset 0, expected 32"),
    (
        "truncated_data",
        "truncated GGUF file: tensor data (last tensor 'b') needs 64 bytes",
    ),
    ("truncated_in_kv", "key of metadata entry 0 needs 20 bytes"),
    ("truncated_in_tensor_info", "offset of 'b' needs 8 bytes"),
    (
        "truncated_in_padding",
        "truncated GGUF file: tensor data (last tensor 'b')",
    ),
];

/// Files llama.cpp's `gguf_init_from_file` accepts in the header-only mode its tools use: the
/// data is checked later, by the model loader ("tensor data is not within the file bounds").
const DATA_ONLY: &[&str] = &["truncated_data"];

fn corpus_path(name: &str) -> std::path::PathBuf {
    fixture(&format!("malformed/{name}.gguf"))
}

/// Runs `f`, turning a panic into an `Err` that names `what`.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
        format!("{what}: panicked: {}", msg.unwrap_or_default())
    })
}

#[test]
fn corpus_files_are_refused_with_a_message_naming_the_problem() {
    let mut failures = Vec::new();
    for &(name, want) in CORPUS {
        let path = corpus_path(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut results: Vec<(String, Result<(), String>)> = MODES
            .iter()
            .map(|&m| {
                let r = no_panic(name, || {
                    GgufFile::open_with(&path, m)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                });
                (format!("{m:?}"), r.unwrap_or_else(Err))
            })
            .collect();
        let r = no_panic(name, || {
            parse_header(&bytes[..], bytes.len() as u64, &path)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        results.push(("parse_header".into(), r.unwrap_or_else(Err)));
        for (how, r) in results {
            match r {
                Ok(()) => failures.push(format!("{name} ({how}): accepted")),
                Err(e) if !e.contains(want) || e.contains("panicked") => failures.push(format!(
                    "{name} ({how}): error {e:?} does not contain {want:?}"
                )),
                Err(e) => assert!(
                    e.contains(&path.display().to_string()),
                    "{name}: the error names the file: {e}"
                ),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_corpus_base_is_valid() {
    for mode in MODES {
        let f = GgufFile::open_with(corpus_path("valid"), mode).unwrap();
        let h = f.header();
        assert_eq!(h.architecture(), Some("test"));
        let floats = |name: &str| -> Vec<f32> {
            let data = f.tensor_data(h.tensor(name).unwrap()).unwrap();
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        assert_eq!(floats("a"), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(floats("b"), (0..8).map(|x| x as f32).collect::<Vec<_>>());
    }
}

#[test]
fn corpus_listing_matches_the_table_and_readme() {
    let dir = fixture("malformed");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".gguf").map(str::to_string))
        .filter(|n| n != "valid")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CORPUS.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "fixtures/malformed/*.gguf and CORPUS differ"
    );
    for name in listed.iter().chain(std::iter::once(&"valid".to_string())) {
        assert!(
            readme.contains(&format!("`{name}.gguf`")),
            "README.md does not describe {name}.gguf"
        );
    }
}

#[test]
fn llama_cpp_refuses_the_corpus_too() {
    let Some(o) = oracle() else { return };
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("out");
    let accepted = |name: &str| -> bool {
        let mut cmd = o.tool("llama-gguf-split");
        cmd.arg("--split")
            .arg("--dry-run")
            .arg(corpus_path(name))
            .arg(&prefix);
        cmd.output().unwrap().status.success()
    };
    assert!(accepted("valid"), "llama-gguf-split refuses the valid base");
    for &(name, _) in CORPUS {
        let want = DATA_ONLY.contains(&name);
        assert_eq!(
            accepted(name),
            want,
            "{name}: llama.cpp's header reader accepts it: {}",
            want
        );
    }
}

/// Opens `path` in `mode` and, when it opens, reads every tensor and checks each slice against
/// `file_bytes`, the file's content.
fn open_and_read(path: &Path, mode: ReadMode, file_bytes: &[u8]) -> Result<(), String> {
    let f = GgufFile::open_with(path, mode).map_err(|e| e.to_string())?;
    let h = f.header();
    for t in &h.tensors {
        let data = f
            .tensor_data(t)
            .map_err(|e| format!("tensor_data({}) failed on an open file: {e}", t.name))?;
        assert_eq!(data.len() as u64, t.n_bytes(), "{}", t.name);
        let start = (h.data_offset + t.offset) as usize;
        if let (Some(&first), Some(&last)) = (data.first(), data.last()) {
            assert_eq!(first, file_bytes[start], "{}: first byte", t.name);
            assert_eq!(
                last,
                file_bytes[start + data.len() - 1],
                "{}: last byte",
                t.name
            );
        }
    }
    Ok(())
}

#[test]
fn truncations_of_the_fixture_are_refused_without_panicking() {
    let src = fixture("tiny-llama-f16.gguf");
    let bytes = std::fs::read(&src).unwrap();
    let whole = GgufFile::open(&src).unwrap();
    let header_end = whole.header().data_offset as usize;
    // The last tensor ends the file, so every truncation loses data.
    let last = whole.header().tensors.last().unwrap();
    assert_eq!(
        header_end as u64 + last.offset + last.n_bytes(),
        bytes.len() as u64
    );

    // Every length through the header, then 1,000 lengths spread over the data, longest first.
    let mut lens: Vec<usize> = (0..=header_end + 64).collect();
    lens.extend((0..1000).map(|i| header_end + 64 + (bytes.len() - header_end - 64) * i / 1000));
    lens.push(bytes.len() - 1);
    lens.sort_unstable();
    lens.dedup();
    lens.reverse();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let mut failures = Vec::new();
    for &len in &lens {
        file.set_len(len as u64).unwrap();
        for mode in MODES {
            match no_panic(&format!("len {len} {mode:?}"), || {
                open_and_read(&path, mode, &bytes)
            }) {
                Ok(Ok(())) => failures.push(format!("len {len} ({mode:?}): accepted")),
                Ok(Err(e))
                    if len >= header_end && !e.contains("truncated GGUF file: tensor data") =>
                {
                    failures.push(format!("len {len} ({mode:?}): {e}"))
                }
                Ok(Err(_)) => {}
                Err(p) => failures.push(p),
            }
        }
        let r = no_panic(&format!("parse_header len {len}"), || {
            parse_header(&bytes[..len], len as u64, &path).is_ok()
        });
        match r {
            Ok(false) => {}
            Ok(true) => failures.push(format!("parse_header len {len}: accepted")),
            Err(p) => failures.push(p),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} truncations failed:\n{}",
        failures.len(),
        lens.len(),
        failures.join("\n")
    );
}

/// One deterministic corruption: a position and the bytes to put there.
fn corruption(r: &mut Rng, bytes: &[u8], header_end: usize) -> (usize, Vec<u8>) {
    // Nine in ten land in the header, where every byte matters; the rest anywhere.
    let pos = if r.below(10) < 9 {
        r.below(header_end as u64)
    } else {
        r.below(bytes.len() as u64)
    } as usize;
    let len = [1, 1, 1, 2, 4, 8][r.below(6) as usize].min(bytes.len() - pos);
    let new: Vec<u8> = match r.below(4) {
        0 => bytes[pos..pos + len]
            .iter()
            .map(|b| b ^ (1 << r.below(8)))
            .collect(),
        1 => vec![0xff; len],
        2 => vec![0; len],
        _ => r.bytes(len),
    };
    (pos, new)
}

#[test]
fn byte_flips_in_the_fixture_never_panic() {
    let src = fixture("tiny-llama-f16.gguf");
    let mut bytes = std::fs::read(&src).unwrap();
    let original = bytes.clone();
    let whole = GgufFile::open(&src).unwrap();
    let header_end = whole.header().data_offset as usize;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flipped.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let mut r = Rng::new(0x5eed);
    let (mut ok, mut err, mut failures) = (0usize, 0usize, Vec::new());
    const FILE_CASES: usize = 2500;
    const MEMORY_CASES: usize = 20000;
    for case in 0..FILE_CASES + MEMORY_CASES {
        let (pos, new) = corruption(&mut r, &bytes, header_end);
        let len = new.len();
        bytes[pos..pos + len].copy_from_slice(&new);
        let what = format!("case {case}: {len} bytes at {pos} set to {new:02x?}");
        if case < FILE_CASES {
            file.seek(SeekFrom::Start(pos as u64)).unwrap();
            file.write_all(&new).unwrap();
            for mode in MODES {
                match no_panic(&what, || open_and_read(&path, mode, &bytes)) {
                    Ok(Ok(())) => ok += 1,
                    Ok(Err(e)) if e.contains("tensor_data(") => {
                        failures.push(format!("{what} ({mode:?}): {e}"))
                    }
                    Ok(Err(_)) => err += 1,
                    Err(p) => failures.push(p),
                }
            }
            file.seek(SeekFrom::Start(pos as u64)).unwrap();
            file.write_all(&original[pos..pos + len]).unwrap();
        }
        match no_panic(&what, || {
            parse_header(&bytes[..], bytes.len() as u64, &path).is_ok()
        }) {
            Ok(true) => ok += 1,
            Ok(false) => err += 1,
            Err(p) => failures.push(p),
        }
        bytes[pos..pos + len].copy_from_slice(&original[pos..pos + len]);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("byte flips: {ok} opens accepted, {err} refused");
    // Both outcomes occur, or the corruptions would not be testing anything.
    assert!(ok > 1000 && err > 1000, "{ok} accepted, {err} refused");
}
