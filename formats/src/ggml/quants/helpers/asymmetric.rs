//! Asymmetric (scale and min) group quantizers: `make_qkx2_quants` and `make_qkx3_quants`.

use super::{nearest_int, MAX_GROUP};

/// The best trial so far of [`make_qkx_quants`]'s search.
struct QkxBest<'a> {
    levels: &'a mut [u8],
    error: f32,
    scale: f32,
    min: f32,
}

/// Asymmetric (scale and min) quantization to `0..=nmax` with a weighted scale search.
///
/// Shared body of `make_qkx2_quants` and `make_qkx3_quants` for groups of `N` elements (`N` =
/// 0: any length): `weights` are the element weights (`x²` when `None`), `MAD` selects absolute
/// instead of squared error, and `le_test` selects the latter's `max <= min` degenerate test
/// instead of `max == min`.
///
/// Two shortcuts leave the result bit-identical to the C: a search step whose levels equal the
/// previous step's has the same sums and error, so it cannot beat the best (the C would reject
/// it too); and when no weight is negative, the error sum never decreases as terms are added,
/// so it stops as soon as it reaches the best error.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn make_qkx_quants<const N: usize, const MAD: bool>(
    nmax: i32,
    x: &[f32],
    weights: Option<&[f32]>,
    l: &mut [u8],
    laux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    le_test: bool,
) -> (f32, f32) {
    let n = if N == 0 { x.len() } else { N };
    if n == 0 {
        return (0.0, 0.0);
    }
    let x = &x[..n];
    let l = &mut l[..n];
    let laux = &mut laux[..n];
    // The weights and a second level buffer, on the stack for every group size ggml uses.
    let mut stack = ([0.0f32; MAX_GROUP], [0u8; MAX_GROUP]);
    let mut heap;
    let (w, lb): (&mut [f32], &mut [u8]) = if n <= MAX_GROUP {
        (&mut stack.0[..n], &mut stack.1[..n])
    } else {
        heap = (vec![0.0f32; n], vec![0u8; n]);
        (&mut heap.0[..], &mut heap.1[..])
    };
    match weights {
        Some(given) => w.copy_from_slice(&given[..n]),
        None => {
            for (wi, &xi) in w.iter_mut().zip(x) {
                *wi = xi * xi;
            }
        }
    }
    let w = &*w;
    let weight = |i: usize, _: f32| w[i];
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weight(0, x[0]);
    let mut sum_x = sum_w * x[0];
    let nonneg = |w: f32| w >= 0.0 || w.is_nan();
    let mut monotone = nonneg(sum_w);
    for (i, &xi) in x.iter().enumerate().skip(1) {
        if xi < min {
            min = xi;
        }
        if xi > max {
            max = xi;
        }
        let w = weight(i, xi);
        monotone &= nonneg(w);
        sum_w += w;
        sum_x += w * xi;
    }
    let xmin = min;
    if min > 0.0 {
        min = 0.0;
    }
    let degenerate = if le_test { max <= min } else { max == min };
    if degenerate {
        l.fill(0);
        return (0.0, -min);
    }
    let err = |diff: f32| if MAD { diff.abs() } else { diff * diff };
    let nmaxf = nmax as f32;
    let iscale = nmaxf / (max - min);
    let scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for (i, (li, &xi)) in l.iter_mut().zip(x).enumerate() {
        let q = nearest_int(iscale * (xi - min));
        *li = nmax.min(q).max(0) as u8;
        best_error += weight(i, xi) * err(scale * *li as f32 + min - xi);
    }
    if nstep < 1 {
        return (scale, -min);
    }
    let no_nan = !x.iter().any(|v| v.is_nan());
    // Levels of trial `is` for the given `min` into `out`, and whether they differ from
    // `before`. The products iscale*(x - min) lie between those of the smallest and the
    // largest element (subtraction and multiplication round monotonically); when both are
    // below 4194303 in magnitude, clamping to the integer bounds before rounding (cheaper)
    // gives the C's level. Otherwise (NaN, infinities, or a fitted `min` far above an
    // element of little weight, where nearest_int's bit trick gives meaningless values that
    // the C then clamps) the C's order is kept.
    let small = |v: f32| v.abs() < 4194303.0;
    let trial = |is: i32, min: f32, out: &mut [u8], before: &[u8]| -> bool {
        let iscale = (rmin + rdelta * is as f32 + nmaxf) / (max - min);
        let mut changed = false;
        if no_nan && small(iscale * (xmin - min)) && small(iscale * (max - min)) {
            for ((o, &b), &xi) in out.iter_mut().zip(before).zip(x) {
                let v = iscale * (xi - min);
                let v = if nmaxf < v { nmaxf } else { v };
                let v = if v < 0.0 { 0.0 } else { v };
                let q = nearest_int(v) as u8;
                changed |= q != b;
                *o = q;
            }
        } else {
            for ((o, &b), &xi) in out.iter_mut().zip(before).zip(x) {
                let q = nmax.min(nearest_int(iscale * (xi - min))).max(0) as u8;
                changed |= q != b;
                *o = q;
            }
        }
        changed
    };
    let sums = |lv: &[u8]| {
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for ((&v, &wi), &xi) in lv.iter().zip(w).zip(x) {
            let q = v as f32;
            let wq = wi * q;
            sum_l += wq;
            sum_l2 += wq * q;
            sum_xl += wq * xi;
        }
        (sum_l, sum_l2, sum_xl)
    };
    // The C's evaluation of a trial with levels `lv` and sums (sum_l, sum_l2, sum_xl):
    // returns whether it became the best, updating `best` (levels, error, scale, min).
    let evaluate = |best: &mut QkxBest<'_>, lv: &[u8], (sum_l, sum_l2, sum_xl): (f32, f32, f32)| {
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return false;
        }
        let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
        let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
        if this_min > 0.0 {
            this_min = 0.0;
            this_scale = sum_xl / sum_l2;
        }
        let mut cur_error = 0.0f32;
        for ((&v, &wi), &xi) in lv.iter().zip(w).zip(x) {
            cur_error += wi * err(this_scale * v as f32 + this_min - xi);
            if monotone && cur_error >= best.error {
                return false;
            }
        }
        if cur_error < best.error {
            best.levels.copy_from_slice(lv);
            best.error = cur_error;
            best.scale = this_scale;
            best.min = this_min;
            return true;
        }
        false
    };
    let mut best = QkxBest {
        levels: l,
        error: best_error,
        scale,
        min,
    };
    // Trials go in pairs: the second one's levels and sums are computed with the `min` from
    // before the first one (two independent dependency chains), and recomputed when the first
    // one moves `min`, so every trial sees the `min` the C's sequential loop gives it. A trial
    // whose levels equal the previous trial's has the same sums and error, so it cannot beat
    // the best (the C would reject it too) and is skipped. `prev` holds the previous trial.
    let (mut prev, mut next) = (laux, lb);
    let mut is = 0;
    while is <= nstep {
        let min0 = best.min;
        let changed_a = trial(is, min0, next, prev) || is == 0;
        std::mem::swap(&mut prev, &mut next);
        // prev: trial `is`; next: free.
        let has_b = is < nstep;
        let changed_b = has_b && trial(is + 1, min0, next, prev);
        let (sa, sb) = match (changed_a, changed_b) {
            (true, true) => {
                let (mut a, mut b) = ((0.0f32, 0.0f32, 0.0f32), (0.0f32, 0.0f32, 0.0f32));
                for (((&va, &vb), &wi), &xi) in prev.iter().zip(&*next).zip(w).zip(x) {
                    let (qa, qb) = (va as f32, vb as f32);
                    let (wqa, wqb) = (wi * qa, wi * qb);
                    a.0 += wqa;
                    a.1 += wqa * qa;
                    a.2 += wqa * xi;
                    b.0 += wqb;
                    b.1 += wqb * qb;
                    b.2 += wqb * xi;
                }
                (Some(a), Some(b))
            }
            (true, false) => (Some(sums(prev)), None),
            (false, true) => (None, Some(sums(next))),
            (false, false) => (None, None),
        };
        let moved = match sa {
            Some(s) => evaluate(&mut best, prev, s) && best.min.to_bits() != min0.to_bits(),
            None => false,
        };
        if has_b {
            let changed_b = if moved {
                // Trial `is + 1` again, with the `min` trial `is` chose.
                let changed = trial(is + 1, best.min, next, prev);
                if changed {
                    evaluate(&mut best, next, sums(next));
                }
                changed
            } else {
                if let Some(s) = sb {
                    evaluate(&mut best, next, s);
                }
                changed_b
            };
            if changed_b {
                std::mem::swap(&mut prev, &mut next);
            }
        }
        is += 2;
    }
    let (scale, min) = (best.scale, best.min);
    (scale, -min)
}

