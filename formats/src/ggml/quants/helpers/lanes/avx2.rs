//! The AVX2 lane code: an 8-lane f32 vector type and the lane-parallel scale searches built on
//! it.
//!
//! Soundness: [`F8`]'s constructors are `unsafe` and require AVX2; its field is private, so an
//! `F8` (or an [`M8`] derived from one) exists only where AVX2 is available, and its methods,
//! which execute AVX/AVX2 instructions, are therefore safe to call. The kernels are
//! `#[inline(always)]` `unsafe fn`s meant to be inlined into `#[target_feature(enable =
//! "avx2")]` functions (which is where their intrinsics become single instructions); their
//! callers check [`super::available`] first.
//!
//! Performance note: the kernels use `#[inline(always)]` functions, not closures, for every
//! piece of code that calls `F8` methods; a closure the compiler chooses not to inline is
//! compiled without AVX2, and each intrinsic in it then becomes a function call (ten times
//! slower than the scalar code).

// The loops over lane groups and elements index several parallel arrays at once.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use crate::ggml::quants::helpers::GROUP_MAX_EPS;

/// Eight f32 lanes (`__m256`).
#[derive(Clone, Copy)]
pub(crate) struct F8(__m256);

/// A per-lane mask (all ones or all zeros per lane) from an [`F8`] comparison.
#[derive(Clone, Copy)]
pub(crate) struct M8(__m256);

