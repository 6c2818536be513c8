//! K-quant weights (Q2_K..Q6_K) times Q8_K activations, in the two orders llama.cpp's x86 AVX2
//! CPU backend sums them in:
//!
//! - fewer than 8 input rows: `ggml_vec_dot_q*_K_q8_K`, one output at a time. Per 256-value
//!   block the integer products go into eight i32 lanes (lane `l`: bytes `4l..4l+3` of every
//!   32-value group, each times its 16-value sub-block scale); the lanes, as f32, are
//!   fused-multiply-added with `d = d_a · d_w` into an 8-lane accumulator that `hsum_float_8`
//!   reduces at the end. The types differ in their extra terms: Q6_K subtracts its `-32` offset,
//!   `32 · (sc[2l]·bsums[2l] + sc[2l+1]·bsums[2l+1])`, from integer lane `l`; Q2_K
//!   fused-multiply-adds its mins per lane (`mins[2l]·bsums[2l] + mins[2l+1]·bsums[2l+1]`,
//!   times `dmin = -d_a · dmin_w`) into the same accumulator just before the scales' term; Q4_K
//!   keeps its mins in a 4-lane accumulator added as `(m0 + m2) + (m1 + m3)` after the 8-lane
//!   sum; Q5_K fused-multiply-adds the mins' whole integer sum into a scalar (GCC contracts
//!   `summs += dmin * x` into `vfmadd231ss`) added after the 8-lane sum.
//! - 8 input rows or more: the tiled K-quant matmul (`ggml-cpu/tiled`, taken by `mul_mat` when
//!   `ne11 >= 8` and by `mul_mat_id` when an expert gets 8 rows or more). Per output and block,
//!   the block's whole integer dot product `s1` (scales applied, Q6_K/Q3_K offsets removed) and,
//!   for Q2_K/Q4_K/Q5_K, the mins' integer sum `s2` give `r = d_w · s1`, then
//!   `r = -dmin_w · s2 + r` (fused), then `acc = r · d_a + acc` (fused), blocks in order.
//!
//! Each weight row is decoded once per band (values, per-16 scales, mins, f32 scales) and then
//! multiplied with every input row. Integer sums are exact, so the decoded form only has to keep
//! each product in its lane.

use super::super::tinyblas::hsum;
use super::q8::Q8KRows;
use half::f16;
use qforge_formats::ggml::GgmlType;

/// Values per block.
const QK: usize = 256;

/// Input rows from which llama.cpp takes the tiled matmul instead of `vec_dot`.
const TILED_MIN_ROWS: usize = 8;

/// Whether `ty` has a kernel here.
pub fn supports(ty: GgmlType) -> bool {
    Kind::of(ty).is_some()
}

/// The K-quant types with a kernel here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Q2,
    Q3,
    Q4,
    Q5,
    Q6,
}

impl Kind {
    fn of(ty: GgmlType) -> Option<Kind> {
        match ty {
            GgmlType::Q2_K => Some(Kind::Q2),
            GgmlType::Q3_K => Some(Kind::Q3),
            GgmlType::Q4_K => Some(Kind::Q4),
            GgmlType::Q5_K => Some(Kind::Q5),
            GgmlType::Q6_K => Some(Kind::Q6),
            _ => None,
        }
    }

    /// Whether the decoded values are signed (Q3_K) rather than unsigned.
    fn signed(self) -> bool {
        self == Kind::Q3
    }
}

/// One weight row decoded for the integer products.
#[derive(Debug, Default)]
struct Row {
    /// Values (`k`), unsigned except Q3_K's (two's complement).
    q: Vec<u8>,
    /// Scale of each 16 values (`k/16`).
    sc: Vec<i16>,
    /// Per 32-value group, its two 16-value scales each repeated 8 times (`k/2`): the i16
    /// multipliers of the `maddubs` pair sums.
    scv: Vec<i16>,
    /// Multipliers of the activation block sums, 16 per block: Q2_K's mins (one per 16 values),
    /// Q4_K/Q5_K's mins (one per 32 values, 8 used), Q6_K's scales.
    sub: Vec<i16>,
    /// `d` of each block.
    d: Vec<f32>,
    /// `dmin` of each block (Q2_K, Q4_K, Q5_K).
    dmin: Vec<f32>,
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Scale and min `j` (0..8) of the 12 packed 6-bit bytes of Q4_K/Q5_K (`get_scale_min_k4`).
fn scale_min_k4(j: usize, q: &[u8]) -> (i16, i16) {
    if j < 4 {
        ((q[j] & 63) as i16, (q[j + 4] & 63) as i16)
    } else {
        (
            ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)) as i16,
            ((q[j + 4] >> 4) | ((q[j] >> 6) << 4)) as i16,
        )
    }
}

