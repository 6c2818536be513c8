//! The quantization grids and grid-neighbour maps of llama.cpp's `iq2xs_init_impl` (IQ2_XXS,
//! IQ2_XS, IQ2_S, IQ1_S/IQ1_M) and `iq3xs_init_impl` (IQ3_XXS, IQ3_S).
//!
//! A grid point is a vector of levels `l` (2 bits each for the 8-wide grids, 3 bits for the
//! 4-wide ones); the C stores it as the bytes `2l + 1` (`kgrid_q2xs`, `kgrid_q3xs`) and packs
//! the levels into an index `u` (`l_i << bits*i`). For every `u` that is not a grid point, the C
//! lists the grid points at the `nwant` smallest squared distances from it, ordered by
//! (distance, grid index) through `qsort`, whose comparator is a total order on those pairs.
//!
//! The level tables (`kgrid_2bit_256`, ...) are derived from the dequantization grids of
//! `ggml-common.h` (each magnitude's rank among the distinct magnitudes of its grid is its
//! level), which is what the C tables encode; a test compares both.
//!
//! The maps are built once per grid on first use. Only the lattice points the quantizers can
//! look up get a neighbour list: the quantizers clamp every level to `0..=kMaxQ-1`, i.e.
//! `0..=2` for the 2-bit grids (whose points use levels 0 to 2 only) and `0..=7` for the 3-bit
//! ones. Each list is computed with integer distances over the grid, bucketed by value instead
//! of sorted: the lists equal the C's.

use super::grids::{IQ1S, IQ2S, IQ2XS, IQ2XXS, IQ3S, IQ3XXS};
use std::sync::OnceLock;

/// A quantization grid of `D`-element points with its neighbour map.
pub(super) struct GridMap<const D: usize> {
    /// Each grid point's levels, `(kgrid byte - 1) / 2`.
    levels: Box<[[i8; D]]>,
    /// Per lattice index `u`: the grid index (>= 0), or `-(k + 1)` for `u`'s neighbour list
    /// `lists[k]`, or [`UNREACHABLE`].
    map: Box<[i32]>,
    /// The neighbour lists.
    lists: Box<[List]>,
    /// The grid indices of every list, one list after the other (`kneighbors_q2xs` without
    /// the lengths).
    ids: Box<[u16]>,
    /// The grid bytes `2l + 1` of every list's points, element-major: for each list, `D` rows
    /// of its points' element `i`, each row padded to a multiple of [`LANES`], so that the
    /// searches compute the distances of [`LANES`] points side by side.
    bytes: Box<[u8]>,
    /// Bits per level in a lattice index.
    bits: u32,
}

/// Where one neighbour list lies in [`GridMap::ids`] and [`GridMap::bytes`].
#[derive(Clone, Copy)]
struct List {
    ids: u32,
    bytes: u32,
    len: u16,
}

/// Points whose distances a neighbour search computes side by side.
pub(super) const LANES: usize = 8;

/// A neighbour list: the grid indices in the C's order and their bytes, element-major.
#[derive(Clone, Copy)]
pub(super) struct Neighbours<'a> {
    /// The grid indices, by (distance, index).
    pub ids: &'a [u16],
    /// Row `i` (`stride` bytes from `i * stride`) holds element `i` of every point, `2l + 1`.
    bytes: &'a [u8],
    stride: usize,
}

impl<'a> Neighbours<'a> {
    /// The bytes `2l + 1` of element `i` of points `c0..c0 + LANES` (past the end of the
    /// list: padding).
    #[inline(always)]
    pub(super) fn lanes(&self, i: usize, c0: usize) -> &'a [u8; LANES] {
        self.bytes[i * self.stride + c0..][..LANES]
            .try_into()
            .unwrap()
    }

    /// A list without points (lattice points no quantizer reaches with finite input).
    const EMPTY: Neighbours<'static> = Neighbours {
        ids: &[],
        bytes: &[],
        stride: 0,
    };
}

/// A lattice index that no quantizer produces for finite input.
const UNREACHABLE: i32 = i32::MIN;

