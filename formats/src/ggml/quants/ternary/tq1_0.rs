//! TQ1_0: 256 trits per block packed in base 3: 48 bytes of five trits, 4 bytes of four trits,
//! then the fp16 scale (`quantize_row_tq1_0_ref` / `dequantize_row_tq1_0`).
//!
//! A byte holds `ceil(t * 256 / 243)` for the base-3 number `t` of its trits, so the `n`-th trit
//! is the top byte of `(byte * 3^n mod 256) * 3`.

use super::{block_amax, inverse_scale, trit_index};
use crate::ggml::fp::{read_f16, write_f16};
use crate::ggml::types::QK_K;

/// Bytes holding five trits each: 32 bytes for the first 160 values, 16 for the next 80.
const QS: usize = (QK_K - 4 * QK_K / 64) / 5;
/// Bytes holding four trits each (the last 16 values).
const QH: usize = QK_K / 64;
/// Bytes per block.
const BLOCK: usize = QS + QH + 2;
/// Powers of three, as the `uint8_t pow3[6]` table.
const POW3: [u8; 6] = [1, 3, 9, 27, 81, 243];

/// The `n`-th trit of `byte` minus one, as a float.
#[inline]
fn trit(byte: u8, n: usize) -> f32 {
    let q = byte.wrapping_mul(POW3[n]);
    let xi = ((q as u16 * 3) >> 8) as i16;
    (xi - 1) as f32
}

/// Dequantizes whole TQ1_0 blocks.
pub(super) fn dequantize(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(BLOCK).zip(dst.chunks_exact_mut(QK_K)) {
        let d = read_f16(&b[QS + QH..]);
        let (y5a, rest) = y.split_at_mut(160);
        let (y5b, y4) = rest.split_at_mut(80);
        for (n, y) in y5a.chunks_exact_mut(32).enumerate() {
            for (y, &q) in y.iter_mut().zip(&b[..32]) {
                *y = trit(q, n) * d;
            }
        }
        for (n, y) in y5b.chunks_exact_mut(16).enumerate() {
            for (y, &q) in y.iter_mut().zip(&b[32..QS]) {
                *y = trit(q, n) * d;
            }
        }
        for (n, y) in y4.chunks_exact_mut(QH).enumerate() {
            for (y, &q) in y.iter_mut().zip(&b[QS..QS + QH]) {
                *y = trit(q, n) * d;
            }
        }
    }
}

/// Packs `count` trits of `x` taken at stride `stride` from `x[0]` into one byte, most
/// significant trit first, then `extra` more multiplications by three (the `qh` bytes shift
/// their four trits up to the top position), and rounds up to the byte encoding.
#[inline]
fn pack(x: &[f32], id: f32, count: usize, stride: usize, extra: bool) -> u8 {
    let mut q = 0u8;
    for n in 0..count {
        let xi = trit_index(x[n * stride] * id);
        q = q.wrapping_mul(3).wrapping_add(xi as u8);
    }
    if extra {
        q = q.wrapping_mul(3);
    }
    // ceiling division (243 == 3^5), `(q * 256 + 242) / 243` in ggml
    (q as u32 * 256).div_ceil(243) as u8
}

/// Quantizes whole rows to TQ1_0 (`quantize_tq1_0`, which ignores importance weights).
pub(super) fn quantize(src: &[f32], dst: &mut [u8], _n_per_row: usize, _imatrix: Option<&[f32]>) {
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(BLOCK)) {
        let d = block_amax(x);
        let id = inverse_scale(d);
        write_f16(&mut b[QS + QH..], d);
        let (x5a, rest) = x.split_at(160);
        let (x5b, x4) = rest.split_at(80);
        for m in 0..32 {
            b[m] = pack(&x5a[m..], id, 5, 32, false);
        }
        for m in 0..16 {
            b[32 + m] = pack(&x5b[m..], id, 5, 16, false);
        }
        for j in 0..QH {
            b[QS + j] = pack(&x4[j..], id, 4, QH, true);
        }
    }
}
