//! Single-thread speed of the K-quant quantizers, scalar code against the lane-parallel (AVX2)
//! code, with and without importance weights; both must give the same bytes (checked).
//!
//!     cargo run --release -p qforge-formats --example kquant_speed -- [TYPES] [REPS] [lanes]
//!
//! TYPES: comma-separated ggml type names (default q4_K,q5_K,q2_K,q6_K); REPS: timed runs per
//! case after one warm-up, the fastest counted (default 5); `lanes` times the lane path only
//! (for profiling it). The input is 256 rows of 4096
//! gaussian weights (sigma 0.02) with 0.1% outliers and an importance vector of positive
//! values. With `KQ_DUMP=PREFIX` set, the rows and the importance vector are also written to
//! `PREFIX.f32` and `PREFIX.imatrix.f32` (little-endian f32), e.g. for timing llama.cpp's
//! quantizers on the same data. Prints M weights/s per case, from the thread's CPU time (so
//! that other processes on a loaded machine disturb it less; wall time elsewhere than Linux).

use qforge_formats::ggml::quants::helpers::lanes;
use qforge_formats::ggml::{self, GgmlType};

const ROWS: usize = 256;
const N_PER_ROW: usize = 4096;

/// Seconds of CPU time used by the calling thread.
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

/// Seconds of wall time since the first call.
#[cfg(not(target_os = "linux"))]
fn thread_cpu_seconds() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static T0: OnceLock<Instant> = OnceLock::new();
    T0.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// xorshift64* uniform in [0, 1).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn data() -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let src = (0..ROWS * N_PER_ROW)
        .map(|_| {
            if rng.uniform() < 0.001 {
                (0.1 + 0.4 * rng.uniform()) as f32 * if rng.uniform() < 0.5 { -1.0 } else { 1.0 }
            } else {
                (0.02 * rng.normal()) as f32
            }
        })
        .collect();
    let imatrix = (0..N_PER_ROW)
        .map(|_| (1e-4 + rng.uniform() * rng.uniform() * 0.05) as f32)
        .collect();
    (src, imatrix)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Fastest of `reps` runs (after a warm-up) in seconds, and the bytes produced.
fn time(ty: GgmlType, src: &[f32], imatrix: Option<&[f32]>, reps: usize) -> (f64, Vec<u8>) {
    let mut out = vec![0u8; src.len() / ty.block_size() * ty.type_size()];
    ggml::quantize(ty, src, &mut out, N_PER_ROW, imatrix).expect("quantize");
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = thread_cpu_seconds();
        ggml::quantize(ty, src, &mut out, N_PER_ROW, imatrix).expect("quantize");
        best = best.min(thread_cpu_seconds() - t);
    }
    (best, out)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let types = args.get(1).map_or("q4_K,q5_K,q2_K,q6_K", |s| s.as_str());
    let reps: usize = args.get(2).map_or(5, |s| s.parse().expect("REPS"));
    let lanes_only = args.get(3).is_some_and(|s| s == "lanes");
    let (src, imatrix) = data();
    if let Ok(prefix) = std::env::var("KQ_DUMP") {
        std::fs::write(format!("{prefix}.f32"), f32_bytes(&src)).expect("write rows");
        std::fs::write(format!("{prefix}.imatrix.f32"), f32_bytes(&imatrix))
            .expect("write imatrix");
        eprintln!("wrote {prefix}.f32 ({ROWS} rows of {N_PER_ROW}) and {prefix}.imatrix.f32");
    }
    if !lanes::available() {
        eprintln!("this CPU has no AVX2: both columns run the scalar code");
    }
    let mweights = |s: f64| src.len() as f64 / s / 1e6;
    println!("type  imatrix  scalar Mw/s  lanes Mw/s  speedup");
    for name in types.split(',') {
        let ty = GgmlType::from_name(name).unwrap_or_else(|| panic!("unknown type {name}"));
        for im in [None, Some(&imatrix[..])] {
            lanes::set_enabled(true);
            let (tl, bl) = time(ty, &src, im, reps);
            let ts = if lanes_only {
                f64::NAN
            } else {
                lanes::set_enabled(false);
                let (ts, bs) = time(ty, &src, im, reps);
                assert!(bs == bl, "{name}: the scalar and lane paths differ");
                ts
            };
            println!(
                "{name:5} {:7}  {:11.1}  {:10.1}  {:6.2}x",
                if im.is_some() { "yes" } else { "no" },
                mweights(ts),
                mweights(tl),
                ts / tl
            );
        }
    }
}
