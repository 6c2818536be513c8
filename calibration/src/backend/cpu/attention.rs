//! Causal attention over an F16 KV cache, rounded as ggml's CPU `flash_attn_ext` kernel rounds
//! (what llama-perplexity runs: `-fa auto` resolves to flash attention on the CPU backend).
//!
//! ggml picks one of two kernels per call. With at least [`Q_TILE`] query rows it runs the tiled
//! kernel: Q stays f32, K and V are widened from F16, scores are sequential FMA chains, and the
//! online softmax advances one 64-key tile at a time with ggml's vectorised `expf`. With fewer rows
//! it runs the one-row kernel: Q is rounded to F16, the softmax advances one key at a time with
//! libm `expf`, and the V accumulator is kept in F16.
//!
//! Work is split into tasks of [`Q_TILE`] query rows (all heads) of one job; a task widens each
//! 64-key tile of K (transposed) and V once per KV head and reuses it for every query row and
//! every query head of the group. Each query's arithmetic is the same sequence of operations
//! whatever the split, so results do not depend on the thread count or on the other jobs.
//!
//! Sliding-window layers mask the keys before each query's window; both kernels skip masked keys
//! (the tiled kernel skips a tile a query row sees no key of). Soft-capping divides the scale by
//! the cap and applies `cap * tanhf` to each score before the mask, as both kernels do.

use super::super::{AttnJob, AttnShape};
use super::ops::v_expf;
use super::simd::dispatch;
use super::tinyblas;
use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

/// `GGML_FA_TILE_Q`: query rows per tile; also the minimum batch for the tiled kernel.
pub const Q_TILE: usize = 64;
/// `GGML_FA_TILE_KV`: keys per tile.
const KV_TILE: usize = 64;
/// Query rows per parallel task of the one-row kernel.
const ONE_ROW_TASK: usize = 4;

/// Query rows `row0..` of one job (all heads).
struct Task<'a> {
    q: &'a [f32],
    k: &'a [f16],
    v: &'a [f16],
    s: AttnShape,
    row0: usize,
    tiled: bool,
    out: &'a mut [f32],
}

/// Per-thread buffers.
#[derive(Default)]
struct Scratch {
    /// K tile, transposed: `head_dim × KV_TILE`.
    kt: Vec<f32>,
    /// V tile: `KV_TILE × head_dim`.
    vt: Vec<f32>,
    /// One widened K row.
    krow: Vec<f32>,
    /// Per query of the task (row × head of the group): accumulator, running max and sum.
    acc: Vec<f32>,
    m: Vec<f32>,
    s: Vec<f32>,
    acc16: Vec<f16>,
}

