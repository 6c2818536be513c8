//! The scale search shared by llama.cpp's IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S quantizers
//! (`quantize_row_iq2_xxs_impl`, `quantize_row_iq2_xs_impl`, `quantize_row_iq2_s_impl`,
//! `quantize_row_iq3_xxs_impl`, `quantize_row_iq3_s_impl`): per group of `B` magnitudes, trial
//! inverse scales, each rounding the magnitudes to levels, snapping every `D`-element group that
//! is off the grid to its best neighbour, and keeping the trial with the best weighted fit;
//! then a refinement with the chosen scale. Float operations are in the C's order.

use super::neighbours::GridMap;
use crate::ggml::quants::helpers::nearest_int;
use crate::ggml::types::QK_K;

/// Which groups the refinement after the trials recomputes with the chosen scale.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Refine {
    /// All groups, whenever the scale is positive (IQ2_XXS).
    Always,
    /// All groups, when one of the best trial's groups was off the grid (IQ3_S).
    AllIfAnyOff,
    /// Only the groups that were off the grid in the best trial (IQ2_XS, IQ2_S, IQ3_XXS).
    OffGridOnly,
}

/// The trial parameters of one quantizer.
pub(super) struct Trials {
    /// `kMaxQ`: levels are `0..kMaxQ`, magnitudes `2l + 1`.
    pub kmax_q: i32,
    /// Trials `is` run over `-nstep..=nstep`.
    pub nstep: i32,
    /// The inverse-scale step per trial (`0.1f` or `0.2f`).
    pub step: f32,
    /// Whether groups count as on the grid before any trial is kept (`is_on_grid` init).
    pub init_on_grid: bool,
    /// The refinement.
    pub refine: Refine,
}

/// Most trials of a search (`2·nstep + 1`).
const MAX_TRIALS: usize = 32;

/// `nearest_int(0.5f*(id*x - 1))` clamped to `0..=kmax_q-1` for every element of `x`.
#[inline(always)]
fn round_levels<const B: usize>(id: f32, x: &[f32; B], kmax_q: i32, l: &mut [i8; B]) {
    for (o, &v) in l.iter_mut().zip(x) {
        let q = nearest_int(0.5 * (id * v - 1.0));
        *o = 0.max((kmax_q - 1).min(q)) as i8;
    }
}

/// [`round_levels`] of the `D` elements of one group, into `l`; returns the lattice index.
#[inline(always)]
fn round_group<const D: usize>(
    grid: &GridMap<D>,
    id: f32,
    x: &[f32],
    kmax_q: i32,
    l: &mut [i8],
) -> usize {
    let mut lv = [0i8; D];
    round_levels(id, x[..D].try_into().unwrap(), kmax_q, &mut lv);
    l[..D].copy_from_slice(&lv);
    // Levels are within 0..kmax_q, inside the lattice.
    grid.index(&lv).unwrap_or(0)
}

/// `Σ w·x·q` and `Σ w·q²` with `q = 2l + 1`, summed in order.
#[inline(always)]
pub(super) fn sums<const B: usize>(weight: &[f32; B], xval: &[f32; B], l: &[i8; B]) -> (f32, f32) {
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for i in 0..B {
        let w = weight[i];
        let q = (2 * i32::from(l[i]) + 1) as f32;
        sumqx += w * xval[i] * q;
        sumq2 += w * q * q;
    }
    (sumqx, sumq2)
}

