//! Q4_K weights repacked 8x8 (`ggml_gemm_q4_K_8x8_q8_K` / `ggml_gemv_q4_K_8x8_q8_K`, x86 AVX2).

use super::q8::Q8KRows;

/// The activations as the repacked path quantizes them.
pub fn quantize_acts(x: &[f32], n: usize, k: usize) -> Q8KRows {
    Q8KRows::quantize(x, n, k)
}

/// `out (n × nr) = a · wᵀ` for weight rows `r0..r0 + nr` of `raw` (`row_bytes` per row of `k`).
pub fn band(
    raw: &[u8],
    row_bytes: usize,
    r0: usize,
    nr: usize,
    k: usize,
    a: &Q8KRows,
    out: &mut [f32],
) {
    let _ = (raw, row_bytes, r0, nr, k, a, out);
    unreachable!("repacked Q4_K")
}
