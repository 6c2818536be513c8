//! The shared core of llama.cpp's `quantize_row_iq4_nl_impl`: nearest-level search in the
//! non-linear IQ4 table and the per-32-weight scale search, as `quantize_iq4_nl` and
//! `quantize_iq4_xs` call it (`ntry = 7`).

use super::tables::KVALUES_IQ4NL;
use crate::ggml::quants::helpers::GROUP_MAX_EPS;

/// Weights per scale-searched group.
pub(super) const GROUP: usize = 32;

/// How many scales on each side of the initial one the search tries (`ntry`).
const NTRY: i32 = 7;

/// For each pair of adjacent levels `k`, `k + 1`: the smallest f32 for which `best_index_int8`
/// picks the upper one.
///
/// Between two levels `a < b` the C picks `b` unless `x - a < b - x` in f32 arithmetic. Both
/// differences are monotone in `x` (rounding is monotone), so that choice switches exactly once,
/// at this threshold, within an ulp or two of `(a + b) / 2`. The index the C's binary search
/// returns for any non-NaN `x` is therefore the number of thresholds at or below `x`, which
/// the compiler can evaluate for many weights at once.
const THRESHOLDS: [f32; 15] = thresholds();

/// Whether `best_index_int8` prefers level `k + 1` over level `k` for the finite `x`: the C
/// takes the lower level when `x - a < b - x`.
const fn picks_upper(x: f32, k: usize) -> bool {
    let a = KVALUES_IQ4NL[k] as f32;
    let b = KVALUES_IQ4NL[k + 1] as f32;
    x - a >= b - x
}

/// The next f32 above the finite `x`.
const fn next_up(x: f32) -> f32 {
    let bits = x.to_bits();
    if bits & 0x7fff_ffff == 0 {
        f32::from_bits(1)
    } else if bits >> 31 == 0 {
        f32::from_bits(bits + 1)
    } else {
        f32::from_bits(bits - 1)
    }
}

/// The next f32 below the finite `x`.
const fn next_down(x: f32) -> f32 {
    -next_up(-x)
}

const fn thresholds() -> [f32; 15] {
    let mut out = [0.0f32; 15];
    let mut k = 0;
    while k < 15 {
        // The exact midpoint: the levels are small integers.
        let mut t = (KVALUES_IQ4NL[k] as f32 + KVALUES_IQ4NL[k + 1] as f32) * 0.5;
        while picks_upper(next_down(t), k) {
            t = next_down(t);
        }
        while !picks_upper(t, k) {
            t = next_up(t);
        }
        out[k] = t;
        k += 1;
    }
    out
}

/// The index of the IQ4 level nearest to `x`, lower index on ties, exactly as
/// `best_index_int8(16, kvalues_iq4nl, x)` returns it (NaN gives the top level, as there).
#[inline]
pub(super) fn best_index(x: f32) -> u8 {
    let mut n = 0u8;
    for &t in &THRESHOLDS {
        n += u8::from(x >= t);
    }
    if x.is_nan() {
        15
    } else {
        n
    }
}

/// `sigma2` of `quantize_row_iq4_nl_impl`: twice the mean square of the super-block.
#[inline]
pub(super) fn sigma2(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v * v;
    }
    s * (2.0 / x.len() as f32)
}

/// The importance weights of one group: `qw·sqrt(sigma2 + x²)` with an imatrix, else `x²`.
#[inline]
pub(super) fn group_weights(x: &[f32], qw: Option<&[f32]>, sigma2: f32) -> [f32; GROUP] {
    let mut w = [0.0f32; GROUP];
    match qw {
        Some(qw) => {
            for ((w, &x), &q) in w.iter_mut().zip(x).zip(qw) {
                *w = q * (sigma2 + x * x).sqrt();
            }
        }
        None => {
            for (w, &x) in w.iter_mut().zip(x) {
                *w = x * x;
            }
        }
    }
    w
}

/// `kvalues_iq4nl[best_index(x)]` as f32, computed without a table lookup: the lowest level
/// plus the steps to every level whose threshold `x` reaches.
#[inline]
pub(super) fn level(x: f32) -> f32 {
    let mut q = i32::from(KVALUES_IQ4NL[0]);
    for (k, &t) in THRESHOLDS.iter().enumerate() {
        let step = i32::from(KVALUES_IQ4NL[k + 1] - KVALUES_IQ4NL[k]);
        q += if x >= t { step } else { 0 };
    }
    if x.is_nan() {
        f32::from(KVALUES_IQ4NL[15])
    } else {
        q as f32
    }
}

/// `Σ w·q·x` and `Σ w·q²` over a group quantized with inverse scale `id`, summed in order.
#[inline]
fn sums(x: &[f32], w: &[f32; GROUP], id: f32) -> (f32, f32) {
    let mut q = [0.0f32; GROUP];
    for (q, &x) in q.iter_mut().zip(x) {
        *q = level(id * x);
    }
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for ((&x, &w), &q) in x.iter().zip(w).zip(&q) {
        sumqx += w * q * x;
        sumq2 += w * q * q;
    }
    (sumqx, sumq2)
}

/// The scale of one 32-weight group that best fits `x` under weights `w`, trying `2·ntry + 1`
/// inverse scales around `values[0]/max`; 0 for a group whose magnitudes are all below
/// `GROUP_MAX_EPS`.
///
/// The levels the C writes during this search are always overwritten by its final pass, so
/// only the scale is returned.
pub(super) fn group_scale(x: &[f32], w: &[f32; GROUP]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        return 0.0;
    }
    let v0 = KVALUES_IQ4NL[0];
    let d = -max / f32::from(v0);
    let (sumqx, sumq2) = sums(x, w, 1.0 / d);
    let mut d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
    let mut best = d * sumqx;
    for itry in -NTRY..=NTRY {
        let id = (itry + i32::from(v0)) as f32 / max;
        let (sumqx, sumq2) = sums(x, w, id);
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    d
}

/// Packs 32 levels: element `j` in the low nibble of byte `j`, element `j + 16` in the high one.
#[inline]
pub(super) fn pack(l: &[u8; GROUP], q4: &mut [u8]) {
    for (j, q) in q4[..GROUP / 2].iter_mut().enumerate() {
        *q = l[j] | (l[j + GROUP / 2] << 4);
    }
}