impl<const D: usize> GridMap<D> {
    /// The lattice index of `levels` (`u |= l << bits*i`), or `None` when a level is outside
    /// the lattice (possible only for non-finite input).
    #[inline(always)]
    pub(super) fn index(&self, levels: &[i8]) -> Option<usize> {
        let mut u = 0usize;
        let top = (1i8 << self.bits) - 1;
        for (i, &l) in levels[..D].iter().enumerate() {
            if !(0..=top).contains(&l) {
                return None;
            }
            u |= (l as usize) << (self.bits as usize * i);
        }
        Some(u)
    }

    /// `Ok(grid index)` when lattice index `u` is a grid point, else `Err(its neighbours)`
    /// (empty only for points no quantizer reaches with finite input).
    #[inline(always)]
    pub(super) fn lookup(&self, u: usize) -> Result<u16, Neighbours<'_>> {
        match self.map.get(u) {
            Some(&g) if g >= 0 => Ok(g as u16),
            Some(&g) if g != UNREACHABLE => {
                let list = self.lists[(-(g + 1)) as usize];
                let (len, stride) = (
                    list.len as usize,
                    (list.len as usize).next_multiple_of(LANES),
                );
                Err(Neighbours {
                    ids: &self.ids[list.ids as usize..][..len],
                    bytes: &self.bytes[list.bytes as usize..][..D * stride],
                    stride,
                })
            }
            _ => Err(Neighbours::EMPTY),
        }
    }

    /// The grid index of the point whose levels are `levels`: the C's final `kmap_q*xs[u]`
    /// lookup, which aborts ("Oops: found point not on grid") when `levels` are not a grid
    /// point. That cannot happen for finite input; 0 is returned then.
    #[inline(always)]
    pub(super) fn grid_index(&self, levels: &[i8]) -> u16 {
        match self.index(levels).map(|u| self.lookup(u)) {
            Some(Ok(g)) => g,
            _ => 0,
        }
    }

    /// The levels of grid point `g`.
    #[inline(always)]
    pub(super) fn levels(&self, g: u16) -> &[i8; D] {
        &self.levels[g as usize]
    }

    /// `iq2_find_best_neighbour` / `iq3_find_best_neighbour`: the neighbour minimizing
    /// `Σ w·(scale·q - x)²` over its elements in order (first one on ties), its levels
    /// written to `l`. [`LANES`] neighbours' sums are computed side by side, each with the
    /// C's operations in the C's order.
    ///
    /// The C asserts that one is found; when none is (NaN or infinite distances, never for
    /// finite input), the first neighbour (or grid point 0) is taken.
    #[inline(always)]
    pub(super) fn best_neighbour(
        &self,
        nb: Neighbours<'_>,
        x: &[f32],
        w: &[f32],
        scale: f32,
        l: &mut [i8],
    ) -> u16 {
        let (x, w): (&[f32; D], &[f32; D]) =
            (x[..D].try_into().unwrap(), w[..D].try_into().unwrap());
        let g = nearest(nb, x, w, scale, |p| p as f32)
            .or(nb.ids.first().copied())
            .unwrap_or(0);
        l[..D].copy_from_slice(self.levels(g));
        g
    }
}

/// The neighbour of `nb` with the smallest `Σ_i w[i]·(scale·value(byte) - x[i])²` summed over
/// `i` in order, the first one on ties; distances that are NaN or not below `f32::MAX` never
/// win (`None` when none does).
#[inline(always)]
pub(super) fn nearest<const D: usize>(
    nb: Neighbours<'_>,
    x: &[f32; D],
    w: &[f32; D],
    scale: f32,
    value: impl Fn(u8) -> f32,
) -> Option<u16> {
    let n = nb.ids.len();
    // Per lane: the smallest distance seen (NaN never counts) and the first chunk where it
    // was seen. The C's sequential `d2 < best_d2` scan (from FLT_MAX) ends on the first point
    // of the smallest distance, if that is below FLT_MAX: the lane minima give it.
    let mut lane_min = [f32::INFINITY; LANES];
    let mut lane_at = [0u32; LANES];
    let mut chunk = 0u32;
    let mut c0 = 0;
    while c0 < n {
        let mut d2 = [0.0f32; LANES];
        for i in 0..D {
            let (xi, wi) = (x[i], w[i]);
            for (d, &p) in d2.iter_mut().zip(nb.lanes(i, c0)) {
                let diff = scale * value(p) - xi;
                *d += wi * diff * diff;
            }
        }
        for c in 0..LANES {
            let d = if c0 + c < n { d2[c] } else { f32::INFINITY };
            let better = d < lane_min[c];
            lane_min[c] = if better { d } else { lane_min[c] };
            lane_at[c] = if better { chunk } else { lane_at[c] };
        }
        chunk += 1;
        c0 += LANES;
    }
    let mut m = f32::INFINITY;
    for &d in &lane_min {
        m = if d < m { d } else { m };
    }
    // NaN and distances not below FLT_MAX never win in the C.
    let below_max = m < f32::MAX;
    let mut best = usize::MAX;
    for c in 0..LANES {
        if lane_min[c] == m {
            best = best.min(lane_at[c] as usize * LANES + c);
        }
    }
    below_max.then(|| nb.ids[best])
}

