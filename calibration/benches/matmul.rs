//! Matrix-product throughput of the CPU backend at the shapes of a forward pass.
//!
//! `cargo test --release -p qforge-calibration --bench matmul -- --nocapture` (a libtest test, so
//! that it runs on stable; `QFORGE_BENCH_THREADS` sets the pool size, default 2). Prints GFLOP/s
//! per shape (m activation rows, n outputs, k inputs) for F16 weights: activations rounded to
//! F16, weights dequantized to f32, gemm crate products. The machine is shared: run it twice.

use qforge_calibration::backend::{Backend, CpuBackend, WeightView};
use qforge_formats::ggml::GgmlType;
use std::time::Instant;

fn pool() -> rayon::ThreadPool {
    let n = std::env::var("QFORGE_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}

/// Deterministic pseudo-random values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn time_shape(m: usize, n_out: usize, k: usize) -> f64 {
    let be = CpuBackend::new();
    let w: Vec<u8> = values(n_out * k, 1)
        .iter()
        .flat_map(|&v| half::f16::from_f32(v * 0.05).to_le_bytes())
        .collect();
    let view = WeightView {
        name: "w",
        ty: GgmlType::F16,
        ne: [k, n_out, 1],
        data: &w,
    };
    let mut mat = be.new_matrix();
    be.load_matrix(&view, &mut mat).unwrap();
    let x = values(m * k, 2);
    let mut out = vec![0.0f32; m * n_out];
    be.matmul(&mat, 0, &x, m, &mut out);
    let reps = ((4e9 / (2.0 * (m * n_out * k) as f64)).ceil() as usize).clamp(1, 50);
    let t = Instant::now();
    for _ in 0..reps {
        be.matmul(&mat, 0, &x, m, &mut out);
    }
    let s = t.elapsed().as_secs_f64() / reps as f64;
    2.0 * (m * n_out * k) as f64 / s / 1e9
}

#[test]
fn matmul_f16_shapes() {
    let shapes = [
        (128, 2048, 2048),
        (2048, 2048, 2048),
        (2048, 512, 2048),
        (2048, 5632, 2048),
        (2048, 2048, 5632),
        (1024, 32000, 2048),
        (2048, 256, 256),
        (2048, 768, 256),
    ];
    pool().install(|| {
        for (m, n, k) in shapes {
            println!(
                "m {m:5} n {n:5} k {k:5}: {:6.1} GFLOP/s",
                time_shape(m, n, k)
            );
        }
    });
}
