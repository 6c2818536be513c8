//! Computing an output tensor's values from its pieces, with the transforms applied in the
//! tensor's working dtype (f16 arithmetic is rounded to f16, as torch does on CPU).

use super::error::ConvertError;
use super::plan::{Input, Op, PlannedTensor};
use super::source::Sources;
use qforge_formats::ggml::fp::round_f16;

/// The values of `t` in numpy (row-major) order, before the output-type conversion.
pub fn values(sources: &Sources, t: &PlannedTensor) -> Result<Vec<f32>, ConvertError> {
    // One piece is returned as computed; stacked pieces are appended to one buffer, so the
    // peak is the tensor plus one piece (never two copies of the whole tensor).
    let mut out = if t.pieces.len() == 1 {
        Vec::new()
    } else {
        Vec::with_capacity(t.n_elements() as usize)
    };
    for piece in &t.pieces {
        let (mut data, mut shape) = match &piece.input {
            Input::Generated(v) => (v.as_ref().clone(), vec![v.len() as u64]),
            Input::Source(i) => {
                let s = &sources.tensors[*i];
                (sources.read_f32(s)?, s.shape.clone())
            }
        };
        for op in &piece.ops {
            match *op {
                Op::AddScalar(c) => {
                    for v in &mut data {
                        *v = if t.f16 { round_f16(*v + c) } else { *v + c };
                    }
                }
                Op::TruncateRows(n) => {
                    let row: u64 = shape[1..].iter().product();
                    data.truncate((n * row) as usize);
                    shape[0] = n;
                }
                Op::PermuteHeads(heads) => data = permute_heads(&data, &shape, heads),
            }
        }
        if t.pieces.len() == 1 {
            out = data;
        } else {
            out.extend_from_slice(&data);
        }
    }
    if out.len() as u64 != t.n_elements() {
        return Err(ConvertError::Usage(format!(
            "internal: tensor {} computed {} values for shape {:?}",
            t.name,
            out.len(),
            t.shape
        )));
    }
    Ok(out)
}

/// `w.reshape(heads, 2, rows/heads/2, *rest).swapaxes(1, 2).reshape(w.shape)`: within each head
/// of `d` rows, row `s*d/2 + i` moves to row `2*i + s`.
pub fn permute_heads(data: &[f32], shape: &[u64], heads: u64) -> Vec<f32> {
    let rows = shape.first().copied().unwrap_or(1) as usize;
    let row: usize = shape.iter().skip(1).product::<u64>() as usize;
    let d = rows / heads as usize;
    let half = d / 2;
    let mut out = vec![0f32; data.len()];
    for h in 0..heads as usize {
        for i in 0..half {
            for s in 0..2 {
                let src = h * d + s * half + i;
                let dst = h * d + 2 * i + s;
                out[dst * row..(dst + 1) * row].copy_from_slice(&data[src * row..(src + 1) * row]);
            }
        }
    }
    out
}
