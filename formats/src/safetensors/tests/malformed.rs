//! Untrusted files: each malformation gives its own error naming the file, never a panic, in
//! both read modes; the `safetensors` crate rejects the same files.

use crate::oracle::Rng;
use crate::safetensors::{ErrorKind, ReadMode, SafetensorsError, SafetensorsFile, MAX_HEADER_SIZE};
use std::path::Path;

/// A file with the given header text (length prefix computed) followed by `data_len` zero bytes.
fn file(header: &str, data_len: usize) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.resize(v.len() + data_len, 0);
    v
}

/// Opens `bytes` as a file in both modes, checks both agree and that the crate also refuses it.
fn open_bytes(bytes: &[u8]) -> SafetensorsError {
    assert!(
        safetensors::SafeTensors::deserialize(bytes).is_err(),
        "the reference crate accepts this file: {:?}",
        String::from_utf8_lossy(bytes)
    );
    open_bytes_ours(bytes)
}

/// Opens `bytes` as a file in both modes and checks both refuse it alike, naming the file.
fn open_bytes_ours(bytes: &[u8]) -> SafetensorsError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let errs: Vec<SafetensorsError> = [ReadMode::Mmap, ReadMode::Buffered]
        .into_iter()
        .map(|m| SafetensorsFile::open_with(&path, m).expect_err("malformed file accepted"))
        .collect();
    assert_eq!(errs[0].to_string(), errs[1].to_string());
    assert_eq!(errs[0].path, path);
    assert!(errs[0].to_string().starts_with(&path.display().to_string()));
    errs.into_iter().next().unwrap()
}

const ONE: &str = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;

#[test]
fn a_well_formed_file_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.safetensors");
    std::fs::write(&path, file(ONE, 8)).unwrap();
    assert_eq!(SafetensorsFile::open(&path).unwrap().len(), 1);
}

#[test]
fn truncated_files() {
    for len in [0, 1, 7] {
        let e = open_bytes(&vec![0u8; len]);
        assert!(
            matches!(e.kind, ErrorKind::FileTooShort { len: l } if l == len as u64),
            "{e}"
        );
    }
    let full = file(ONE, 8);
    // cut inside the header
    let e = open_bytes(&full[..20]);
    assert!(matches!(e.kind, ErrorKind::HeaderBeyondFile { .. }), "{e}");
    // cut inside the data
    let e = open_bytes(&full[..full.len() - 3]);
    assert!(
        matches!(e.kind, ErrorKind::OutOfBounds { ref tensor, end: 8, data_len: 5 } if tensor == "a"),
        "{e}"
    );
}

#[test]
fn huge_header_lengths() {
    for n in [MAX_HEADER_SIZE + 1, u64::MAX, 1 << 40] {
        let mut bytes = n.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        let e = open_bytes(&bytes);
        assert!(
            matches!(e.kind, ErrorKind::HeaderTooLarge { len, .. } if len == n),
            "{e}"
        );
    }
    let mut bytes = 1000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}      ");
    let e = open_bytes(&bytes);
    assert!(
        matches!(
            e.kind,
            ErrorKind::HeaderBeyondFile {
                len: 1000,
                file_len: 16
            }
        ),
        "{e}"
    );
}

#[test]
fn bad_json() {
    for h in [r#"{"a":{"dtype":"F32""#, "[1,2]", "nope", "", r#"{"a":1}x"#] {
        let e = open_bytes(&file(h, 0));
        assert!(matches!(e.kind, ErrorKind::HeaderJson(_)), "{h}: {e}");
    }
    let mut bytes = file("{\"\u{e9}\":1}", 0);
    bytes[10] = 0xFF;
    let e = open_bytes(&bytes);
    assert!(matches!(e.kind, ErrorKind::HeaderNotUtf8(_)), "{e}");
}

