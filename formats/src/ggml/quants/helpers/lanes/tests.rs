//! The lane kernels against the scalar helpers, sub-block by sub-block: every scale, min,
//! weight sum and level must have the same bits. (The codecs built on them are compared with
//! the scalar codecs and with llama.cpp in `kquants::tests`.)

use super::avx2::{
    make_qkx_lanes, make_qx_lanes, QkxParams, QkxWeights, EXACT_TRIALS, FORCE_EXACT,
};
use super::{available, qkx_levels, qx_levels};
use crate::ggml::quants::helpers::oracle_check::adversarial_rows;
use crate::ggml::quants::helpers::{make_qkx2_quants, make_qkx3_quants, make_qx_quants};
use crate::oracle;

/// How the test derives the scalar weights (as the codecs do).
#[derive(Clone, Copy, Debug)]
enum W {
    RmsPlusAbs,
    Abs,
    Importance,
}

/// The `make_qkx_lanes` instances the codecs use, run under AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
unsafe fn qkx_lanes<const N: usize, const G: usize, const MAD: bool>(
    p: QkxParams,
    x: &[f32],
    weights: QkxWeights<'_>,
    out: &mut [Vec<f32>; 5],
) -> bool {
    let [scale, the_min, sw, level_iscale, level_min] = out;
    make_qkx_lanes::<N, G, MAD>(p, x, weights, scale, the_min, sw, level_iscale, level_min)
}

/// `make_qx_lanes` under AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn qx_lanes<const N: usize, const G: usize>(
    nmax: i32,
    x: &[f32],
    qw: Option<&[f32]>,
    scale: &mut [f32],
    level_iscale: &mut [Option<f32>],
) -> bool {
    make_qx_lanes::<N, G>(nmax, x, qw, scale, level_iscale)
}

/// One lane-parallel search of `8G` sub-blocks of `x` against the scalar one per sub-block.
fn check_qkx<const N: usize, const G: usize, const MAD: bool>(
    p: QkxParams,
    w: W,
    x: &[f32],
    qw: &[f32],
    sigma2: &[f32],
    what: &str,
) {
    let lanes = 8 * G;
    let mut out: [Vec<f32>; 5] = std::array::from_fn(|_| vec![0.0f32; lanes]);
    let weights = match w {
        W::RmsPlusAbs => QkxWeights::RmsPlusAbs,
        W::Abs => QkxWeights::Abs,
        W::Importance => QkxWeights::Importance { qw, sigma2 },
    };
    // SAFETY: the callers return early without AVX2.
    let done = unsafe { qkx_lanes::<N, G, MAD>(p, x, weights, &mut out) };
    let [scale, the_min, sw, level_iscale, level_min] = &out;
    let finite = x[..lanes * N].iter().all(|v| v.is_finite())
        && (!matches!(w, W::Importance) || qw[..lanes * N].iter().all(|v| v.is_finite()));
    assert_eq!(
        done, finite,
        "{what}: lane code taken on non-finite input or refused finite input"
    );
    if !done {
        return;
    }
    for c in 0..lanes {
        let xs = &x[c * N..(c + 1) * N];
        let mut ws = [0.0f32; N];
        match w {
            W::RmsPlusAbs => {
                let mut s = 0.0f32;
                for &v in xs {
                    s += v * v;
                }
                let av = (s / N as f32).sqrt();
                for (wi, &v) in ws.iter_mut().zip(xs) {
                    *wi = av + v.abs();
                }
            }
            W::Abs => {
                for (wi, &v) in ws.iter_mut().zip(xs) {
                    *wi = v.abs();
                }
            }
            W::Importance => {
                for ((wi, &v), &q) in ws.iter_mut().zip(xs).zip(&qw[c * N..]) {
                    *wi = q * (sigma2[c / 8] + v * v).sqrt();
                }
            }
        }
        let mut sum = 0.0f32;
        for &wi in &ws {
            sum += wi;
        }
        let (mut l, mut laux) = ([0u8; N], [0u8; N]);
        let (s, m) = if p.le_test {
            make_qkx3_quants(
                p.nmax,
                xs,
                Some(&ws),
                &mut l,
                &mut laux,
                p.rmin,
                p.rdelta,
                p.nstep,
                MAD,
            )
        } else {
            make_qkx2_quants(
                p.nmax, xs, &ws, &mut l, &mut laux, p.rmin, p.rdelta, p.nstep, MAD,
            )
        };
        let ctx = || format!("{what}: sub-block {c} {xs:?} weights {ws:?}");
        assert_eq!(
            scale[c].to_bits(),
            s.to_bits(),
            "scale {} vs {s}; {}",
            scale[c],
            ctx()
        );
        assert_eq!(
            the_min[c].to_bits(),
            m.to_bits(),
            "min {} vs {m}; {}",
            the_min[c],
            ctx()
        );
        let mut levels = [0xAAu8; N];
        qkx_levels(p.nmax, xs, level_iscale[c], level_min[c], &mut levels);
        assert_eq!(levels, l, "levels; {}", ctx());
        if matches!(w, W::Importance) {
            assert_eq!(sw[c].to_bits(), sum.to_bits(), "weight sum; {}", ctx());
        }
    }
}

