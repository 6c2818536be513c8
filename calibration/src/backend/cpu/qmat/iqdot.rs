//! IQ weights times Q8_K activations in the two orders llama.cpp's x86 AVX2 CPU backend uses for
//! them. No IQ type has a llamafile tinyBLAS case or a repacked layout on x86; a `mul_mat` (or
//! one expert of a `mul_mat_id`) with at least [`TILED_MIN_ROWS`] input rows takes the tiled
//! kernel (`ggml-cpu/tiled`, on unless `GGML_CPU_TILED_MM=0`), fewer rows one `vec_dot` per
//! output (`ggml_vec_dot_<type>_q8_K`, AVX2):
//!
//! - `vec_dot`: per 256-value super-block, eight integer lanes, lane `l` holding `Σ_sub-block
//!   scale · (products of values 4l..4l+3 of each 32 values)`; each lane converted to f32 and
//!   fused-multiply-added with `fp16(d_w) * d_a` into its accumulator; `hsum_float_8` at the end,
//!   times the power of two the integer scales `2·ls + 1` leave out (IQ2_*: 0.125, IQ3_XXS:
//!   0.25). IQ1_S and IQ1_M carry the `±1/8` offsets (`delta`) separately: IQ1_S as one integer
//!   per super-block, `acc1 = fma(d, (f32)sum, acc1)`, result `hsum + 0.125 · acc1`; IQ1_M in a
//!   second 8-lane accumulator, result `hsum(acc) + 0.125 · hsum(acc2)`.
//! - tiled (`tiled_run_microtile_avx2`): per super-block the whole integer sum `s` (exact: the
//!   kernel's `+128` activation bias and its correction cancel in integers; IQ1 values are
//!   `8 · grid ± 1`), then `acc = fma((fp16(d_w) · c) · (f32)s, d_a, acc)` with `c` the power of
//!   two above (IQ1: 0.125), super-blocks in order from `acc = 0`.

use super::super::tinyblas::hsum;
use super::q8::Q8KRows;
use half::f16;
use qforge_formats::ggml::quants::{IQ1S, IQ2S, IQ2XS, IQ2XXS, IQ3S, IQ3XXS};
use qforge_formats::ggml::GgmlType;

/// IQ4_NL / IQ4_XS non-linear values (`kvalues_iq4nl`).
const IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// Input rows from which llama.cpp takes its tiled kernel (`ggml_tiled_min_batch`).
pub const TILED_MIN_ROWS: usize = 8;

/// The IQ types with a kernel here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Iq4Xs,
    Iq3S,
    Iq2Xxs,
    Iq3Xxs,
    Iq2Xs,
    Iq2S,
    Iq1S,
    Iq1M,
}

impl Kind {
    fn of(ty: GgmlType) -> Option<Kind> {
        match ty {
            GgmlType::IQ4_XS => Some(Kind::Iq4Xs),
            GgmlType::IQ3_S => Some(Kind::Iq3S),
            GgmlType::IQ2_XXS => Some(Kind::Iq2Xxs),
            GgmlType::IQ3_XXS => Some(Kind::Iq3Xxs),
            GgmlType::IQ2_XS => Some(Kind::Iq2Xs),
            GgmlType::IQ2_S => Some(Kind::Iq2S),
            GgmlType::IQ1_S => Some(Kind::Iq1S),
            GgmlType::IQ1_M => Some(Kind::Iq1M),
            _ => None,
        }
    }

    /// Bytes of one 256-value block.
    fn block_bytes(self) -> usize {
        match self {
            Kind::Iq4Xs => 136,
            Kind::Iq3S => 110,
            Kind::Iq2Xxs => 66,
            Kind::Iq3Xxs => 98,
            Kind::Iq2Xs => 74,
            Kind::Iq2S => 82,
            Kind::Iq1S => 50,
            Kind::Iq1M => 56,
        }
    }

    /// The power of two the integer scales leave out: `vec_dot` multiplies the final `hsum` by
    /// it, the tiled kernel folds it into `d_w` (`fp16(d) * c`); both exact scalings of the
    /// types' `d · (0.5 + ls) · 0.25`-style dequantization with scales `2·ls + 1`.
    fn post(self) -> f32 {
        match self {
            Kind::Iq4Xs | Kind::Iq3S => 1.0,
            Kind::Iq2Xxs | Kind::Iq2Xs | Kind::Iq2S | Kind::Iq1S | Kind::Iq1M => 0.125,
            Kind::Iq3Xxs => 0.25,
        }
    }
}

