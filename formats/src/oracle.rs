//! Test support: runs the pinned llama.cpp's own codecs through the `ggml-codec` harness
//! (`scripts/oracle/ggml-codec.c`, built by `scripts/build-oracle.sh`) and generates
//! deterministic test inputs.
//!
//! The harness is found through `QFORGE_ORACLE_DIR`, else in the build cache under
//! `~/.cache/qforge`. When it is missing the tests fail with instructions, unless
//! `QFORGE_SKIP_ORACLE=1` is set, in which case the oracle calls return `None`.

use crate::ggml::GgmlType;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn bin_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("QFORGE_ORACLE_DIR") {
        return Some(PathBuf::from(d));
    }
    let cache = PathBuf::from(std::env::var("HOME").ok()?).join(".cache/qforge");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&cache)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("ggml-codec").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn harness() -> Option<PathBuf> {
    match bin_dir() {
        Some(d) if d.join("ggml-codec").is_file() => Some(d.join("ggml-codec")),
        _ if std::env::var_os("QFORGE_SKIP_ORACLE").is_some() => None,
        _ => panic!(
            "the llama.cpp oracle is not built: run scripts/build-oracle.sh \
             (or set QFORGE_SKIP_ORACLE=1 to skip comparisons with it)"
        ),
    }
}

fn scratch(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("qforge-oracle-{}-{n}-{tag}", std::process::id()))
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// llama.cpp's `ggml_quantize_chunk` on `src` (rows of `n_per_row`), or `None` when skipped.
pub fn quantize(
    ty: GgmlType,
    n_per_row: usize,
    src: &[f32],
    imatrix: Option<&[f32]>,
) -> Option<Vec<u8>> {
    let exe = harness()?;
    let (inp, out, im) = (scratch("in"), scratch("out"), scratch("im"));
    std::fs::write(&inp, f32_bytes(src)).unwrap();
    let mut cmd = Command::new(exe);
    cmd.arg("quantize")
        .arg(ty.name())
        .arg(n_per_row.to_string())
        .arg(&inp)
        .arg(&out);
    if let Some(w) = imatrix {
        std::fs::write(&im, f32_bytes(w)).unwrap();
        cmd.arg(&im);
    }
    let st = cmd.output().expect("run ggml-codec");
    assert!(
        st.status.success(),
        "ggml-codec quantize {ty}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    for p in [inp, out, im] {
        let _ = std::fs::remove_file(p);
    }
    Some(bytes)
}

/// llama.cpp's `to_float` for `ty` on whole blocks, or `None` when skipped.
pub fn dequantize(ty: GgmlType, src: &[u8]) -> Option<Vec<f32>> {
    let exe = harness()?;
    let (inp, out) = (scratch("in"), scratch("out"));
    std::fs::write(&inp, src).unwrap();
    let st = Command::new(exe)
        .arg("dequantize")
        .arg(ty.name())
        .arg(&inp)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "ggml-codec dequantize {ty}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(inp);
    let _ = std::fs::remove_file(out);
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// A small deterministic generator (xorshift64*), so inputs are the same on every run.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next raw 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Approximately normal (sum of uniforms).
    pub fn normal(&mut self) -> f32 {
        (0..4).map(|_| self.uniform()).sum::<f32>() - 2.0
    }
}

/// Rows that exercise the quantizers: gaussian weights, outliers, a zero block, tiny values,
/// values on rounding ties, constant runs and a mixed-sign ramp. `n_per_row` must be a multiple
/// of 256.
pub fn test_rows(seed: u64, nrows: usize, n_per_row: usize) -> Vec<f32> {
    let mut r = Rng::new(seed);
    let mut v = Vec::with_capacity(nrows * n_per_row);
    for row in 0..nrows {
        for j in 0..n_per_row {
            let x = match row % 8 {
                0 => r.normal() * 0.02,
                1 => {
                    if r.uniform() < 0.01 {
                        r.normal() * 4.0
                    } else {
                        r.normal() * 0.05
                    }
                }
                2 => {
                    if j < 256 {
                        0.0
                    } else {
                        r.normal()
                    }
                }
                3 => r.normal() * 1e-6,
                4 => ((r.next_u64() % 33) as f32 - 16.0) * 0.5,
                5 => {
                    if (j / 32) % 2 == 0 {
                        0.25
                    } else {
                        -r.uniform()
                    }
                }
                6 => (j as f32 - n_per_row as f32 / 2.0) / n_per_row as f32,
                _ => r.uniform() * 3.0,
            };
            v.push(x);
        }
    }
    v
}

/// A positive importance vector of `n` values with a wide dynamic range.
pub fn test_imatrix(seed: u64, n: usize) -> Vec<f32> {
    let mut r = Rng::new(seed ^ 0xABCD);
    (0..n).map(|_| (r.normal() * 2.0).exp() * 1e-2).collect()
}
