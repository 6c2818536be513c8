//! Numeric helpers shared by llama.cpp's quantization routines (`ggml-quants.c`).
//!
//! Every function reproduces the pinned C source operation for operation: f32 arithmetic in
//! the same order, no fused multiply-add, divisions where the C divides, and the same
//! integer truncations where the C stores into narrow integer arrays. Comparisons are written
//! out as the C `MIN`/`MAX` macros expand them, so NaN inputs take the same branches.

/// Groups whose largest magnitude is below this are treated as all zero (`GROUP_MAX_EPS`).
pub const GROUP_MAX_EPS: f32 = 1e-15;

/// Round half to even, as ggml's `nearest_int` does.
///
/// The result is exact for |x| <= 4194303; beyond that it is the same bit-level value the C
/// computes (ggml builds its reference with `NDEBUG`, so the C assertion never fires).
#[inline]
pub fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12582912.0;
    ((val.to_bits() & 0x007f_ffff) as i32) - 0x0040_0000
}

/// C's float-to-int conversion as x86-64 performs it (`cvttss2si`): truncation toward zero,
/// and `i32::MIN` for NaN and values outside the `i32` range.
#[inline]
pub fn trunc_to_i32(v: f32) -> i32 {
    // `as` saturates: values below the range already give `i32::MIN`; NaN and values at or
    // above 2^31 are mapped to it here. Written as a select so that loops vectorize.
    let r = v as i32;
    if v < 2147483648.0 {
        r
    } else {
        i32::MIN
    }
}

/// Truncation toward zero for |v| < 2^22, with float arithmetic only (so loops of it
/// vectorize); meaningless for larger values and NaN.
#[inline(always)]
fn trunc_small(v: f32) -> i32 {
    let r = nearest_int(v);
    let rf = r as f32;
    if v >= 0.0 {
        r - (rf > v) as i32
    } else {
        r + (rf < v) as i32
    }
}

/// Below this magnitude [`trunc_small`] is exact.
const SMALL: f32 = 4194303.0;

/// [`trunc_to_i32`] of every value: C's `(int)v` as x86-64 computes it. Takes a vectorizable
/// path when every value is below 2^22 in magnitude and the exact scalar one otherwise.
#[inline(always)]
pub fn trunc_all<const N: usize>(v: &[f32; N]) -> [i32; N] {
    let mut out = [0i32; N];
    let mut small = true;
    for (o, &x) in out.iter_mut().zip(v) {
        small &= x.abs() < SMALL;
        *o = trunc_small(x);
    }
    if !small {
        for (o, &x) in out.iter_mut().zip(v) {
            *o = trunc_to_i32(x);
        }
    }
    out
}

/// C's `(int)roundf(v)` (round half away from zero, then the x86-64 conversion) of every
/// value, with a vectorizable path when every value is below 2^22 in magnitude.
#[inline(always)]
pub fn round_all<const N: usize>(v: &[f32; N]) -> [i32; N] {
    let mut out = [0i32; N];
    let mut small = true;
    for (o, &x) in out.iter_mut().zip(v) {
        small &= x.abs() < SMALL;
        let t = trunc_small(x);
        // x - t is exact (Sterbenz), so this is the distance to the truncated value.
        let away = (x - t as f32).abs() >= 0.5;
        let step = if x < 0.0 { -1 } else { 1 };
        *o = if away { t + step } else { t };
    }
    if !small {
        for (o, &x) in out.iter_mut().zip(v) {
            *o = trunc_to_i32(x.round());
        }
    }
    out
}

/// Calls `f` on each row of `src` (`n_per_row` values) together with its `row_bytes`-byte
/// slot in `dst`, as the per-row `quantize_*` loops of ggml do.
pub fn for_each_row(
    src: &[f32],
    dst: &mut [u8],
    n_per_row: usize,
    row_bytes: usize,
    mut f: impl FnMut(&[f32], &mut [u8]),
) {
    if n_per_row == 0 || row_bytes == 0 {
        return;
    }
    for (x, y) in src
        .chunks_exact(n_per_row)
        .zip(dst.chunks_exact_mut(row_bytes))
    {
        f(x, y);
    }
}

