//! Differential suite on the models `tiny-llama-f16.gguf` cannot stand for (see fixtures/README.md
//! and fixtures/make_fixtures_extra.py): `qforge quantize` against the pinned `llama-quantize` on
//! the same input and flags, outputs byte-identical.
//!
//! * `tiny-moe-f16.gguf`: a 4-expert Mixtral-style model (3-D expert tensors, F32 router, GQA 4,
//!   tied embeddings, expert rows of 32 columns). Its importance matrix, made by the pinned
//!   `llama-imatrix`, has per-expert counts, one of them zero (layer 1 never routes to expert 3).
//! * `tiny-odd-f16.gguf`: a dense model with rows of 192 columns (a multiple of 32, not of 256),
//!   attn_output rows of 144 (not a multiple of 32) and ffn_down rows of 256, tied embeddings:
//!   every shape fallback of llama-quantize (K-quants to legacy types, IQ4_XS to IQ4_NL, to F16).
//!
//! Besides the byte comparisons, qforge's own `--no-fallback` and `--dry-run` are checked on the
//! odd model against what llama-quantize does with it.

mod common;

use common::*;
use qforge_formats::imatrix::Imatrix;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One fixture with its importance matrices.
struct Model {
    f16: PathBuf,
    imatrix_gguf: PathBuf,
    imatrix_dat: PathBuf,
}

/// Inputs shared by the tests, made once per test binary.
struct Inputs {
    dir: PathBuf,
    oracle: PathBuf,
    moe: Model,
    odd: Model,
    /// The MoE model converted by llama-quantize to BF16 and to F32 (3-D tensors in those types).
    moe_bf16: PathBuf,
    moe_f32: PathBuf,
    /// The odd model quantized by llama-quantize to Q8_0 (attn_output stays F16), to requantize.
    odd_q8_0: PathBuf,
}

fn inputs() -> Option<&'static Inputs> {
    static INPUTS: OnceLock<Option<Inputs>> = OnceLock::new();
    INPUTS
        .get_or_init(|| {
            let oracle = oracle_dir()?;
            let dir = scratch("quantize-extra-inputs");
            let text = dir.join("calibration.txt");
            std::fs::write(&text, calibration_text()).unwrap();
            let model = |name: &str| Model {
                f16: fixture(&format!("tiny-{name}-f16.gguf")),
                imatrix_gguf: dir.join(format!("{name}.imatrix.gguf")),
                imatrix_dat: dir.join(format!("{name}.imatrix.dat")),
            };
            let (moe, odd) = (model("moe"), model("odd"));
            let moe_bf16 = dir.join("tiny-moe-bf16.gguf");
            let moe_f32 = dir.join("tiny-moe-f32.gguf");
            let odd_q8_0 = dir.join("tiny-odd-q8_0.gguf");

            // The oracle runs are independent: run them two at a time (two cores).
            let mut jobs: Vec<Command> = Vec::new();
            for m in [&moe, &odd] {
                for (fmt, out) in [("gguf", &m.imatrix_gguf), ("dat", &m.imatrix_dat)] {
                    let mut c = llama(&oracle, "llama-imatrix");
                    c.arg("-m")
                        .arg(&m.f16)
                        .arg("-f")
                        .arg(&text)
                        .arg("-o")
                        .arg(out);
                    c.args([
                        "-c",
                        "128",
                        "--chunks",
                        "32",
                        "-t",
                        "1",
                        "--no-ppl",
                        "--output-format",
                        fmt,
                    ]);
                    jobs.push(c);
                }
            }
            for (src, out, ty) in [
                (&moe.f16, &moe_bf16, "BF16"),
                (&moe.f16, &moe_f32, "F32"),
                (&odd.f16, &odd_q8_0, "Q8_0"),
            ] {
                let mut c = llama(&oracle, "llama-quantize");
                c.arg(src).arg(out).args([ty, "1"]);
                jobs.push(c);
            }
            let mut it = jobs.into_iter();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    let batch: Vec<Command> = it.by_ref().take(4).collect();
                    s.spawn(move || {
                        for mut c in batch {
                            run_ok(&mut c);
                        }
                    });
                }
            });
            Some(Inputs {
                dir,
                oracle,
                moe,
                odd,
                moe_bf16,
                moe_f32,
                odd_q8_0,
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
    "COPY",
];

/// The quantized types of TYPES, for which an importance matrix can matter.
fn imatrix_types() -> impl Iterator<Item = &'static str> {
    TYPES
        .iter()
        .copied()
        .filter(|t| !matches!(*t, "F16" | "BF16" | "COPY"))
}