/// Defines `F8` methods whose body is one expression of AVX intrinsics on `$a` (and `$b`).
macro_rules! lanes_op {
    ($(#[$m:meta])* $name:ident($a:ident) -> $ret:ident $body:expr) => {
        $(#[$m])*
        #[inline(always)]
        pub(crate) fn $name(self) -> $ret {
            let $a = self.0;
            // SAFETY: an F8 exists only where AVX2 is available (module docs).
            $ret(unsafe { $body })
        }
    };
    ($(#[$m:meta])* $name:ident($a:ident, $b:ident) -> $ret:ident $body:expr) => {
        $(#[$m])*
        #[inline(always)]
        pub(crate) fn $name(self, other: F8) -> $ret {
            let ($a, $b) = (self.0, other.0);
            // SAFETY: an F8 exists only where AVX2 is available (module docs).
            $ret(unsafe { $body })
        }
    };
}

impl F8 {
    /// All lanes `v`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline(always)]
    pub(crate) unsafe fn splat(v: f32) -> F8 {
        F8(_mm256_set1_ps(v))
    }

    /// The eight values of `a`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline(always)]
    pub(crate) unsafe fn load(a: &[f32; 8]) -> F8 {
        F8(_mm256_loadu_ps(a.as_ptr()))
    }

    /// Writes the lanes into `a`.
    #[inline(always)]
    pub(crate) fn store(self, a: &mut [f32; 8]) {
        // SAFETY: an F8 exists only where AVX2 is available; `a` holds eight f32.
        unsafe { _mm256_storeu_ps(a.as_mut_ptr(), self.0) }
    }

    /// The lanes as an array.
    #[inline(always)]
    pub(crate) fn to_array(self) -> [f32; 8] {
        let mut a = [0.0f32; 8];
        self.store(&mut a);
        a
    }

    lanes_op!(add(a, b) -> F8 _mm256_add_ps(a, b));
    lanes_op!(sub(a, b) -> F8 _mm256_sub_ps(a, b));
    lanes_op!(mul(a, b) -> F8 _mm256_mul_ps(a, b));
    lanes_op!(div(a, b) -> F8 _mm256_div_ps(a, b));
    lanes_op!(
        /// Correctly rounded square root (`sqrtf`).
        sqrt(a) -> F8 _mm256_sqrt_ps(a)
    );
    lanes_op!(
        /// The sign bit cleared (`fabsf`).
        abs(a) -> F8 _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff)))
    );
    lanes_op!(
        /// The sign bit flipped (unary minus).
        neg(a) -> F8 _mm256_xor_ps(a, _mm256_set1_ps(-0.0))
    );
    lanes_op!(
        /// C's `MIN(self, other)`: `self < other ? self : other` (the second operand when
        /// they are equal or either is NaN).
        c_min(a, b) -> F8 _mm256_min_ps(a, b)
    );
    lanes_op!(
        /// C's `MAX(self, other)`: `self > other ? self : other`.
        c_max(a, b) -> F8 _mm256_max_ps(a, b)
    );
    lanes_op!(
        /// `self < other` (false for NaN).
        lt(a, b) -> M8 _mm256_cmp_ps::<_CMP_LT_OQ>(a, b)
    );
    lanes_op!(
        /// `self > other` (false for NaN).
        gt(a, b) -> M8 _mm256_cmp_ps::<_CMP_GT_OQ>(a, b)
    );
    lanes_op!(
        /// `self <= other` (false for NaN).
        le(a, b) -> M8 _mm256_cmp_ps::<_CMP_LE_OQ>(a, b)
    );
    lanes_op!(
        /// `self == other` (false for NaN).
        eq(a, b) -> M8 _mm256_cmp_ps::<_CMP_EQ_OQ>(a, b)
    );
    lanes_op!(
        /// `self != other` (true for NaN).
        ne(a, b) -> M8 _mm256_cmp_ps::<_CMP_NEQ_UQ>(a, b)
    );

    /// `m ? a : b` per lane.
    #[inline(always)]
    pub(crate) fn select(m: M8, a: F8, b: F8) -> F8 {
        // SAFETY: an F8 exists only where AVX2 is available (module docs).
        F8(unsafe { _mm256_blendv_ps(b.0, a.0, m.0) })
    }

    /// `MAX(lo, MIN(hi, nearest_int(self)))` as f32: ggml's `nearest_int` bit trick (exact
    /// C semantics for every input, including the meaningless results beyond 2^22 and for
    /// NaN and infinities) followed by the clamp of the integer.
    #[inline(always)]
    pub(crate) fn round_clamp(self, lo: i32, hi: i32) -> F8 {
        // SAFETY: an F8 exists only where AVX2 is available (module docs).
        unsafe {
            let val = _mm256_add_ps(self.0, _mm256_set1_ps(12582912.0));
            let bits = _mm256_and_si256(_mm256_castps_si256(val), _mm256_set1_epi32(0x007f_ffff));
            let i = _mm256_sub_epi32(bits, _mm256_set1_epi32(0x0040_0000));
            let i = _mm256_max_epi32(
                _mm256_set1_epi32(lo),
                _mm256_min_epi32(_mm256_set1_epi32(hi), i),
            );
            F8(_mm256_cvtepi32_ps(i))
        }
    }
}

impl F8 {
    /// [`F8::round_clamp`] in float arithmetic, `MAX(lo, MIN(hi, (self + 1.5*2^23) -
    /// 1.5*2^23))`: the same values (round half to even, then the clamp) wherever `|self| <
    /// 4194303`, where `self + 1.5*2^23` lies in `[2^23, 2^24)` (spacing 1, so the addition
    /// rounds `self` to an integer and the subtraction is exact), and two instructions fewer.
    #[inline(always)]
    pub(crate) fn round_clamp_small(self, lo: F8, hi: F8) -> F8 {
        // SAFETY: an F8 exists only where AVX2 is available (module docs).
        let magic = unsafe { F8::splat(12582912.0) };
        lo.c_max(hi.c_min(self.add(magic).sub(magic)))
    }
}

/// Below this magnitude [`F8::round_clamp_small`] equals [`F8::round_clamp`].
const SMALL: f32 = 4194303.0;

// Test hook: a thread whose flag is set takes the exact rounding everywhere, so that the
// tests cover both roundings (they give the same results, so other tests are unaffected);
// EXACT_TRIALS counts the trials that took the exact rounding on this thread.
#[cfg(test)]
thread_local! {
    pub(crate) static FORCE_EXACT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    pub(crate) static EXACT_TRIALS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Whether the small-value rounding may be used (always, outside the tests' hook).
#[inline(always)]
fn small_rounding_allowed() -> bool {
    #[cfg(test)]
    {
        !FORCE_EXACT.with(|f| f.get())
    }
    #[cfg(not(test))]
    {
        true
    }
}

/// Counts a trial that took the exact rounding (tests only).
#[inline(always)]
fn count_exact_trial() {
    #[cfg(test)]
    EXACT_TRIALS.with(|c| c.set(c.get() + 1));
}

impl M8 {
    /// Lanes set in both.
    #[inline(always)]
    pub(crate) fn and(self, other: M8) -> M8 {
        // SAFETY: an M8 exists only where AVX2 is available (module docs).
        M8(unsafe { _mm256_and_ps(self.0, other.0) })
    }

    /// The lanes as booleans.
    #[inline(always)]
    pub(crate) fn to_array(self) -> [bool; 8] {
        // SAFETY: an M8 exists only where AVX2 is available (module docs).
        let bits = unsafe { _mm256_movemask_ps(self.0) };
        std::array::from_fn(|k| bits >> k & 1 != 0)
    }

    /// Lanes set in either.
    #[inline(always)]
    pub(crate) fn or(self, other: M8) -> M8 {
        // SAFETY: an M8 exists only where AVX2 is available (module docs).
        M8(unsafe { _mm256_or_ps(self.0, other.0) })
    }

    /// Whether all eight lanes are set.
    #[inline(always)]
    pub(crate) fn all(self) -> bool {
        // SAFETY: an M8 exists only where AVX2 is available (module docs).
        unsafe { _mm256_movemask_ps(self.0) == 0xff }
    }
}

/// `x` (lanes `c = 8g + k`, each `N` consecutive values) in lane-major order:
/// `out[i][g][k] = x[(8g + k)N + i]`, by 8x8 transposes of vectors when `N` is a multiple of
/// eight.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn transpose_in<const N: usize, const G: usize>(x: &[f32], out: &mut [[[f32; 8]; G]; N]) {
    let x = &x[..8 * G * N];
    if N % 8 != 0 {
        for (c, xs) in x.chunks_exact(N).enumerate() {
            for (i, &v) in xs.iter().enumerate() {
                out[i][c / 8][c % 8] = v;
            }
        }
        return;
    }
    for g in 0..G {
        for i0 in (0..N).step_by(8) {
            let base = 8 * g * N + i0;
            let row = |k: usize| -> &[f32; 8] {
                let s = base + k * N;
                x[s..s + 8].try_into().expect("eight values")
            };
            // (The closure only slices; the loads stay here: see the module docs.)
            let (r0, r1) = (F8::load(row(0)).0, F8::load(row(1)).0);
            let (r2, r3) = (F8::load(row(2)).0, F8::load(row(3)).0);
            let (r4, r5) = (F8::load(row(4)).0, F8::load(row(5)).0);
            let (r6, r7) = (F8::load(row(6)).0, F8::load(row(7)).0);
            let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
            let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
            let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
            let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let cols = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (j, col) in cols.into_iter().enumerate() {
                F8(col).store(&mut out[i0 + j][g]);
            }
        }
    }
}

/// Whether every value of the lane-major array is finite.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn all_finite<const N: usize, const G: usize>(a: &[[[f32; 8]; G]; N]) -> bool {
    let inf = F8::splat(f32::INFINITY);
    let mut ok = inf.eq(inf);
    for row in a {
        for v in row {
            ok = ok.and(F8::load(v).abs().lt(inf));
        }
    }
    ok.all()
}

/// The weights of a [`make_qkx_lanes`] search.
#[derive(Clone, Copy)]
pub(crate) enum QkxWeights<'a> {
    /// `sqrt(sum(x²)/N) + |x|` over each sub-block (Q4_K and Q5_K without importance).
    RmsPlusAbs,
    /// `|x|` (Q2_K without importance).
    Abs,
    /// `qw * sqrt(sigma2 + x²)` with `qw` laid out like `x` (the importance paths).
    Importance {
        /// The importance values.
        qw: &'a [f32],
        /// The `sigma2` of each group of eight lanes (of its super-block).
        sigma2: &'a [f32],
    },
}