/// Longest group whose scratch the scale searches keep on the stack (ggml's groups have 16 or
/// 32 elements; longer ones use the heap).
const MAX_GROUP: usize = 64;

/// The weight `make_qx_quants` gives element `x` when it has no importance weights.
#[inline]
fn qx_weight(rmse_type: i32, x: f32) -> f32 {
    match rmse_type {
        1 => x * x,
        2 => 1.0,
        3 => x.abs(),
        _ => x.abs().sqrt(),
    }
}

/// Symmetric quantization of `x` to `2*nmax` levels with a scale search (`make_qx_quants`).
///
/// Writes `L[i]` in `0..2*nmax` (the level plus `nmax`) and returns the scale. `rmse_type`
/// 0 takes the plain max-based scale; otherwise the scale minimises the weighted error, the
/// weights being `qw` when given, else `x²` (1), 1 (2), `|x|` (3) or `sqrt|x|` (other); a
/// negative `rmse_type` returns after the first refinement, as the C does.
/// `l` must be at least as long as `x`, and `qw` too when given.
pub fn make_qx_quants(
    nmax: i32,
    x: &[f32],
    l: &mut [i8],
    rmse_type: i32,
    qw: Option<&[f32]>,
) -> f32 {
    match x.len() {
        16 => qx_quants::<16>(nmax, x, l, rmse_type, qw),
        32 => qx_quants::<32>(nmax, x, l, rmse_type, qw),
        _ => qx_quants::<0>(nmax, x, l, rmse_type, qw),
    }
}