pub fn attention(jobs: &mut [AttnJob<'_>], scale: f32) {
    let mut tasks = Vec::new();
    for job in jobs.iter_mut() {
        let s = job.shape;
        let row = s.n_head * s.head_dim;
        if row == 0 || s.n_head_kv == 0 {
            continue;
        }
        let n = job.q.len() / row;
        let tiled = n >= Q_TILE;
        let per = if tiled { Q_TILE } else { ONE_ROW_TASK };
        for (t, (out, q)) in job
            .out
            .chunks_mut(per * row)
            .zip(job.q.chunks(per * row))
            .enumerate()
        {
            tasks.push(Task {
                q,
                k: job.k,
                v: job.v,
                s,
                row0: t * per,
                tiled,
                out,
            });
        }
    }
    tasks
        .into_par_iter()
        .for_each_init(Scratch::default, |scr, mut t| {
            if t.tiled {
                tiled_task(&mut t, scale, scr);
            } else {
                one_row_task(&mut t, scale, scr);
            }
        });
}

dispatch!(fn tiled_task(t: &mut Task<'_>, scale: f32, scr: &mut Scratch) => tiled_body);

/// `ggml_compute_forward_flash_attn_ext_tiled` for the query rows of one task.
#[inline(always)]
fn tiled_body(t: &mut Task<'_>, scale: f32, scr: &mut Scratch) {
    let AttnShape {
        n_head,
        n_head_kv,
        head_dim: d,
        first_pos,
        window,
        softcap,
    } = t.s;
    let group = n_head / n_head_kv;
    let row = n_head * d;
    let scale = if softcap != 0.0 {
        scale / softcap
    } else {
        scale
    };
    let nr = t.q.len() / row;
    let p0 = first_pos + t.row0;
    let keys_max = p0 + nr;
    let nq = nr * group;
    scr.kt.resize(d * KV_TILE, 0.0);
    scr.vt.resize(KV_TILE * d, 0.0);
    scr.krow.resize(d, 0.0);
    scr.acc.resize(nq * d, 0.0);
    scr.m.resize(nq, 0.0);
    scr.s.resize(nq, 0.0);
    let mut kq = [0.0f32; KV_TILE];
    for g in 0..n_head_kv {
        scr.acc.fill(0.0);
        scr.m.fill(f32::NEG_INFINITY);
        scr.s.fill(0.0);
        // Tiles before the first row's window hold no visible key for any row of the task.
        let t_start = first_key(p0, window) / KV_TILE * KV_TILE;
        for t0 in (t_start..keys_max).step_by(KV_TILE) {
            let nt_max = (keys_max - t0).min(KV_TILE);
            for tk in 0..nt_max {
                let at = ((t0 + tk) * n_head_kv + g) * d;
                t.k[at..at + d].convert_to_f32_slice(&mut scr.krow);
                for (i, &x) in scr.krow.iter().enumerate() {
                    scr.kt[i * KV_TILE + tk] = x;
                }
                t.v[at..at + d].convert_to_f32_slice(&mut scr.vt[tk * d..(tk + 1) * d]);
            }
            for i in 0..nr {
                let n_keys = p0 + i + 1;
                let lo = first_key(p0 + i, window);
                if n_keys <= t0 || lo >= t0 + KV_TILE {
                    continue;
                }
                let nt = (n_keys - t0).min(KV_TILE);
                let n_lo = lo.saturating_sub(t0);
                for hh in 0..group {
                    let qh = &t.q[i * row + (g * group + hh) * d..][..d];
                    let qi = i * group + hh;
                    scores(qh, &scr.kt, n_lo..nt, scale, softcap, &mut kq);
                    let tile_max = kq.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                    let acc = &mut scr.acc[qi * d..(qi + 1) * d];
                    let (mut m, mut s) = (scr.m[qi], scr.s[qi]);
                    let m_new = m.max(tile_max);
                    if m_new > m {
                        let ms = (m - m_new).exp();
                        acc.iter_mut().for_each(|a| *a *= ms);
                        s *= ms;
                    }
                    m = m_new;
                    let sum = exp_sum_tile(&mut kq, m);
                    s = (s as f64 + sum) as f32;
                    for (tk, &p) in kq[..nt].iter().enumerate() {
                        let vr = &scr.vt[tk * d..(tk + 1) * d];
                        for (a, &x) in acc.iter_mut().zip(vr) {
                            *a = p.mul_add(x, *a);
                        }
                    }
                    scr.m[qi] = m;
                    scr.s[qi] = s;
                }
            }
        }
        for i in 0..nr {
            for hh in 0..group {
                let qi = i * group + hh;
                let s = scr.s[qi];
                let inv = if s == 0.0 { 0.0 } else { 1.0 / s };
                let o = &mut t.out[i * row + (g * group + hh) * d..][..d];
                for (o, &a) in o.iter_mut().zip(&scr.acc[qi * d..(qi + 1) * d]) {
                    *o = a * inv;
                }
            }
        }
    }
}

/// The first key query position `pos` sees under a sliding window (0 without one).
fn first_key(pos: usize, window: usize) -> usize {
    if window == 0 {
        0
    } else {
        (pos + 1).saturating_sub(window)
    }
}

/// Scores of query `q` against the transposed K tile `kt`: a sequential FMA chain per key over
/// the head dimension, times `scale`, soft-capped (`softcap * tanh`) when `softcap` is not 0;
/// keys outside `visible` are set to −∞.
#[inline(always)]
fn scores(
    q: &[f32],
    kt: &[f32],
    visible: std::ops::Range<usize>,
    scale: f32,
    softcap: f32,
    kq: &mut [f32; KV_TILE],
) {
    *kq = [0.0; KV_TILE];
    for (&qv, kr) in q.iter().zip(kt.chunks_exact(KV_TILE)) {
        let kr: &[f32; KV_TILE] = kr.try_into().expect("tile row");
        for (a, &k) in kq.iter_mut().zip(kr) {
            *a = qv.mul_add(k, *a);
        }
    }
    for (j, a) in kq.iter_mut().enumerate() {
        *a = if !visible.contains(&j) {
            f32::NEG_INFINITY
        } else if softcap != 0.0 {
            (*a * scale).tanh() * softcap
        } else {
            *a * scale
        };
    }
}

/// `ggml_vec_soft_max_f32` on one full tile: `y = v_expf(x - max)`, then per group of eight a
/// pairwise f32 lane sum added in double.
#[inline(always)]
fn exp_sum_tile(x: &mut [f32; KV_TILE], max: f32) -> f64 {
    for v in x.iter_mut() {
        *v = v_expf(*v - max);
    }
    let mut sum = 0.0f64;
    for g in x.chunks_exact(8) {
        let l = [g[0] + g[4], g[1] + g[5], g[2] + g[6], g[3] + g[7]];
        sum += ((l[0] + l[2]) + (l[1] + l[3])) as f64;
    }
    sum
}

dispatch!(fn one_row_task(t: &mut Task<'_>, scale: f32, scr: &mut Scratch) => one_row_body);

/// The one-row kernel for each row and head of a task.
#[inline(always)]
fn one_row_body(t: &mut Task<'_>, scale: f32, scr: &mut Scratch) {
    let AttnShape {
        n_head,
        n_head_kv,
        head_dim: d,
        first_pos,
        window,
        softcap,
    } = t.s;
    let group = n_head / n_head_kv;
    let scale = if softcap != 0.0 {
        scale / softcap
    } else {
        scale
    };
    scr.acc16.resize(d, f16::ZERO);
    scr.acc.resize(2 * d, 0.0);
    for (idx, (o, qh)) in t.out.chunks_mut(d).zip(t.q.chunks(d)).enumerate() {
        let (i, h) = (t.row0 + idx / n_head, idx % n_head);
        let kvh = h / group;
        let keys = first_key(first_pos + i, window)..first_pos + i + 1;
        let key = |j: usize| &t.k[(j * n_head_kv + kvh) * d..][..d];
        let val = |j: usize| &t.v[(j * n_head_kv + kvh) * d..][..d];
        one_row(
            qh,
            keys,
            key,
            val,
            (scale, softcap),
            (&mut scr.acc16, &mut scr.acc),
            o,
        );
    }
}

/// `ggml_compute_forward_flash_attn_ext_f16_one_chunk` for one query row with an F16 V cache,
/// over the visible keys (masked keys are skipped); `(scale, softcap)` as the kernel holds them
/// (`scale` already divided by a non-zero `softcap`).
#[inline(always)]
fn one_row<'a>(
    q: &[f32],
    keys: std::ops::Range<usize>,
    key: impl Fn(usize) -> &'a [f16],
    val: impl Fn(usize) -> &'a [f16],
    (scale, softcap): (f32, f32),
    (acc, bufs): (&mut [f16], &mut [f32]),
    out: &mut [f32],
) {
    let d = q.len();
    let (acc32, row) = bufs[..2 * d].split_at_mut(d);
    let mut qk = [0.0f32; 2 * 256];
    let mut heap = Vec::new();
    let (q16, krow) = if 2 * d <= qk.len() {
        qk[..2 * d].split_at_mut(d)
    } else {
        heap.resize(2 * d, 0.0f32);
        heap.split_at_mut(d)
    };
    for (o, &v) in q16.iter_mut().zip(q) {
        *o = f16::from_f32(v).to_f32();
    }
    // The F16 accumulator, kept as its f32 values in `acc32`; every update is rounded to F16
    // (slice conversions, F16C when present) as ggml_vec_scale_f16 / ggml_vec_mad_f16 store it.
    acc32.fill(0.0);
    let (mut m, mut s) = (f32::NEG_INFINITY, 0.0f32);
    for j in keys {
        // ggml_vec_dot_f16 on Q rounded to F16.
        key(j).convert_to_f32_slice(krow);
        let dot = tinyblas::vec_dot_f16_total(q16, krow);
        let mut x = (dot as f32) * scale;
        if softcap != 0.0 {
            x = softcap * x.tanh();
        }
        let (mut ms, mut vs) = (1.0f32, 1.0f32);
        if x > m {
            let m_old = m;
            m = x;
            ms = (m_old - m).exp();
            acc32.iter_mut().for_each(|a| *a *= ms);
            acc.convert_from_f32_slice(acc32);
            acc.convert_to_f32_slice(acc32);
        } else {
            vs = (x - m).exp();
        }
        val(j).convert_to_f32_slice(row);
        for (a, &b) in acc32.iter_mut().zip(row.iter()) {
            *a = b.mul_add(vs, *a);
        }
        acc.convert_from_f32_slice(acc32);
        acc.convert_to_f32_slice(acc32);
        // GCC contracts `S = S*ms + vs` into one fused multiply-add.
        s = s.mul_add(ms, vs);
    }
    let inv = if s == 0.0 { 0.0 } else { 1.0 / s };
    for (o, &a) in out.iter_mut().zip(acc32.iter()) {
        *o = a * inv;
    }
}
