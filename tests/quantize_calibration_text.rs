//! `qforge quantize --calibration-text`: the importance matrix computed in the same run must be
//! the one `qforge imatrix` writes, and the quantized model the one `qforge quantize --imatrix`
//! and the pinned llama-quantize write with that file.
//!
//! The runs that are compared happen in two directories with the same relative imatrix file
//! name, so `quantize.imatrix.file` (the path as given) is the same in both outputs; the text is
//! given by the same absolute path, so `imatrix.datasets` and `quantize.imatrix.dataset` are too.

mod common;

use common::*;
use qforge_formats::gguf::{GgufFile, GgufValue};
use std::path::{Path, PathBuf};
use std::process::Command;

const CTX: &str = "128";
const CHUNKS: &str = "4";
const IMATRIX: &str = "im.gguf";

fn model() -> PathBuf {
    fixture("tiny-llama-eval-f16.gguf")
}

fn text() -> PathBuf {
    fixture("text/gpl-3.txt")
}

/// `qforge quantize --calibration-text TEXT -c 128 --chunks 4 [--save-imatrix im.gguf]` in `dir`.
fn quantize_calibrated(dir: &Path, out: &str, ty: &str, save: bool) {
    let mut cmd = qforge();
    cmd.current_dir(dir)
        .arg("quantize")
        .arg("--calibration-text")
        .arg(text())
        .args(["--calibration-ctx", CTX, "--calibration-chunks", CHUNKS]);
    if save {
        cmd.args(["--save-imatrix", IMATRIX]);
    }
    run_ok(cmd.arg(model()).arg(out).args([ty, "2"]));
}

/// `qforge imatrix -m IN -f TEXT -c 128 --chunks 4 -o im.gguf` in `dir`.
fn imatrix_file(dir: &Path) {
    run_ok(
        qforge()
            .current_dir(dir)
            .args(["-j", "2", "imatrix", "-m"])
            .arg(model())
            .arg("-f")
            .arg(text())
            .args(["-c", CTX, "--chunks", CHUNKS, "-o", IMATRIX]),
    );
}

/// `TOOL --imatrix im.gguf IN OUT TYPE 2` in `dir` (qforge quantize or llama-quantize).
fn quantize_with_file(mut cmd: Command, dir: &Path, out: &str, ty: &str) {
    run_ok(
        cmd.current_dir(dir)
            .args(["--imatrix", IMATRIX])
            .arg(model())
            .arg(out)
            .args([ty, "2"]),
    );
}

fn qforge_quantize() -> Command {
    let mut c = qforge();
    c.arg("quantize");
    c
}

/// Two sibling directories: `a` for the one-step run, `b` for the two-step runs.
fn dirs(test: &str) -> (PathBuf, PathBuf, PathBuf) {
    let root = scratch(test);
    let (a, b) = (root.join("a"), root.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    (root, a, b)
}

#[test]
fn same_imatrix_and_output_as_imatrix_then_quantize() {
    let (root, a, b) = dirs("calib-two-step");
    quantize_calibrated(&a, "out.gguf", "IQ2_XS", true);
    imatrix_file(&b);
    quantize_with_file(qforge_quantize(), &b, "out.gguf", "IQ2_XS");
    assert_same_file(&a.join(IMATRIX), &b.join(IMATRIX));
    assert_same_file(&a.join("out.gguf"), &b.join("out.gguf"));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn same_output_as_llama_quantize_with_the_saved_imatrix() {
    let Some(oracle) = oracle_dir() else {
        eprintln!("skipped: no llama.cpp oracle");
        return;
    };
    let (root, a, b) = dirs("calib-llama");
    for ty in ["Q4_K_M", "IQ2_XS"] {
        let out = format!("{ty}.gguf");
        quantize_calibrated(&a, &out, ty, true);
        std::fs::copy(a.join(IMATRIX), b.join(IMATRIX)).unwrap();
        quantize_with_file(llama(&oracle, "llama-quantize"), &b, &out, ty);
        assert_same_file(&a.join(&out), &b.join(&out));
    }
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn without_save_imatrix_the_text_path_is_recorded_as_the_file() {
    let (root, a, _) = dirs("calib-nosave");
    quantize_calibrated(&a, "out.gguf", "Q4_K_M", false);
    let f = GgufFile::open(a.join("out.gguf")).unwrap();
    let get = |k: &str| f.header().get(k).cloned();
    let t = text().to_string_lossy().into_owned();
    assert_eq!(get("quantize.imatrix.file"), Some(GgufValue::string(&t)));
    assert_eq!(get("quantize.imatrix.dataset"), Some(GgufValue::string(&t)));
    assert_eq!(
        get("quantize.imatrix.chunks_count"),
        Some(GgufValue::U32(CHUNKS.parse().unwrap()))
    );
    // Nothing but the output is written.
    let names: Vec<_> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["out.gguf"]);
    let _ = std::fs::remove_dir_all(root);
}

/// Runs a failing `qforge quantize` in `dir` and checks exit status 1, a message naming
/// `names`, and that neither the output nor the saved imatrix exists afterwards.
fn assert_fails(dir: &Path, flags: &[&str], names: &[&str]) {
    let out = qforge()
        .current_dir(dir)
        .arg("quantize")
        .args(flags)
        .args(["--save-imatrix", IMATRIX])
        .arg(model())
        .args(["out.gguf", "IQ2_XS", "2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{flags:?}: {err}");
    for n in names {
        assert!(
            err.contains(n),
            "{flags:?}: the message does not name {n}: {err}"
        );
    }
    assert!(!dir.join("out.gguf").exists(), "{flags:?} left an output");
    assert!(!dir.join(IMATRIX).exists(), "{flags:?} left an imatrix");
}

#[test]
fn bad_calibration_input_fails_before_writing() {
    let (root, a, _) = dirs("calib-errors");
    // Missing text file.
    assert_fails(&a, &["--calibration-text", "missing.txt"], &["missing.txt"]);
    // Too short for one chunk of 128 tokens (two chunks' worth are needed, as llama-imatrix):
    // 200 bytes are under 200 tokens.
    let t = text();
    let long = std::fs::read_to_string(&t).unwrap();
    std::fs::write(a.join("short.txt"), &long[..200]).unwrap();
    assert_fails(
        &a,
        &["--calibration-text", "short.txt", "--calibration-ctx", CTX],
        &["short.txt", "tokens"],
    );
    std::fs::remove_file(a.join("short.txt")).unwrap();
    // Together with --imatrix (the file need not exist: the conflict is reported first).
    let ts = t.to_str().unwrap();
    assert_fails(
        &a,
        &["--calibration-text", ts, "--imatrix", "given.gguf"],
        &[ts, "given.gguf"],
    );
    let _ = std::fs::remove_dir_all(root);
}