/// The scale search of one group of `B` magnitudes `xval` (weights `weight`, their square
/// roots `waux`): trial inverse scales `(2·kMaxQ - 1 + is·step) / denom` starting from scale
/// `scale0`, then the refinement. Writes the chosen levels (every `D`-group a grid point) into
/// `l` and returns the scale.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn search<const D: usize, const B: usize>(
    grid: &GridMap<D>,
    t: &Trials,
    xval: &[f32; B],
    weight: &[f32; B],
    waux: &[f32; B],
    denom: f32,
    scale0: f32,
    l: &mut [i8; B],
) -> f32 {
    let groups = B / D;
    let ntrials = (2 * t.nstep + 1) as usize;
    debug_assert!(ntrials <= MAX_TRIALS && groups <= 8);
    // Every trial's levels, element-major (`lv[i][trial]`), and its off-grid groups as bits.
    let mut lv = [[0i8; MAX_TRIALS]; B];
    let mut off = [0u8; MAX_TRIALS];
    let base = (2 * t.kmax_q - 1) as f32;
    let mut laux = [0i8; B];
    for (ti, is) in (-t.nstep..=t.nstep).enumerate() {
        let id = (base + is as f32 * t.step) / denom;
        let this_scale = 1.0 / id;
        round_levels(id, xval, t.kmax_q, &mut laux);
        for k in 0..groups {
            let r = D * k..D * k + D;
            // Levels within 0..kmax_q are inside the lattice.
            let u = grid.index(&laux[r.clone()]).unwrap_or(0);
            if let Err(list) = grid.lookup(u) {
                off[ti] |= 1 << k;
                grid.best_neighbour(
                    list,
                    &xval[r.clone()],
                    &waux[r.clone()],
                    this_scale,
                    &mut laux[r],
                );
            }
        }
        for (row, &v) in lv.iter_mut().zip(&laux) {
            row[ti] = v;
        }
    }
    // Every trial's sums, side by side, each in the C's order: `w*xval[i]*q` is `(w*xval[i])*q`
    // and `w*q*q` is `(w*q)*q`.
    let (mut sumqx, mut sumq2) = ([0.0f32; MAX_TRIALS], [0.0f32; MAX_TRIALS]);
    for ((row, &w), &x) in lv.iter().zip(weight).zip(xval) {
        let wx = w * x;
        for ((sx, s2), &l) in sumqx.iter_mut().zip(&mut sumq2).zip(row) {
            let q = (2 * i32::from(l) + 1) as f32;
            *sx += wx * q;
            *s2 += w * q * q;
        }
    }
    // The trials' verdicts in the C's order.
    let mut best = 0.0f32;
    let mut scale = scale0;
    let mut chosen = None;
    for ti in 0..ntrials {
        if sumq2[ti] > 0.0 && sumqx[ti] * sumqx[ti] > best * sumq2[ti] {
            scale = sumqx[ti] / sumq2[ti];
            best = scale * sumqx[ti];
            chosen = Some(ti);
        }
    }
    let mut on_grid = [t.init_on_grid; 8];
    if let Some(ti) = chosen {
        for (o, row) in l.iter_mut().zip(&lv) {
            *o = row[ti];
        }
        for (k, on) in on_grid[..groups].iter_mut().enumerate() {
            *on = off[ti] & (1 << k) == 0;
        }
    }
    let any_off = on_grid[..groups].iter().any(|&g| !g);
    let refine = match t.refine {
        Refine::Always => scale > 0.0,
        Refine::AllIfAnyOff | Refine::OffGridOnly => any_off && scale > 0.0,
    };
    if refine {
        let id = 1.0 / scale;
        for (k, &on) in on_grid[..groups].iter().enumerate() {
            if t.refine == Refine::OffGridOnly && on {
                continue;
            }
            let r = D * k..D * k + D;
            let u = round_group(grid, id, &xval[r.clone()], t.kmax_q, &mut l[r.clone()]);
            if let Err(list) = grid.lookup(u) {
                grid.best_neighbour(list, &xval[r.clone()], &waux[r.clone()], scale, &mut l[r]);
            }
        }
        let (sumqx, sumq2) = sums(weight, xval, l);
        if sumq2 > 0.0 {
            scale = sumqx / sumq2;
        }
    }
    scale
}

/// The magnitudes of 8-element groups of `xb` and their sign bytes; with `parity`, the
/// element of smallest `weight·x²` in a group with an odd number of negatives has its sign
/// flipped back (its magnitude negated), so that the 7 stored sign bits imply the eighth, and
/// the byte keeps 7 bits.
#[inline(always)]
pub(super) fn split_signs<const B: usize>(
    xb: &[f32],
    weight: &[f32; B],
    parity: bool,
    xval: &mut [f32; B],
    signs: &mut [u8],
) {
    for k in 0..B / 8 {
        let mut nflip = 0;
        let mut s = 0u8;
        for i in 0..8 {
            let x = xb[8 * k + i];
            if x >= 0.0 {
                xval[8 * k + i] = x;
            } else {
                xval[8 * k + i] = -x;
                nflip += 1;
                s |= 1 << i;
            }
        }
        if parity && nflip % 2 == 1 {
            let mut imin = 0;
            let mut min = weight[8 * k] * xb[8 * k] * xb[8 * k];
            for i in 1..8 {
                let ax = weight[8 * k + i] * xb[8 * k + i] * xb[8 * k + i];
                if ax < min {
                    min = ax;
                    imin = i;
                }
            }
            xval[8 * k + imin] = -xval[8 * k + imin];
            s ^= 1 << imin;
        }
        signs[k] = if parity { s & 127 } else { s };
    }
}

