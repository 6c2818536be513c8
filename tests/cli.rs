//! The command line as a user meets it: exit codes, error messages, no partial outputs,
//! `--dry-run` and `--json` reports, and `inspect` against gguf-py's reading of the same file.

mod common;

use common::*;
use qforge_formats::gguf::GgufFile;
use std::path::Path;
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Files left in `dir` (hidden temporaries included).
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn usage_errors_exit_2_and_other_errors_exit_1_leaving_nothing() {
    let dir = scratch("cli-errors");
    let out = dir.join("out.gguf");
    let f16 = fixture("tiny-llama-f16.gguf");

    let o = qforge()
        .args(["quantize", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    let o = qforge()
        .arg("quantize")
        .arg(dir.join("missing.gguf"))
        .arg(&out)
        .arg("Q4_K_M")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("missing.gguf") && stderr(&o).contains("No such file"),
        "{}",
        stderr(&o)
    );

    let o = qforge()
        .arg("quantize")
        .arg(&f16)
        .arg(&out)
        .arg("Q9_Z")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("invalid ftype 'Q9_Z'"),
        "{}",
        stderr(&o)
    );

    let o = qforge()
        .arg("quantize")
        .arg(fixture("malformed/offset_not_contiguous.gguf"))
        .arg(&out)
        .arg("Q4_0")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("offset_not_contiguous.gguf") && stderr(&o).contains("offset"),
        "{}",
        stderr(&o)
    );

    let o = qforge()
        .arg("quantize")
        .arg(&f16)
        .arg(&out)
        .arg("IQ2_XXS")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("imatrix"), "{}", stderr(&o));

    let o = qforge()
        .arg("quantize")
        .arg(&f16)
        .arg(&f16)
        .arg("Q4_0")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("input and output files are the same"),
        "{}",
        stderr(&o)
    );

    assert!(entries(&dir).is_empty(), "left behind: {:?}", entries(&dir));
}

#[test]
fn a_failure_while_writing_removes_the_partial_output() {
    // A NaN in a late tensor fails the model loader's data validation after the header and the
    // earlier tensors are written; llama-quantize fails on it too.
    let dir = scratch("cli-partial");
    let input = dir.join("nan.gguf");
    let mut bytes = std::fs::read(fixture("tiny-llama-f16.gguf")).unwrap();
    let f = GgufFile::open(fixture("tiny-llama-f16.gguf")).unwrap();
    let h = f.header();
    let last = h.tensor("blk.1.ffn_up.weight").unwrap();
    let at = (h.data_offset + last.offset) as usize;
    bytes[at..at + 2].copy_from_slice(&0x7e00u16.to_le_bytes());
    std::fs::write(&input, bytes).unwrap();
    let out = dir.join("out.gguf");
    for ty in ["BF16", "Q4_K_M", "COPY"] {
        let o = qforge()
            .arg("quantize")
            .arg(&input)
            .arg(&out)
            .args([ty, "2"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{ty}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("invalid data") && stderr(&o).contains(&last.name),
            "{ty}: {}",
            stderr(&o)
        );
        if let Some(oracle) = oracle_dir() {
            let theirs = llama(&oracle, "llama-quantize")
                .arg(&input)
                .arg(dir.join("theirs.gguf"))
                .args([ty, "2"])
                .output()
                .unwrap();
            assert!(
                !theirs.status.success(),
                "{ty}: llama-quantize accepted the NaN"
            );
            let _ = std::fs::remove_file(dir.join("theirs.gguf"));
        }
    }
    assert_eq!(
        entries(&dir),
        vec!["nan.gguf".to_string()],
        "partial output left behind"
    );
}

#[test]
fn dry_run_reports_the_plan_of_the_real_run_and_writes_nothing() {
    let dir = scratch("cli-dry-run");
    let out = dir.join("out.gguf");
    let f16 = fixture("tiny-llama-f16.gguf");
    let o = run_ok(
        qforge()
            .arg("quantize")
            .arg("--dry-run")
            .arg("--json")
            .arg(&f16)
            .arg(&out)
            .arg("Q4_K_M"),
    );
    assert!(entries(&dir).is_empty());
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    run_ok(qforge().arg("quantize").arg(&f16).arg(&out).arg("Q4_K_M"));
    let real = GgufFile::open(&out).unwrap();
    let tensors = plan["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), real.header().tensors.len());
    for t in tensors {
        let name = t["name"].as_str().unwrap();
        let info = real.header().tensor(name).unwrap();
        assert_eq!(t["new_type"].as_str().unwrap(), info.ty.name(), "{name}");
        assert_eq!(t["new_bytes"].as_u64().unwrap(), info.n_bytes(), "{name}");
    }
    let data: u64 = real.header().tensors.iter().map(|t| t.n_bytes()).sum();
    assert_eq!(plan["bytes_out"].as_u64().unwrap(), data);
}

#[test]
fn inspect_json_agrees_with_gguf_py() {
    let Some(oracle) = oracle_dir() else { return };
    let _ = oracle;
    let python = std::env::var("QFORGE_GGUF_PY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap())
                .join(".cache/qforge/venv-gguf-0.3.36/bin/python")
        });
    let f16 = fixture("tiny-llama-f16.gguf");
    let dump = run_ok(
        std::process::Command::new(python)
            .arg(root().join("scripts/oracle/gguf_dump.py"))
            .arg(&f16),
    );
    let dump: serde_json::Value = serde_json::from_slice(&dump.stdout).unwrap();
    let ours = run_ok(qforge().arg("inspect").arg("--json").arg(&f16));
    let ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
    let theirs = dump["tensors"].as_array().unwrap();
    let mine = ours["tensors"].as_array().unwrap();
    assert_eq!(mine.len(), theirs.len());
    for t in theirs {
        let name = t["name"].as_str().unwrap();
        let m = mine
            .iter()
            .find(|x| x["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        let ty =
            qforge_formats::ggml::GgmlType::from_id(t["type"].as_u64().unwrap() as u32).unwrap();
        assert_eq!(m["type"].as_str().unwrap(), ty.name(), "{name}");
        assert_eq!(m["shape"], t["dims"], "{name}");
    }
    assert_eq!(ours["architecture"], "llama");
    assert_eq!(
        ours["metadata"].as_object().unwrap().len(),
        dump["kvs"].as_array().map_or(0, Vec::len)
    );
}