#[test]
fn moe_every_type_matches_llama_quantize() {
    let Some(inp) = inputs() else { return };
    for ty in TYPES {
        check(&format!("moe-{ty}"), &inp.moe.f16, &[], ty);
    }
}

#[test]
fn odd_widths_every_type_matches_llama_quantize() {
    let Some(inp) = inputs() else { return };
    for ty in TYPES {
        check(&format!("odd-{ty}"), &inp.odd.f16, &[], ty);
    }
}

/// The premise of the MoE imatrix cases: llama-imatrix recorded per-expert counts, different
/// from expert to expert, and a zero count (which llama-quantize turns into weights of 1) for
/// expert 3 of layer 1 in all three expert tensors.
#[test]
fn moe_imatrix_has_per_expert_and_zero_counts() {
    let Some(inp) = inputs() else { return };
    let m = Imatrix::load(&inp.moe.imatrix_gguf).unwrap();
    for layer in 0..2 {
        for w in ["gate", "up", "down"] {
            let name = format!("blk.{layer}.ffn_{w}_exps.weight");
            let e = m
                .entries
                .get(&name)
                .unwrap_or_else(|| panic!("{name} missing from the MoE imatrix"));
            assert_eq!(e.counts.len(), 4, "{name}: {:?}", e.counts);
            let zero: Vec<usize> = (0..4).filter(|&i| e.counts[i] == 0).collect();
            assert_eq!(
                zero,
                if layer == 1 { vec![3] } else { vec![] },
                "{name}: {:?}",
                e.counts
            );
            assert!(
                e.counts.iter().any(|&c| c != e.counts[0]),
                "{name}: counts all equal {:?}",
                e.counts
            );
        }
    }
    let legacy = Imatrix::load(&inp.moe.imatrix_dat).unwrap();
    assert!(legacy.is_legacy);
}

#[test]
fn moe_imatrix_quantization_matches_llama_quantize() {
    let Some(inp) = inputs() else { return };
    let gguf = inp.moe.imatrix_gguf.to_str().unwrap();
    let dat = inp.moe.imatrix_dat.to_str().unwrap();
    for ty in imatrix_types() {
        check(
            &format!("moe-im-{ty}"),
            &inp.moe.f16,
            &["--imatrix", gguf],
            ty,
        );
    }
    for ty in ["Q4_K_M", "IQ4_XS"] {
        check(
            &format!("moe-imdat-{ty}"),
            &inp.moe.f16,
            &["--imatrix", dat],
            ty,
        );
    }
    check(
        "moe-im-exclude",
        &inp.moe.f16,
        &["--imatrix", gguf, "--exclude-weights", "ffn_down_exps"],
        "Q4_K_M",
    );
    check(
        "moe-im-include",
        &inp.moe.f16,
        &["--imatrix", gguf, "--include-weights", "blk.1.ffn_up_exps"],
        "Q3_K_M",
    );
}

#[test]
fn odd_widths_imatrix_quantization_matches_llama_quantize() {
    let Some(inp) = inputs() else { return };
    let gguf = inp.odd.imatrix_gguf.to_str().unwrap();
    let dat = inp.odd.imatrix_dat.to_str().unwrap();
    for ty in imatrix_types() {
        check(
            &format!("odd-im-{ty}"),
            &inp.odd.f16,
            &["--imatrix", gguf],
            ty,
        );
    }
    for ty in ["Q4_K_M", "Q4_0"] {
        check(
            &format!("odd-imdat-{ty}"),
            &inp.odd.f16,
            &["--imatrix", dat],
            ty,
        );
    }
}

