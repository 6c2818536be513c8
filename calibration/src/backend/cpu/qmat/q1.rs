//! Q4_1 and Q5_1 weights times Q8_1 activations (`ggml_vec_dot_q{4,5}_1_q8_1`, x86 AVX2).

use qforge_formats::ggml::GgmlType;

/// Whether `ty` has a kernel here.
pub fn supports(ty: GgmlType) -> bool {
    let _ = ty;
    false
}

/// Activation rows quantized to Q8_1.
#[derive(Debug, Default)]
pub struct Q8_1Rows;

impl Q8_1Rows {
    /// Quantizes `n` rows of `k`.
    pub fn quantize(x: &[f32], n: usize, k: usize) -> Self {
        let _ = (x, n, k);
        Q8_1Rows
    }
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
    a: &Q8_1Rows,
    out: &mut [f32],
) {
    let _ = (raw, row_bytes, r0, nr, k, a, out);
    unreachable!("no kernel for {ty}")
}