/// Picks the [`make_qkx_quants`] instance for the group length and error kind.
#[allow(clippy::too_many_arguments)]
fn make_qkx_dispatch(
    nmax: i32,
    x: &[f32],
    weights: Option<&[f32]>,
    l: &mut [u8],
    laux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
    le_test: bool,
) -> (f32, f32) {
    match (x.len(), use_mad) {
        (16, false) => {
            make_qkx_quants::<16, false>(nmax, x, weights, l, laux, rmin, rdelta, nstep, le_test)
        }
        (16, true) => {
            make_qkx_quants::<16, true>(nmax, x, weights, l, laux, rmin, rdelta, nstep, le_test)
        }
        (32, false) => {
            make_qkx_quants::<32, false>(nmax, x, weights, l, laux, rmin, rdelta, nstep, le_test)
        }
        (32, true) => {
            make_qkx_quants::<32, true>(nmax, x, weights, l, laux, rmin, rdelta, nstep, le_test)
        }
        (_, false) => {
            make_qkx_quants::<0, false>(nmax, x, weights, l, laux, rmin, rdelta, nstep, le_test)
        }
        (_, true) => {
            make_qkx_quants::<0, true>(nmax, x, weights, l, laux, rmin, rdelta, nstep, le_test)
        }
    }
}