/// Each grid point's levels: the rank of each element among the distinct values of the grid.
fn ranks<const D: usize>(points: &[[i16; D]]) -> Vec<[i8; D]> {
    let mut values: Vec<i16> = points.iter().flatten().copied().collect();
    values.sort_unstable();
    values.dedup();
    points
        .iter()
        .map(|p| p.map(|v| values.binary_search(&v).unwrap() as i8))
        .collect()
}

/// The neighbour map of a grid (`iq2xs_init_impl` / `iq3xs_init_impl`): for every lattice
/// point with levels in `0..=reach` that is not on the grid, the grid points at its `nwant`
/// smallest squared distances, ordered by (distance, grid index).
fn build<const D: usize>(levels: Vec<[i8; D]>, bits: u32, reach: i8, nwant: usize) -> GridMap<D> {
    let n = levels.len();
    let size = 1usize << (bits as usize * D);
    let mut map = vec![UNREACHABLE; size].into_boxed_slice();
    let index = |l: &[i8; D]| {
        l.iter()
            .enumerate()
            .fold(0usize, |u, (i, &v)| u | (v as usize) << (bits as usize * i))
    };
    for (g, l) in levels.iter().enumerate() {
        map[index(l)] = g as i32;
    }
    // The grid's coordinates 2l + 1, one column per element, so that the distances of one
    // lattice point to every grid point are computed lane-parallel.
    let cols: Vec<Vec<i16>> = (0..D)
        .map(|k| levels.iter().map(|l| 2 * i16::from(l[k]) + 1).collect())
        .collect();
    let mut d2 = vec![0i16; n];
    let mut near: Vec<(i16, u16)> = Vec::new();
    let (mut lists, mut ids, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    for u in 0..size {
        if map[u] >= 0 {
            continue;
        }
        let l: [i8; D] =
            std::array::from_fn(|k| ((u >> (bits as usize * k)) & ((1 << bits) - 1)) as i8);
        if l.iter().any(|&v| v > reach) {
            continue;
        }
        d2.fill(0);
        for (col, &lk) in cols.iter().zip(&l) {
            let p = 2 * i16::from(lk) + 1;
            for (d, &g) in d2.iter_mut().zip(col) {
                let t = g - p;
                *d += t * t;
            }
        }
        // Coordinates are odd, so every difference is even and every distance a multiple of
        // 4; the distinct distances / 4 are below 256 for these grids.
        let mut seen = [0u64; 4];
        for &d in &d2 {
            let v = (d >> 2) as usize;
            seen[v >> 6] |= 1 << (v & 63);
        }
        // The nwant-th smallest distinct distance (the largest one when there are fewer).
        let mut have = 0;
        let mut limit = 0i16;
        'find: for (wi, &word) in seen.iter().enumerate() {
            let mut bitsleft = word;
            while bitsleft != 0 {
                let b = bitsleft.trailing_zeros() as usize;
                bitsleft &= bitsleft - 1;
                limit = ((wi * 64 + b) << 2) as i16;
                have += 1;
                if have == nwant {
                    break 'find;
                }
            }
        }
        near.clear();
        near.extend(
            d2.iter()
                .enumerate()
                .filter(|&(_, &d)| d <= limit)
                .map(|(j, &d)| (d, j as u16)),
        );
        near.sort_unstable();
        map[u] = -(lists.len() as i32 + 1);
        lists.push(List {
            ids: ids.len() as u32,
            bytes: bytes.len() as u32,
            len: near.len() as u16,
        });
        ids.extend(near.iter().map(|&(_, j)| j));
        let stride = near.len().next_multiple_of(LANES);
        for col in &cols {
            let row = bytes.len();
            bytes.extend(near.iter().map(|&(_, j)| col[j as usize] as u8));
            bytes.resize(row + stride, 0);
        }
    }
    GridMap {
        levels: levels.into_boxed_slice(),
        map,
        lists: lists.into_boxed_slice(),
        ids: ids.into_boxed_slice(),
        bytes: bytes.into_boxed_slice(),
        bits,
    }
}

