//! Differential suite: `qforge quantize` against the pinned `llama-quantize` on the same input
//! and flags; the output files must be byte-identical. Inputs are the f16 fixture model and
//! variants made from it by llama.cpp itself (f32, bf16, a Q8_0 file to requantize, a split set),
//! and importance matrices made by the pinned `llama-imatrix`.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Inputs shared by the tests, made once per test binary.
struct Inputs {
    dir: PathBuf,
    oracle: PathBuf,
    f16: PathBuf,
    f32: PathBuf,
    bf16: PathBuf,
    q8_0: PathBuf,
    imatrix_gguf: PathBuf,
    imatrix_dat: PathBuf,
}

fn inputs() -> Option<&'static Inputs> {
    static INPUTS: OnceLock<Option<Inputs>> = OnceLock::new();
    INPUTS
        .get_or_init(|| {
            let oracle = oracle_dir()?;
            let dir = scratch("quantize-inputs");
            let f16 = fixture("tiny-llama-f16.gguf");
            let make = |ty: &str| {
                let out = dir.join(format!("tiny-{ty}.gguf"));
                run_ok(
                    llama(&oracle, "llama-quantize")
                        .args(["--allow-requantize"])
                        .arg(&f16)
                        .arg(&out)
                        .args([ty, "2"]),
                );
                out
            };
            let (f32, bf16, q8_0) = (make("F32"), make("BF16"), make("Q8_0"));
            let text = dir.join("calibration.txt");
            std::fs::write(&text, calibration_text()).unwrap();
            let imatrix = |fmt: &str, name: &str| {
                let out = dir.join(name);
                run_ok(
                    llama(&oracle, "llama-imatrix")
                        .arg("-m")
                        .arg(&f16)
                        .arg("-f")
                        .arg(&text)
                        .arg("-o")
                        .arg(&out)
                        .args(["-c", "128", "-t", "2", "--no-ppl", "--output-format", fmt]),
                );
                out
            };
            let imatrix_gguf = imatrix("gguf", "imatrix.gguf");
            let imatrix_dat = imatrix("dat", "imatrix.dat");
            Some(Inputs {
                dir,
                oracle,
                f16,
                f32,
                bf16,
                q8_0,
                imatrix_gguf,
                imatrix_dat,
            })
        })
        .as_ref()
}

/// Quantizes `input` with both tools using `flags` and `ty`, and checks the outputs are equal.
fn check(case: &str, input: &Path, flags: &[&str], ty: &str) {
    let Some(inp) = inputs() else { return };
    check_same_output(&inp.oracle, &inp.dir, case, input, flags, ty);
}

const TYPES: &[&str] = &[
    "Q4_0",
    "Q4_1",
    "Q5_0",
    "Q5_1",
    "Q8_0",
    "Q2_K",
    "Q3_K_S",
    "Q3_K_M",
    "Q3_K_L",
    "Q4_K_S",
    "Q4_K_M",
    "Q5_K_S",
    "Q5_K_M",
    "Q6_K",
    "IQ4_NL",
    "IQ4_XS",
    "TQ1_0",
    "TQ2_0",
    "MXFP4_MOE",
    "F16",
    "BF16",
    "F32",
    "COPY",
];

#[test]
fn every_type_from_f16_matches_llama_quantize() {
    let Some(inp) = inputs() else { return };
    for ty in TYPES {
        check(&format!("f16-{ty}"), &inp.f16, &[], ty);
    }
}

#[test]
fn every_type_from_f32_matches_llama_quantize() {
    let Some(inp) = inputs() else { return };
    for ty in TYPES {
        check(&format!("f32-{ty}"), &inp.f32, &[], ty);
    }
}

#[test]
fn every_type_from_bf16_matches_llama_quantize() {
    let Some(inp) = inputs() else { return };
    for ty in TYPES {
        check(&format!("bf16-{ty}"), &inp.bf16, &[], ty);
    }
}

#[test]
fn requantizing_matches_llama_quantize() {
    let Some(inp) = inputs() else { return };
    for ty in ["Q4_K_M", "Q4_0", "Q6_K", "IQ4_XS", "F16"] {
        check(&format!("q8-{ty}"), &inp.q8_0, &["--allow-requantize"], ty);
    }
}

#[test]
fn imatrix_quantization_matches_llama_quantize() {
    let Some(inp) = inputs() else { return };
    let gguf = inp.imatrix_gguf.to_str().unwrap();
    let dat = inp.imatrix_dat.to_str().unwrap();
    for ty in [
        "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_NL",
        "IQ4_XS", "Q8_0",
    ] {
        check(&format!("im-{ty}"), &inp.f16, &["--imatrix", gguf], ty);
    }
    for ty in ["Q4_K_M", "Q4_0"] {
        check(&format!("imdat-{ty}"), &inp.f16, &["--imatrix", dat], ty);
        check(&format!("imf32-{ty}"), &inp.f32, &["--imatrix", gguf], ty);
    }
    check(
        "im-include",
        &inp.f16,
        &["--imatrix", gguf, "--include-weights", "attn_"],
        "Q4_K_M",
    );
    check(
        "im-exclude",
        &inp.f16,
        &["--imatrix", gguf, "--exclude-weights", "ffn_down"],
        "Q4_K_M",
    );
}

