//! `qforge convert` against the pinned llama.cpp: for every checkpoint of fixtures/hf (and the
//! large-vocabulary ones that fixtures/hf/make_hf_fixtures.py writes on demand) and every
//! `--outtype` of convert_hf_to_gguf.py, qforge's file must equal the converter's (byte-identical
//! is the aim; when not, scripts/oracle/gguf_diff.py says what differs). `--type Q4_K_M` must
//! equal the converter's f32 file quantized by llama-quantize. Every qforge output must load in
//! llama-perplexity and give the converter's output's perplexity on the GPL text.
//!
//! Needs the oracle of scripts/build-oracle.sh: the llama.cpp binaries, the gguf-py venv and the
//! converter venv (~/.cache/qforge/venv-convert). With QFORGE_SKIP_ORACLE set and none of them
//! built, the tests return early.

mod common;

use common::{llama, llama_logged, oracle_dir, qforge, root, run_ok};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

/// Fixtures whose architecture `qforge convert` does not handle yet, with the reason. Their tests
/// are skipped with a message. Keep this list honest: an architecture the README claims must not
/// be here, so that its test fails instead.
const NOT_YET: &[(&str, &str)] = &[];

/// The converter's `--outtype`s compared file for file.
const OUTTYPES: &[&str] = &["f32", "f16", "bf16", "q8_0"];

/// llama-perplexity settings: a few short chunks of the GPL text.
const PPL_CHUNKS: usize = 3;
const PPL_ARGS: &[&str] = &["-c", "128", "-t", "2"];

/// How many times llama-perplexity is run before its output is taken as incomplete: its logger
/// thread is not joined at exit, so the last lines are sometimes lost (llama.cpp issue #22142).
/// All the results are printed in one burst just before exit, and on a loaded machine (two cores,
/// two tests converting at once) about half the runs lose some of them: the exit linger of
/// `common::llama_logged` makes that rare, and the retries cover the rest (a run takes well under a second on these models).
const PPL_TRIES: usize = 20;

/// Held while llama-perplexity runs, so that the tests of this file do not load the machine
/// with each other's runs (the lost lines come with load).
static PPL_LOCK: Mutex<()> = Mutex::new(());

/// Everything the comparison runs.
struct Tools {
    oracle: PathBuf,
    llama_cpp: PathBuf,
    convert_python: PathBuf,
    gguf_python: PathBuf,
}

fn cache() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/qforge")
}

/// The tools, or `None` when they are not built and QFORGE_SKIP_ORACLE is set.
fn tools() -> Option<Tools> {
    let oracle = oracle_dir()?;
    let llama_cpp = std::env::var_os("QFORGE_LLAMA_CPP")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("llama_cpp_python-0.3.36/vendor/llama.cpp"));
    let convert_python = std::env::var_os("QFORGE_CONVERT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("venv-convert/bin/python"));
    let gguf_python = cache().join("venv-gguf-0.3.36/bin/python");
    for p in [
        &llama_cpp.join("convert_hf_to_gguf.py"),
        &convert_python,
        &gguf_python,
    ] {
        if !p.exists() {
            if std::env::var_os("QFORGE_SKIP_ORACLE").is_some() {
                return None;
            }
            panic!(
                "{} is missing: run scripts/build-oracle.sh (or set QFORGE_SKIP_ORACLE=1)",
                p.display()
            );
        }
    }
    Some(Tools {
        oracle,
        llama_cpp,
        convert_python,
        gguf_python,
    })
}

/// FNV-1a of some bytes: a stable key for the large-fixture cache.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The directory holding fixture `name`: fixtures/hf, or for the large ones a cache under the
/// target directory written once by make_hf_fixtures.py --large (keyed by the script's content).
fn fixture_dir(t: &Tools, name: &str) -> PathBuf {
    let committed = root().join("fixtures/hf").join(name);
    if committed.join("config.json").is_file() {
        return committed;
    }
    static LARGE: OnceLock<PathBuf> = OnceLock::new();
    let dir = LARGE.get_or_init(|| {
        let script = root().join("fixtures/hf/make_hf_fixtures.py");
        let key = fnv(&std::fs::read(&script).unwrap());
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("hf-fixtures-large-{key:016x}"));
        let stamp = dir.join(".complete");
        if !stamp.is_file() {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            run_ok(
                Command::new(&t.convert_python)
                    .arg(&script)
                    .arg("--large")
                    .arg("--out")
                    .arg(&dir)
                    .env("QFORGE_LLAMA_CPP", &t.llama_cpp),
            );
            std::fs::write(&stamp, b"").unwrap();
        }
        dir
    });
    let d = dir.join(name);
    assert!(
        d.join("config.json").is_file(),
        "no fixture {name} in fixtures/hf nor in {}",
        dir.display()
    );
    d
}