/// Whether `ty` has a kernel here.
pub fn supports(ty: GgmlType) -> bool {
    Kind::of(ty).is_some()
}

/// `ksigns_iq2xs[i]`: 7 sign bits and the parity bit that makes their count even.
fn sign_byte(i: u32) -> u8 {
    let i = (i & 127) as u8;
    i | (((i.count_ones() & 1) as u8) << 7)
}

/// Writes the magnitudes `g` with the sign bits `signs` (bit `j` negates value `j`).
fn put_signed(q: &mut [i8], g: &[u8], signs: u8) {
    for (j, (o, &v)) in q.iter_mut().zip(g).enumerate() {
        *o = if signs & (1 << j) != 0 {
            -(v as i8)
        } else {
            v as i8
        };
    }
}

/// Float steps after the integer sums, by type family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// One 8-lane accumulator.
    Plain,
    /// IQ1_S: the deltas' integer sum in a scalar accumulator.
    Iq1S,
    /// IQ1_M: the deltas' lanes in a second 8-lane accumulator.
    Iq1M,
}

impl Kind {
    fn mode(self) -> Mode {
        match self {
            Kind::Iq1S => Mode::Iq1S,
            Kind::Iq1M => Mode::Iq1M,
            _ => Mode::Plain,
        }
    }
}

/// One weight row decoded: signed values, per 16 values the integer scale, per 256 the
/// `d` (as f32, before [`Kind::post`]), and for IQ1 the sign of each value's delta.
struct Row {
    q: Vec<i8>,
    ls: Vec<i16>,
    d: Vec<f32>,
    /// IQ1_S/IQ1_M: `±1`, the sign of the `1/8` offset of each value (empty otherwise).
    dq: Vec<i8>,
}

impl Row {
    fn new(kind: Kind, k: usize) -> Self {
        Row {
            q: vec![0; k],
            ls: vec![0; k / 16],
            d: vec![0.0; k / 256],
            dq: vec![0; if kind.mode() == Mode::Plain { 0 } else { k }],
        }
    }

    /// Decodes one row of `kind` blocks.
    fn decode(&mut self, kind: Kind, raw: &[u8]) {
        let mut dqs = self.dq.chunks_exact_mut(256);
        for (((b, q), ls), d) in raw
            .chunks_exact(kind.block_bytes())
            .zip(self.q.chunks_exact_mut(256))
            .zip(self.ls.chunks_exact_mut(16))
            .zip(&mut self.d)
        {
            *d = f16::from_le_bytes([b[0], b[1]]).to_f32();
            let dq = dqs.next().unwrap_or_default();
            match kind {
                Kind::Iq4Xs => decode_iq4_xs(b, q, ls),
                Kind::Iq3S => decode_iq3_s(b, q, ls),
                Kind::Iq2Xxs => decode_iq2_xxs(b, q, ls),
                Kind::Iq3Xxs => decode_iq3_xxs(b, q, ls),
                Kind::Iq2Xs => decode_iq2_xs(b, q, ls),
                Kind::Iq2S => decode_iq2_s(b, q, ls),
                Kind::Iq1S => decode_iq1_s(b, q, ls, dq),
                Kind::Iq1M => *d = decode_iq1_m(b, q, ls, dq),
            }
        }
    }
}

/// IQ4_XS: `d`, `scales_h` (u16), `scales_l[4]`, `qs[128]`; 6-bit scales offset by 32.
fn decode_iq4_xs(b: &[u8], q: &mut [i8], ls: &mut [i16]) {
    let sh = u16::from_le_bytes([b[2], b[3]]);
    for ib in 0..8 {
        let lo = (b[4 + ib / 2] >> (4 * (ib % 2))) & 15;
        let hi = ((sh >> (2 * ib)) & 3) as u8;
        let l = (lo | (hi << 4)) as i16 - 32;
        ls[2 * ib] = l;
        ls[2 * ib + 1] = l;
    }
    for (qb, src) in q.chunks_exact_mut(32).zip(b[8..].chunks_exact(16)) {
        for (j, &v) in src.iter().enumerate() {
            qb[j] = IQ4NL[(v & 15) as usize];
            qb[j + 16] = IQ4NL[(v >> 4) as usize];
        }
    }
}