/// The body of [`make_qx_quants`] for groups of `N` elements (`N` = 0: any length), so that
/// the group sizes ggml uses get loops of constant length.
#[inline(always)]
fn qx_quants<const N: usize>(
    nmax: i32,
    x: &[f32],
    l: &mut [i8],
    rmse_type: i32,
    qw: Option<&[f32]>,
) -> f32 {
    let n = if N == 0 { x.len() } else { N };
    let x = &x[..n];
    let l = &mut l[..n];
    let qw = qw.map(|w| &w[..n]);
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &xi in x {
        let ax = xi.abs();
        if ax > amax {
            amax = ax;
            max = xi;
        }
    }
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let iscale = -nmaxf / max;
    if rmse_type == 0 {
        for (li, &xi) in l.iter_mut().zip(x) {
            let q = nearest_int(iscale * xi);
            *li = (nmax + (nmax - 1).min(q).max(-nmax)) as i8;
        }
        return 1.0 / iscale;
    }
    let (rmse_type, return_early) = if rmse_type < 0 {
        (-rmse_type, true)
    } else {
        (rmse_type, false)
    };
    // Per-element weights w, products w*x and three level buffers, on the stack for every
    // group size ggml uses.
    let mut stack = (
        [0.0f32; MAX_GROUP],
        [0.0f32; MAX_GROUP],
        [[0i8; MAX_GROUP]; 3],
    );
    let mut heap;
    let (w, wx, levels): (&mut [f32], &mut [f32], &mut [[i8; MAX_GROUP]]) = if n <= MAX_GROUP {
        (&mut stack.0[..n], &mut stack.1[..n], &mut stack.2[..])
    } else {
        heap = (
            vec![0.0f32; n],
            vec![0.0f32; n],
            vec![[0i8; MAX_GROUP]; 3 * n.div_ceil(MAX_GROUP)],
        );
        (&mut heap.0[..], &mut heap.1[..], &mut heap.2[..])
    };
    let (prev, rest) = levels.split_at_mut(levels.len() / 3);
    let (la, lb) = rest.split_at_mut(prev.len());
    let prev = &mut prev.as_flattened_mut()[..n];
    let la = &mut la.as_flattened_mut()[..n];
    let lb = &mut lb.as_flattened_mut()[..n];
    for (i, ((wi, wxi), &xi)) in w.iter_mut().zip(wx.iter_mut()).zip(x).enumerate() {
        *wi = match qw {
            Some(q) => q[i],
            None => qx_weight(rmse_type, xi),
        };
        *wxi = *wi * xi;
    }
    let (w, wx) = (&*w, &*wx);
    let clamp = |v: i32| (nmax - 1).min(v).max(-nmax);
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for ((((li, lv), &xi), &wi), &wxi) in l.iter_mut().zip(prev.iter_mut()).zip(x).zip(w).zip(wx) {
        let q = clamp(nearest_int(iscale * xi));
        *lv = q as i8;
        *li = (q + nmax) as i8;
        let qf = q as f32;
        sumlx += wxi * qf;
        suml2 += wi * qf * qf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    if return_early {
        return if suml2 > 0.0 {
            0.5 * (scale + 1.0 / iscale)
        } else {
            1.0 / iscale
        };
    }
    let mut best = scale * sumlx;
    // Clamping to the integer bounds before rounding is cheaper and gives the C's level
    // (rounding, then clamping) whenever the product is finite or the default NaN of 0*inf
    // (which rounds to 0). Past the zero-group test |max| >= GROUP_MAX_EPS, so iscale is
    // finite and |iscale*x| <= nmax + 1 for finite x (or NaN as 0*inf for infinite ones):
    // only NaN inputs, whose payload the C turns into a level, need the exact path.
    let (lo, hi) = (-nmaxf, (nmax - 1) as f32);
    let clamp_first = !x.iter().any(|v| v.is_nan());
    // Levels of trial scale `is` into `out`, and whether they differ from `before`.
    let trial = |is: i32, out: &mut [i8], before: &[i8]| -> bool {
        let iscale = -(nmaxf + 0.1 * is as f32) / max;
        let mut changed = false;
        if clamp_first {
            for ((o, &b), &xi) in out.iter_mut().zip(before).zip(x) {
                let v = iscale * xi;
                let v = if hi < v { hi } else { v };
                let v = if v < lo { lo } else { v };
                let q = nearest_int(v) as i8;
                changed |= q != b;
                *o = q;
            }
        } else {
            for ((o, &b), &xi) in out.iter_mut().zip(before).zip(x) {
                let q = clamp(nearest_int(iscale * xi)) as i8;
                changed |= q != b;
                *o = q;
            }
        }
        changed
    };
    // The C's acceptance test for a trial with sums (sx, s2) and levels `lv`.
    let mut decide = |sx: f32, s2: f32, lv: &[i8]| {
        if s2 > 0.0 && sx * sx > best * s2 {
            for (li, &v) in l.iter_mut().zip(lv) {
                *li = (v as i32 + nmax) as i8;
            }
            scale = sx / s2;
            best = scale * sx;
        }
    };
    let sums = |lv: &[i8]| {
        let (mut sx, mut s2) = (0.0f32, 0.0f32);
        for ((&v, &wi), &wxi) in lv.iter().zip(w).zip(wx) {
            let qf = v as f32;
            sx += wxi * qf;
            s2 += wi * qf * qf;
        }
        (sx, s2)
    };
    // The trial scales in the C's order, two at a time. Their sums do not depend on earlier
    // decisions, so a pair is accumulated together (independent dependency chains) and the
    // decisions are then taken in order. A trial whose levels equal the previous trial's has
    // the same sums: the C would either reject it again or accept it again with the same
    // levels and scale, so it is skipped.
    const TRIALS: [i32; 18] = [
        -9, -8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ];
    for pair in TRIALS.chunks_exact(2) {
        let changed_a = trial(pair[0], la, prev);
        let changed_b = trial(pair[1], lb, la);
        match (changed_a, changed_b) {
            (true, true) => {
                let (mut sxa, mut s2a, mut sxb, mut s2b) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
                for (((&va, &vb), &wi), &wxi) in la.iter().zip(&*lb).zip(w).zip(wx) {
                    let (qa, qb) = (va as f32, vb as f32);
                    sxa += wxi * qa;
                    s2a += wi * qa * qa;
                    sxb += wxi * qb;
                    s2b += wi * qb * qb;
                }
                decide(sxa, s2a, la);
                decide(sxb, s2b, lb);
            }
            (true, false) => {
                let (sx, s2) = sums(la);
                decide(sx, s2, la);
            }
            (false, true) => {
                let (sx, s2) = sums(lb);
                decide(sx, s2, lb);
            }
            (false, false) => {}
        }
        prev.copy_from_slice(lb);
    }
    scale
}

/// Symmetric quantization with `x²` weights and coordinate-descent refinement
/// (`make_q3_quants`).
///
/// Writes `L[i]` in `0..2*nmax` and returns the scale; `do_rmse` false takes the max-based
/// scale. `l` must be at least as long as `x`.
pub fn make_q3_quants(nmax: i32, x: &[f32], l: &mut [i8], do_rmse: bool) -> f32 {
    let n = x.len();
    let l = &mut l[..n];
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &xi in x {
        let ax = xi.abs();
        if ax > amax {
            amax = ax;
            max = xi;
        }
    }
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    if do_rmse {
        let mut sumlx = 0.0f32;
        let mut suml2 = 0.0f32;
        for (li, &xi) in l.iter_mut().zip(x) {
            let q = (nmax - 1).min(nearest_int(iscale * xi)).max(-nmax);
            *li = q as i8;
            let w = xi * xi;
            let qf = q as f32;
            sumlx += w * xi * qf;
            suml2 += w * qf * qf;
        }
        for _ in 0..5 {
            let mut n_changed = 0;
            for (li, &xi) in l.iter_mut().zip(x) {
                let w = xi * xi;
                let lf = *li as f32;
                let mut slx = sumlx - w * xi * lf;
                if slx > 0.0 {
                    let mut sl2 = suml2 - w * lf * lf;
                    let new_l = (nmax - 1).min(nearest_int(xi * sl2 / slx)).max(-nmax);
                    if new_l != *li as i32 {
                        let nf = new_l as f32;
                        slx += w * xi * nf;
                        sl2 += w * nf * nf;
                        if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                            *li = new_l as i8;
                            sumlx = slx;
                            suml2 = sl2;
                            n_changed += 1;
                        }
                    }
                }
            }
            if n_changed == 0 {
                break;
            }
        }
        for li in l.iter_mut() {
            *li = (*li as i32 + nmax) as i8;
        }
        return if suml2 > 0.0 { sumlx / suml2 } else { 0.0 };
    }
    for (li, &xi) in l.iter_mut().zip(x) {
        let q = (nmax - 1).min(nearest_int(iscale * xi)).max(-nmax);
        *li = (q + nmax) as i8;
    }
    1.0 / iscale
}

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
    // `before`. With finite iscale and range, 0 <= iscale*(x - min) <= about nmax + 1, so
    // clamping to the integer bounds before rounding (cheaper) gives the C's level; otherwise
    // (NaN payloads, infinities from subnormal ranges) the C's order is kept.
    let trial = |is: i32, min: f32, out: &mut [u8], before: &[u8]| -> bool {
        let iscale = (rmin + rdelta * is as f32 + nmaxf) / (max - min);
        let mut changed = false;
        if no_nan && iscale.is_finite() && (max - min).is_finite() {
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
/// error. `x` must be non-empty; `weights`, `l` and `laux` at least as long as `x`.
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

/// Quantization of non-negative values (super-block scales) to `0..=nmax` with importance
/// weights and refinement (`make_qp_quants`).
///
/// Writes the levels into `l` (stored as the C stores them, truncated to a byte) and returns
/// the scale. `l` and `quant_weights` must be at least as long as `x`.
pub fn make_qp_quants(nmax: i32, x: &[f32], l: &mut [u8], quant_weights: &[f32]) -> f32 {
    let n = x.len();
    let l = &mut l[..n];
    let qw = &quant_weights[..n];
    let mut max = 0.0f32;
    for &xi in x {
        max = if max > xi { max } else { xi };
    }
    if max < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let mut iscale = nmaxf / max;
    for (li, &xi) in l.iter_mut().zip(x) {
        *li = nearest_int(iscale * xi) as u8;
    }
    let scale = 1.0 / iscale;
    let mut best_mse = 0.0f32;
    for ((&li, &xi), &w) in l.iter().zip(x).zip(qw) {
        let diff = xi - scale * li as f32;
        best_mse += w * diff * diff;
    }
    for is in -4i32..=4 {
        if is == 0 {
            continue;
        }
        let iscale_is = (0.1 * is as f32 + nmaxf) / max;
        let scale_is = 1.0 / iscale_is;
        let mut mse = 0.0f32;
        for (&xi, &w) in x.iter().zip(qw) {
            let q = nmax.min(nearest_int(iscale_is * xi));
            let diff = xi - scale_is * q as f32;
            mse += w * diff * diff;
        }
        if mse < best_mse {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for ((li, &xi), &w) in l.iter_mut().zip(x).zip(qw) {
        let q = nmax.min(nearest_int(iscale * xi));
        *li = q as u8;
        let qf = q as f32;
        sumlx += w * xi * qf;
        suml2 += w * qf * qf;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for ((li, &xi), &w) in l.iter_mut().zip(x).zip(qw) {
            let lf = *li as f32;
            let mut slx = sumlx - w * xi * lf;
            let mut sl2 = suml2 - w * lf * lf;
            if slx > 0.0 && sl2 > 0.0 {
                let new_l = nmax.min(nearest_int(xi * sl2 / slx));
                if new_l != *li as i32 {
                    let nf = new_l as f32;
                    slx += w * xi * nf;
                    sl2 += w * nf * nf;
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *li = new_l as u8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// Test support shared by the codec families: comparison of qforge's codecs with the pinned
/// llama.cpp through [`crate::oracle`].
#[cfg(test)]
pub(crate) mod oracle_check {
    use crate::ggml::{self, GgmlType};
    use crate::oracle;

    /// qforge's quantization of `src` (rows of `n_per_row`) through the codec dispatcher.
    pub(crate) fn quantize(
        ty: GgmlType,
        n_per_row: usize,
        src: &[f32],
        imatrix: Option<&[f32]>,
    ) -> Vec<u8> {
        let mut out = vec![0u8; src.len() / ty.block_size() * ty.type_size()];
        ggml::quantize(ty, src, &mut out, n_per_row, imatrix).expect("quantize");
        out
    }

    /// qforge's dequantization of whole blocks through the codec dispatcher.
    pub(crate) fn dequantize(ty: GgmlType, bytes: &[u8]) -> Vec<f32> {
        let mut out = vec![0f32; bytes.len() / ty.type_size() * ty.block_size()];
        ggml::dequantize(ty, bytes, &mut out).expect("dequantize");
        out
    }

    /// Asserts that qforge's bytes for `src` equal llama.cpp's, and that both dequantize
    /// those bytes to the same f32 bits. Does nothing when the oracle is skipped.
    pub(crate) fn assert_matches(
        ty: GgmlType,
        n_per_row: usize,
        src: &[f32],
        imatrix: Option<&[f32]>,
    ) {
        let Some(expected) = oracle::quantize(ty, n_per_row, src, imatrix) else {
            return;
        };
        let got = quantize(ty, n_per_row, src, imatrix);
        assert_eq!(got.len(), expected.len(), "{ty}: output size");
        if let Some(i) = got.iter().zip(&expected).position(|(a, b)| a != b) {
            let ts = ty.type_size();
            let row_bytes = n_per_row / ty.block_size() * ts;
            let (block, row) = (i / ts, i / row_bytes);
            let s = block * ts;
            panic!(
                "{ty} n_per_row={n_per_row} imatrix={}: first byte mismatch at {i} (row {row}, block {block}, \
                 byte {} of the block)\n ours:  {:?}\n llama: {:?}",
                imatrix.is_some(),
                i - s,
                &got[s..s + ts],
                &expected[s..s + ts]
            );
        }
        assert_dequantize_matches(ty, &got);
    }

    /// Asserts that qforge and llama.cpp dequantize `bytes` to the same f32 bits.
    pub(crate) fn assert_dequantize_matches(ty: GgmlType, bytes: &[u8]) {
        let Some(expected) = oracle::dequantize(ty, bytes) else {
            return;
        };
        let got = dequantize(ty, bytes);
        assert_eq!(got.len(), expected.len(), "{ty}: dequantized length");
        for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "{ty}: dequantized element {i}: ours {a}, llama {b}"
            );
        }
    }

    /// Root-mean-square error of qforge's round trip of `src`, relative to the RMS of `src`.
    pub(crate) fn relative_rmse(
        ty: GgmlType,
        n_per_row: usize,
        src: &[f32],
        imatrix: Option<&[f32]>,
    ) -> f64 {
        let back = dequantize(ty, &quantize(ty, n_per_row, src, imatrix));
        let (mut err, mut sig) = (0.0f64, 0.0f64);
        for (&a, &b) in src.iter().zip(&back) {
            err += (a as f64 - b as f64).powi(2);
            sig += (a as f64).powi(2);
        }
        (err / sig).sqrt()
    }

    /// Rows of extreme inputs, each `n_per_row` long: ±1e4 magnitudes, all-equal rows of
    /// either sign, an all-zero row, a large outlier among tiny values, a ±1e4 ramp, rows of one
    /// sign only, lone spikes in zeros, mostly-zero gaussians, values near fp16's smallest and fp32 subnormals.
    pub(crate) fn extreme_rows(n_per_row: usize) -> Vec<f32> {
        let mut rng = oracle::Rng::new(77);
        let n = n_per_row;
        let mut v = Vec::with_capacity(12 * n);
        v.extend((0..n).map(|j| {
            if j % 3 == 0 {
                -1e4
            } else {
                1e4 * rng.uniform()
            }
        }));
        v.extend(std::iter::repeat_n(3.7f32, n));
        v.extend(std::iter::repeat_n(-2.0f32, n));
        v.extend(std::iter::repeat_n(0.0f32, n));
        v.extend((0..n).map(|j| if j == 5 { 3e4 } else { rng.normal() * 1e-3 }));
        v.extend((0..n).map(|j| (j as f32 / n as f32 - 0.5) * 2e4));
        v.extend((0..n).map(|j| if j % 2 == 0 { 1e4 } else { -1e4 }));
        v.extend((0..n).map(|_| rng.uniform() + 0.5));
        v.extend((0..n).map(|_| -rng.uniform() - 0.1));
        v.extend((0..n).map(|j| if j % 16 == 0 { 5.0 } else { 0.0 }));
        v.extend((0..n).map(|_| {
            if rng.uniform() < 0.7 {
                0.0
            } else {
                rng.normal()
            }
        }));
        v.extend((0..n).map(|_| rng.normal() * 1e-7));
        v.extend((0..n).map(|j| {
            if j % 4 == 0 {
                0.0
            } else {
                rng.uniform() * 1e-39
            }
        }));
        v.extend((0..n).map(|j| (j % 7) as f32 * 1e-44 - 2e-44));
        v
    }

    /// Rows holding NaN (with payloads) or infinities among ordinary values.
    pub(crate) fn non_finite_rows(n_per_row: usize) -> Vec<f32> {
        let mut v = oracle::test_rows(5, 4, 256);
        v.truncate(4 * n_per_row);
        v[3] = f32::from_bits(0x7fc0_1234);
        v[n_per_row + 40] = f32::NAN;
        v[2 * n_per_row + 7] = f32::INFINITY;
        v[3 * n_per_row + 9] = f32::NEG_INFINITY;
        v
    }

    /// An importance vector with zeros: every fifth value and the first 64 (columns that
    /// never fired during calibration).
    pub(crate) fn sparse_imatrix(seed: u64, n: usize) -> Vec<f32> {
        let mut w = oracle::test_imatrix(seed, n);
        for (j, x) in w.iter_mut().enumerate() {
            if j % 5 == 0 || j < 64 {
                *x = 0.0;
            }
        }
        w
    }

    /// Runs `ty`'s codec directly (no validation in front of it) on a row holding NaN or
    /// ±infinity, with and without importance weights: it must not panic. llama.cpp refuses
    /// such rows after quantizing them, so there are no bytes to compare.
    pub(crate) fn assert_non_finite_input_is_handled(ty: GgmlType, n_per_row: usize) {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut src = oracle::test_rows(3, 1, 256);
            src.truncate(n_per_row);
            src[n_per_row / 2] = bad;
            let w = oracle::test_imatrix(3, n_per_row);
            let c = ggml::codec(ty).expect("codec");
            let q = c.quantize.expect("quantizer");
            for imatrix in [None, Some(&w[..])] {
                let mut bytes = vec![0u8; n_per_row / ty.block_size() * ty.type_size()];
                q(&src, &mut bytes, n_per_row, imatrix);
                let mut back = vec![0f32; n_per_row];
                (c.dequantize)(&bytes, &mut back);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        let cases = [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (3.49, 3),
            (-3.51, -4),
            (0.0, 0),
        ];
        for (x, want) in cases {
            assert_eq!(nearest_int(x), want, "{x}");
        }
        assert_eq!(nearest_int(4194303.0), 4194303);
        assert_eq!(nearest_int(-4194303.0), -4194303);
    }

    #[test]
    fn trunc_to_i32_matches_x86_conversion() {
        assert_eq!(trunc_to_i32(8.99), 8);
        assert_eq!(trunc_to_i32(-8.99), -8);
        assert_eq!(trunc_to_i32(f32::NAN), i32::MIN);
        assert_eq!(trunc_to_i32(3e9), i32::MIN);
        assert_eq!(trunc_to_i32(-3e9), i32::MIN);
        assert_eq!(trunc_to_i32(-2147483648.0), i32::MIN);
    }

    #[test]
    fn trunc_all_and_round_all_match_scalar_conversions() {
        let mut rng = crate::oracle::Rng::new(21);
        let mut v = [0.0f32; 64];
        for round in 0..200 {
            let scale = [1.0f32, 0.5, 17.0, 1e3, 4e6, 5e6, 3e9][round % 7];
            for x in v.iter_mut() {
                *x = (rng.uniform() - 0.5) * scale;
            }
            // Exact halves, integers and the 2^22 boundary.
            v[0] = 2.5;
            v[1] = -2.5;
            v[2] = 0.49999997;
            v[3] = -3.0;
            v[4] = 4194303.5;
            v[5] = -0.0;
            if round == 199 {
                v[6] = f32::NAN;
                v[7] = f32::INFINITY;
            }
            let t = trunc_all(&v);
            let r = round_all(&v);
            for i in 0..64 {
                assert_eq!(t[i], trunc_to_i32(v[i]), "trunc {}", v[i]);
                assert_eq!(r[i], trunc_to_i32(v[i].round()), "round {}", v[i]);
            }
        }
    }

    #[test]
    fn make_qx_quants_reproduces_exact_grid_values() {
        // Values that lie on a grid of step 0.5 with -8*0.5 present are reproduced exactly.
        let x: Vec<f32> = (0..16).map(|i| (i as f32 - 8.0) * 0.5).collect();
        let mut l = [0i8; 16];
        let d = make_qx_quants(8, &x, &mut l, 1, None);
        for (i, (&li, &xi)) in l.iter().zip(&x).enumerate() {
            assert_eq!((li as i32 - 8) as f32 * d, xi, "element {i}");
        }
    }

    #[test]
    fn make_qx_quants_zero_group() {
        let x = [0.0f32; 16];
        let mut l = [5i8; 16];
        assert_eq!(make_qx_quants(4, &x, &mut l, 1, None), 0.0);
        assert!(l.iter().all(|&v| v == 0));
    }

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

    #[test]
    fn make_qp_quants_on_multiples_of_a_step() {
        let x: Vec<f32> = (0..8).map(|i| (i * 9) as f32 * 0.125).collect();
        let w = vec![1.0f32; 8];
        let mut l = [0u8; 8];
        let d = make_qp_quants(63, &x, &mut l, &w);
        for (i, &li) in l.iter().enumerate() {
            assert!(
                (d * li as f32 - x[i]).abs() <= 1e-5,
                "element {i}: {} vs {}",
                d * li as f32,
                x[i]
            );
        }
    }
}
