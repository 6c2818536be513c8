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
            // llama-logits is built last: its presence marks a complete build.
            .filter(|p| p.join("llama-quantize").is_file() && p.join("llama-logits").is_file())
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

/// A llama.cpp tool whose log output must be complete (llama-perplexity, llama-imatrix): its
/// logger thread is not joined at exit, so the last lines are sometimes lost under load
/// (llama.cpp issue #22142). A small library preloaded into it sleeps 200 ms in a destructor run by
/// exit(), so the thread writes what is queued (measured: 15/15 complete runs with it, 2/15
/// without, with three busy loops on two cores); it touches nothing else. Without a C compiler
/// the tool runs as is and the callers' retries do alone.
pub fn llama_logged(dir: &Path, tool: &str) -> Command {
    let mut c = llama(dir, tool);
    if let Some(lib) = linger_lib() {
        c.env("LD_PRELOAD", lib);
    }
    c
}

const LINGER_C: &str = "#include <unistd.h>\n\
__attribute__((destructor)) static void qforge_linger(void) { usleep(200000); }\n";

/// LINGER_C compiled once per target directory, or `None` without a C compiler.
fn linger_lib() -> Option<&'static Path> {
    static LIB: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    LIB.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let key = LINGER_C.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        let lib = dir.join(format!("qforge-linger-{key:016x}.so"));
        if lib.is_file() {
            return Some(lib);
        }
        std::fs::create_dir_all(&dir).ok()?;
        let src = dir.join(format!("qforge-linger-{}.c", std::process::id()));
        let tmp = dir.join(format!("qforge-linger-{}.so", std::process::id()));
        std::fs::write(&src, LINGER_C).ok()?;
        let ok = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&tmp)
            .arg(&src)
            .status()
            .is_ok_and(|s| s.success());
        let _ = std::fs::remove_file(&src);
        if !ok {
            eprintln!("no C compiler: llama.cpp tools run without the exit linger");
            return None;
        }
        std::fs::rename(&tmp, &lib).ok()?;
        Some(lib)
    })
    .as_deref()
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