/// The C's `MAX(a, b)`: `a > b ? a : b`.
#[inline(always)]
pub(super) fn max_c(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// The largest of `xval` as the C's `MAX` loop finds it.
#[inline(always)]
pub(super) fn max_of(xval: &[f32]) -> f32 {
    let mut max = xval[0];
    for &v in &xval[1..] {
        max = max_c(max, v);
    }
    max
}

/// `Σ x²` of a super-block, summed in order.
#[inline(always)]
pub(super) fn sum_squares(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v * v;
    }
    s
}

/// The importance weights of one group: `qw·sqrtf(sigma2 + x²)` with quant weights, else
/// `fallback(x)`; and their square roots.
#[inline(always)]
pub(super) fn weights<const B: usize>(
    xb: &[f32],
    qw: Option<&[f32]>,
    sigma2: f32,
    fallback: impl Fn(f32) -> f32,
    weight: &mut [f32; B],
    waux: &mut [f32; B],
) {
    match qw {
        Some(qw) => {
            for i in 0..B {
                weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).sqrt();
            }
        }
        None => {
            for i in 0..B {
                weight[i] = fallback(xb[i]);
            }
        }
    }
    for i in 0..B {
        waux[i] = weight[i].sqrt();
    }
}

/// The 4-bit (or 3-bit) code of a group scale against the super-block's inverse scale `id`:
/// `nearest_int(0.5f*(id*scale - 1))` clamped to `0..=max`.
#[inline(always)]
pub(super) fn scale_code(id: f32, scale: f32, max: i32) -> i32 {
    let l = nearest_int(0.5 * (id * scale - 1.0));
    0.max(max.min(l))
}

/// One grid type's super-block quantizer.
pub(super) trait SuperBlock<const D: usize> {
    /// Bytes per super-block.
    const BYTES: usize;
    /// Quantizes the `QK_K` weights `x` (importance weights `qw`) into `b` against `grid`.
    fn quantize(grid: &GridMap<D>, x: &[f32], qw: Option<&[f32]>, b: &mut [u8]);
}

/// Quantizes whole rows of `QK_K`-weight super-blocks with `Q`, as the `quantize_iq*` row
/// loops do.
///
/// On x86-64 CPUs with AVX2 the loop and everything `Q` inlines are compiled for AVX2 (the
/// neighbour searches and sums then run eight lanes wide); the operations, and so the bytes,
/// are the same: IEEE f32 arithmetic lane by lane, and no fused multiply-add either way.
pub(super) fn quantize_rows<const D: usize, Q: SuperBlock<D>>(
    grid: &GridMap<D>,
    src: &[f32],
    dst: &mut [u8],
    n_per_row: usize,
    imatrix: Option<&[f32]>,
) {
    #[cfg(target_arch = "x86_64")]
    if crate::ggml::quants::helpers::lanes::available() && !generic_only() {
        // SAFETY: the CPU supports AVX2.
        unsafe { rows_avx2::<D, Q>(grid, src, dst, n_per_row, imatrix) };
        return;
    }
    rows::<D, Q>(grid, src, dst, n_per_row, imatrix);
}

#[cfg(test)]
thread_local! {
    /// Set by tests to run the code compiled for the baseline target on this thread.
    pub(super) static GENERIC_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread must use the baseline code (tests only).
#[inline(always)]
fn generic_only() -> bool {
    #[cfg(test)]
    {
        GENERIC_ONLY.with(|g| g.get())
    }
    #[cfg(not(test))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rows_avx2<const D: usize, Q: SuperBlock<D>>(
    grid: &GridMap<D>,
    src: &[f32],
    dst: &mut [u8],
    n_per_row: usize,
    imatrix: Option<&[f32]>,
) {
    rows::<D, Q>(grid, src, dst, n_per_row, imatrix);
}

#[inline(always)]
fn rows<const D: usize, Q: SuperBlock<D>>(
    grid: &GridMap<D>,
    src: &[f32],
    dst: &mut [u8],
    n_per_row: usize,
    imatrix: Option<&[f32]>,
) {
    let row_bytes = n_per_row / QK_K * Q::BYTES;
    if row_bytes == 0 {
        return;
    }
    // The row loop is written out (not a helper taking a closure) so that it, and the
    // quantizer inlined into it, are compiled with the caller's target features.
    for (x, out) in src
        .chunks_exact(n_per_row)
        .zip(dst.chunks_exact_mut(row_bytes))
    {
        let blocks = x.chunks_exact(QK_K).zip(out.chunks_exact_mut(Q::BYTES));
        for (ibl, (xbl, b)) in blocks.enumerate() {
            let qw = imatrix.map(|w| &w[ibl * QK_K..(ibl + 1) * QK_K]);
            Q::quantize(grid, xbl, qw, b);
        }
    }
}