/// Flags that choose types, on both models. Both have tied embeddings, so `--output-tensor-type`
/// applies to token_embd and `--leave-output-tensor` has nothing to leave; on the odd model every
/// type chosen still goes through the shape fallback (except `--token-embedding-type`, see below).
#[test]
fn mixture_flags_match_llama_quantize() {
    let Some(inp) = inputs() else { return };
    let cases: &[(&str, &[&str], &str)] = &[
        ("pure", &["--pure"], "Q4_K_M"),
        ("pure-q3", &["--pure"], "Q3_K_M"),
        ("leave-output", &["--leave-output-tensor"], "Q4_K_M"),
        ("output-type", &["--output-tensor-type", "q5_1"], "Q4_K_M"),
        ("output-type-k", &["--output-tensor-type", "q4_k"], "Q5_K_M"),
        ("embd-type", &["--token-embedding-type", "q4_1"], "Q4_K_M"),
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
            "tensor-type-k",
            &[
                "--tensor-type",
                "blk\\.1\\.ffn_(up|gate)=q6_k",
                "--tensor-type",
                "attn_output=iq4_xs",
            ],
            "Q3_K_M",
        ),
        (
            "tensor-type-pure",
            &["--pure", "--tensor-type", "attn_q=q2_k"],
            "Q5_0",
        ),
    ];
    for (m, name) in [(&inp.moe, "moe"), (&inp.odd, "odd")] {
        for (case, flags, ty) in cases {
            check(&format!("{name}-{case}"), &m.f16, flags, ty);
        }
    }
    // On the MoE model a K-quant token-embedding type fits the 256-column rows.
    check(
        "moe-embd-type-k",
        &inp.moe.f16,
        &["--token-embedding-type", "q5_k"],
        "Q4_K_M",
    );
    check(
        "moe-tensor-type-exps",
        &inp.moe.f16,
        &[
            "--tensor-type",
            "ffn_up_exps=q8_0",
            "--tensor-type",
            "exps=iq4_nl",
        ],
        "Q4_K_S",
    );
}