/// IQ3_S: `d`, `qs[64]`, `qh[8]`, `signs[32]`, `scales[4]` (4 bits per 32 values).
fn decode_iq3_s(b: &[u8], q: &mut [i8], ls: &mut [i16]) {
    let (qs, qh, signs, scales) = (&b[2..66], &b[66..74], &b[74..106], &b[106..110]);
    for ib in 0..8 {
        let l = 2 * ((scales[ib / 2] >> (4 * (ib % 2))) & 15) as i16 + 1;
        ls[2 * ib] = l;
        ls[2 * ib + 1] = l;
        let h = qh[ib] as usize;
        for l in 0..4 {
            let i1 = qs[8 * ib + 2 * l] as usize | ((h << (8 - 2 * l)) & 256);
            let i2 = qs[8 * ib + 2 * l + 1] as usize | ((h << (7 - 2 * l)) & 256);
            let mut g = [0u8; 8];
            g[..4].copy_from_slice(&IQ3S[i1]);
            g[4..].copy_from_slice(&IQ3S[i2]);
            put_signed(&mut q[32 * ib + 8 * l..][..8], &g, signs[4 * ib + l]);
        }
    }
}

/// IQ2_XXS: `d`, per 32 values 4 grid bytes and a u32 of four 7-bit sign indices and the 4-bit
/// scale.
fn decode_iq2_xxs(b: &[u8], q: &mut [i8], ls: &mut [i16]) {
    for ib in 0..8 {
        let g = &b[2 + 8 * ib..][..8];
        let aux = u32::from_le_bytes([g[4], g[5], g[6], g[7]]);
        let l = 2 * (aux >> 28) as i16 + 1;
        ls[2 * ib] = l;
        ls[2 * ib + 1] = l;
        for l in 0..4 {
            let s = sign_byte(aux >> (7 * l));
            put_signed(&mut q[32 * ib + 8 * l..][..8], &IQ2XXS[g[l] as usize], s);
        }
    }
}

/// IQ3_XXS: `d`, `qs[64]` grid bytes, then per 32 values a u32 of four 7-bit sign indices and
/// the 4-bit scale.
fn decode_iq3_xxs(b: &[u8], q: &mut [i8], ls: &mut [i16]) {
    let (qs, gas) = (&b[2..66], &b[66..98]);
    for ib in 0..8 {
        let aux = u32::from_le_bytes([
            gas[4 * ib],
            gas[4 * ib + 1],
            gas[4 * ib + 2],
            gas[4 * ib + 3],
        ]);
        let l = 2 * (aux >> 28) as i16 + 1;
        ls[2 * ib] = l;
        ls[2 * ib + 1] = l;
        for l in 0..4 {
            let mut g = [0u8; 8];
            g[..4].copy_from_slice(&IQ3XXS[qs[8 * ib + 2 * l] as usize]);
            g[4..].copy_from_slice(&IQ3XXS[qs[8 * ib + 2 * l + 1] as usize]);
            put_signed(
                &mut q[32 * ib + 8 * l..][..8],
                &g,
                sign_byte(aux >> (7 * l)),
            );
        }
    }
}

/// IQ2_XS: `d`, `qs[32]` (u16: 9-bit grid index, 7-bit sign index), `scales[8]` (4 bits per
/// 16 values).
fn decode_iq2_xs(b: &[u8], q: &mut [i8], ls: &mut [i16]) {
    let (qs, scales) = (&b[2..66], &b[66..74]);
    for (i, l) in ls.iter_mut().enumerate() {
        *l = 2 * ((scales[i / 2] >> (4 * (i % 2))) & 15) as i16 + 1;
    }
    for (g, v) in q.chunks_exact_mut(8).zip(qs.chunks_exact(2)) {
        let v = u16::from_le_bytes([v[0], v[1]]) as u32;
        put_signed(g, &IQ2XS[(v & 511) as usize], sign_byte(v >> 9));
    }
}

