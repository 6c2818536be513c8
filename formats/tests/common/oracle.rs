//! Locating and running the reference tools: gguf-py 0.19.0 (through scripts/oracle/*.py) and
//! the pinned llama.cpp binaries, both installed by `scripts/build-oracle.sh`.
//!
//! `QFORGE_GGUF_PY` names the Python interpreter (default: the venv the script creates under
//! `$QFORGE_CACHE` or `~/.cache/qforge`); `QFORGE_ORACLE_DIR` names the directory of the
//! llama.cpp binaries (default: the newest `*/bin` in the cache holding `llama-gguf-split`).
//! When either is missing the tests fail with instructions, unless `QFORGE_SKIP_ORACLE=1`, in
//! which case [`oracle`] returns `None` and the comparison tests return early.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the parent of the formats crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("formats/ has a parent")
        .to_path_buf()
}

/// A file under `fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

fn cache_dir() -> Option<PathBuf> {
    if let Some(c) = std::env::var_os("QFORGE_CACHE") {
        return Some(PathBuf::from(c));
    }
    Some(PathBuf::from(std::env::var_os("HOME")?).join(".cache/qforge"))
}

fn find_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("QFORGE_GGUF_PY") {
        return Some(PathBuf::from(p));
    }
    let p = cache_dir()?.join("venv-gguf-0.3.36/bin/python");
    p.is_file().then_some(p)
}

fn find_bin_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("QFORGE_ORACLE_DIR") {
        return Some(PathBuf::from(d));
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cache_dir()?)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("llama-gguf-split").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// The reference tools.
pub struct Oracle {
    /// Python with numpy and gguf-py 0.19.0.
    pub python: PathBuf,
    /// Directory of the pinned llama.cpp binaries.
    pub bin: PathBuf,
}

/// The reference tools, or `None` when they are missing and `QFORGE_SKIP_ORACLE=1`.
///
/// # Panics
/// When they are missing and skipping was not asked for.
pub fn oracle() -> Option<Oracle> {
    let python = find_python().filter(|p| p.is_file());
    let bin = find_bin_dir().filter(|d| d.join("llama-gguf-split").is_file());
    match (python, bin) {
        (Some(python), Some(bin)) => Some(Oracle { python, bin }),
        _ if std::env::var("QFORGE_SKIP_ORACLE").is_ok_and(|v| v == "1") => None,
        (python, bin) => panic!(
            "the reference tools are missing (gguf-py python: {python:?}, llama.cpp bin dir: {bin:?}): \
             run scripts/build-oracle.sh, or point QFORGE_GGUF_PY / QFORGE_ORACLE_DIR at them, \
             or set QFORGE_SKIP_ORACLE=1 to skip the comparisons"
        ),
    }
}

fn check(what: &str, out: Output) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Oracle {
    /// Runs `scripts/oracle/<script>` with gguf-py's Python.
    pub fn run_script(&self, script: &str, args: &[&Path]) -> Output {
        Command::new(&self.python)
            .arg(repo_root().join("scripts/oracle").join(script))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.python.display()))
    }

    /// gguf-py's view of `path` (scripts/oracle/gguf_dump.py), or its error message.
    pub fn try_dump(&self, path: &Path) -> Result<Value, String> {
        let out = self.run_script("gguf_dump.py", &[path]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "gguf_dump.py printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        match v.get("error") {
            Some(e) => Err(e.as_str().unwrap_or_default().to_string()),
            None => Ok(v),
        }
    }

    /// gguf-py's view of `path`; panics if gguf-py rejects it.
    pub fn dump(&self, path: &Path) -> Value {
        self.try_dump(path)
            .unwrap_or_else(|e| panic!("gguf-py rejects {}: {e}", path.display()))
    }

    /// Writes `out` with gguf-py's GGUFWriter from a spec (scripts/oracle/gguf_write.py).
    pub fn write(&self, spec: &Value, out: &Path) {
        let spec_path = out.with_extension("spec.json");
        std::fs::write(&spec_path, serde_json::to_vec(spec).unwrap()).unwrap();
        check(
            "gguf_write.py",
            self.run_script("gguf_write.py", &[&spec_path, out]),
        );
    }

    /// A command for the pinned llama.cpp binary `name`.
    pub fn tool(&self, name: &str) -> Command {
        Command::new(self.bin.join(name))
    }

    /// Runs `cmd` and panics with its output unless it succeeds.
    pub fn run_ok(&self, what: &str, cmd: &mut Command) -> Output {
        check(
            what,
            cmd.output()
                .unwrap_or_else(|e| panic!("cannot run {what}: {e}")),
        )
    }
}