#[test]
fn bad_entries() {
    type Check = fn(&ErrorKind) -> bool;
    let cases: [(&str, Check); 7] = [
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
            |k| matches!(k, ErrorKind::DuplicateKey(n) if n == "a"),
        ),
        (
            r#"{"__metadata__":{"x":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            |k| matches!(k, ErrorKind::BadMetadata(_)),
        ),
        (
            r#"{"__metadata__":[],"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            |k| matches!(k, ErrorKind::BadMetadata(_)),
        ),
        (
            r#"{"a":{"dtype":"F32","data_offsets":[0,8]}}"#,
            |k| matches!(k, ErrorKind::BadTensorEntry { reason, .. } if reason.contains("shape")),
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#,
            |k| matches!(k, ErrorKind::BadTensorEntry { .. }),
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#,
            |k| matches!(k, ErrorKind::BadTensorEntry { reason, .. } if reason.contains("data_offsets")),
        ),
        (r#"{"a":[1]}"#, |k| {
            matches!(k, ErrorKind::BadTensorEntry { .. })
        }),
    ];
    for (h, ok) in cases {
        let e = open_bytes(&file(h, 8));
        assert!(ok(&e.kind), "{h}: {e}");
    }
    // The crate knows F4; qforge does not, and says so.
    let e = open_bytes_ours(&file(
        r#"{"a":{"dtype":"F4","shape":[16],"data_offsets":[0,8]}}"#,
        8,
    ));
    assert!(
        matches!(&e.kind, ErrorKind::UnsupportedDtype { dtype, tensor } if dtype == "F4" && tensor == "a"),
        "{e}"
    );
    let e = open_bytes_ours(&file(
        r#"{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#,
        8,
    ));
    assert!(
        matches!(&e.kind, ErrorKind::UnsupportedDtype { dtype, .. } if dtype == "C64"),
        "{e}"
    );
}

#[test]
fn offsets_out_of_bounds_overlapping_or_leaving_holes() {
    let e = open_bytes(&file(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
        8,
    ));
    assert!(
        matches!(
            e.kind,
            ErrorKind::OutOfBounds {
                end: 16,
                data_len: 8,
                ..
            }
        ),
        "{e}"
    );
    let e = open_bytes(&file(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
        12,
    ));
    assert!(
        matches!(&e.kind, ErrorKind::Overlap { tensor, other, start: 4, other_end: 8 } if tensor == "b" && other == "a"),
        "{e}"
    );
    let e = open_bytes(&file(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        8,
    ));
    assert!(matches!(e.kind, ErrorKind::Overlap { .. }), "{e}");
    let e = open_bytes(&file(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
        12,
    ));
    assert!(
        matches!(
            e.kind,
            ErrorKind::Gap {
                start: 4,
                expected: 0,
                ..
            }
        ),
        "{e}"
    );
    let e = open_bytes(&file(ONE, 12));
    assert!(
        matches!(
            e.kind,
            ErrorKind::TrailingBytes {
                covered: 8,
                data_len: 12
            }
        ),
        "{e}"
    );
    let e = open_bytes(&file(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
        8,
    ));
    assert!(
        matches!(
            e.kind,
            ErrorKind::OffsetsReversed {
                start: 8,
                end: 0,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn wrong_lengths_and_overflowing_shapes() {
    let e = open_bytes(&file(
        r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
        8,
    ));
    assert!(
        matches!(
            e.kind,
            ErrorKind::WrongByteLength {
                expected: 12,
                actual: 8,
                ..
            }
        ),
        "{e}"
    );
    let e = open_bytes(&file(
        r#"{"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,4]}}"#,
        4,
    ));
    assert!(
        matches!(
            e.kind,
            ErrorKind::WrongByteLength {
                expected: 8,
                actual: 4,
                ..
            }
        ),
        "{e}"
    );
    let e = open_bytes(&file(
        r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#,
        8,
    ));
    assert!(matches!(e.kind, ErrorKind::SizeOverflow { .. }), "{e}");
    let e = open_bytes(&file(
        r#"{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}"#,
        8,
    ));
    assert!(matches!(e.kind, ErrorKind::SizeOverflow { .. }), "{e}");
    let e = open_bytes(&file(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551616]}}"#,
        8,
    ));
    assert!(matches!(e.kind, ErrorKind::BadTensorEntry { .. }), "{e}");
}

/// Random corruptions of a valid file: every outcome is an error or a valid file, never a panic.
#[test]
fn random_corruptions_never_panic() {
    let header = r#"{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F8_E4M3","shape":[1,3],"data_offsets":[8,11]}}"#;
    let good = file(header, 11);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.safetensors");
    let mut rng = Rng::new(99);
    for i in 0..400 {
        let mut bytes = good.clone();
        match i % 3 {
            0 => {
                let at = (rng.next_u64() % bytes.len() as u64) as usize;
                bytes[at] = rng.next_u64() as u8;
            }
            1 => bytes.truncate((rng.next_u64() % bytes.len() as u64) as usize),
            _ => {
                let at = 8 + (rng.next_u64() % header.len() as u64) as usize;
                bytes[at] = b"0123456789[]{}\",:-"[(rng.next_u64() % 18) as usize];
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        for mode in [ReadMode::Mmap, ReadMode::Buffered] {
            if let Ok(f) = SafetensorsFile::open_with(Path::new(&path), mode) {
                for v in f.tensors() {
                    let v = v.unwrap();
                    assert_eq!(v.data().len() as u64, v.info().byte_len());
                    if v.dtype().is_float() {
                        v.to_f32().unwrap();
                    }
                }
            }
        }
    }
}