impl Row {
    /// Decodes the blocks of one row of `kind`.
    fn decode(&mut self, kind: Kind, blocks: &[u8], k: usize) {
        let nb = k / QK;
        self.q.resize(k, 0);
        self.sc.resize(k / 16, 0);
        self.scv.resize(k / 2, 0);
        self.sub.resize(nb * 16, 0);
        self.d.resize(nb, 0.0);
        self.dmin.resize(nb, 0.0);
        let ts = blocks.len() / nb;
        for (ib, b) in blocks.chunks_exact(ts).enumerate() {
            let q = &mut self.q[ib * QK..][..QK];
            let sc = &mut self.sc[ib * 16..][..16];
            let sub = &mut self.sub[ib * 16..][..16];
            match kind {
                Kind::Q2 => {
                    // scales[16] (scale | min << 4), qs[64], d, dmin.
                    let (scales, qs) = (&b[..16], &b[16..80]);
                    self.d[ib] = f16_at(b, 80);
                    self.dmin[ib] = f16_at(b, 82);
                    for j in 0..2 {
                        for t in 0..4 {
                            for l in 0..32 {
                                q[128 * j + 32 * t + l] = (qs[32 * j + l] >> (2 * t)) & 3;
                            }
                        }
                    }
                    for (i, &s) in scales.iter().enumerate() {
                        sc[i] = (s & 15) as i16;
                        sub[i] = (s >> 4) as i16;
                    }
                }
                Kind::Q3 => {
                    // hmask[32], qs[64], scales[12] (6-bit, offset 32), d.
                    let (hmask, qs, scales) = (&b[..32], &b[32..96], &b[96..108]);
                    self.d[ib] = f16_at(b, 108);
                    self.dmin[ib] = 0.0;
                    for j in 0..2 {
                        for t in 0..4 {
                            for l in 0..32 {
                                let low = ((qs[32 * j + l] >> (2 * t)) & 3) as i8;
                                let high = (hmask[l] >> (4 * j + t)) & 1;
                                q[128 * j + 32 * t + l] =
                                    (low - if high == 1 { 0 } else { 4 }) as u8;
                            }
                        }
                    }
                    for (i, s) in sc.iter_mut().enumerate() {
                        let low = if i < 8 {
                            scales[i] & 15
                        } else {
                            scales[i - 8] >> 4
                        };
                        let high = (scales[8 + i % 4] >> (2 * (i / 4))) & 3;
                        *s = (low | (high << 4)) as i16 - 32;
                    }
                    sub.fill(0);
                }
                Kind::Q4 | Kind::Q5 => {
                    // d, dmin, scales[12], (Q5_K: qh[32]), qs[128].
                    self.d[ib] = f16_at(b, 0);
                    self.dmin[ib] = f16_at(b, 2);
                    let scales = &b[4..16];
                    let (qh, qs) = if kind == Kind::Q5 {
                        (Some(&b[16..48]), &b[48..176])
                    } else {
                        (None, &b[16..144])
                    };
                    for j in 0..4 {
                        for l in 0..32 {
                            let v = qs[32 * j + l];
                            let (mut lo, mut hi) = (v & 15, v >> 4);
                            if let Some(qh) = qh {
                                lo |= ((qh[l] >> (2 * j)) & 1) << 4;
                                hi |= ((qh[l] >> (2 * j + 1)) & 1) << 4;
                            }
                            q[64 * j + l] = lo;
                            q[64 * j + 32 + l] = hi;
                        }
                    }
                    for s in 0..8 {
                        let (scale, min) = scale_min_k4(s, scales);
                        sc[2 * s] = scale;
                        sc[2 * s + 1] = scale;
                        sub[s] = min;
                        sub[8 + s] = 0;
                    }
                }
                Kind::Q6 => {
                    // ql[128], qh[64], scales[16] (i8), d.
                    let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
                    self.d[ib] = f16_at(b, 208);
                    self.dmin[ib] = 0.0;
                    for j in 0..2 {
                        for l in 0..32 {
                            let (lo, hi) = (ql[64 * j + l], ql[64 * j + 32 + l]);
                            let h = qh[32 * j + l];
                            let e = 128 * j + l;
                            q[e] = (lo & 15) | ((h & 3) << 4);
                            q[e + 32] = (hi & 15) | (((h >> 2) & 3) << 4);
                            q[e + 64] = (lo >> 4) | (((h >> 4) & 3) << 4);
                            q[e + 96] = (hi >> 4) | (((h >> 6) & 3) << 4);
                        }
                    }
                    for (i, &s) in scales.iter().enumerate() {
                        sc[i] = s as i8 as i16;
                        sub[i] = sc[i];
                    }
                }
            }
            for (g, v) in self.scv[ib * 128..][..128].chunks_exact_mut(16).enumerate() {
                v[..8].fill(sc[2 * g]);
                v[8..].fill(sc[2 * g + 1]);
            }
        }
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
    a: &Q8KRows,
    out: &mut [f32],
) {
    let kind = Kind::of(ty).unwrap_or_else(|| unreachable!("no K-quant kernel for {ty}"));
    #[cfg(target_arch = "x86_64")]
    {
        if super::super::simd::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA; lengths are checked inside.
            unsafe { avx2::band(kind, raw, row_bytes, r0, nr, k, a, out) };
            return;
        }
    }
    band_scalar(kind, raw, row_bytes, r0, nr, k, a, out)
}

