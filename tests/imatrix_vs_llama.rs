//! `qforge imatrix` against the pinned llama-imatrix: the eval fixture in F16 and quantized by
//! the pinned llama-quantize (Q8_0, Q4_K_M), and the MoE fixture, on an English text (the GPL-3
//! every Debian machine ships), in both file formats; and the imatrix qforge writes fed to
//! llama-quantize and to qforge quantize, whose outputs must agree byte for byte.

mod common;

use common::*;
use qforge_formats::imatrix::Imatrix;
use std::path::{Path, PathBuf};

const TEXT: &str = "/usr/share/common-licenses/GPL-3";
const CTX: &str = "128";

/// Largest relative difference allowed per summed value, `|ours - llama| / |llama|`, for values
/// above [`FLOOR`] of their tensor's largest value.
///
/// qforge's forward pass gives libllama's activations bit for bit, the chunks of a batch go
/// through it together in llama.cpp's micro-batches, and the collector sums rows in
/// llama-imatrix's order (micro-batch by micro-batch, experts slot by slot), so the sums are
/// identical, also with several chunks per batch cut into pieces of 32 positions (`--chunks 12`
/// at the default `-b 2048`). `QFORGE_IMATRIX_MEASURE=1 cargo test --test imatrix_vs_llama --
/// --nocapture` prints the measurements without failing.
fn tolerance(_case: &str) -> f64 {
    if std::env::var_os("QFORGE_IMATRIX_MEASURE").is_some() {
        return 1.0;
    }
    0.0
}

/// Values below this fraction of their tensor's largest value are compared against that
/// fraction instead of their own size (sums of near-zero activations have no relative scale).
const FLOOR: f64 = 1e-4;

fn text() -> PathBuf {
    PathBuf::from(TEXT)
}

/// The eval fixture in `ty`, made by the pinned llama-quantize (the F16 fixture itself for F16).
fn eval_model(dir: &Path, oracle: &Path, ty: &str) -> PathBuf {
    let src = fixture("tiny-llama-eval-f16.gguf");
    if ty == "F16" {
        return src;
    }
    let out = dir.join(format!("eval-{ty}.gguf"));
    if !out.exists() {
        run_ok(llama(oracle, "llama-quantize").arg(&src).arg(&out).arg(ty));
    }
    out
}

/// Runs llama-imatrix until its log is complete (up to 20 times): the running PPL and the final
/// estimate are printed last, by a logger thread that exit() may cut short (llama.cpp #22142).
fn llama_imatrix(oracle: &Path, model: &Path, out: &Path, extra: &[&str]) -> String {
    let mut stdout = String::new();
    for _ in 0..20 {
        let o = run_ok(
            llama_logged(oracle, "llama-imatrix")
                .arg("-m")
                .arg(model)
                .arg("-f")
                .arg(text())
                .arg("-o")
                .arg(out)
                .args(["-c", CTX, "-t", "2"])
                .args(extra),
        );
        stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        if stdout.contains("Final estimate") {
            break;
        }
    }
    stdout
}

