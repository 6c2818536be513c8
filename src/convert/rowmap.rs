//! Where each row of a transformed piece comes from: the row-moving transforms of a
//! [`Piece`](super::plan::Piece) (`data[:n]`, the Q/K head permutation) reduced to a list of
//! contiguous runs of source rows, so that a piece can be read straight from its stored bytes.

use super::plan::Op;

/// A run of `len` consecutive rows starting at source row `src`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First source row.
    pub src: usize,
    /// Number of rows.
    pub len: usize,
}

/// The output rows of a piece, in order, as runs of source rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowMap {
    runs: Vec<Run>,
    /// Elements per row (the product of the shape's inner dimensions).
    pub row_len: usize,
}

impl RowMap {
    /// The row map of a piece of `shape` (outermost first) after the row-moving `ops`
    /// (element-wise ops are ignored here).
    pub fn new(shape: &[u64], ops: &[Op]) -> RowMap {
        let rows = shape.first().copied().unwrap_or(1) as usize;
        let row_len = shape.iter().skip(1).product::<u64>() as usize;
        if !ops
            .iter()
            .any(|op| matches!(op, Op::PermuteHeads(_) | Op::TruncateRows(_)))
        {
            return RowMap {
                runs: vec![Run { src: 0, len: rows }],
                row_len,
            };
        }
        let mut map: Vec<usize> = (0..rows).collect();
        for op in ops {
            match *op {
                Op::TruncateRows(n) => map.truncate(n as usize),
                Op::PermuteHeads(heads) => map = permute_rows(&map, heads as usize),
                Op::AddScalar(_) => {}
            }
        }
        let mut runs: Vec<Run> = Vec::new();
        for src in map {
            match runs.last_mut() {
                Some(r) if r.src + r.len == src => r.len += 1,
                _ => runs.push(Run { src, len: 1 }),
            }
        }
        RowMap { runs, row_len }
    }

    /// The runs, in output order.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Number of output rows.
    pub fn rows(&self) -> usize {
        self.runs.iter().map(|r| r.len).sum()
    }

    /// Whether the piece is a prefix of its source, rows in stored order.
    pub fn is_contiguous(&self) -> bool {
        self.runs.len() <= 1 && self.runs.first().is_none_or(|r| r.src == 0)
    }

    /// Calls `f(src_element, n)` for the source element ranges that make up output elements
    /// `start..start + len` of the piece, in order.
    pub fn for_each_span(&self, start: usize, len: usize, mut f: impl FnMut(usize, usize)) {
        if len == 0 {
            return;
        }
        let end = start + len;
        let mut pos = 0usize; // output element where the current run starts
        for r in &self.runs {
            let n = r.len * self.row_len;
            let (lo, hi) = (pos.max(start), (pos + n).min(end));
            if lo < hi {
                f(r.src * self.row_len + (lo - pos), hi - lo);
            }
            pos += n;
            if pos >= end {
                break;
            }
        }
    }
}

/// `w.reshape(heads, 2, d/2, ...).swapaxes(1, 2)` on row indices: within each head of `d` rows,
/// row `s*d/2 + i` moves to row `2*i + s`.
fn permute_rows(map: &[usize], heads: usize) -> Vec<usize> {
    let d = map.len() / heads.max(1);
    let half = d / 2;
    let mut out = map.to_vec();
    for h in 0..heads {
        for i in 0..half {
            for s in 0..2 {
                out[h * d + 2 * i + s] = map[h * d + s * half + i];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::materialize::permute_heads;

    /// The runs, applied to row numbers, give what the f32 permutation gives.
    #[test]
    fn permutation_matches_permute_heads() {
        let shape = [24u64, 3];
        let data: Vec<f32> = (0..72).map(|x| x as f32).collect();
        let want = permute_heads(&data, &shape, 3);
        let map = RowMap::new(&shape, &[Op::PermuteHeads(3)]);
        let mut got = Vec::new();
        map.for_each_span(0, 72, |s, n| got.extend_from_slice(&data[s..s + n]));
        assert_eq!(got, want);
        // a window in the middle, crossing rows
        let mut part = Vec::new();
        map.for_each_span(5, 20, |s, n| part.extend_from_slice(&data[s..s + n]));
        assert_eq!(part, want[5..25]);
    }

    #[test]
    fn truncate_then_identity_is_contiguous() {
        let map = RowMap::new(&[10, 4], &[Op::TruncateRows(7), Op::AddScalar(1.0)]);
        assert!(map.is_contiguous());
        assert_eq!(map.rows(), 7);
        assert_eq!(map.runs(), &[Run { src: 0, len: 7 }]);
        let permuted = RowMap::new(&[8, 4], &[Op::PermuteHeads(2)]);
        assert!(!permuted.is_contiguous());
        assert_eq!(permuted.rows(), 8);
    }
}