fn widen<const D: usize, T: Copy + Into<i16>>(grid: &[[T; D]]) -> Vec<[i16; D]> {
    grid.iter().map(|p| p.map(Into::into)).collect()
}

fn build2(grid: &[[u8; 8]], nwant: usize) -> GridMap<8> {
    build(ranks(&widen(grid)), 2, 2, nwant)
}

fn build3(grid: &[[u8; 4]], nwant: usize) -> GridMap<4> {
    build(ranks(&widen(grid)), 3, 7, nwant)
}

/// The IQ2_XXS grid (`kgrid_2bit_256`, 2 distances per neighbour list).
pub(super) fn iq2xxs() -> &'static GridMap<8> {
    static M: OnceLock<GridMap<8>> = OnceLock::new();
    M.get_or_init(|| build2(&IQ2XXS, 2))
}

/// The IQ2_XS grid (`kgrid_2bit_512`, 2 distances).
pub(super) fn iq2xs() -> &'static GridMap<8> {
    static M: OnceLock<GridMap<8>> = OnceLock::new();
    M.get_or_init(|| build2(&IQ2XS, 2))
}

/// The IQ2_S grid (`kgrid_2bit_1024`, 1 distance).
pub(super) fn iq2s() -> &'static GridMap<8> {
    static M: OnceLock<GridMap<8>> = OnceLock::new();
    M.get_or_init(|| build2(&IQ2S, 1))
}

/// The IQ1_S and IQ1_M grid (`kgrid_1bit_2048`, 3 distances): values -1, 0, 1 are levels
/// 0, 1, 2.
pub(super) fn iq1() -> &'static GridMap<8> {
    static M: OnceLock<GridMap<8>> = OnceLock::new();
    M.get_or_init(|| build(ranks(&widen(&IQ1S)), 2, 2, 3))
}

/// The IQ3_XXS grid (`kgrid_256`, 2 distances).
pub(super) fn iq3xxs() -> &'static GridMap<4> {
    static M: OnceLock<GridMap<4>> = OnceLock::new();
    M.get_or_init(|| build3(&IQ3XXS, 2))
}

/// The IQ3_S grid (`kgrid_512`, 3 distances).
pub(super) fn iq3s() -> &'static GridMap<4> {
    static M: OnceLock<GridMap<4>> = OnceLock::new();
    M.get_or_init(|| build3(&IQ3S, 3))
}

#[cfg(test)]
pub(super) mod reference {
    //! The C's construction, kept naive for the tests: all distances, a sort on (distance,
    //! index), and the cut after `nwant` distinct distances.

    use super::GridMap;

    /// The neighbour list of lattice index `u` as `iq2xs_init_impl` builds it.
    pub(in super::super) fn neighbours<const D: usize>(
        m: &GridMap<D>,
        u: usize,
        nwant: usize,
    ) -> Vec<u16> {
        let pos: Vec<i32> = (0..D)
            .map(|k| 2 * ((u >> (m.bits as usize * k)) & ((1 << m.bits) - 1)) as i32 + 1)
            .collect();
        let mut dist2: Vec<(i32, i32)> = m
            .levels
            .iter()
            .enumerate()
            .map(|(j, l)| {
                let d2 = (0..D)
                    .map(|k| {
                        let t = 2 * l[k] as i32 + 1 - pos[k];
                        t * t
                    })
                    .sum();
                (d2, j as i32)
            })
            .collect();
        dist2.sort();
        let mut out = Vec::new();
        let (mut d2, mut nhave) = (dist2[0].0, 1);
        for &(d, j) in &dist2 {
            if d > d2 {
                if nhave == nwant {
                    break;
                }
                d2 = d;
                nhave += 1;
            }
            out.push(j as u16);
        }
        out
    }
}
