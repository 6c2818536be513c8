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
