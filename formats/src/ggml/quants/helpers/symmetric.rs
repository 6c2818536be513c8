//! Symmetric group quantizers: `make_qx_quants` (weighted scale search) and
//! `make_q3_quants` (coordinate-descent refinement).

use super::{nearest_int, GROUP_MAX_EPS, MAX_GROUP};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
