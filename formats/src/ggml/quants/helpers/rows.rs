//! Row iteration of the per-row `quantize_*` loops.

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