/// Random and adversarial sub-blocks (and importance values) for `rounds` searches of
/// `lanes * n` values.
fn inputs(seed: u64, rounds: usize, len: usize) -> impl Iterator<Item = (Vec<f32>, Vec<f32>)> {
    let xs = adversarial_rows(seed, rounds, len, true);
    let mut rng = oracle::Rng::new(seed ^ 0x5555);
    let qws: Vec<Vec<f32>> = (0..rounds)
        .map(|r| {
            let mut q = crate::ggml::quants::helpers::oracle_check::adversarial_imatrix(
                seed * 1000 + r as u64,
                len,
                r % 16 == 5,
            );
            if r % 3 == 0 {
                // Ordinary positive importance values.
                q.iter_mut().for_each(|v| *v = rng.uniform() + 0.01);
            }
            q
        })
        .collect();
    xs.chunks_exact(len)
        .map(|c| c.to_vec())
        .zip(qws)
        .collect::<Vec<_>>()
        .into_iter()
}

/// Runs `f` with the lane code's cheaper rounding where its bound allows it, then with the
/// exact rounding everywhere; returns how many qkx trials took the exact rounding in the
/// first run (the bound failed).
fn both_roundings(f: impl Fn()) -> u64 {
    EXACT_TRIALS.with(|c| c.set(0));
    f();
    let exact = EXACT_TRIALS.with(|c| c.get());
    FORCE_EXACT.with(|c| c.set(true));
    f();
    FORCE_EXACT.with(|c| c.set(false));
    exact
}

fn sigma2_of(x: &[f32], factor: f32) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v * v;
    }
    factor * s / 256.0
}

#[test]
fn qkx_lanes_match_scalar_q4_k_and_q5_k() {
    if !available() {
        return;
    }
    let exact = both_roundings(|| {
        for (nmax, rmin, nstep) in [(15, -1.0, 20), (31, -0.5, 15)] {
            let p = QkxParams {
                nmax,
                rmin,
                rdelta: 0.1,
                nstep,
                le_test: false,
            };
            for (x, qw) in inputs(nmax as u64, 400, 512) {
                check_qkx::<32, 2, false>(p, W::RmsPlusAbs, &x, &qw, &[], "qkx2 G=2");
                check_qkx::<32, 1, false>(p, W::RmsPlusAbs, &x[256..], &qw, &[], "qkx2 G=1");
            }
            let p = QkxParams {
                nmax,
                rmin: -0.9,
                rdelta: 0.05,
                nstep: 36,
                le_test: true,
            };
            for (x, qw) in inputs(100 + nmax as u64, 400, 512) {
                let s = [sigma2_of(&x[..256], 2.0), sigma2_of(&x[256..], 2.0)];
                check_qkx::<32, 2, false>(p, W::Importance, &x, &qw, &s, "qkx3 G=2");
                check_qkx::<32, 1, false>(p, W::Importance, &x, &qw, &s[..1], "qkx3 G=1");
            }
        }
    });
    // Adversarial groups (huge and subnormal values side by side) defeat the bound.
    assert!(
        exact > 0,
        "the exact rounding of the trials was never needed"
    );
}

#[test]
fn qkx_lanes_match_scalar_q2_k() {
    if !available() {
        return;
    }
    both_roundings(|| {
        let p = QkxParams {
            nmax: 3,
            rmin: -0.5,
            rdelta: 0.1,
            nstep: 15,
            le_test: false,
        };
        for (x, qw) in inputs(7, 400, 256) {
            check_qkx::<16, 2, true>(p, W::Abs, &x, &qw, &[], "qkx2 mad");
        }
        let p = QkxParams {
            nmax: 3,
            rmin: -0.9,
            rdelta: 0.05,
            nstep: 36,
            le_test: true,
        };
        for (x, qw) in inputs(8, 400, 256) {
            let s = sigma2_of(&x, 1.0);
            check_qkx::<16, 2, false>(p, W::Importance, &x, &qw, &[s, s], "qkx3 nmax 3");
        }
    });
}

