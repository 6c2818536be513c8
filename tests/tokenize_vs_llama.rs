//! `qforge tokenize` against the pinned llama-tokenize: same output (ids or `id -> 'piece'` lines)
//! for every vocab file of the pinned tree and the fixture, with each flag combination.

mod common;

use common::*;
use std::path::PathBuf;

fn vocab_files() -> Vec<PathBuf> {
    let src = std::env::var_os("QFORGE_LLAMA_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/qforge/llama_cpp_python-0.3.36/vendor/llama.cpp")
        });
    let mut v: Vec<PathBuf> = std::fs::read_dir(src.join("models"))
        .expect("the pinned llama.cpp source (scripts/build-oracle.sh) has models/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    v.sort();
    v.push(fixture("tiny-llama-f16.gguf"));
    v
}

#[test]
fn tokenize_prints_what_llama_tokenize_prints() {
    let Some(oracle) = oracle_dir() else { return };
    let text =
        r"Hello world <s> <|endoftext|> it's 2024!\n\t\x41 ünï 日本 🦙  tabs	and   spaces \x00";
    let files = vocab_files();
    assert!(files.len() > 15, "{files:?}");
    for m in &files {
        for flags in [
            &["--ids"][..],
            &[],
            &["--no-parse-special"],
            &["--no-escape", "--show-count"],
            &["--ids", "--no-bos"],
        ] {
            let theirs = run_ok(
                llama(&oracle, "llama-tokenize")
                    .arg("-m")
                    .arg(m)
                    .args(["-p", text, "--log-disable"])
                    .args(flags),
            );
            let ours = run_ok(
                qforge()
                    .args(["tokenize", "-m"])
                    .arg(m)
                    .args(["-p", text])
                    .args(flags),
            );
            assert!(
                theirs.stdout == ours.stdout,
                "{} {flags:?}:\nllama-tokenize: {}\nqforge:         {}",
                m.display(),
                String::from_utf8_lossy(&theirs.stdout),
                String::from_utf8_lossy(&ours.stdout)
            );
        }
    }
}
