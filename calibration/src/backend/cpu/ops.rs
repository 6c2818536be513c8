//! Element-wise and row-wise operations, rounded as ggml's CPU kernels round them.

use super::super::RopeParams;
use super::simd::dispatch;
use half::f16;
use rayon::prelude::*;
use std::sync::OnceLock;

/// Rows per parallel task for the row-wise operations.
const ROWS_PER_TASK: usize = 16;

/// `ggml_compute_forward_rms_norm_f32` fused with the weight multiplication: the sum of squares in
/// double, `scale = 1/sqrtf(mean + eps)` in float, `y = x * scale * w`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let n = weight.len();
    out.par_chunks_mut(n * ROWS_PER_TASK)
        .zip(x.par_chunks(n * ROWS_PER_TASK))
        .for_each(|(o, i)| {
            for (yr, xr) in o.chunks_mut(n).zip(i.chunks(n)) {
                let sum: f64 = xr.iter().map(|&v| (v * v) as f64).sum();
                let mean = (sum / n as f64) as f32;
                let scale = 1.0f32 / (mean + eps).sqrt();
                for ((y, &v), &w) in yr.iter_mut().zip(xr).zip(weight) {
                    *y = v * scale * w;
                }
            }
        });
}

/// ggml's rope cache for one position (`ggml_rope_cache_init` without YaRN extrapolation):
/// `theta` starts at the position and is multiplied by `theta_scale` each pair.
fn rope_cache(pos: u32, head_dim: usize, theta_scale: f32, p: &RopeParams, cache: &mut [f32]) {
    let mut theta = pos as f32;
    for i0 in (0..head_dim).step_by(2) {
        let ff = p
            .freq_factors
            .as_ref()
            .and_then(|f| f.get(i0 / 2).copied())
            .unwrap_or(1.0);
        let t = p.freq_scale * (theta / ff);
        cache[i0] = t.cos() * p.attn_factor;
        cache[i0 + 1] = t.sin() * p.attn_factor;
        theta *= theta_scale;
    }
}

/// `ggml_rope_ext` on rows of `n_head × head_dim`: NORM mode rotates adjacent pairs
/// `(i, i + 1)`, NEOX mode the pairs `(i, i + n_dims / 2)`; dimensions past `n_dims` are kept.
pub fn rope(x: &mut [f32], n_head: usize, head_dim: usize, positions: &[u32], p: &RopeParams) {
    let theta_scale = p.freq_base.powf(-2.0 / p.n_dims as f32);
    let row = n_head * head_dim;
    let n_dims = p.n_dims.min(head_dim);
    x.par_chunks_mut(row)
        .zip(positions.par_iter())
        .for_each_init(
            || vec![0.0f32; head_dim + 1],
            |cache, (xr, &pos)| {
                rope_cache(pos, head_dim, theta_scale, p, cache);
                for h in xr.chunks_mut(head_dim) {
                    for i0 in (0..n_dims).step_by(2) {
                        let (c, s) = (cache[i0], cache[i0 + 1]);
                        let (a, b) = if p.neox {
                            (i0 / 2, i0 / 2 + n_dims / 2)
                        } else {
                            (i0, i0 + 1)
                        };
                        let (x0, x1) = (h[a], h[b]);
                        // ggml's rotate_pairs as GCC contracts it (-ffp-contract=fast): one
                        // product rounded, the other fused.
                        h[a] = x0.mul_add(c, -(x1 * s));
                        h[b] = x0.mul_add(s, x1 * c);
                    }
                }
            },
        );
}

/// ggml's tanh-approximated GELU in f32 (`ggml_gelu_f32`), as the pinned build computes it when
/// filling its table: GCC contracts `1 + A*x*x` into `fma(A*x, x, 1)`.
#[allow(clippy::excessive_precision)]
fn gelu_f32(x: f32) -> f32 {
    const GELU_COEF_A: f32 = 0.044715;
    const SQRT_2_OVER_PI: f32 = 0.797_884_560_802_865_355_879_892_119_868_76;
    let inner = (GELU_COEF_A * x).mul_add(x, 1.0);
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * inner).tanh())
}

/// ggml's `ggml_table_gelu_f16`: the F16 GELU of every F16 value, indexed by its bits.
fn gelu_table() -> &'static [f16] {
    static TABLE: OnceLock<Vec<f16>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|b| f16::from_f32(gelu_f32(f16::from_bits(b).to_f32())))
            .collect()
    })
}

/// `ggml_vec_geglu_f32` (with `GGML_GELU_FP16`): `gelu(g) * u`, where `gelu(g)` is 0 at or below
/// -10, `g` at or above 10, and otherwise the table entry of `g` rounded to F16.
pub fn geglu(gate: &[f32], up: &[f32], out: &mut [f32], row: usize) {
    let table = gelu_table();
    out.par_chunks_mut(row * ROWS_PER_TASK)
        .zip(
            gate.par_chunks(row * ROWS_PER_TASK)
                .zip(up.par_chunks(row * ROWS_PER_TASK)),
        )
        .for_each(|(o, (g, u))| {
            for ((o, &x), &u) in o.iter_mut().zip(g).zip(u) {
                *o = if x <= -10.0 {
                    0.0
                } else if x >= 10.0 {
                    x * u
                } else {
                    table[f16::from_f32(x).to_bits() as usize].to_f32() * u
                };
            }
        });
}