/// Parameters of `make_qkx2_quants` / `make_qkx3_quants`.
#[derive(Clone, Copy)]
pub(crate) struct QkxParams {
    /// Largest level.
    pub nmax: i32,
    /// First trial's offset.
    pub rmin: f32,
    /// Offset step between trials.
    pub rdelta: f32,
    /// Number of trials after the first.
    pub nstep: i32,
    /// `make_qkx3_quants`'s `max <= min` degenerate-group test (else `max == min`).
    pub le_test: bool,
}

/// `make_qkx2_quants` / `make_qkx3_quants` on `8G` sub-blocks of `N` elements at once, one
/// per lane (`MAD`: absolute instead of squared error).
///
/// Sub-block `c` is `x[cN..(c+1)N]`; its scale goes to `scale[c]`, its `the_min` to
/// `the_min[c]`, the sum of its weights (summed from zero in element order) to
/// `sum_weights[c]`, and the inverse scale and min its levels come from to `level_iscale[c]`
/// and `level_min[c]` (for [`super::qkx_levels`], which only the sub-blocks that need their
/// search levels pay for). Returns false, writing nothing, when `x` or the importance values
/// hold a NaN or an infinity (the scalar code keeps the C's handling of those).
///
/// # Safety
/// The CPU must support AVX2.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) unsafe fn make_qkx_lanes<const N: usize, const G: usize, const MAD: bool>(
    p: QkxParams,
    x: &[f32],
    weights: QkxWeights<'_>,
    scale: &mut [f32],
    the_min: &mut [f32],
    sum_weights: &mut [f32],
    level_iscale: &mut [f32],
    level_min: &mut [f32],
) -> bool {
    let lanes = 8 * G;
    let (scale, the_min) = (&mut scale[..lanes], &mut the_min[..lanes]);
    let sum_weights = &mut sum_weights[..lanes];
    let (level_iscale, level_min) = (&mut level_iscale[..lanes], &mut level_min[..lanes]);
    let mut xt = [[[0.0f32; 8]; G]; N];
    let mut wt = [[[0.0f32; 8]; G]; N];
    transpose_in::<N, G>(x, &mut xt);
    if !all_finite(&xt) {
        return false;
    }
    let zero = F8::splat(0.0);
    match weights {
        QkxWeights::RmsPlusAbs => {
            for g in 0..G {
                let mut s = zero;
                for i in 0..N {
                    s = s.add(F8::load(&xt[i][g]).mul(F8::load(&xt[i][g])));
                }
                let av = s.div(F8::splat(N as f32)).sqrt();
                for (i, w) in wt.iter_mut().enumerate() {
                    av.add(F8::load(&xt[i][g]).abs()).store(&mut w[g]);
                }
            }
        }
        QkxWeights::Abs => {
            for (i, w) in wt.iter_mut().enumerate() {
                for (g, w) in w.iter_mut().enumerate() {
                    F8::load(&xt[i][g]).abs().store(w);
                }
            }
        }
        QkxWeights::Importance { qw, sigma2 } => {
            transpose_in::<N, G>(qw, &mut wt);
            if !all_finite(&wt) {
                return false;
            }
            let sigma2 = &sigma2[..G];
            for (i, w) in wt.iter_mut().enumerate() {
                for (g, w) in w.iter_mut().enumerate() {
                    let xi = F8::load(&xt[i][g]);
                    let s2 = F8::splat(sigma2[g]);
                    F8::load(w).mul(s2.add(xi.mul(xi)).sqrt()).store(w);
                }
            }
        }
    }
    let wt = &wt;
    let nmaxf = p.nmax as f32;

    // Per lane, as the C's prologue: min, max, sum_w, sum_x; the degenerate-group test.
    let mut min = [zero; G];
    let mut max = [zero; G];
    let mut sum_w = [zero; G];
    let mut sum_x = [zero; G];
    let mut sw = [zero; G];
    for g in 0..G {
        let (x0, w0) = (F8::load(&xt[0][g]), F8::load(&wt[0][g]));
        min[g] = x0;
        max[g] = x0;
        sum_w[g] = w0;
        sum_x[g] = w0.mul(x0);
        sw[g] = zero.add(w0);
    }
    for i in 1..N {
        for g in 0..G {
            let (xi, wi) = (F8::load(&xt[i][g]), F8::load(&wt[i][g]));
            min[g] = xi.c_min(min[g]);
            max[g] = xi.c_max(max[g]);
            sum_w[g] = sum_w[g].add(wi);
            sum_x[g] = sum_x[g].add(wi.mul(xi));
            sw[g] = sw[g].add(wi);
        }
    }
    // The smallest element, for the bound on the trials' products below.
    let xmin = min;
    let mut degenerate = [zero.lt(zero); G];
    let mut scale_v = [zero; G];
    let mut best_error = [zero; G];
    // The levels are recomputed at the end from the inverse scale and min that produced them.
    let mut lv_iscale = [zero; G];
    let mut lv_min = [zero; G];
    let nmax_v = F8::splat(nmaxf);
    for g in 0..G {
        // if (min > 0) min = 0;
        min[g] = zero.c_min(min[g]);
        degenerate[g] = if p.le_test {
            max[g].le(min[g])
        } else {
            max[g].eq(min[g])
        };
        let iscale = nmax_v.div(max[g].sub(min[g]));
        scale_v[g] = F8::splat(1.0).div(iscale);
        lv_iscale[g] = iscale;
        lv_min[g] = min[g];
    }
    let min_degenerate = min;
    for i in 0..N {
        for g in 0..G {
            let (xi, wi) = (F8::load(&xt[i][g]), F8::load(&wt[i][g]));
            let l = lv_iscale[g].mul(xi.sub(min[g])).round_clamp(0, p.nmax);
            let diff = scale_v[g].mul(l).add(min[g]).sub(xi);
            best_error[g] = best_error[g].add(wi.mul(err::<MAD>(diff)));
        }
    }
    if p.nstep >= 1 {
        let mut laux = [[zero; G]; N];
        for is in 0..=p.nstep {
            let num = F8::splat(p.rmin + p.rdelta * is as f32 + nmaxf);
            let mut iscale = [zero; G];
            for g in 0..G {
                iscale[g] = num.div(max[g].sub(min[g]));
            }
            // The products iscale*(x - min) lie between those of the smallest and the largest
            // element (subtraction and multiplication round monotonically); when all lanes'
            // (but degenerate groups', whose results are discarded) are below SMALL, the
            // cheaper rounding gives the same levels.
            let mut small = small_rounding_allowed();
            for g in 0..G {
                let lo = iscale[g].mul(xmin[g].sub(min[g])).abs();
                let hi = iscale[g].mul(max[g].sub(min[g])).abs();
                let limit = F8::splat(SMALL);
                let ok = lo.lt(limit).and(hi.lt(limit)).or(degenerate[g]);
                small &= ok.all();
            }
            let (sum_l, sum_l2, sum_xl) = if small {
                qkx_sums::<N, G, true>(&iscale, &min, &xt, wt, &mut laux, p.nmax)
            } else {
                count_exact_trial();
                qkx_sums::<N, G, false>(&iscale, &min, &xt, wt, &mut laux, p.nmax)
            };
            let mut this_scale = [zero; G];
            let mut this_min = [zero; G];
            let mut d_pos = [zero.lt(zero); G];
            for g in 0..G {
                let d = sum_w[g].mul(sum_l2[g]).sub(sum_l[g].mul(sum_l[g]));
                d_pos[g] = d.gt(zero);
                let ts = sum_w[g].mul(sum_xl[g]).sub(sum_x[g].mul(sum_l[g])).div(d);
                let tm = sum_l2[g].mul(sum_x[g]).sub(sum_l[g].mul(sum_xl[g])).div(d);
                let clamp = tm.gt(zero);
                this_min[g] = F8::select(clamp, zero, tm);
                this_scale[g] = F8::select(clamp, sum_xl[g].div(sum_l2[g]), ts);
            }
            let mut cur = [zero; G];
            for (i, la) in laux.iter().enumerate() {
                for g in 0..G {
                    let (xi, wi) = (F8::load(&xt[i][g]), F8::load(&wt[i][g]));
                    let diff = this_scale[g].mul(la[g]).add(this_min[g]).sub(xi);
                    cur[g] = cur[g].add(wi.mul(err::<MAD>(diff)));
                }
            }
            for g in 0..G {
                let take = d_pos[g].and(cur[g].lt(best_error[g]));
                best_error[g] = F8::select(take, cur[g], best_error[g]);
                scale_v[g] = F8::select(take, this_scale[g], scale_v[g]);
                lv_iscale[g] = F8::select(take, iscale[g], lv_iscale[g]);
                lv_min[g] = F8::select(take, min[g], lv_min[g]);
                min[g] = F8::select(take, this_min[g], min[g]);
            }
        }
    }
    for g in 0..G {
        // Degenerate groups: scale 0, levels 0 (from an inverse scale of 0).
        let sc = F8::select(degenerate[g], zero, scale_v[g]).to_array();
        let mn = F8::select(degenerate[g], min_degenerate[g], min[g])
            .neg()
            .to_array();
        let s = sw[g].to_array();
        let li = F8::select(degenerate[g], zero, lv_iscale[g]).to_array();
        let lm = F8::select(degenerate[g], zero, lv_min[g]).to_array();
        for k in 0..8 {
            let c = 8 * g + k;
            (scale[c], the_min[c], sum_weights[c]) = (sc[k], mn[k], s[k]);
            (level_iscale[c], level_min[c]) = (li[k], lm[k]);
        }
    }
    true
}