/// Checks the lengths a band reads and writes; returns the number of input rows.
fn check(
    raw: &[u8],
    row_bytes: usize,
    r0: usize,
    nr: usize,
    k: usize,
    a: &Q8KRows,
    out: &[f32],
) -> usize {
    assert!(k % QK == 0 && k > 0, "K-quant row length {k}");
    let nb = k / QK;
    let n = a.d.len() / nb;
    assert!(raw.len() >= (r0 + nr) * row_bytes, "K-quant weight rows");
    assert!(
        a.qs.len() >= n * k && a.bsums.len() >= n * k / 16,
        "Q8_K activations"
    );
    assert_eq!(out.len(), n * nr, "K-quant output");
    n
}

/// The integer parts of one block product: the eight `vec_dot` lanes (Q6_K's offset removed)
/// and the mins' terms (Q2_K: 8 lanes; Q4_K/Q5_K: 4 lanes).
fn block_ints(kind: Kind, w: &Row, ib: usize, q8: &[i8], bs: &[i16]) -> ([i32; 8], [i32; 8]) {
    let wq = &w.q[ib * QK..][..QK];
    let sc = &w.sc[ib * 16..][..16];
    let sub = &w.sub[ib * 16..][..16];
    let mut lanes = [0i32; 8];
    for (e, (&x, &y)) in wq.iter().zip(q8).enumerate() {
        let x = if kind.signed() {
            x as i8 as i32
        } else {
            x as i32
        };
        lanes[(e % 32) / 4] += sc[e / 16] as i32 * x * y as i32;
    }
    let pair16 = |l: usize| {
        sub[2 * l] as i32 * bs[2 * l] as i32 + sub[2 * l + 1] as i32 * bs[2 * l + 1] as i32
    };
    let mut mins = [0i32; 8];
    match kind {
        Kind::Q6 => {
            for (l, v) in lanes.iter_mut().enumerate() {
                *v -= pair16(l) << 5;
            }
        }
        Kind::Q2 => {
            for (l, m) in mins.iter_mut().enumerate() {
                *m = pair16(l);
            }
        }
        Kind::Q4 | Kind::Q5 => {
            for (i, m) in mins.iter_mut().take(4).enumerate() {
                let b32 = |s: usize| bs[2 * s] as i32 + bs[2 * s + 1] as i32;
                *m = sub[2 * i] as i32 * b32(2 * i) + sub[2 * i + 1] as i32 * b32(2 * i + 1);
            }
        }
        Kind::Q3 => {}
    }
    (lanes, mins)
}