fn qforge_imatrix(model: &Path, out: &Path, extra: &[&str]) -> String {
    let o = run_ok(
        qforge()
            .args(["-j", "2", "imatrix", "-m"])
            .arg(model)
            .arg("-f")
            .arg(text())
            .arg("-o")
            .arg(out)
            .args(["-c", CTX])
            .args(extra),
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The running perplexities `[1]x,[2]y,...` printed on stdout by either tool (llama.cpp's log
/// may break the sequence over lines).
fn running_ppl(stdout: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut rest = stdout;
    while let Some(p) = rest.find(&format!("[{}]", out.len() + 1)) {
        let tail = &rest[p + format!("[{}]", out.len() + 1).len()..];
        let end = tail.find(',').unwrap_or(tail.len());
        let v: f64 = tail[..end]
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("bad running PPL `{}`", &tail[..end]));
        out.push(v);
        rest = &tail[end..];
    }
    out
}

/// Compares two importance matrices: metadata and counts exactly, sums within `tol`. Returns
/// the largest relative difference seen.
fn compare(case: &str, ours: &Imatrix, theirs: &Imatrix, tol: f64) -> f64 {
    assert_eq!(ours.datasets, theirs.datasets, "{case}: datasets");
    assert_eq!(ours.chunk_count, theirs.chunk_count, "{case}: chunk count");
    assert_eq!(ours.chunk_size, theirs.chunk_size, "{case}: chunk size");
    assert_eq!(ours.is_legacy, theirs.is_legacy, "{case}: format");
    let names = |m: &Imatrix| m.entries.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(ours), names(theirs), "{case}: tensors");
    let mut worst = (0.0f64, String::new());
    for (name, t) in &theirs.entries {
        let o = &ours.entries[name];
        assert_eq!(o.counts, t.counts, "{case}: counts of {name}");
        assert_eq!(o.sums.len(), t.sums.len(), "{case}: size of {name}");
        let max = t.sums.iter().fold(0f64, |m, &v| m.max((v as f64).abs()));
        for (i, (&a, &b)) in o.sums.iter().zip(&t.sums).enumerate() {
            let scale = (b as f64).abs().max(max * FLOOR);
            let rel = if scale == 0.0 {
                (a as f64).abs()
            } else {
                (a as f64 - b as f64).abs() / scale
            };
            if rel > worst.0 {
                worst = (rel, format!("{name}[{i}]: ours {a}, llama {b}"));
            }
        }
    }
    eprintln!(
        "{case}: max relative difference {:.3e} at {}",
        worst.0, worst.1
    );
    assert!(
        worst.0 <= tol,
        "{case}: relative difference {:.3e} above {tol:.1e} at {}",
        worst.0,
        worst.1
    );
    worst.0
}

/// The bytes of a GGUF file before its tensor data (header, metadata, tensor infos, padding).
fn gguf_header_bytes(p: &Path) -> Vec<u8> {
    let f = qforge_formats::gguf::GgufFile::open(p).unwrap();
    let h = f.header();
    let start = h.data_offset as usize;
    std::fs::read(p).unwrap()[..start].to_vec()
}

fn run_case(case: &str, model: &Path, dir: &Path, oracle: &Path, extra: &[&str]) {
    let theirs = dir.join(format!("{case}.llama.gguf"));
    let ours = dir.join(format!("{case}.qforge.gguf"));
    let lo = llama_imatrix(oracle, model, &theirs, extra);
    let qo = qforge_imatrix(model, &ours, extra);
    let (a, b) = (
        Imatrix::load(&ours).unwrap(),
        Imatrix::load(&theirs).unwrap(),
    );
    compare(case, &a, &b, tolerance(case));
    // Same layout: everything before the tensor data is identical.
    assert_eq!(
        gguf_header_bytes(&ours),
        gguf_header_bytes(&theirs),
        "{case}: GGUF header bytes"
    );
    // The running perplexity printed per chunk.
    let (pl, pq) = (running_ppl(&lo), running_ppl(&qo));
    assert!(
        !pl.is_empty(),
        "{case}: no running PPL in llama's output:\n{lo}"
    );
    assert_eq!(
        pl.len(),
        pq.len(),
        "{case}: chunks printed\n{lo}\n---\n{qo}"
    );
    // The running PPLs are printed with 4 decimals; the logits are libllama's.
    for (x, y) in pl.iter().zip(&pq) {
        assert!(
            (x - y).abs() / x <= 1e-6,
            "{case}: running PPL {y} vs llama's {x}"
        );
    }
}

#[test]
fn dense_f16_q8_0_q4_k_m_match_llama_imatrix() {
    let Some(oracle) = oracle_dir() else { return };
    let dir = scratch("imatrix-dense");
    for ty in ["F16", "Q8_0", "Q4_K_M"] {
        let m = eval_model(&dir, &oracle, ty);
        run_case(ty, &m, &dir, &oracle, &["--chunks", "4"]);
    }
    // More chunks: one per batch (llama's accumulation order is ours), and twelve per batch as
    // llama-imatrix batches them by default (interleaved by micro-batch); with the output layer.
    let m = eval_model(&dir, &oracle, "F16");
    let flags = ["--chunks", "12", "--process-output"];
    run_case(
        "F16-12chunks-output",
        &m,
        &dir,
        &oracle,
        &[&flags[..], &["-b", CTX]].concat(),
    );
    run_case("F16-12chunks-interleaved", &m, &dir, &oracle, &flags);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn moe_matches_llama_imatrix() {
    let Some(oracle) = oracle_dir() else { return };
    let dir = scratch("imatrix-moe");
    let m = fixture("tiny-moe-f16.gguf");
    run_case("MoE-F16", &m, &dir, &oracle, &["--chunks", "4"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn legacy_dat_matches_llama_imatrix() {
    let Some(oracle) = oracle_dir() else { return };
    let dir = scratch("imatrix-dat");
    for (case, m) in [
        ("F16-dat", fixture("tiny-llama-eval-f16.gguf")),
        ("MoE-F16-dat", fixture("tiny-moe-f16.gguf")),
    ] {
        let theirs = dir.join(format!("{case}.llama.dat"));
        let ours = dir.join(format!("{case}.qforge.dat"));
        let flags = ["--chunks", "4", "--output-format", "dat"];
        llama_imatrix(&oracle, &m, &theirs, &flags);
        qforge_imatrix(&m, &ours, &flags);
        let (a, b) = (
            Imatrix::load(&ours).unwrap(),
            Imatrix::load(&theirs).unwrap(),
        );
        compare(case, &a, &b, tolerance(case));
        assert_eq!(
            std::fs::metadata(&ours).unwrap().len(),
            std::fs::metadata(&theirs).unwrap().len(),
            "{case}: file size"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Our writers reproduce llama-imatrix's files byte for byte from llama-imatrix's own values:
/// its GGUF file read and written back, and the legacy file of the same run.
#[test]
fn writers_reproduce_llama_imatrix_files() {
    let Some(oracle) = oracle_dir() else { return };
    let dir = scratch("imatrix-writers");
    for (case, m) in [
        ("dense", fixture("tiny-llama-eval-f16.gguf")),
        ("moe", fixture("tiny-moe-f16.gguf")),
    ] {
        let gguf = dir.join(format!("{case}.llama.gguf"));
        let dat = dir.join(format!("{case}.llama.dat"));
        llama_imatrix(&oracle, &m, &gguf, &["--chunks", "3"]);
        llama_imatrix(
            &oracle,
            &m,
            &dat,
            &["--chunks", "3", "--output-format", "dat"],
        );
        let im = Imatrix::load(&gguf).unwrap();
        let (g2, d2) = (
            dir.join(format!("{case}.ours.gguf")),
            dir.join(format!("{case}.ours.dat")),
        );
        im.save_gguf(&g2).unwrap();
        im.save_legacy(&d2).unwrap();
        assert_same_file(&g2, &gguf);
        assert_same_file(&d2, &dat);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// llama-quantize accepts our imatrix, and qforge quantize with it writes the same bytes.
#[test]
fn quantize_with_our_imatrix_matches_llama_quantize() {
    let Some(oracle) = oracle_dir() else { return };
    let dir = scratch("imatrix-quantize");
    let m = fixture("tiny-llama-eval-f16.gguf");
    for (fmt, ext) in [("gguf", "gguf"), ("dat", "dat")] {
        let im = dir.join(format!("ours.{ext}"));
        qforge_imatrix(&m, &im, &["--chunks", "4", "--output-format", fmt]);
        let flag = ["--imatrix", im.to_str().unwrap()];
        for ty in ["IQ2_XS", "Q4_K_M"] {
            check_same_output(&oracle, &dir, &format!("{fmt}-{ty}"), &m, &flag, ty);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same file whatever the thread count.
#[test]
fn deterministic_across_thread_counts() {
    let dir = scratch("imatrix-threads");
    let m = fixture("tiny-moe-f16.gguf");
    let out = |j: &str| {
        let p = dir.join(format!("j{j}.gguf"));
        run_ok(
            qforge()
                .args(["-j", j, "imatrix", "-m"])
                .arg(&m)
                .arg("-f")
                .arg(text())
                .arg("-o")
                .arg(&p)
                .args(["-c", CTX, "--chunks", "6"]),
        );
        p
    };
    assert_same_file(&out("1"), &out("3"));
    let _ = std::fs::remove_dir_all(&dir);
}
