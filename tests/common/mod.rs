//! Shared support for the end-to-end tests: locating the pinned llama.cpp oracle, running
//! qforge and llama.cpp's tools, and scratch directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The directory holding the pinned llama.cpp binaries (see scripts/build-oracle.sh), or
/// `None` when `QFORGE_SKIP_ORACLE` is set and none is found. Panics with instructions otherwise.
pub fn oracle_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("QFORGE_ORACLE_DIR") {
        return Some(PathBuf::from(d));
    }
    let cache = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/qforge");
    let found = std::fs::read_dir(&cache).ok().and_then(|rd| {
        let mut v: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("llama-quantize").is_file())
            .collect();
        v.sort();
        v.pop()
    });
    match found {
        Some(d) => Some(d),
        None if std::env::var_os("QFORGE_SKIP_ORACLE").is_some() => None,
        None => panic!("the llama.cpp oracle is not built: run scripts/build-oracle.sh (or set QFORGE_SKIP_ORACLE=1)"),
    }
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture file by name.
pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// A fresh scratch directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qforge-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs a command and returns its output; panics with both streams if it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A `qforge` command.
pub fn qforge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qforge"))
}

/// A llama.cpp tool from the oracle directory.
pub fn llama(dir: &Path, tool: &str) -> Command {
    Command::new(dir.join(tool))
}

/// Asserts two files are byte-identical, reporting the first difference.
pub fn assert_same_file(a: &Path, b: &Path) {
    let x = std::fs::read(a).unwrap_or_else(|e| panic!("{}: {e}", a.display()));
    let y = std::fs::read(b).unwrap_or_else(|e| panic!("{}: {e}", b.display()));
    if x != y {
        let first = x
            .iter()
            .zip(&y)
            .position(|(p, q)| p != q)
            .unwrap_or(x.len().min(y.len()));
        panic!(
            "{} ({} bytes) and {} ({} bytes) differ, first at byte {first}",
            a.display(),
            x.len(),
            b.display(),
            y.len()
        );
    }
}

/// Deterministic English-like text for calibration (`llama-imatrix -f`).
pub fn calibration_text() -> String {
    let words = [
        "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
        "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
        "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has",
        "there", "been", "if", "more", "when", "will", "would", "who", "so", "no", "king", "queen",
        "love", "night", "day", "sword", "crown", "heart", "world", "time",
    ];
    let mut s = String::new();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for i in 0..6000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(words[(x % words.len() as u64) as usize]);
        s.push(if i % 17 == 16 { '\n' } else { ' ' });
    }
    s
}

/// Quantizes `input` with the pinned llama-quantize and with qforge (same `flags`, type `ty`,
/// 2 threads) into `dir`, and asserts the two outputs are byte-identical.
pub fn check_same_output(
    oracle: &Path,
    dir: &Path,
    case: &str,
    input: &Path,
    flags: &[&str],
    ty: &str,
) {
    let ours = dir.join(format!("{case}.qforge.gguf"));
    let theirs = dir.join(format!("{case}.llama.gguf"));
    run_ok(
        llama(oracle, "llama-quantize")
            .args(flags)
            .arg(input)
            .arg(&theirs)
            .args([ty, "2"]),
    );
    run_ok(
        qforge()
            .arg("quantize")
            .args(flags)
            .arg(input)
            .arg(&ours)
            .args([ty, "2"]),
    );
    assert_same_file(&ours, &theirs);
    let _ = std::fs::remove_file(ours);
    let _ = std::fs::remove_file(theirs);
}