/// The converter's outputs for one fixture (every OUTTYPE), made once per test process.
fn reference(t: &Tools, name: &str) -> PathBuf {
    static DONE: OnceLock<Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let cell = DONE
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(name.to_string())
        .or_default()
        .clone();
    cell.get_or_init(|| {
        let src = fixture_dir(t, name);
        let out = common::scratch(&format!("convert-ref-{name}"));
        let jobs: Vec<String> = OUTTYPES
            .iter()
            .map(|ty| {
                format!(
                    "{}:{ty}:{}",
                    src.display(),
                    out.join(format!("{ty}.gguf")).display()
                )
            })
            .collect();
        run_ok(
            Command::new(&t.convert_python)
                .arg(root().join("scripts/oracle/convert_batch.py"))
                .arg(t.llama_cpp.join("convert_hf_to_gguf.py"))
                .args(&jobs)
                .env("PYTHONPATH", t.llama_cpp.join("gguf-py")),
        );
        out
    })
    .clone()
}

/// "" when the two files are byte-identical, else gguf_diff.py's report.
fn difference(t: &Tools, expected: &Path, actual: &Path) -> String {
    let a = std::fs::read(expected).unwrap();
    let b = std::fs::read(actual).unwrap_or_default();
    if a == b {
        return String::new();
    }
    let out = Command::new(&t.gguf_python)
        .arg(root().join("scripts/oracle/gguf_diff.py"))
        .arg(expected)
        .arg(actual)
        .output()
        .expect("cannot run gguf_diff.py");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.code() == Some(0) {
        // Same content, different bytes (padding or layout): still a difference for us.
        format!(
            "files differ ({} vs {} bytes) though gguf-py reads the same content",
            a.len(),
            b.len()
        )
    } else {
        report
    }
}

/// The `[k]value,` chunk perplexities llama-perplexity prints, in order (k = 1, 2, ...), or
/// `None` when some are missing.
fn chunk_values(stdout: &str) -> Option<Vec<String>> {
    let mut values = Vec::new();
    for piece in stdout.split(',') {
        let Some(open) = piece.rfind('[') else {
            continue;
        };
        let Some((k, v)) = piece[open + 1..].split_once(']') else {
            continue;
        };
        if k.parse::<usize>() == Ok(values.len() + 1) && !v.trim().is_empty() {
            values.push(v.trim().to_string());
        }
    }
    (values.len() == PPL_CHUNKS).then_some(values)
}

/// llama-perplexity's chunk values and final estimate (`PPL = x +/- y`) for a model, or the
/// error. Runs it again (up to PPL_TRIES times) while its output lacks some of them.
fn perplexity(t: &Tools, model: &Path) -> Result<String, String> {
    let mut last = String::new();
    let _serial = PPL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    for attempt in 0..PPL_TRIES {
        let mut cmd = llama_logged(&t.oracle, "llama-perplexity");
        let out = cmd
            .arg("-m")
            .arg(model)
            .arg("-f")
            .arg(root().join("fixtures/text/gpl-3.txt"))
            .args(PPL_ARGS)
            .args(["--chunks", &PPL_CHUNKS.to_string()])
            .output()
            .expect("cannot run llama-perplexity");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let lines: Vec<&str> = stderr.lines().chain(stdout.lines()).collect();
            let mut why: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.contains("error") || l.contains("failed"))
                .collect();
            if why.is_empty() {
                why = lines[lines.len().saturating_sub(3)..].to_vec();
            }
            return Err(format!(
                "llama-perplexity failed on {} ({}): {}",
                model.display(),
                out.status,
                why.join(" | ")
            ));
        }
        let fin = stderr.find("Final estimate: ").and_then(|i| {
            let line = stderr[i..].lines().next().unwrap_or("");
            line.contains("+/-").then(|| line.trim().to_string())
        });
        match (chunk_values(&stdout), fin) {
            (Some(chunks), Some(fin)) => {
                if attempt > 0 {
                    eprintln!(
                        "llama-perplexity on {}: {attempt} incomplete run(s) before this one",
                        model.display()
                    );
                }
                return Ok(format!("{} {fin}", chunks.join(",")));
            }
            _ => {
                last = format!(
                    "{} | {}",
                    stdout.trim(),
                    stderr.lines().last().unwrap_or("")
                )
            }
        }
    }
    Err(format!(
        "llama-perplexity on {} printed no complete result (chunk values and final estimate) in \
         {PPL_TRIES} runs; last output: {last}",
        model.display()
    ))
}