/// IQ2_S: `d`, `qs[32]` (low 8 bits of the grid indices), `signs[32]`, `qh[8]` (2 high bits
/// per index), `scales[8]` (4 bits per 16 values).
fn decode_iq2_s(b: &[u8], q: &mut [i8], ls: &mut [i16]) {
    let (qs, signs, qh, scales) = (&b[2..34], &b[34..66], &b[66..74], &b[74..82]);
    for (i, l) in ls.iter_mut().enumerate() {
        *l = 2 * ((scales[i / 2] >> (4 * (i % 2))) & 15) as i16 + 1;
    }
    for (i, g) in q.chunks_exact_mut(8).enumerate() {
        let (ib, l) = (i / 4, i % 4);
        let idx = qs[i] as usize | ((qh[ib] as usize) << (8 - 2 * l) & 0x300);
        put_signed(g, &IQ2S[idx], signs[i]);
    }
}

/// IQ1_S: `d`, `qs[32]` (low 8 bits of the grid indices), `qh[8]` (u16 per 32 values: 3 high
/// bits per index, the 3-bit scale, the delta's sign).
fn decode_iq1_s(b: &[u8], q: &mut [i8], ls: &mut [i16], dq: &mut [i8]) {
    let (qs, qh) = (&b[2..34], &b[34..50]);
    for ib in 0..8 {
        let h = u16::from_le_bytes([qh[2 * ib], qh[2 * ib + 1]]) as usize;
        let l = 2 * ((h >> 12) & 7) as i16 + 1;
        ls[2 * ib] = l;
        ls[2 * ib + 1] = l;
        dq[32 * ib..][..32].fill(if h & 0x8000 != 0 { -1 } else { 1 });
        for l in 0..4 {
            let idx = qs[4 * ib + l] as usize | (((h >> (3 * l)) & 7) << 8);
            q[32 * ib + 8 * l..][..8].copy_from_slice(&IQ1S[idx]);
        }
    }
}