/// One trial's levels (into `laux`) and sums `sum(w l)`, `sum(w l²)`, `sum(w l x)` in
/// element order for `make_qkx_lanes`, with the cheaper rounding when `SMALL` (valid only
/// where the caller has bounded the products).
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn qkx_sums<const N: usize, const G: usize, const SMALL: bool>(
    iscale: &[F8; G],
    min: &[F8; G],
    xt: &[[[f32; 8]; G]; N],
    wt: &[[[f32; 8]; G]; N],
    laux: &mut [[F8; G]; N],
    nmax: i32,
) -> ([F8; G], [F8; G], [F8; G]) {
    let zero = F8::splat(0.0);
    let nmax_v = F8::splat(nmax as f32);
    let mut sum_l = [zero; G];
    let mut sum_l2 = [zero; G];
    let mut sum_xl = [zero; G];
    for (i, la) in laux.iter_mut().enumerate() {
        for g in 0..G {
            let (xi, wi) = (F8::load(&xt[i][g]), F8::load(&wt[i][g]));
            let v = iscale[g].mul(xi.sub(min[g]));
            let l = if SMALL {
                v.round_clamp_small(zero, nmax_v)
            } else {
                v.round_clamp(0, nmax)
            };
            la[g] = l;
            let wl = wi.mul(l);
            sum_l[g] = sum_l[g].add(wl);
            sum_l2[g] = sum_l2[g].add(wl.mul(l));
            sum_xl[g] = sum_xl[g].add(wl.mul(xi));
        }
    }
    (sum_l, sum_l2, sum_xl)
}

