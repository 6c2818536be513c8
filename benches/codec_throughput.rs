//! Single-thread throughput of qforge's block codecs: `qforge_formats::ggml::quantize(ty, ..)`
//! per type (and the F16 -> F32 dequantization that every F16 input goes through), timed by the
//! calling thread's CPU clock, so that other processes on a loaded machine disturb it less.
//!
//! A plain `harness = false` benchmark; run it with
//!
//!     cargo bench --bench codec_throughput
//!
//! or through scripts/bench/codec-bench.sh, which runs it interleaved with the same measurement
//! of the pinned ggml (scripts/bench/ggml-codec-bench.c) on the same rows. Environment:
//!
//!   QFORGE_BENCH_DATA      rows of little-endian f32 (default: 512 synthetic rows, see `synthetic`)
//!   QFORGE_BENCH_N_PER_ROW elements per row (default 2048)
//!   QFORGE_BENCH_IMATRIX   n_per_row f32 importance weights; also runs every type with them
//!   QFORGE_BENCH_TYPES     comma-separated ggml type names or `f16->f32`
//!                          (default f16->f32,q8_0,q4_0,q4_K,q5_K,q6_K,iq4_xs)
//!   QFORGE_BENCH_REPS      timed repetitions per type after one warm-up (default 10)
//!
//! Prints one line per type: `rust TYPE imatrix|- N median_thread_cpu_s median_wall_s
//! Mweights_per_s_cpu Mweights_per_s_wall`, the format of ggml-codec-bench.

use qforge_formats::ggml::{self, GgmlType};
use std::time::Instant;

#[cfg(target_os = "linux")]
fn thread_cpu_seconds() -> f64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clk: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec (two 64-bit fields on 64-bit Linux) into ts.
    unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + 1e-9 * ts.tv_nsec as f64
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_seconds() -> f64 {
    use std::sync::OnceLock;
    static T0: OnceLock<Instant> = OnceLock::new();
    T0.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// Weights shaped like the bench model's: N(0, 0.02), two hot columns (x4), ~0.1% outliers of
/// magnitude 0.1 to 0.5, rounded through f16 (the model is F16). xorshift64* + Box-Muller.
fn synthetic(rows: usize, cols: usize) -> Vec<f32> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut w: Vec<f32> = (0..rows * cols)
        .map(|_| {
            let (u1, u2) = (next().max(1e-300), next());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * 0.02) as f32
        })
        .collect();
    let hot = [
        (next() * cols as f64) as usize,
        (next() * cols as f64) as usize,
    ];
    for r in 0..rows {
        for &h in &hot {
            w[r * cols + h] *= 4.0;
        }
    }
    for _ in 0..(rows * cols / 1000).max(1) {
        let i = (next() * (rows * cols) as f64) as usize;
        let mag = 0.1 + 0.4 * next() as f32;
        w[i] = if next() < 0.5 { -mag } else { mag };
    }
    for x in &mut w {
        *x = ggml::fp::f16_bits_to_f32(ggml::fp::f32_to_f16_bits(*x));
    }
    w
}

fn read_f32(path: &str) -> Vec<f32> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(b.len() % 4 == 0, "{path}: not whole f32 values");
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Runs `f` once to warm up, then `reps` times; medians of thread CPU and wall seconds.
fn time_it(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let (mut cpu, mut wall) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    for _ in 0..reps {
        let (c0, w0) = (thread_cpu_seconds(), Instant::now());
        f();
        cpu.push(thread_cpu_seconds() - c0);
        wall.push(w0.elapsed().as_secs_f64());
    }
    (median(&mut cpu), median(&mut wall))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

fn main() {
    let n_per_row: usize =
        env("QFORGE_BENCH_N_PER_ROW").map_or(2048, |s| s.parse().expect("QFORGE_BENCH_N_PER_ROW"));
    let src = match env("QFORGE_BENCH_DATA") {
        Some(p) => read_f32(&p),
        None => synthetic(512, n_per_row),
    };
    assert!(
        src.len() % n_per_row == 0,
        "input is not whole rows of {n_per_row}"
    );
    let imatrix = env("QFORGE_BENCH_IMATRIX").map(|p| read_f32(&p));
    if let Some(w) = &imatrix {
        assert_eq!(w.len(), n_per_row, "the imatrix must hold n_per_row values");
    }
    let types = env("QFORGE_BENCH_TYPES")
        .unwrap_or_else(|| "f16->f32,q8_0,q4_0,q4_K,q5_K,q6_K,iq4_xs".into());
    let reps: usize = env("QFORGE_BENCH_REPS")
        .map_or(10, |s| s.parse().expect("QFORGE_BENCH_REPS"))
        .max(1);
    let n = src.len();
    // libtest has printed "test codec_throughput ... " without a newline.
    println!();
    for name in types.split(',').filter(|s| !s.is_empty()) {
        let (cpu, wall) = if name == "f16->f32" {
            let h: Vec<u8> = src
                .iter()
                .flat_map(|&x| ggml::fp::f32_to_f16_bits(x).to_le_bytes())
                .collect();
            let mut out = vec![0f32; n];
            time_it(reps, || {
                ggml::dequantize(GgmlType::F16, std::hint::black_box(&h), &mut out)
                    .expect("dequantize F16")
            })
        } else {
            let ty =
                GgmlType::from_name(name).unwrap_or_else(|| panic!("unknown ggml type {name}"));
            let bytes = ty.row_size(n as u64).expect("whole blocks") as usize;
            let mut dst = vec![0u8; bytes];
            time_it(reps, || {
                ggml::quantize(
                    ty,
                    std::hint::black_box(&src),
                    &mut dst,
                    n_per_row,
                    imatrix.as_deref(),
                )
                .expect("quantize");
            })
        };
        println!(
            "rust {name} {} {n} {cpu:.6} {wall:.6} {:.2} {:.2}",
            if imatrix.is_some() { "imatrix" } else { "-" },
            n as f64 / cpu / 1e6,
            n as f64 / wall / 1e6
        );
    }
}
