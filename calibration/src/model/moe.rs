//! The feed-forward blocks: dense gated FFN (`build_ffn`: SILU or GELU with a parallel gate, or
//! phi3's gate and up fused in one `ffn_up`) and softmax-gated experts (`build_moe_ffn`: softmax
//! gating, top-k, weights normalised by their sum; Mixtral and Qwen 3 MoE).

use super::arch::Activation;
use super::error::ModelError;
use super::observer::ActivationObserver;
use super::transformer::{matmul_sets, observe, Layer, Model};
use crate::backend::{Backend, Matrix};

/// Reused buffers of the feed-forward blocks.
#[derive(Default)]
pub(super) struct FfnScratch {
    gate: Vec<f32>,
    up: Vec<f32>,
    fused: Vec<f32>,
    act: Vec<f32>,
    xe: Vec<f32>,
    ye: Vec<f32>,
    probs: Vec<f32>,
    tmp: (Vec<f32>, Vec<f32>),
}

/// What a feed-forward block needs from the layer walk.
pub(super) struct FfnCtx<'a, B: Backend> {
    pub model: &'a Model<B>,
    pub layer: &'a Layer,
    /// The rows of each micro-batch (see [`matmul_sets`]).
    pub ubs: &'a [Vec<usize>],
}

/// `down(act(gate(x)) * up(x))` for the rows of `x`, into `out`; with gate and up fused in
/// `ffn_up` (phi3), one product whose first `n_ff` columns are the gate.
pub(super) fn dense_ffn<B: Backend>(
    c: &FfnCtx<'_, B>,
    x: &[f32],
    mats: &mut [B::Matrix],
    s: &mut FfnScratch,
    observer: &mut Option<&mut dyn ActivationObserver>,
    out: &mut [f32],
) -> Result<(), ModelError> {
    let be = c.model.backend();
    let hp = c.model.hparams();
    let (ne, ff) = (hp.n_embd, hp.n_ff);
    let n = x.len() / ne;
    s.gate.resize(n * ff, 0.0);
    s.up.resize(n * ff, 0.0);
    s.act.resize(n * ff, 0.0);
    let [mg, mu, md] = mats else {
        unreachable!("three matrices")
    };
    c.model.load(&c.layer.up, mu)?;
    observe(observer, &c.layer.up, None, x, ne, c.ubs);
    match &c.layer.gate {
        Some(gate) => {
            matmul_sets(be, mu, 0, x, c.ubs, &mut s.up, &mut s.tmp);
            c.model.load(gate, mg)?;
            observe(observer, gate, None, x, ne, c.ubs);
            matmul_sets(be, mg, 0, x, c.ubs, &mut s.gate, &mut s.tmp);
        }
        None => {
            s.fused.resize(n * 2 * ff, 0.0);
            matmul_sets(be, mu, 0, x, c.ubs, &mut s.fused, &mut s.tmp);
            for (r, row) in s.fused.chunks_exact(2 * ff).enumerate() {
                s.gate[r * ff..(r + 1) * ff].copy_from_slice(&row[..ff]);
                s.up[r * ff..(r + 1) * ff].copy_from_slice(&row[ff..]);
            }
        }
    }
    match hp.arch.activation() {
        Activation::SwiGlu => be.swiglu(&s.gate, &s.up, ff, &mut s.act),
        Activation::GeGlu => be.geglu(&s.gate, &s.up, ff, &mut s.act),
    }
    c.model.load(&c.layer.down, md)?;
    observe(observer, &c.layer.down, None, &s.act, ff, c.ubs);
    matmul_sets(be, md, 0, &s.act, c.ubs, out, &mut s.tmp);
    Ok(())
}