/// `d²` or (`MAD`) `|d|`.
#[inline(always)]
fn err<const MAD: bool>(diff: F8) -> F8 {
    if MAD {
        diff.abs()
    } else {
        diff.mul(diff)
    }
}

/// The sums of `make_qx_quants` for the inverse scales `iscale`: `sum(w x l)` and
/// `sum(w l²)` in element order, `l` the clamped levels, with the cheaper rounding when
/// `SMALL` (a function rather than a closure so that it is always inlined, intrinsics
/// included).
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn qx_sums<const N: usize, const G: usize, const SMALL: bool>(
    iscale: &[F8; G],
    xt: &[[[f32; 8]; G]; N],
    wt: &[[[f32; 8]; G]; N],
    wxt: &[[[f32; 8]; G]; N],
    lo: i32,
    hi: i32,
) -> ([F8; G], [F8; G]) {
    let zero = F8::splat(0.0);
    let (lo_v, hi_v) = (F8::splat(lo as f32), F8::splat(hi as f32));
    let mut sumlx = [zero; G];
    let mut suml2 = [zero; G];
    for i in 0..N {
        for g in 0..G {
            let v = iscale[g].mul(F8::load(&xt[i][g]));
            let l = if SMALL {
                v.round_clamp_small(lo_v, hi_v)
            } else {
                v.round_clamp(lo, hi)
            };
            sumlx[g] = sumlx[g].add(F8::load(&wxt[i][g]).mul(l));
            suml2[g] = suml2[g].add(F8::load(&wt[i][g]).mul(l).mul(l));
        }
    }
    (sumlx, suml2)
}

