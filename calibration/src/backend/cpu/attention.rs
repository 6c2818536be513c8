//! Causal attention over an F16 KV cache, rounded as ggml's CPU `flash_attn_ext` kernel rounds
//! (what llama-perplexity runs: `-fa auto` resolves to flash attention on the CPU backend).
//!
//! ggml picks one of two kernels per call. With at least [`Q_TILE`] query rows it runs the tiled
//! kernel: Q stays f32, K and V are widened from F16, scores are sequential FMA chains, and the
//! online softmax advances one 64-key tile at a time with ggml's vectorised `expf`. With fewer rows
//! it runs the one-row kernel: Q is rounded to F16, the softmax advances one key at a time with
//! libm `expf`, and the V accumulator is kept in F16.

use super::super::AttnShape;
use super::ops::exp_sum;
use half::f16;
use rayon::prelude::*;

/// `GGML_FA_TILE_Q`: query rows per tile; also the minimum batch for the tiled kernel.
pub const Q_TILE: usize = 64;
/// `GGML_FA_TILE_KV`: keys per tile.
const KV_TILE: usize = 64;

pub fn attention(q: &[f32], k: &[f16], v: &[f16], s: AttnShape, scale: f32, out: &mut [f32]) {
    let AttnShape {
        n_head,
        n_head_kv,
        head_dim: d,
        first_pos,
    } = s;
    let row = n_head * d;
    let n = q.len() / row;
    let tiled = n >= Q_TILE;
    let group = n_head / n_head_kv;
    out.par_chunks_mut(d)
        .zip(q.par_chunks(d))
        .enumerate()
        .for_each_init(
            || (vec![0.0f32; KV_TILE], vec![0.0f32; d], vec![f16::ZERO; d]),
            |(kq, acc, acc16), (idx, (o, qh))| {
                let (i, h) = (idx / n_head, idx % n_head);
                let kvh = h / group;
                let n_keys = first_pos + i + 1;
                let key = |j: usize| &k[(j * n_head_kv + kvh) * d..][..d];
                let val = |j: usize| &v[(j * n_head_kv + kvh) * d..][..d];
                if tiled {
                    tiled_row(qh, n_keys, key, val, scale, kq, acc, o);
                } else {
                    one_row(qh, n_keys, key, val, scale, acc16, o);
                }
            },
        );
}

/// `ggml_compute_forward_flash_attn_ext_tiled` for one query row.
#[allow(clippy::too_many_arguments)]
fn tiled_row<'a>(
    q: &[f32],
    n_keys: usize,
    key: impl Fn(usize) -> &'a [f16],
    val: impl Fn(usize) -> &'a [f16],
    scale: f32,
    kq: &mut [f32],
    acc: &mut [f32],
    out: &mut [f32],
) {
    acc.fill(0.0);
    let (mut m, mut s) = (f32::NEG_INFINITY, 0.0f32);
    for t0 in (0..n_keys).step_by(KV_TILE) {
        let nt = (n_keys - t0).min(KV_TILE);
        let mut tile_max = f32::NEG_INFINITY;
        for (tk, slot) in kq.iter_mut().enumerate() {
            *slot = if tk < nt {
                let kr = key(t0 + tk);
                let mut dot = 0.0f32;
                for (&a, &b) in q.iter().zip(kr) {
                    dot = a.mul_add(b.to_f32(), dot);
                }
                dot * scale
            } else {
                f32::NEG_INFINITY
            };
            tile_max = tile_max.max(*slot);
        }
        let m_new = m.max(tile_max);
        if m_new > m {
            let ms = (m - m_new).exp();
            acc.iter_mut().for_each(|a| *a *= ms);
            s *= ms;
        }
        m = m_new;
        let sum = exp_sum(kq, m);
        s = (s as f64 + sum) as f32;
        for (tk, &p) in kq[..nt].iter().enumerate() {
            for (a, &x) in acc.iter_mut().zip(val(t0 + tk)) {
                *a = p.mul_add(x.to_f32(), *a);
            }
        }
    }
    let inv = if s == 0.0 { 0.0 } else { 1.0 / s };
    for (o, &a) in out.iter_mut().zip(acc.iter()) {
        *o = a * inv;
    }
}

/// `ggml_compute_forward_flash_attn_ext_f16_one_chunk` for one query row with an F16 V cache.
fn one_row<'a>(
    q: &[f32],
    n_keys: usize,
    key: impl Fn(usize) -> &'a [f16],
    val: impl Fn(usize) -> &'a [f16],
    scale: f32,
    acc: &mut [f16],
    out: &mut [f32],
) {
    acc.fill(f16::ZERO);
    let (mut m, mut s) = (f32::NEG_INFINITY, 0.0f32);
    for j in 0..n_keys {
        // ggml_vec_dot_f16 on Q rounded to F16 (f32 products, double total).
        let dot: f64 = q
            .iter()
            .zip(key(j))
            .map(|(&a, &b)| (f16::from_f32(a).to_f32() * b.to_f32()) as f64)
            .sum();
        let x = (dot as f32) * scale;
        let (mut ms, mut vs) = (1.0f32, 1.0f32);
        if x > m {
            let m_old = m;
            m = x;
            ms = (m_old - m).exp();
            for a in acc.iter_mut() {
                *a = f16::from_f32(a.to_f32() * ms);
            }
        } else {
            vs = (x - m).exp();
        }
        for (a, &b) in acc.iter_mut().zip(val(j)) {
            *a = f16::from_f32(b.to_f32().mul_add(vs, a.to_f32()));
        }
        s = s * ms + vs;
    }
    let inv = if s == 0.0 { 0.0 } else { 1.0 / s };
    for (o, &a) in out.iter_mut().zip(acc.iter()) {
        *o = a.to_f32() * inv;
    }
}