/// IQ1_M: `qs[32]`, `qh[16]` (per 8 values 3 high index bits and the delta's sign), `scales[8]`
/// (3 bits per 16 values and, in the top nibbles of its four u16, the F16 `d`). Returns `d`.
fn decode_iq1_m(b: &[u8], q: &mut [i8], ls: &mut [i16], dq: &mut [i8]) -> f32 {
    let (qs, qh, sc) = (&b[..32], &b[32..48], &b[48..56]);
    let sc: [u16; 4] = std::array::from_fn(|i| u16::from_le_bytes([sc[2 * i], sc[2 * i + 1]]));
    let d = (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
    for ib in 0..8 {
        let sh = 6 * (ib % 2);
        ls[2 * ib] = 2 * ((sc[ib / 2] >> sh) & 7) as i16 + 1;
        ls[2 * ib + 1] = 2 * ((sc[ib / 2] >> (sh + 3)) & 7) as i16 + 1;
        for l in 0..4 {
            let h = qh[2 * ib + l / 2] as usize;
            let hi = if l % 2 == 0 { h << 8 } else { h << 4 };
            let idx = qs[4 * ib + l] as usize | (hi & 0x700);
            q[32 * ib + 8 * l..][..8].copy_from_slice(&IQ1S[idx]);
            let neg = h & if l % 2 == 0 { 0x08 } else { 0x80 } != 0;
            dq[32 * ib + 8 * l..][..8].fill(if neg { -1 } else { 1 });
        }
    }
    f16::from_bits(d).to_f32()
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
    let kind = Kind::of(ty).unwrap_or_else(|| unreachable!("no IQ kernel for {ty}"));
    let nb = k / 256;
    let n = a.d.len() / nb;
    assert_eq!(out.len(), n * nr, "IQ product output");
    assert_eq!(a.qs.len(), n * k, "Q8_K activations");
    assert!(raw.len() >= (r0 + nr) * row_bytes, "IQ product weights");
    let tiled = n >= TILED_MIN_ROWS;
    let mut row = Row::new(kind, k);
    for i in 0..nr {
        row.decode(kind, &raw[(r0 + i) * row_bytes..][..row_bytes]);
        #[cfg(target_arch = "x86_64")]
        {
            if super::super::simd::has_avx2_fma() {
                // SAFETY: the CPU has AVX2 and FMA; lengths were checked above.
                unsafe { avx2::row_times_all(kind, &row, a, nb, n, i, nr, tiled, out) };
                continue;
            }
        }
        for j in 0..n {
            out[j * nr + i] = dot_scalar(kind, &row, a, j, nb, tiled);
        }
    }
}

/// The eight integer lanes of super-block `sb` of values `v` (scales `ls`) times activations
/// `aq` (the input row's values).
fn lanes_scalar(v: &[i8], ls: &[i16], aq: &[i8], sb: usize) -> [i32; 8] {
    let mut lanes = [0i32; 8];
    for ib in 0..8 {
        for (l, lane) in lanes.iter_mut().enumerate() {
            let sc = ls[sb * 16 + ib * 2 + l / 4] as i32;
            let e = sb * 256 + ib * 32 + l * 4;
            let s: i32 = (0..4).map(|t| v[e + t] as i32 * aq[e + t] as i32).sum();
            *lane += sc * s;
        }
    }
    lanes
}

/// One output in the tiled (`tiled`) or the `vec_dot` order, the portable twin of the AVX2 code
/// (identical bits).
fn dot_scalar(kind: Kind, w: &Row, a: &Q8KRows, j: usize, nb: usize, tiled: bool) -> f32 {
    let (post, mode) = (kind.post(), kind.mode());
    let aq = &a.qs[j * nb * 256..][..nb * 256];
    let mut acc = [0.0f32; 8];
    let mut acc2 = [0.0f32; 8];
    let mut acc1 = 0.0f32;
    let mut total = 0.0f32;
    for sb in 0..nb {
        let lanes = lanes_scalar(&w.q, &w.ls, aq, sb);
        let dlanes = if mode == Mode::Plain {
            [0; 8]
        } else {
            lanes_scalar(&w.dq, &w.ls, aq, sb)
        };
        let da = a.d[j * nb + sb];
        if tiled {
            let mut s: i32 = lanes.iter().sum();
            if mode != Mode::Plain {
                s = 8 * s + dlanes.iter().sum::<i32>();
            }
            total = ((w.d[sb] * post) * s as f32).mul_add(da, total);
            continue;
        }
        let d = w.d[sb] * da;
        for (accl, &v) in acc.iter_mut().zip(&lanes) {
            *accl = d.mul_add(v as f32, *accl);
        }
        match mode {
            Mode::Plain => {}
            Mode::Iq1S => acc1 = d.mul_add(dlanes.iter().sum::<i32>() as f32, acc1),
            Mode::Iq1M => {
                for (accl, &v) in acc2.iter_mut().zip(&dlanes) {
                    *accl = d.mul_add(v as f32, *accl);
                }
            }
        }
    }
    if tiled {
        return total;
    }
    match mode {
        Mode::Plain => post * hsum(acc),
        Mode::Iq1S => hsum(acc) + post * acc1,
        Mode::Iq1M => hsum(acc) + post * hsum(acc2),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{hsum, Kind, Mode, Q8KRows, Row};
    use std::arch::x86_64::*;

    /// The exact sum of eight i32 lanes.
    #[inline(always)]
    unsafe fn hsum_i32(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        _mm_cvtsi128_si32(s)
    }

    /// `hsum_float_8` of a vector.
    #[inline(always)]
    unsafe fn hsum_ps(v: __m256) -> f32 {
        let mut a = [0.0f32; 8];
        _mm256_storeu_ps(a.as_mut_ptr(), v);
        hsum(a)
    }

    /// Adds the lanes of values `v` (32 from `e`, scales `sc`) times the `J` input rows' values
    /// at `ap[jj] + e` to `sumi`.
    #[inline(always)]
    unsafe fn mac<const J: usize>(
        v: *const i8,
        sc: __m256i,
        ap: &[*const i8; J],
        e: usize,
        sumi: &mut [__m256i; J],
    ) {
        let x = _mm256_loadu_si256(v.add(e) as *const __m256i);
        let ax = _mm256_sign_epi8(x, x);
        for (s, p) in sumi.iter_mut().zip(ap) {
            let y = _mm256_loadu_si256(p.add(e) as *const __m256i);
            let p16 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(y, x));
            *s = _mm256_add_epi32(*s, _mm256_madd_epi16(p16, sc));
        }
    }

    /// Outputs `J` input rows from `j0` of weight row `w`, tiled order when `TILED`.
    #[inline(always)]
    unsafe fn rows<const J: usize, const TILED: bool>(
        kind: Kind,
        w: &Row,
        a: &Q8KRows,
        nb: usize,
        j0: usize,
    ) -> [f32; J] {
        let (post, mode) = (kind.post(), kind.mode());
        let mut acc = [_mm256_setzero_ps(); J];
        let mut acc2 = [_mm256_setzero_ps(); J];
        let mut acc1 = [0.0f32; J];
        let mut total = [0.0f32; J];
        for sb in 0..nb {
            let ap: [*const i8; J] =
                std::array::from_fn(|jj| a.qs.as_ptr().add((j0 + jj) * nb * 256 + sb * 256));
            let mut sumi = [_mm256_setzero_si256(); J];
            let mut sumd = [_mm256_setzero_si256(); J];
            for ib in 0..8 {
                let sc = _mm256_set_m128i(
                    _mm_set1_epi16(*w.ls.get_unchecked(sb * 16 + ib * 2 + 1)),
                    _mm_set1_epi16(*w.ls.get_unchecked(sb * 16 + ib * 2)),
                );
                let wq = w.q.as_ptr().add(sb * 256);
                mac::<J>(wq, sc, &ap, ib * 32, &mut sumi);
                if mode != Mode::Plain {
                    mac::<J>(w.dq.as_ptr().add(sb * 256), sc, &ap, ib * 32, &mut sumd);
                }
            }
            let dw = *w.d.get_unchecked(sb);
            for jj in 0..J {
                let da = *a.d.get_unchecked((j0 + jj) * nb + sb);
                if TILED {
                    let mut s = hsum_i32(sumi[jj]);
                    if mode != Mode::Plain {
                        s = 8 * s + hsum_i32(sumd[jj]);
                    }
                    total[jj] = ((dw * post) * s as f32).mul_add(da, total[jj]);
                    continue;
                }
                let d = dw * da;
                let dv = _mm256_set1_ps(d);
                acc[jj] = _mm256_fmadd_ps(dv, _mm256_cvtepi32_ps(sumi[jj]), acc[jj]);
                match mode {
                    Mode::Plain => {}
                    Mode::Iq1S => acc1[jj] = d.mul_add(hsum_i32(sumd[jj]) as f32, acc1[jj]),
                    Mode::Iq1M => {
                        acc2[jj] = _mm256_fmadd_ps(dv, _mm256_cvtepi32_ps(sumd[jj]), acc2[jj])
                    }
                }
            }
        }
        if TILED {
            return total;
        }
        std::array::from_fn(|jj| match mode {
            Mode::Plain => post * hsum_ps(acc[jj]),
            Mode::Iq1S => hsum_ps(acc[jj]) + post * acc1[jj],
            Mode::Iq1M => hsum_ps(acc[jj]) + post * hsum_ps(acc2[jj]),
        })
    }

    /// `out[j * nr + i]` for every input row `j` of `a` (`n` rows of `nb` super-blocks).
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn row_times_all(
        kind: Kind,
        w: &Row,
        a: &Q8KRows,
        nb: usize,
        n: usize,
        i: usize,
        nr: usize,
        tiled: bool,
        out: &mut [f32],
    ) {
        let mut j = 0;
        while j + 4 <= n {
            let v = if tiled {
                rows::<4, true>(kind, w, a, nb, j)
            } else {
                rows::<4, false>(kind, w, a, nb, j)
            };
            for (jj, v) in v.into_iter().enumerate() {
                out[(j + jj) * nr + i] = v;
            }
            j += 4;
        }
        while j < n {
            out[j * nr + i] = if tiled {
                rows::<1, true>(kind, w, a, nb, j)[0]
            } else {
                rows::<1, false>(kind, w, a, nb, j)[0]
            };
            j += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks both orders for `ty`: `n` input rows below [`TILED_MIN_ROWS`] take `vec_dot`'s,
    /// others the tiled kernel's.
    fn check(ty: GgmlType, n: usize) {
        let kind = Kind::of(ty).unwrap();
        let (rows, k) = (6, 768);
        let w: Vec<f32> = (0..rows * k)
            .map(|i| ((i * 37 % 101) as f32 - 40.0) / 17.0 + (i as f32 * 0.37).sin())
            .collect();
        let imat: Vec<f32> = (0..k).map(|i| 1.0 + (i % 7) as f32 * 0.3).collect();
        let rb = ty.row_size(k as u64).unwrap() as usize;
        let mut raw = vec![0u8; rb * rows];
        qforge_formats::ggml::quantize(ty, &w, &mut raw, k, Some(&imat)).unwrap();
        let mut deq = vec![0.0f32; rows * k];
        qforge_formats::ggml::dequantize(ty, &raw, &mut deq).unwrap();
        let x: Vec<f32> = (0..n * k)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 3.0 + (i as f32 * 0.11).cos())
            .collect();
        let a = Q8KRows::quantize(&x, n, k);
        let mut fast = vec![0.0; n * 5];
        band(ty, &raw, rb, 1, 5, k, &a, &mut fast);
        let mut row = Row::new(kind, k);
        for i in 0..5 {
            row.decode(kind, &raw[(1 + i) * rb..][..rb]);
            for j in 0..n {
                let slow = dot_scalar(kind, &row, &a, j, k / 256, n >= TILED_MIN_ROWS);
                assert_eq!(
                    fast[j * 5 + i].to_bits(),
                    slow.to_bits(),
                    "{ty} {n}: {i} {j}"
                );
                let other = dot_scalar(kind, &row, &a, j, k / 256, n < TILED_MIN_ROWS);
                let (mut exact, mut scale) = (0.0f64, 0.0f64);
                for e in 0..k {
                    let p = deq[(1 + i) * k + e] as f64
                        * a.qs[j * k + e] as f64
                        * a.d[j * k / 256 + e / 256] as f64;
                    exact += p;
                    scale += p.abs();
                }
                assert!(scale > 0.0, "{ty}: all-zero weights");
                for v in [slow, other] {
                    assert!(
                        (v as f64 - exact).abs() <= 1e-5 * scale,
                        "{ty}: {v} vs {exact}"
                    );
                }
            }
        }
    }

    /// Every type with a kernel, both orders.
    fn check_all(ty: GgmlType) {
        check(ty, TILED_MIN_ROWS - 1);
        check(ty, TILED_MIN_ROWS + 3);
    }

    #[test]
    fn iq4_xs_vector_equals_scalar_and_the_dequantized_dot_product() {
        check_all(GgmlType::IQ4_XS);
    }

    #[test]
    fn iq3_s_vector_equals_scalar_and_the_dequantized_dot_product() {
        check_all(GgmlType::IQ3_S);
    }

    #[test]
    fn iq2_xxs_vector_equals_scalar_and_the_dequantized_dot_product() {
        check_all(GgmlType::IQ2_XXS);
    }

    #[test]
    fn iq3_xxs_vector_equals_scalar_and_the_dequantized_dot_product() {
        check_all(GgmlType::IQ3_XXS);
    }

    #[test]
    fn iq2_xs_vector_equals_scalar_and_the_dequantized_dot_product() {
        check_all(GgmlType::IQ2_XS);
    }

    #[test]
    fn iq2_s_vector_equals_scalar_and_the_dequantized_dot_product() {
        check_all(GgmlType::IQ2_S);
    }

    #[test]
    fn iq1_s_vector_equals_scalar_and_the_dequantized_dot_product() {
        check_all(GgmlType::IQ1_S);
    }

    #[test]
    fn iq1_m_vector_equals_scalar_and_the_dequantized_dot_product() {
        check_all(GgmlType::IQ1_M);
    }

    #[test]
    fn iq4_xs_scales_take_four_low_and_two_high_bits() {
        let mut b = vec![0u8; Kind::Iq4Xs.block_bytes()];
        b[..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        b[2] = 0b0000_0110; // sub-block 0: high bits 2, sub-block 1: high bits 1
        b[4] = 0x3A; // sub-block 0: low 10, sub-block 1: low 3
        b[8] = 0xF0; // value 0: index 0, value 16: index 15
        let mut r = Row::new(Kind::Iq4Xs, 256);
        r.decode(Kind::Iq4Xs, &b);
        assert_eq!(
            (r.ls[0], r.ls[1], r.ls[2], r.ls[4]),
            (42 - 32, 42 - 32, 19 - 32, -32)
        );
        assert_eq!((r.q[0], r.q[16], r.d[0]), (-127, 113, 0.5));
    }

    #[test]
    fn sign_bytes_have_even_parity() {
        assert_eq!(
            (sign_byte(0), sign_byte(1), sign_byte(3), sign_byte(127)),
            (0, 129, 3, 255)
        );
    }
}