/// Asymmetric quantization of `x` to levels `0..=nmax` with weights (`make_qkx2_quants`).
///
/// Returns `(scale, the_min)` where `x ≈ scale * L - the_min`; writes the levels into `l` and
/// uses `laux` as scratch. The search tries `nstep + 1` scales `(rmin + rdelta*is + nmax) /
/// (max - min)` and keeps the one with the smallest weighted squared (or absolute, `use_mad`)
/// error (an empty `x` gives `(0, 0)`). `weights`, `l` and `laux` must be at least as long as
/// `x`.
#[allow(clippy::too_many_arguments)]
pub fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    laux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    make_qkx_dispatch(
        nmax,
        x,
        Some(weights),
        l,
        laux,
        rmin,
        rdelta,
        nstep,
        use_mad,
        false,
    )
}

/// Asymmetric quantization of `x` to levels `0..=nmax` (`make_qkx3_quants`): as
/// [`make_qkx2_quants`], with `x²` weights when `weights` is `None` and the C's `max <= min`
/// degenerate-group test.
#[allow(clippy::too_many_arguments)]
pub fn make_qkx3_quants(
    nmax: i32,
    x: &[f32],
    weights: Option<&[f32]>,
    l: &mut [u8],
    laux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    make_qkx_dispatch(
        nmax, x, weights, l, laux, rmin, rdelta, nstep, use_mad, true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_qkx2_quants_reproduces_affine_grid() {
        // x = 0.25*L - 1 with L spanning 0..=15: scale 0.25, min 1 are exact.
        let x: Vec<f32> = (0..32).map(|i| 0.25 * (i % 16) as f32 - 1.0).collect();
        let w = vec![1.0f32; 32];
        let (mut l, mut aux) = ([0u8; 32], [0u8; 32]);
        let (scale, the_min) = make_qkx2_quants(15, &x, &w, &mut l, &mut aux, -1.0, 0.1, 20, false);
        for (i, &li) in l.iter().enumerate() {
            assert_eq!(scale * li as f32 - the_min, x[i], "element {i}");
        }
    }
}