#[test]
fn mixture_flags_match_llama_quantize() {
    let Some(inp) = inputs() else { return };
    let cases: &[(&str, &[&str], &str)] = &[
        ("pure", &["--pure"], "Q4_K_M"),
        ("leave-output", &["--leave-output-tensor"], "Q4_K_M"),
        ("output-type", &["--output-tensor-type", "q8_0"], "Q4_K_M"),
        ("embd-type", &["--token-embedding-type", "q5_k"], "Q4_K_M"),
        (
            "tensor-type",
            &[
                "--tensor-type",
                "attn_v=q8_0",
                "--tensor-type",
                "ffn_down=q5_1",
            ],
            "Q4_K_M",
        ),
        (
            "tensor-type-regex",
            &["--tensor-type", "blk\\.1\\.ffn_(up|gate)=q6_k"],
            "Q3_K_M",
        ),
        (
            "override-kv",
            &[
                "--override-kv",
                "llama.context_length=int:512",
                "--override-kv",
                "general.name=str:renamed",
            ],
            "Q4_K_M",
        ),
        (
            "override-kv-types",
            &[
                "--override-kv",
                "x.flag=bool:true",
                "--override-kv",
                "x.f=float:0.25",
            ],
            "Q8_0",
        ),
    ];
    for (case, flags, ty) in cases {
        check(case, &inp.f16, flags, ty);
    }
    let file = inp.dir.join("tensor-types.txt");
    std::fs::write(
        &file,
        "attn_q=q5_0\n  blk\\.0\\.ffn_down=Q8_0 output=q4_k\n",
    )
    .unwrap();
    check(
        "tensor-type-file",
        &inp.f16,
        &["--tensor-type-file", file.to_str().unwrap()],
        "Q4_K_M",
    );
}

#[test]
fn output_is_identical_whatever_the_thread_count() {
    let Some(inp) = inputs() else { return };
    let one = inp.dir.join("threads-1.gguf");
    let two = inp.dir.join("threads-2.gguf");
    run_ok(
        qforge()
            .arg("quantize")
            .arg(&inp.f16)
            .arg(&one)
            .args(["Q4_K_M", "1"]),
    );
    run_ok(
        qforge()
            .args(["-j", "2", "quantize"])
            .arg(&inp.f16)
            .arg(&two)
            .args(["Q4_K_M", "2"]),
    );
    assert_same_file(&one, &two);
}

#[test]
fn keep_split_matches_llama_quantize() {
    let Some(inp) = inputs() else { return };
    let split_dir = inp.dir.join("split");
    std::fs::create_dir_all(&split_dir).unwrap();
    let prefix = split_dir.join("tiny");
    run_ok(
        llama(&inp.oracle, "llama-gguf-split")
            .args(["--split", "--split-max-tensors", "8"])
            .arg(&inp.f16)
            .arg(&prefix),
    );
    let first = split_dir.join("tiny-00001-of-00003.gguf");
    assert!(
        first.is_file(),
        "llama-gguf-split made no first shard at {}",
        first.display()
    );
    // Without --keep-split both tools merge the shards into one file.
    check("split-merge", &first, &[], "Q4_K_M");
    // With --keep-split both write one output shard per input shard.
    let ours = inp.dir.join("ks-ours.gguf");
    let theirs = inp.dir.join("ks-theirs.gguf");
    run_ok(
        llama(&inp.oracle, "llama-quantize")
            .arg("--keep-split")
            .arg(&first)
            .arg(&theirs)
            .args(["Q4_K_M", "2"]),
    );
    run_ok(
        qforge()
            .args(["quantize", "--keep-split"])
            .arg(&first)
            .arg(&ours)
            .args(["Q4_K_M", "2"]),
    );
    for i in 1..=3 {
        let name = |p: &Path| {
            p.with_file_name(format!(
                "{}-{i:05}-of-00003.gguf",
                p.file_stem().unwrap().to_str().unwrap()
            ))
        };
        assert_same_file(&name(&ours), &name(&theirs));
    }
}

#[test]
fn imatrix_only_types_match_llama_quantize() {
    let Some(inp) = inputs() else { return };
    let gguf = inp.imatrix_gguf.to_str().unwrap();
    for ty in [
        "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M", "IQ3_XXS", "IQ3_XS", "IQ3_S",
        "IQ3_M", "Q2_K_S",
    ] {
        check(&format!("iq-{ty}"), &inp.f16, &["--imatrix", gguf], ty);
    }
    // The IQ types that ggml also quantizes without an imatrix, as mixtures allow it.
    for ty in ["IQ3_S", "IQ3_M"] {
        check(&format!("iq-noim-{ty}"), &inp.f16, &[], ty);
    }
    // IQ3_XS puts attn_k in IQ3_XXS, which needs an imatrix: both tools refuse, writing nothing.
    for ty in ["IQ3_XS", "IQ2_XXS", "IQ1_S", "Q2_K_S"] {
        let theirs = inp.dir.join(format!("refuse-{ty}.llama.gguf"));
        let ours = inp.dir.join(format!("refuse-{ty}.qforge.gguf"));
        let l = llama(&inp.oracle, "llama-quantize")
            .arg(&inp.f16)
            .arg(&theirs)
            .args([ty, "2"])
            .output()
            .unwrap();
        let q = qforge()
            .arg("quantize")
            .arg(&inp.f16)
            .arg(&ours)
            .args([ty, "2"])
            .output()
            .unwrap();
        assert!(
            !l.status.success(),
            "{ty}: llama-quantize accepted a missing imatrix"
        );
        assert_eq!(
            q.status.code(),
            Some(1),
            "{ty}: qforge accepted a missing imatrix"
        );
        assert!(
            String::from_utf8_lossy(&q.stderr).contains("imatrix"),
            "{ty}"
        );
        assert!(!ours.exists(), "{ty}: qforge left an output");
        let _ = std::fs::remove_file(theirs);
    }
}