#[test]
fn qkx_lanes_handle_no_search_and_other_lengths() {
    if !available() {
        return;
    }
    // nstep 0 (no trials) and a squared-error search on groups of 16.
    both_roundings(|| {
        for (x, qw) in inputs(9, 100, 512) {
            let p = QkxParams {
                nmax: 15,
                rmin: -1.0,
                rdelta: 0.1,
                nstep: 0,
                le_test: false,
            };
            check_qkx::<32, 2, false>(p, W::RmsPlusAbs, &x, &qw, &[], "nstep 0");
            let p = QkxParams { nstep: 7, ..p };
            check_qkx::<16, 2, false>(p, W::Abs, &x, &qw, &[], "n 16 squared");
            check_qkx::<32, 1, true>(p, W::Abs, &x, &qw, &[], "n 32 mad");
        }
    });
}

#[test]
fn qx_lanes_match_scalar() {
    if !available() {
        return;
    }
    both_roundings(|| {
        for (x, qw) in inputs(11, 600, 256) {
            for use_qw in [false, true] {
                let w = if use_qw { Some(&qw[..]) } else { None };
                let mut scale = [0.0f32; 16];
                let mut level_iscale = [Some(f32::NAN); 16];
                // SAFETY: returned early without AVX2.
                let done = unsafe { qx_lanes::<16, 2>(32, &x, w, &mut scale, &mut level_iscale) };
                let finite = x.iter().all(|v| v.is_finite())
                    && (!use_qw || qw.iter().all(|v| v.is_finite()));
                assert_eq!(
                    done, finite,
                    "qx: lane code taken on non-finite input or refused finite"
                );
                if !done {
                    continue;
                }
                for c in 0..16 {
                    let xs = &x[c * 16..(c + 1) * 16];
                    let mut l = [0i8; 16];
                    let s = make_qx_quants(32, xs, &mut l, 1, w.map(|q| &q[c * 16..(c + 1) * 16]));
                    let ctx = || format!("qx qw={use_qw}: sub-block {c} {xs:?}");
                    assert_eq!(
                        scale[c].to_bits(),
                        s.to_bits(),
                        "scale {} vs {s}; {}",
                        scale[c],
                        ctx()
                    );
                    let mut levels = [0x55i8; 16];
                    qx_levels(32, xs, level_iscale[c], &mut levels);
                    assert_eq!(levels, l, "levels; {}", ctx());
                }
            }
        }
    });
}

#[test]
fn qkx_lanes_match_scalar_when_a_fitted_min_leaves_an_outlier_far_below() {
    if !available() {
        return;
    }
    // An element of (almost) no importance far below a cluster in [0, 1]: once a trial's fit moves
    // the min up to the cluster, the next trials' products iscale*(x - min) for the outlier
    // exceed 2^22, where nearest_int's bit trick gives values the cheaper rounding would
    // not; the bound check must send those trials to the exact rounding.
    let mut rng = oracle::Rng::new(31);
    let mut x = vec![0.0f32; 512];
    let mut qw = vec![1.0f32; 512];
    for round in 0..64 {
        for (c, (xs, ws)) in x
            .chunks_exact_mut(32)
            .zip(qw.chunks_exact_mut(32))
            .enumerate()
        {
            for (v, w) in xs.iter_mut().zip(ws.iter_mut()) {
                *v = rng.uniform();
                *w = 0.5 + rng.uniform();
            }
            let k = (round * 16 + c) as f32;
            xs[c % 32] = -(1e6 + k * 7.3e5);
            // Zero importance, or so little that the sums absorb the element while its
            // error term (and so its level) still counts.
            ws[c % 32] = [0.0, 1e-16, 1e-15, 1e-14, 1e-13, 1e-12, 1e-10, 1e-8][c % 8];
        }
        let p = QkxParams {
            nmax: 15,
            rmin: -0.9,
            rdelta: 0.05,
            nstep: 36,
            le_test: true,
        };
        let s = [sigma2_of(&x[..256], 2.0), sigma2_of(&x[256..], 2.0)];
        check_qkx::<32, 2, false>(p, W::Importance, &x, &qw, &s, "outlier qkx3");
        let p = QkxParams { nmax: 31, ..p };
        check_qkx::<32, 2, false>(p, W::Importance, &x, &qw, &s, "outlier qkx3 nmax 31");
    }
}
