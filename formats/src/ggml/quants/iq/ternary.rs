//! Pieces shared by llama.cpp's IQ1_S and IQ1_M quantizers (`quantize_row_iq1_s_impl`,
//! `quantize_row_iq1_m_impl`): the sort of a group's values that precedes the exhaustive
//! split into the three levels -1, 0, 1, and the grid-neighbour search
//! `iq1_find_best_neighbour2`.

use super::neighbours::{nearest, GridMap, Neighbours};
use super::tables::NGRID_IQ1S;

/// A group's values with their positions, sorted as the C's
/// `qsort(pairs, n, 2*sizeof(float), iq1_sort_helper)` leaves them.
///
/// glibc's `qsort` is a merge sort (`msort_with_tmp`) for arrays this small: halves of
/// `n/2` and `n - n/2` elements sorted recursively, then merged taking the left element
/// unless the comparator says it is greater. Reproduced as is, so equal values (and NaN,
/// which the comparator calls equal to everything) keep the C's order.
pub(super) fn sort_pairs<const N: usize>(xb: &[f32]) -> [(f32, u8); N] {
    let mut pairs: [(f32, u8); N] = std::array::from_fn(|j| (xb[j], j as u8));
    let mut tmp = [(0.0f32, 0u8); N];
    msort(&mut pairs, &mut tmp);
    pairs
}

fn msort(b: &mut [(f32, u8)], tmp: &mut [(f32, u8)]) {
    let n = b.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    {
        let (b1, b2) = b.split_at_mut(n1);
        msort(b1, tmp);
        msort(b2, tmp);
    }
    let (mut i, mut j, mut k) = (0, n1, 0);
    while i < n1 && j < n {
        // iq1_sort_helper(l, r) <= 0 unless l > r.
        if b[i].0 > b[j].0 {
            tmp[k] = b[j];
            j += 1;
        } else {
            tmp[k] = b[i];
            i += 1;
        }
        k += 1;
    }
    while i < n1 {
        tmp[k] = b[i];
        i += 1;
        k += 1;
    }
    b[..k].copy_from_slice(&tmp[..k]);
}

/// `iq1_find_best_neighbour2`: the neighbour of smallest `Σ w·(scale·xx[l] - x)²` (first
/// one on ties), its levels written to `l`.
///
/// When no neighbour's distance is below `FLT_MAX` (infinite or NaN distances) the C scans
/// the whole grid reading `xval[i]` with the grid index `i`, out of the array's bounds; the
/// whole grid is scanned here with the element's own value instead.
#[inline(always)]
pub(super) fn best_neighbour(
    grid: &GridMap<8>,
    nb: Neighbours<'_>,
    x: &[f32],
    w: &[f32],
    scale: f32,
    xx: &[f32; 3],
    l: &mut [i8],
) -> u16 {
    let (x, w): (&[f32; 8], &[f32; 8]) = (x[..8].try_into().unwrap(), w[..8].try_into().unwrap());
    // Grid bytes 1, 3, 5 stand for xx[0], xx[1], xx[2], which are -1, 0, 1 plus the same
    // offset, exactly: computed as such, without a lookup, so the lanes stay branch-free.
    debug_assert!((0..3).all(|l| (l as f32 - 1.0) + xx[1] == xx[l]));
    let value = |p: u8| (i32::from(p >> 1) - 1) as f32 + xx[1];
    let g = nearest(nb, x, w, scale, value).unwrap_or_else(|| {
        let mut best_score = f32::MAX;
        let mut best = 0;
        for g in 0..NGRID_IQ1S as u16 {
            let lv = grid.levels(g);
            let mut d2 = 0.0f32;
            for i in 0..8 {
                let diff = scale * xx[lv[i] as usize] - x[i];
                d2 += w[i] * diff * diff;
            }
            if d2 < best_score {
                best_score = d2;
                best = g;
            }
        }
        best
    });
    l[..8].copy_from_slice(grid.levels(g));
    g
}

/// The grid indices of the 8-element groups of `l` (levels 0, 1, 2 for -1, 0, 1): each
/// group's own index when it is a grid point, else its best neighbour's (whose levels then
/// replace the group's). Returns whether all groups were on the grid.
#[inline(always)]
pub(super) fn snap_to_grid<const G: usize>(
    grid: &GridMap<8>,
    l: &mut [i8],
    xb: &[f32],
    weight: &[f32],
    scale: f32,
    xx: impl Fn(usize) -> &'static [f32; 3],
    index: &mut [u16; G],
) -> bool {
    let mut all_on_grid = true;
    for (k, ix) in index.iter_mut().enumerate() {
        let r = 8 * k..8 * k + 8;
        let found = grid.index(&l[r.clone()]).map(|u| grid.lookup(u));
        *ix = match found {
            Some(Ok(g)) => g,
            Some(Err(list)) => {
                all_on_grid = false;
                let (x, w) = (&xb[r.clone()], &weight[r.clone()]);
                best_neighbour(grid, list, x, w, scale, xx(k), &mut l[r])
            }
            None => {
                all_on_grid = false;
                0
            }
        };
    }
    all_on_grid
}