/// The float steps of `ggml_vec_dot_q*_K_q8_K` over the integer parts of each block.
#[derive(Debug, Default)]
struct VecDotAcc {
    acc: [f32; 8],
    acc_m: [f32; 4],
    summs: f32,
}

impl VecDotAcc {
    fn add(&mut self, kind: Kind, lanes: &[i32; 8], mins: &[i32; 8], d_a: f32, w: &Row, ib: usize) {
        let d = d_a * w.d[ib];
        let dmin = -d_a * w.dmin[ib];
        match kind {
            Kind::Q2 => {
                for (acc, &m) in self.acc.iter_mut().zip(mins) {
                    *acc = dmin.mul_add(m as f32, *acc);
                }
            }
            Kind::Q4 => {
                for (acc, &m) in self.acc_m.iter_mut().zip(mins) {
                    *acc = dmin.mul_add(m as f32, *acc);
                }
            }
            Kind::Q5 => {
                let m = mins[..4].iter().sum::<i32>();
                self.summs = dmin.mul_add(m as f32, self.summs);
            }
            Kind::Q3 | Kind::Q6 => {}
        }
        for (acc, &v) in self.acc.iter_mut().zip(lanes) {
            *acc = d.mul_add(v as f32, *acc);
        }
    }

    fn finish(&self, kind: Kind) -> f32 {
        let s = hsum(self.acc);
        match kind {
            Kind::Q4 => {
                let m = &self.acc_m;
                s + ((m[0] + m[2]) + (m[1] + m[3]))
            }
            Kind::Q5 => s + self.summs,
            _ => s,
        }
    }
}

/// One block's step of the tiled matmul: `r = d_w·s1`, `r = -dmin_w·s2 + r`, `acc = r·d_a + acc`.
#[inline(always)]
fn tiled_step(kind: Kind, s1: i32, s2: i32, d_a: f32, w: &Row, ib: usize, acc: f32) -> f32 {
    let mut r = w.d[ib] * s1 as f32;
    if matches!(kind, Kind::Q2 | Kind::Q4 | Kind::Q5) {
        r = (-w.dmin[ib]).mul_add(s2 as f32, r);
    }
    r.mul_add(d_a, acc)
}

