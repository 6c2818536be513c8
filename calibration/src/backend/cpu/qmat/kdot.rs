//! K-quant weights (Q2_K..Q6_K) times Q8_K activations in the order of `ggml_vec_dot_q*_K_q8_K` (x86 AVX2).

use super::q8::Q8KRows;
use qforge_formats::ggml::GgmlType;

/// Whether `ty` has a kernel here.
pub fn supports(ty: GgmlType) -> bool {
    let _ = ty;
    false
}

/// `out (n × nr) = a · wᵀ` for weight rows `r0..r0 + nr` of `raw` (`row_bytes` per row of `k`).
#[allow(clippy::too_many_arguments)]
pub fn band(
    ty: GgmlType,
    raw: &[u8],
    row_bytes: usize,
    r0: usize,
    nr: usize,
    k: usize,
    a: &Q8KRows,
    out: &mut [f32],
) {
    let _ = (raw, row_bytes, r0, nr, k, a, out);
    unreachable!("no kernel for {ty}")
}