/// ggml's AVX2 `ggml_v_expf`, one lane: a polynomial approximation of `expf` (within 1.5 ulp),
/// used by the vectorised softmax and SiLU kernels. Written without branches (both results
/// computed, one selected, as the AVX2 code blends them) so that loops over it vectorise.
#[inline(always)]
pub fn v_expf(x: f32) -> f32 {
    let r = f32::from_bits(0x4b40_0000); // 0x1.8p23
    let z = x.mul_add(f32::from_bits(0x3fb8_aa3b), r); // 0x1.715476p+0
    let n = z - r;
    let b = (-n).mul_add(
        f32::from_bits(0x35bf_be8e),                  // 0x1.7f7d1cp-20
        (-n).mul_add(f32::from_bits(0x3f31_7200), x), // 0x1.62e4p-1
    );
    let e = z.to_bits() << 23;
    let k = f32::from_bits(e.wrapping_add(1.0f32.to_bits()));
    let c = n.abs() > 126.0;
    let u = b * b;
    let j = f32::from_bits(0x3c07_2010) // 0x1.0e4020p-7
        .mul_add(b, f32::from_bits(0x3d2b_9f17)) // 0x1.573e2ep-5
        .mul_add(
            u,
            f32::from_bits(0x3e2a_af33).mul_add(b, f32::from_bits(0x3eff_fedb)), // 0x1.555e66p-3, 0x1.fffdb6p-2
        )
        .mul_add(u, f32::from_bits(0x3f7f_fff6) * b); // 0x1.ffffecp-1
    let near = j.mul_add(k, k);
    let g: u32 = if n <= 0.0 { 0x8200_0000 } else { 0 };
    let s1 = f32::from_bits(g.wrapping_add(0x7f00_0000));
    let s2 = f32::from_bits(e.wrapping_sub(g));
    let far = if n.abs() > 192.0 {
        s1 * s1
    } else {
        s2.mul_add(j, s2) * s1
    };
    if c {
        far
    } else {
        near
    }
}

/// `ggml_vec_swiglu_f32` (AVX2): `silu(g) * u` with `silu(x) = x / (1 + v_expf(-x))` in groups of
/// eight and `x / (1 + expf(-x))` for the tail.
pub fn swiglu(gate: &[f32], up: &[f32], out: &mut [f32], row: usize) {
    out.par_chunks_mut(row)
        .zip(gate.par_chunks(row).zip(up.par_chunks(row)))
        .for_each(|(o, (g, u))| swiglu_row(g, u, o));
}

dispatch!(fn swiglu_row(g: &[f32], u: &[f32], o: &mut [f32]) => swiglu_row_body);

#[inline(always)]
fn swiglu_row_body(g: &[f32], u: &[f32], o: &mut [f32]) {
    let n8 = o.len() / 8 * 8;
    for ((o, &x), &u) in o[..n8].iter_mut().zip(&g[..n8]).zip(&u[..n8]) {
        *o = x / (1.0 + v_expf(-x)) * u;
    }
    for ((o, &x), &u) in o[n8..].iter_mut().zip(&g[n8..]).zip(&u[n8..]) {
        *o = x / (1.0 + (-x).exp()) * u;
    }
}

/// `ggml_vec_soft_max_f32` (AVX2): `y = exp(x - max)` in place, returning the sum in double; groups
/// of eight use [`v_expf`] and a pairwise f32 lane sum, the tail libm `expf`.
pub fn exp_sum(x: &mut [f32], max: f32) -> f64 {
    let n8 = x.len() / 8 * 8;
    let mut sum = 0.0f64;
    for g in x[..n8].chunks_exact_mut(8) {
        for v in g.iter_mut() {
            *v = v_expf(*v - max);
        }
        let l = [g[0] + g[4], g[1] + g[5], g[2] + g[6], g[3] + g[7]];
        sum += ((l[0] + l[2]) + (l[1] + l[3])) as f64;
    }
    for v in &mut x[n8..] {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    sum
}

/// `ggml_soft_max` without mask or scale, row by row.
pub fn soft_max(x: &mut [f32], n_cols: usize) {
    x.par_chunks_mut(n_cols * ROWS_PER_TASK).for_each(|c| {
        for r in c.chunks_mut(n_cols) {
            let max = r.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let inv = (1.0 / exp_sum(r, max)) as f32;
            r.iter_mut().for_each(|v| *v *= inv);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v_expf_is_close_to_expf() {
        for i in -1740..1760 {
            let x = i as f32 * 0.05;
            let (a, b) = (v_expf(x), x.exp());
            assert!((a - b).abs() <= b * 4e-7, "{x}: {a} vs {b}");
        }
        assert_eq!(v_expf(f32::NEG_INFINITY), 0.0);
        assert_eq!(v_expf(0.0), 1.0);
    }
}