#[allow(clippy::too_many_arguments)]
fn band_scalar(
    kind: Kind,
    raw: &[u8],
    row_bytes: usize,
    r0: usize,
    nr: usize,
    k: usize,
    a: &Q8KRows,
    out: &mut [f32],
) {
    let n = check(raw, row_bytes, r0, nr, k, a, out);
    let nb = k / QK;
    let tiled = n >= TILED_MIN_ROWS;
    let mut w = Row::default();
    for i in 0..nr {
        w.decode(kind, &raw[(r0 + i) * row_bytes..][..row_bytes], k);
        for j in 0..n {
            let mut vd = VecDotAcc::default();
            let mut acc = 0.0f32;
            for ib in 0..nb {
                let q8 = &a.qs[j * k + ib * QK..][..QK];
                let bs = &a.bsums[(j * nb + ib) * 16..][..16];
                let d_a = a.d[j * nb + ib];
                let (lanes, mins) = block_ints(kind, &w, ib, q8, bs);
                if tiled {
                    let s1 = lanes.iter().sum::<i32>();
                    let s2 = mins.iter().sum::<i32>();
                    acc = tiled_step(kind, s1, s2, d_a, &w, ib, acc);
                } else {
                    vd.add(kind, &lanes, &mins, d_a, &w, ib);
                }
            }
            out[j * nr + i] = if tiled { acc } else { vd.finish(kind) };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{check, hsum, tiled_step, Kind, Q8KRows, Row, QK, TILED_MIN_ROWS};
    use std::arch::x86_64::*;

    /// The eight integer lanes of one block: `Σ scale · w · a` per 4-byte position.
    #[inline(always)]
    unsafe fn block_lanes(q: *const u8, scv: *const i16, a: *const i8, signed: bool) -> __m256i {
        let mut sumi = _mm256_setzero_si256();
        for g in 0..8 {
            let x = _mm256_loadu_si256(q.add(32 * g) as *const __m256i);
            let y = _mm256_loadu_si256(a.add(32 * g) as *const __m256i);
            let p = if signed {
                _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
            } else {
                _mm256_maddubs_epi16(x, y)
            };
            let s = _mm256_loadu_si256(scv.add(16 * g) as *const __m256i);
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(s, p));
        }
        sumi
    }

    /// Sum of eight i32 lanes.
    #[inline(always)]
    unsafe fn hsum_i32(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        _mm_cvtsi128_si32(s)
    }

    /// Sum of four i32 lanes.
    #[inline(always)]
    unsafe fn hsum4_i32(m: __m128i) -> i32 {
        let m = _mm_add_epi32(m, _mm_unpackhi_epi64(m, m));
        _mm_cvtsi128_si32(_mm_add_epi32(m, _mm_shuffle_epi32(m, 1)))
    }

    /// The mins' products of Q4_K/Q5_K: `mins[2i]·b32[2i] + mins[2i+1]·b32[2i+1]`, 4 lanes.
    #[inline(always)]
    unsafe fn mins4(bs: *const i16, mins: *const i16) -> __m128i {
        let b = _mm256_loadu_si256(bs as *const __m256i);
        let b32 = _mm_hadd_epi16(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
        _mm_madd_epi16(_mm_loadu_si128(mins as *const __m128i), b32)
    }

    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn band(
        kind: Kind,
        raw: &[u8],
        row_bytes: usize,
        r0: usize,
        nr: usize,
        k: usize,
        a: &Q8KRows,
        out: &mut [f32],
    ) {
        let n = check(raw, row_bytes, r0, nr, k, a, out);
        let nb = k / QK;
        let tiled = n >= TILED_MIN_ROWS;
        let signed = kind.signed();
        let mut w = Row::default();
        for i in 0..nr {
            w.decode(kind, &raw[(r0 + i) * row_bytes..][..row_bytes], k);
            for j in 0..n {
                let mut acc = _mm256_setzero_ps();
                let mut acc_m = _mm_setzero_ps();
                let mut summs = 0.0f32;
                let mut tacc = 0.0f32;
                for ib in 0..nb {
                    let q8 = a.qs.as_ptr().add(j * k + ib * QK);
                    let bs = a.bsums.as_ptr().add((j * nb + ib) * 16);
                    let sub = w.sub.as_ptr().add(ib * 16);
                    let d_a = *a.d.get_unchecked(j * nb + ib);
                    let mut sumi = block_lanes(
                        w.q.as_ptr().add(ib * QK),
                        w.scv.as_ptr().add(ib * 128),
                        q8,
                        signed,
                    );
                    if kind == Kind::Q6 {
                        let b = _mm256_loadu_si256(bs as *const __m256i);
                        let s = _mm256_loadu_si256(sub as *const __m256i);
                        sumi =
                            _mm256_sub_epi32(sumi, _mm256_slli_epi32(_mm256_madd_epi16(b, s), 5));
                    }
                    if tiled {
                        let s2 = match kind {
                            Kind::Q2 => hsum_i32(_mm256_madd_epi16(
                                _mm256_loadu_si256(bs as *const __m256i),
                                _mm256_loadu_si256(sub as *const __m256i),
                            )),
                            Kind::Q4 | Kind::Q5 => hsum4_i32(mins4(bs, sub)),
                            _ => 0,
                        };
                        tacc = tiled_step(kind, hsum_i32(sumi), s2, d_a, &w, ib, tacc);
                        continue;
                    }
                    let d = d_a * *w.d.get_unchecked(ib);
                    let dmin = -d_a * *w.dmin.get_unchecked(ib);
                    match kind {
                        Kind::Q2 => {
                            let m = _mm256_madd_epi16(
                                _mm256_loadu_si256(bs as *const __m256i),
                                _mm256_loadu_si256(sub as *const __m256i),
                            );
                            acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(m), acc);
                        }
                        Kind::Q4 => {
                            let m = mins4(bs, sub);
                            acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(m), acc_m);
                        }
                        Kind::Q5 => {
                            let m = hsum4_i32(mins4(bs, sub));
                            summs = dmin.mul_add(m as f32, summs);
                        }
                        Kind::Q3 | Kind::Q6 => {}
                    }
                    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
                }
                out[j * nr + i] = if tiled {
                    tacc
                } else {
                    let mut v = [0.0f32; 8];
                    _mm256_storeu_ps(v.as_mut_ptr(), acc);
                    let s = hsum(v);
                    match kind {
                        Kind::Q4 => {
                            let mut m = [0.0f32; 4];
                            _mm_storeu_ps(m.as_mut_ptr(), acc_m);
                            s + ((m[0] + m[2]) + (m[1] + m[3]))
                        }
                        Kind::Q5 => s + summs,
                        _ => s,
                    }
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qforge_formats::ggml::dequantize;

    /// Deterministic pseudo-random bytes (xorshift).
    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut s = seed | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect()
    }

    /// `rows` rows of `k` random blocks of `ty` with finite, moderate f16 scales.
    fn weights(ty: GgmlType, rows: usize, k: usize, seed: u64) -> Vec<u8> {
        let ts = ty.type_size();
        let mut raw = bytes(rows * k / QK * ts, seed);
        for (i, b) in raw.chunks_exact_mut(ts).enumerate() {
            let d = f16::from_f32(0.01 + (i % 7) as f32 * 3e-3).to_le_bytes();
            let m = f16::from_f32(0.002 + (i % 5) as f32 * 1e-3).to_le_bytes();
            match ty {
                GgmlType::Q6_K => b[208..210].copy_from_slice(&d),
                GgmlType::Q3_K => b[108..110].copy_from_slice(&d),
                GgmlType::Q2_K => {
                    b[80..82].copy_from_slice(&d);
                    b[82..84].copy_from_slice(&m);
                }
                _ => {
                    b[0..2].copy_from_slice(&d);
                    b[2..4].copy_from_slice(&m);
                }
            }
        }
        raw
    }

    fn acts(n: usize, k: usize) -> Q8KRows {
        let x: Vec<f32> = (0..n * k)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 7.0 + ((i * 31 % 11) as f32).sin())
            .collect();
        Q8KRows::quantize(&x, n, k)
    }

    fn check_type(ty: GgmlType) {
        check_type_n(ty, 3);
        check_type_n(ty, TILED_MIN_ROWS + 1);
    }

    fn check_type_n(ty: GgmlType, n: usize) {
        let (rows, k) = (6, 768);
        let raw = weights(ty, rows, k, 0x9e37_79b9 + ty as u64);
        let rb = ty.row_size(k as u64).unwrap() as usize;
        let a = acts(n, k);
        let (r0, nr) = (1, 5);
        let mut fast = vec![0.0f32; n * nr];
        band(ty, &raw, rb, r0, nr, k, &a, &mut fast);
        let mut slow = vec![0.0f32; n * nr];
        band_scalar(Kind::of(ty).unwrap(), &raw, rb, r0, nr, k, &a, &mut slow);
        assert_eq!(
            fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            slow.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{ty}: vector vs scalar"
        );
        let mut wf = vec![0.0f32; rows * k];
        dequantize(ty, &raw, &mut wf).unwrap();
        let nb = k / QK;
        for i in 0..nr {
            for j in 0..n {
                let (mut exact, mut mag) = (0.0f64, 0.0f64);
                for e in 0..k {
                    let t = wf[(r0 + i) * k + e] as f64
                        * a.qs[j * k + e] as f64
                        * a.d[j * nb + e / QK] as f64;
                    exact += t;
                    mag += t.abs();
                }
                let v = fast[j * nr + i] as f64;
                assert!(
                    (v - exact).abs() <= 1e-5 * mag,
                    "{ty} row {i} input {j}: {v} vs {exact} (magnitude {mag})"
                );
            }
        }
    }

    #[test]
    fn q6_k_vector_equals_scalar_and_the_decoded_dot_product() {
        check_type(GgmlType::Q6_K);
    }

    #[test]
    fn q5_k_vector_equals_scalar_and_the_decoded_dot_product() {
        check_type(GgmlType::Q5_K);
    }

    #[test]
    fn q4_k_vector_equals_scalar_and_the_decoded_dot_product() {
        check_type(GgmlType::Q4_K);
    }

    #[test]
    fn q3_k_vector_equals_scalar_and_the_decoded_dot_product() {
        check_type(GgmlType::Q3_K);
    }

    #[test]
    fn q2_k_vector_equals_scalar_and_the_decoded_dot_product() {
        check_type(GgmlType::Q2_K);
    }
}