/// Runs `qforge convert` and returns "" or why it failed.
fn qforge_convert(src: &Path, out: &Path, ty: &str) -> String {
    let o = qforge()
        .arg("convert")
        .arg(src)
        .arg("-o")
        .arg(out)
        .args(["--type", ty])
        .output()
        .unwrap();
    if o.status.success() && out.is_file() {
        String::new()
    } else {
        format!(
            "qforge convert --type {ty} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )
    }
}

fn skipped(name: &str) -> bool {
    if let Some((_, why)) = NOT_YET.iter().find(|(n, _)| *n == name) {
        eprintln!("SKIPPED {name}: {why}");
        return true;
    }
    false
}

/// Compares qforge and the converter in every OUTTYPE, and both files' perplexity.
fn outtypes(name: &str) {
    let Some(t) = tools() else { return };
    if skipped(name) {
        return;
    }
    let src = fixture_dir(&t, name);
    let refs = reference(&t, name);
    let dir = common::scratch(&format!("convert-{name}"));
    let mut failures = Vec::new();
    for ty in OUTTYPES {
        let theirs = refs.join(format!("{ty}.gguf"));
        let ours = dir.join(format!("{ty}.gguf"));
        let err = qforge_convert(&src, &ours, ty);
        if !err.is_empty() {
            failures.push(format!("[{name} {ty}] {err}"));
            continue;
        }
        let diff = difference(&t, &theirs, &ours);
        if !diff.is_empty() {
            failures.push(format!(
                "[{name} {ty}] qforge's file differs from convert_hf_to_gguf.py's:\n{diff}"
            ));
        }
        let ppl_ours = perplexity(&t, &ours);
        let ppl_theirs = if diff.is_empty() {
            ppl_ours.clone()
        } else {
            perplexity(&t, &theirs)
        };
        match (ppl_ours, ppl_theirs) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(a), Ok(b)) => failures.push(format!(
                "[{name} {ty}] perplexity differs:\n  qforge:    {a}\n  converter: {b}"
            )),
            (Err(e), _) => failures.push(format!("[{name} {ty}] qforge's file: {e}")),
            (Ok(_), Err(e)) => failures.push(format!("[{name} {ty}] converter's file: {e}")),
        }
        let _ = std::fs::remove_file(&ours);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `qforge convert --type Q4_K_M` against convert_hf_to_gguf.py --outtype f32 + llama-quantize.
fn q4_k_m(name: &str) {
    let Some(t) = tools() else { return };
    if skipped(name) {
        return;
    }
    let src = fixture_dir(&t, name);
    let refs = reference(&t, name);
    let dir = common::scratch(&format!("convert-q4km-{name}"));
    let theirs = dir.join("llama.gguf");
    let ours = dir.join("qforge.gguf");
    run_ok(
        llama(&t.oracle, "llama-quantize")
            .arg(refs.join("f32.gguf"))
            .arg(&theirs)
            .args(["Q4_K_M", "2"]),
    );
    let err = qforge_convert(&src, &ours, "Q4_K_M");
    assert!(err.is_empty(), "[{name} Q4_K_M] {err}");
    let diff = difference(&t, &theirs, &ours);
    assert!(
        diff.is_empty(),
        "[{name} Q4_K_M] qforge's file differs from llama-quantize's:\n{diff}"
    );
    perplexity(&t, &ours).unwrap_or_else(|e| panic!("[{name} Q4_K_M] {e}"));
    let _ = std::fs::remove_dir_all(&dir);
}

macro_rules! fixture_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn outtypes() {
                super::outtypes(stringify!($name));
            }
            #[test]
            fn q4_k_m() {
                super::q4_k_m(stringify!($name));
            }
        }
    )*};
}

fixture_tests!(llama2, mistral, mixtral, qwen3, gemma2, gemma3, phi3, llama3, qwen2, qwen3moe);

/// NOT_YET names only real fixtures, so a typo cannot silently skip nothing.
#[test]
fn not_yet_names_real_fixtures() {
    let script = std::fs::read_to_string(root().join("fixtures/hf/make_hf_fixtures.py")).unwrap();
    for (n, _) in NOT_YET {
        assert!(
            script.contains(&format!("\"{n}\": (fx_")),
            "NOT_YET names {n}, which is no fixture"
        );
    }
}

/// The chunk-value parser on llama-perplexity's stdout as the pinned build prints it (ETA line
/// first), and on the same output cut short by the lost-log-lines bug.
#[test]
fn chunk_values_need_every_chunk() {
    let full = "0.00 minutes\n[1]617.3396,[2]602.2546,[3]596.0045,";
    assert_eq!(
        chunk_values(full),
        Some(vec![
            "617.3396".into(),
            "602.2546".into(),
            "596.0045".into()
        ])
    );
    assert_eq!(chunk_values("0.00 minutes\n[1]617.3396,[2]602.2546,"), None);
    assert_eq!(chunk_values(""), None);
}