/// llama-quantize applies `--token-embedding-type` without the shape fallback, so a K-quant on the
/// odd model's 192-column token_embd makes it fail; qforge refuses it too, and writes nothing.
#[test]
fn odd_widths_k_quant_token_embedding_type_fails_in_both() {
    let Some(inp) = inputs() else { return };
    let flags = ["--token-embedding-type", "q5_k"];
    let theirs = inp.dir.join("embd-k.llama.gguf");
    let ours = inp.dir.join("embd-k.qforge.gguf");
    let l = llama(&inp.oracle, "llama-quantize")
        .args(flags)
        .arg(&inp.odd.f16)
        .arg(&theirs)
        .args(["Q4_K_M", "2"])
        .output()
        .unwrap();
    assert!(
        !l.status.success(),
        "llama-quantize accepted a q5_K token_embd of 192 columns"
    );
    let q = qforge()
        .arg("quantize")
        .args(flags)
        .arg(&inp.odd.f16)
        .arg(&ours)
        .args(["Q4_K_M", "2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&q.stderr);
    assert!(
        !q.status.success(),
        "qforge accepted a q5_K token_embd of 192 columns:\n{err}"
    );
    assert!(
        err.contains("token_embd.weight"),
        "the error does not name the tensor:\n{err}"
    );
    assert!(!ours.exists(), "qforge left {}", ours.display());
}

/// Inputs of other types: the MoE model's 3-D tensors in BF16 and F32, and a requantized Q8_0
/// odd model (a mix of Q8_0 and F16 tensors).
#[test]
fn other_input_types_match_llama_quantize() {
    let Some(inp) = inputs() else { return };
    for ty in ["Q4_K_M", "IQ4_XS", "MXFP4_MOE", "Q8_0"] {
        check(&format!("moe-bf16-{ty}"), &inp.moe_bf16, &[], ty);
        check(&format!("moe-f32-{ty}"), &inp.moe_f32, &[], ty);
    }
    let gguf = inp.moe.imatrix_gguf.to_str().unwrap();
    check(
        "moe-f32-im-Q4_K_M",
        &inp.moe_f32,
        &["--imatrix", gguf],
        "Q4_K_M",
    );
    for ty in ["Q4_K_M", "Q4_0", "IQ4_XS", "F16"] {
        check(
            &format!("odd-q8-{ty}"),
            &inp.odd_q8_0,
            &["--allow-requantize"],
            ty,
        );
    }
}

/// The tensors llama-quantize reports as needing a fallback for `ty` on `input` (from its
/// `--dry-run` log lines "warning: NAME - ncols ...").
fn llama_fallbacks(inp: &Inputs, input: &Path, ty: &str) -> Vec<String> {
    let out = run_ok(
        llama(&inp.oracle, "llama-quantize")
            .arg("--dry-run")
            .arg(input)
            .args([ty, "2"]),
    );
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    log.lines()
        .filter_map(|l| l.trim_start().strip_prefix("warning: "))
        .filter(|l| l.contains(" ncols "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn odd_widths_no_fallback_refuses_and_writes_nothing() {
    let Some(inp) = inputs() else { return };
    let fallbacks = llama_fallbacks(inp, &inp.odd.f16, "Q4_K_M");
    assert!(
        fallbacks.iter().any(|n| n == "blk.0.attn_output.weight"),
        "llama-quantize reported {fallbacks:?}"
    );
    let out = inp.dir.join("nofallback.gguf");
    let q = qforge()
        .args(["quantize", "--no-fallback"])
        .arg(&inp.odd.f16)
        .arg(&out)
        .args(["Q4_K_M", "2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&q.stderr);
    assert!(
        !q.status.success(),
        "--no-fallback accepted Q4_K_M on the odd-width model:\n{err}"
    );
    assert!(
        fallbacks.iter().any(|n| err.contains(n.as_str())),
        "the error names none of {fallbacks:?}:\n{err}"
    );
    assert!(!out.exists(), "--no-fallback left {}", out.display());

    // Where no tensor needs a fallback (every row of the MoE model is a multiple of 32), the flag
    // changes nothing.
    assert_eq!(
        llama_fallbacks(inp, &inp.moe.f16, "Q8_0"),
        Vec::<String>::new()
    );
    let ours = inp.dir.join("nofallback-moe.qforge.gguf");
    let theirs = inp.dir.join("nofallback-moe.llama.gguf");
    run_ok(
        llama(&inp.oracle, "llama-quantize")
            .arg(&inp.moe.f16)
            .arg(&theirs)
            .args(["Q8_0", "2"]),
    );
    run_ok(
        qforge()
            .args(["quantize", "--no-fallback"])
            .arg(&inp.moe.f16)
            .arg(&ours)
            .args(["Q8_0", "2"]),
    );
    assert_same_file(&ours, &theirs);
}

/// `--dry-run` exits 0 and writes nothing, and its plan (each tensor's new type and size) is what
/// llama-quantize actually writes.
#[test]
fn odd_widths_dry_run_writes_nothing_and_plans_what_llama_writes() {
    let Some(inp) = inputs() else { return };
    let dir = inp.dir.join("dry-run");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("dry.gguf");
    let q = run_ok(
        qforge()
            .args(["quantize", "--dry-run", "--json"])
            .arg(&inp.odd.f16)
            .arg(&out)
            .args(["Q4_K_M", "2"]),
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "--dry-run wrote into {}",
        dir.display()
    );
    let plan: serde_json::Value =
        serde_json::from_slice(&q.stdout).expect("--dry-run --json prints JSON");

    let theirs = inp.dir.join("dry-run.llama.gguf");
    run_ok(
        llama(&inp.oracle, "llama-quantize")
            .arg(&inp.odd.f16)
            .arg(&theirs)
            .args(["Q4_K_M", "2"]),
    );
    let info = run_ok(qforge().args(["inspect", "--json"]).arg(&theirs));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();

    let planned: Vec<(String, String, u64)> = plan["tensors"]
        .as_array()
        .expect("plan.tensors")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["new_type"].as_str().unwrap().to_owned(),
                t["new_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    let written: Vec<(String, String, u64)> = info["tensors"]
        .as_array()
        .expect("inspect.tensors")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["type"].as_str().unwrap().to_owned(),
                t["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(planned, written);
    // The plan covers all three shape classes.
    for (name, ty) in [
        ("blk.0.attn_output.weight", "f16"),
        ("blk.0.attn_q.weight", "q5_0"),
        ("blk.0.ffn_down.weight", "q4_K"),
    ] {
        assert!(
            planned.iter().any(|(n, t, _)| n == name && t == ty),
            "{name} is not {ty} in {planned:?}"
        );
    }
}