/// `make_qx_quants(N, nmax, x, L, 1, qw)` on `8G` sub-blocks of `N` elements at once, one
/// per lane: weights `qw` (laid out like `x`) or `x²`.
///
/// Sub-block `c` is `x[cN..(c+1)N]`; its scale goes to `scale[c]` and the inverse scale its
/// levels come from to `level_iscale[c]` (`None` for an all-zero group, whose levels are 0;
/// see [`super::qx_levels`]). Returns false, writing nothing, when `x` or `qw` hold a NaN or
/// an infinity.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
pub(crate) unsafe fn make_qx_lanes<const N: usize, const G: usize>(
    nmax: i32,
    x: &[f32],
    qw: Option<&[f32]>,
    scale: &mut [f32],
    level_iscale: &mut [Option<f32>],
) -> bool {
    let lanes = 8 * G;
    let (scale, level_iscale) = (&mut scale[..lanes], &mut level_iscale[..lanes]);
    let mut xt = [[[0.0f32; 8]; G]; N];
    let mut wt = [[[0.0f32; 8]; G]; N];
    let mut wxt = [[[0.0f32; 8]; G]; N];
    transpose_in::<N, G>(x, &mut xt);
    if !all_finite(&xt) {
        return false;
    }
    match qw {
        Some(qw) => {
            transpose_in::<N, G>(qw, &mut wt);
            if !all_finite(&wt) {
                return false;
            }
        }
        None => {
            for (i, w) in wt.iter_mut().enumerate() {
                for (g, w) in w.iter_mut().enumerate() {
                    F8::load(&xt[i][g]).mul(F8::load(&xt[i][g])).store(w);
                }
            }
        }
    }
    for (i, wx) in wxt.iter_mut().enumerate() {
        for (g, wx) in wx.iter_mut().enumerate() {
            F8::load(&wt[i][g]).mul(F8::load(&xt[i][g])).store(wx);
        }
    }
    let (wt, wxt) = (&wt, &wxt);
    let zero = F8::splat(0.0);
    let nmaxf = nmax as f32;
    let (lo, hi) = (-nmax, nmax - 1);

    let mut max = [zero; G];
    let mut amax = [zero; G];
    for i in 0..N {
        for g in 0..G {
            let xi = F8::load(&xt[i][g]);
            let ax = xi.abs();
            let bigger = ax.gt(amax[g]);
            amax[g] = F8::select(bigger, ax, amax[g]);
            max[g] = F8::select(bigger, xi, max[g]);
        }
    }
    let mut all_zero = [zero.lt(zero); G];
    let mut iscale = [zero; G];
    for g in 0..G {
        all_zero[g] = amax[g].lt(F8::splat(GROUP_MAX_EPS));
        iscale[g] = F8::splat(-nmaxf).div(max[g]);
    }
    // In groups that are not all zero (the others' results are discarded), |max| >=
    // GROUP_MAX_EPS, so every trial's inverse scale (nmax + 0.1 is)/|max| is finite and, the
    // multiplication rounding monotonically, |iscale*x| <= about nmax + 1 (|x| <= |max|):
    // the cheaper rounding is exact.
    let small = small_rounding_allowed();
    // (A macro, not a closure: see the module docs.)
    macro_rules! sums {
        ($iscale:expr) => {
            if small {
                qx_sums::<N, G, true>($iscale, &xt, wt, wxt, lo, hi)
            } else {
                qx_sums::<N, G, false>($iscale, &xt, wt, wxt, lo, hi)
            }
        };
    }
    let (sumlx, suml2) = sums!(&iscale);
    let mut scale_v = [zero; G];
    let mut best = [zero; G];
    let mut best_iscale = iscale;
    for g in 0..G {
        scale_v[g] = F8::select(suml2[g].ne(zero), sumlx[g].div(suml2[g]), zero);
        best[g] = scale_v[g].mul(sumlx[g]);
    }
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        let num = F8::splat(-(nmaxf + 0.1 * is as f32));
        let mut it = [zero; G];
        for g in 0..G {
            it[g] = num.div(max[g]);
        }
        let (sumlx, suml2) = sums!(&it);
        for g in 0..G {
            let take = suml2[g]
                .gt(zero)
                .and(sumlx[g].mul(sumlx[g]).gt(best[g].mul(suml2[g])));
            let s = sumlx[g].div(suml2[g]);
            scale_v[g] = F8::select(take, s, scale_v[g]);
            best[g] = F8::select(take, s.mul(sumlx[g]), best[g]);
            best_iscale[g] = F8::select(take, it[g], best_iscale[g]);
        }
    }
    for g in 0..G {
        let sc = F8::select(all_zero[g], zero, scale_v[g]).to_array();
        let li = best_iscale[g].to_array();
        let z = all_zero[g].to_array();
        for k in 0..8 {
            scale[8 * g + k] = sc[k];
            level_iscale[8 * g + k] = if z[k] { None } else { Some(li[k]) };
        }
    }
    true
}