/// Softmax-gated experts (Mixtral, Qwen 3 MoE) for the rows of `x`, into `out`.
pub(super) fn moe_ffn<B: Backend>(
    c: &FfnCtx<'_, B>,
    x: &[f32],
    mats: &mut [B::Matrix],
    s: &mut FfnScratch,
    observer: &mut Option<&mut dyn ActivationObserver>,
    out: &mut [f32],
) -> Result<(), ModelError> {
    let be = c.model.backend();
    let hp = c.model.hparams();
    let (ne, ff) = (hp.n_embd, hp.n_ff_exp);
    let n = x.len() / ne;
    let (n_exp, k) = (hp.n_expert, hp.n_expert_used);
    let router = c.layer.router.as_deref().unwrap_or_default();
    let [mg, mu, md] = mats else {
        unreachable!("three matrices")
    };

    // Gating: softmax over the router logits, top-k, weights divided by their (clamped) sum.
    c.model.load(router, mg)?;
    observe(observer, router, None, x, ne, c.ubs);
    s.probs.resize(n * n_exp, 0.0);
    matmul_sets(be, mg, 0, x, c.ubs, &mut s.probs, &mut s.tmp);
    be.soft_max(&mut s.probs, n_exp);
    let mut selected = vec![0usize; n * k];
    let mut weights = vec![0.0f32; n * k];
    let mut order: Vec<usize> = Vec::with_capacity(n_exp);
    for r in 0..n {
        let p = &s.probs[r * n_exp..(r + 1) * n_exp];
        order.clear();
        order.extend(0..n_exp);
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        let sel = &mut selected[r * k..(r + 1) * k];
        sel.copy_from_slice(&order[..k]);
        let w = &mut weights[r * k..(r + 1) * k];
        for (wi, &e) in w.iter_mut().zip(sel.iter()) {
            *wi = p[e];
        }
        let sum = w.iter().fold(0.0f32, |a, &b| a + b).max(6.103_515_6e-5);
        w.iter_mut().for_each(|v| *v /= sum);
    }

    // Per expert: the rows routed to it, in position order, through gate/up/down.
    let gate = c.layer.gate.as_deref().unwrap_or_default();
    c.model.load(gate, mg)?;
    c.model.load(&c.layer.up, mu)?;
    c.model.load(&c.layer.down, md)?;
    if mg.n_mat() != n_exp || mu.n_mat() != n_exp || md.n_mat() != n_exp {
        return Err(ModelError::Request(format!(
            "layer experts do not number {n_exp}"
        )));
    }
    // expert outputs per (row, slot), weighted
    let mut y = vec![0.0f32; n * k * ne];
    for e in 0..n_exp {
        let routed: Vec<(usize, usize)> = (0..n)
            .flat_map(|r| (0..k).map(move |j| (r, j)))
            .filter(|&(r, j)| selected[r * k + j] == e)
            .collect();
        if routed.is_empty() {
            continue;
        }
        let m = routed.len();
        s.xe.resize(m * ne, 0.0);
        for (i, &(r, _)) in routed.iter().enumerate() {
            s.xe[i * ne..(i + 1) * ne].copy_from_slice(&x[r * ne..(r + 1) * ne]);
        }
        // Each micro-batch's rows routed to this expert form one product, as in llama.cpp.
        let sets = routed_sets(&routed, c.ubs, n);
        // llama-imatrix sees, per micro-batch, the rows routed to this expert, slot by slot.
        let obs_sets: Vec<Vec<usize>> = sets
            .iter()
            .map(|set| {
                let mut v = set.clone();
                v.sort_by_key(|&i| (routed[i].1, routed[i].0));
                v
            })
            .collect();
        observe(observer, &c.layer.up, Some(e), &s.xe, ne, &obs_sets);
        observe(observer, gate, Some(e), &s.xe, ne, &obs_sets);
        s.gate.resize(m * ff, 0.0);
        s.up.resize(m * ff, 0.0);
        s.act.resize(m * ff, 0.0);
        matmul_sets(be, mu, e, &s.xe, &sets, &mut s.up, &mut s.tmp);
        matmul_sets(be, mg, e, &s.xe, &sets, &mut s.gate, &mut s.tmp);
        be.swiglu(&s.gate, &s.up, ff, &mut s.act);
        observe(observer, &c.layer.down, Some(e), &s.act, ff, &obs_sets);
        s.ye.resize(m * ne, 0.0);
        matmul_sets(be, md, e, &s.act, &sets, &mut s.ye, &mut s.tmp);
        for (i, &(r, j)) in routed.iter().enumerate() {
            let w = weights[r * k + j];
            let dst = &mut y[(r * k + j) * ne..(r * k + j + 1) * ne];
            for (d, &v) in dst.iter_mut().zip(&s.ye[i * ne..(i + 1) * ne]) {
                *d = v * w;
            }
        }
    }
    // Aggregate the slots in order: ((y0 + y1) + y2) ...
    for r in 0..n {
        let o = &mut out[r * ne..(r + 1) * ne];
        o.copy_from_slice(&y[r * k * ne..(r * k + 1) * ne]);
        for j in 1..k {
            for (a, &b) in o.iter_mut().zip(&y[(r * k + j) * ne..(r * k + j + 1) * ne]) {
                *a += b;
            }
        }
    }
    Ok(())
}

/// The positions in `routed` (rows routed to one expert, in row order) of each micro-batch's
/// rows, micro-batch by micro-batch (empty ones dropped).
fn routed_sets(routed: &[(usize, usize)], ubs: &[Vec<usize>], n_rows: usize) -> Vec<Vec<usize>> {
    let mut ub_of = vec![usize::MAX; n_rows];
    for (u, rows) in ubs.iter().enumerate() {
        for &r in rows {
            ub_of[r] = u;
        }
    }
    let mut sets = vec![Vec::new(); ubs.len()];
    for (i, &(r, _)) in routed.iter().enumerate() {
        if let Some(set) = sets.get_mut(ub_of[r]) {
            set.push(i);
        }
    }
    sets.retain(|s| !s.is_empty());
    sets
}
