//! Q4_K weights repacked 8x8, as llama.cpp's x86 AVX2 CPU backend multiplies them when the
//! weight has a multiple of 8 rows (`repack_q4_K_to_q4_K_8_bl`, `ggml_gemm_q4_K_8x8_q8_K`,
//! `ggml_gemv_q4_K_8x8_q8_K`, `forward_mul_mat` in `ggml-cpu/repack.cpp`).
//!
//! The repacking only interleaves eight rows' blocks and re-encodes their 6-bit scales and mins
//! losslessly, so every output (weight row `i`, input row `j`) is still made of the integer sums
//! of one row pair; what the two kernels decide is how those sums become floats. Per Q4_K super
//! block `b` (256 values, weight scales `d`, `dmin` as f32, Q8_K scale `da`), with `dot_s` the
//! integer dot product of sub-block `s` (32 values) and `bs_s` the sum of its 32 activations:
//!
//! - gemm (input rows `0..n - n % 4`, quantized four at a time by `ggml_quantize_mat_q8_K_4x8`):
//!   for each pair `p` of sub-blocks (64 values),
//!   `acc = fma(f32(sc_2p·dot_2p + sc_2p+1·dot_2p+1), d·da, acc)` and
//!   `accm = fma(f32(m_2p·bs_2p + m_2p+1·bs_2p+1), dmin·da, accm)`;
//! - gemv (the last `n % 4` rows, quantized by `quantize_row_q8_K`, i.e. the reference):
//!   once per super block, `acc = fma(f32(Σ_s sc_s·dot_s), d·da, acc)` and
//!   `accm = fma(f32(Σ_s m_s·bs_s), dmin·da, accm)`;
//!
//! and the output is `acc - accm`. The 4x8 activation quantizer differs from the reference in
//! one case only: when the block's largest magnitude occurs with both signs it always takes the
//! positive one (the reference takes the first), which flips the signs of `d` and the values.

use super::q8::{q8_k_block, Q8KRows};
use half::f16;
use rayon::prelude::*;

/// Values per super block.
const QK: usize = 256;
/// Bytes of one `block_q4_K`: `d`, `dmin` (F16), 12 bytes of scales and mins, 128 of nibbles.
const BLOCK_BYTES: usize = 144;
/// Input rows one gemm call quantizes and multiplies together.
const GEMM_ROWS: usize = 4;

/// The activations as the repacked path quantizes them: rows `0..n - n % 4` with
/// `ggml_quantize_mat_q8_K_4x8` (AVX2), the rest with `quantize_row_q8_K_ref`, all stored in
/// the plain Q8_K row layout (the 4x8 interleave does not change any value or block sum).
pub fn quantize_acts(x: &[f32], n: usize, k: usize) -> Q8KRows {
    assert_eq!(x.len(), n * k, "Q8_K input");
    assert_eq!(k % QK, 0, "Q8_K row length");
    let nb = k / QK;
    let gemm_rows = n - n % GEMM_ROWS;
    let mut out = Q8KRows {
        qs: vec![0; n * k],
        d: vec![0.0; n * nb],
        bsums: vec![0; n * k / 16],
    };
    out.qs
        .par_chunks_mut(k)
        .zip(out.d.par_chunks_mut(nb))
        .zip(out.bsums.par_chunks_mut(k / 16))
        .zip(x.par_chunks(k))
        .enumerate()
        .for_each(|(row, (((q, d), s), x))| {
            for (((qb, db), sb), xb) in q
                .chunks_exact_mut(QK)
                .zip(d)
                .zip(s.chunks_exact_mut(16))
                .zip(x.chunks_exact(QK))
            {
                *db = if row < gemm_rows {
                    q8_k_block_4x8(xb, qb, sb)
                } else {
                    q8_k_block(xb, qb, sb)
                };
            }
        });
    out
}

/// One Q8_K block as `ggml_quantize_mat_q8_K_4x8` (AVX2) rounds it: `amax` is the largest
/// magnitude; `iscale = -127/amax` if `+amax` occurs in the block, else `127/amax`;
/// `q = round_half_even(x · iscale)`, `d = 1/iscale`; `bsums` gets the sum of each 16 values.
/// Returns `d`.
pub fn q8_k_block_4x8(x: &[f32], q: &mut [i8], bsums: &mut [i16]) -> f32 {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if amax == 0.0 {
        q.fill(0);
        bsums.fill(0);
        return 0.0;
    }
    let iscale = if x.contains(&amax) {
        -127.0 / amax
    } else {
        127.0 / amax
    };
    for (o, &v) in q.iter_mut().zip(x) {
        // `_mm256_packs_epi16` saturates; |x · iscale| <= 127 (+ rounding) anyway.
        *o = (v * iscale).round_ties_even().clamp(-128.0, 127.0) as i8;
    }
    for (s, qc) in bsums.iter_mut().zip(q.chunks_exact(16)) {
        *s = qc.iter().map(|&v| v as i16).sum();
    }
    1.0 / iscale
}

/// One weight row's per-super-block constants, decoded once per band.
#[derive(Clone, Copy, Default)]
struct BlockConsts {
    /// `d` (F16 as f32).
    d: f32,
    /// `dmin` (F16 as f32).
    dmin: f32,
    /// The eight 6-bit sub-block scales.
    sc: [i16; 8],
    /// The eight 6-bit sub-block mins.
    mn: [i16; 8],
}

/// Decodes the scales and mins of a `block_q4_K` (`get_scale_min_k4`).
fn block_consts(b: &[u8]) -> BlockConsts {
    let q = &b[4..16];
    let mut c = BlockConsts {
        d: f16::from_le_bytes([b[0], b[1]]).to_f32(),
        dmin: f16::from_le_bytes([b[2], b[3]]).to_f32(),
        ..Default::default()
    };
    for j in 0..8 {
        let (s, m) = if j < 4 {
            (q[j] & 63, q[j + 4] & 63)
        } else {
            (
                (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
                (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
            )
        };
        c.sc[j] = s as i16;
        c.mn[j] = m as i16;
    }
    c
}

/// `out (n × nr) = a · wᵀ` for weight rows `r0..r0 + nr` of `raw` (`row_bytes` per row of `k`),
/// rounded as the repacked gemm (input rows `0..n - n % 4`) and gemv (the rest) kernels round.
pub fn band(
    raw: &[u8],
    row_bytes: usize,
    r0: usize,
    nr: usize,
    k: usize,
    a: &Q8KRows,
    out: &mut [f32],
) {
    let nb = k / QK;
    assert_eq!(k % QK, 0, "Q4_K row length");
    assert_eq!(row_bytes, nb * BLOCK_BYTES, "Q4_K row size");
    assert!(raw.len() >= (r0 + nr) * row_bytes, "Q4_K weight rows");
    let n = a.d.len() / nb.max(1);
    assert!(
        a.qs.len() == n * k && a.bsums.len() == n * k / 16,
        "Q8_K rows"
    );
    assert_eq!(out.len(), n * nr, "Q4_K output");
    if nb == 0 {
        out.fill(0.0);
        return;
    }
    let w = &raw[r0 * row_bytes..(r0 + nr) * row_bytes];
    let consts: Vec<BlockConsts> = w.chunks_exact(BLOCK_BYTES).map(block_consts).collect();
    // Sums of each 32 activations (`_mm_hadd_epi16` of the 16-value sums), `n × k/32`.
    let bs32: Vec<i16> = a.bsums.chunks_exact(2).map(|p| p[0] + p[1]).collect();
    let gemm_rows = n - n % GEMM_ROWS;
    let ctx = Band {
        w,
        row_bytes,
        nr,
        k,
        nb,
        consts: &consts,
        bs32: &bs32,
        a,
    };
    #[cfg(target_arch = "x86_64")]
    {
        if super::super::simd::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA; all slice bounds were checked above.
            unsafe { avx2::band(&ctx, gemm_rows, n, out) };
            return;
        }
    }
    band_scalar(&ctx, gemm_rows, n, out)
}

/// What one band's kernels read.
struct Band<'a> {
    /// The band's weight rows.
    w: &'a [u8],
    row_bytes: usize,
    nr: usize,
    k: usize,
    nb: usize,
    /// `nr × nb` decoded block constants.
    consts: &'a [BlockConsts],
    /// `n × k/32` sums of 32 activations.
    bs32: &'a [i16],
    a: &'a Q8KRows,
}

/// Accumulates one super block's eight scaled sub-block sums `isum` and scaled min sums `imin`
/// into `(acc, accm)`: per pair of sub-blocks for gemm rows, once for gemv rows.
#[inline(always)]
fn accumulate(
    gemm: bool,
    isum: [i32; 4],
    imin: [i32; 4],
    dd: f32,
    ddm: f32,
    acc: &mut f32,
    accm: &mut f32,
) {
    if gemm {
        for p in 0..4 {
            *acc = (isum[p] as f32).mul_add(dd, *acc);
            *accm = (imin[p] as f32).mul_add(ddm, *accm);
        }
    } else {
        let s = isum[0] + isum[1] + isum[2] + isum[3];
        let m = imin[0] + imin[1] + imin[2] + imin[3];
        *acc = (s as f32).mul_add(dd, *acc);
        *accm = (m as f32).mul_add(ddm, *accm);
    }
}

/// Per pair of sub-blocks `p`, `m_2p·bs_2p + m_2p+1·bs_2p+1`.
#[inline(always)]
fn min_sums(mn: &[i16; 8], bs: &[i16]) -> [i32; 4] {
    let mut r = [0i32; 4];
    for (p, rp) in r.iter_mut().enumerate() {
        *rp = mn[2 * p] as i32 * bs[2 * p] as i32 + mn[2 * p + 1] as i32 * bs[2 * p + 1] as i32;
    }
    r
}

fn band_scalar(c: &Band, gemm_rows: usize, n: usize, out: &mut [f32]) {
    let (k, nb, nr) = (c.k, c.nb, c.nr);
    for i in 0..nr {
        let wrow = &c.w[i * c.row_bytes..][..c.row_bytes];
        let wc = &c.consts[i * nb..][..nb];
        for j in 0..n {
            let aq = &c.a.qs[j * k..][..k];
            let ad = &c.a.d[j * nb..][..nb];
            let bs = &c.bs32[j * k / 32..][..k / 32];
            let (mut acc, mut accm) = (0.0f32, 0.0f32);
            for b in 0..nb {
                let qs = &wrow[b * BLOCK_BYTES + 16..][..128];
                let q8 = &aq[b * QK..][..QK];
                let bc = &wc[b];
                let mut isum = [0i32; 4];
                for (p, ip) in isum.iter_mut().enumerate() {
                    let (mut lo, mut hi) = (0i32, 0i32);
                    for l in 0..32 {
                        let v = qs[p * 32 + l];
                        lo += (v & 15) as i32 * q8[p * 64 + l] as i32;
                        hi += (v >> 4) as i32 * q8[p * 64 + 32 + l] as i32;
                    }
                    *ip = bc.sc[2 * p] as i32 * lo + bc.sc[2 * p + 1] as i32 * hi;
                }
                let imin = min_sums(&bc.mn, &bs[b * 8..][..8]);
                accumulate(
                    j < gemm_rows,
                    isum,
                    imin,
                    bc.d * ad[b],
                    bc.dmin * ad[b],
                    &mut acc,
                    &mut accm,
                );
            }
            out[j * nr + i] = acc - accm;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{accumulate, min_sums, Band, BLOCK_BYTES, GEMM_ROWS, QK};
    use std::arch::x86_64::*;

    /// All outputs of the band: eight weight rows at a time in the lanes of a vector (no
    /// horizontal sums) when there are at least four input rows to share the decoding, else
    /// one weight row by up to four input rows straight from the stored blocks.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn band(c: &Band, gemm_rows: usize, n: usize, out: &mut [f32]) {
        if n >= GEMM_ROWS && c.nr % 8 == 0 {
            lanes_band(c, gemm_rows, n, out)
        } else {
            rows_band(c, gemm_rows, n, out)
        }
    }

    /// One row of eight weight rows' constants for super block `b`, laid out for the lanes.
    #[derive(Clone, Copy)]
    struct Lanes {
        d: [f32; 8],
        dmin: [f32; 8],
        /// Per sub-block `s`: lane `r` (two i16) holds row `r`'s scale twice.
        sc: [[i16; 16]; 8],
        /// Per pair `p`: lane `r` holds row `r`'s mins of sub-blocks `2p`, `2p + 1`.
        mn: [[i16; 16]; 4],
    }

    /// Weight rows `8g..8g + 8` of the band decoded: per super block its [`Lanes`] and 64
    /// vectors of 32 nibble values, vector `v` holding values `4v..4v + 4` of each row in lane `r`.
    #[inline(always)]
    unsafe fn decode_group(c: &Band, g: usize, lanes: &mut [Lanes], q: &mut [u8]) {
        let nb = c.nb;
        for b in 0..nb {
            let l = &mut lanes[b];
            for r in 0..8 {
                let row = 8 * g + r;
                let bc = &c.consts[row * nb + b];
                l.d[r] = bc.d;
                l.dmin[r] = bc.dmin;
                for s in 0..8 {
                    l.sc[s][2 * r] = bc.sc[s];
                    l.sc[s][2 * r + 1] = bc.sc[s];
                }
                for p in 0..4 {
                    l.mn[p][2 * r] = bc.mn[2 * p];
                    l.mn[p][2 * r + 1] = bc.mn[2 * p + 1];
                }
                let qs = &c.w[row * c.row_bytes + b * BLOCK_BYTES + 16..][..128];
                let dst = &mut q[b * 2048..][..2048];
                for p in 0..4 {
                    for t in 0..8 {
                        let v = u32::from_le_bytes([
                            qs[p * 32 + 4 * t],
                            qs[p * 32 + 4 * t + 1],
                            qs[p * 32 + 4 * t + 2],
                            qs[p * 32 + 4 * t + 3],
                        ]);
                        let lo = (v & 0x0F0F_0F0F).to_le_bytes();
                        let hi = ((v >> 4) & 0x0F0F_0F0F).to_le_bytes();
                        // Values p*64 + 4t.. (low nibbles) and p*64 + 32 + 4t.. (high).
                        let vl = p * 16 + t;
                        let vh = p * 16 + 8 + t;
                        dst[vl * 32 + 4 * r..][..4].copy_from_slice(&lo);
                        dst[vh * 32 + 4 * r..][..4].copy_from_slice(&hi);
                    }
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn lanes_band(c: &Band, gemm_rows: usize, n: usize, out: &mut [f32]) {
        let zero = Lanes {
            d: [0.0; 8],
            dmin: [0.0; 8],
            sc: [[0; 16]; 8],
            mn: [[0; 16]; 4],
        };
        let mut lanes = vec![zero; c.nb];
        let mut q = vec![0u8; c.nb * 2048];
        for g in 0..c.nr / 8 {
            decode_group(c, g, &mut lanes, &mut q);
            let mut j0 = 0;
            while j0 < n {
                let m = GEMM_ROWS.min(n - j0);
                let gemm = j0 < gemm_rows;
                match m {
                    4 => lanes_tile::<4>(c, &lanes, &q, g, j0, gemm, out),
                    3 => lanes_tile::<3>(c, &lanes, &q, g, j0, gemm, out),
                    2 => lanes_tile::<2>(c, &lanes, &q, g, j0, gemm, out),
                    _ => lanes_tile::<1>(c, &lanes, &q, g, j0, gemm, out),
                }
                j0 += m;
            }
        }
    }

    /// Outputs of weight rows `8g..8g + 8` for input rows `j0..j0 + M`.
    #[inline(always)]
    unsafe fn lanes_tile<const M: usize>(
        c: &Band,
        lanes: &[Lanes],
        q: &[u8],
        g: usize,
        j0: usize,
        gemm: bool,
        out: &mut [f32],
    ) {
        let (k, nb, nr) = (c.k, c.nb, c.nr);
        let mut acc = [_mm256_setzero_ps(); M];
        let mut accm = [_mm256_setzero_ps(); M];
        for (b, l) in lanes.iter().enumerate().take(nb) {
            let dv = _mm256_loadu_ps(l.d.as_ptr());
            let dmv = _mm256_loadu_ps(l.dmin.as_ptr());
            let qb = q.as_ptr().add(b * 2048);
            let mut isum_b = [_mm256_setzero_si256(); M];
            let mut imin_b = [_mm256_setzero_si256(); M];
            for p in 0..4 {
                let mut isum = [_mm256_setzero_si256(); M];
                for h in 0..2 {
                    let s = 2 * p + h;
                    let mut a16 = [_mm256_setzero_si256(); M];
                    for t in 0..8 {
                        let w = _mm256_loadu_si256(qb.add((s * 8 + t) * 32) as *const __m256i);
                        for (jj, a) in a16.iter_mut().enumerate() {
                            let ap = c.a.qs.as_ptr().add((j0 + jj) * k + b * QK + s * 32 + 4 * t);
                            let y = _mm256_set1_epi32((ap as *const i32).read_unaligned());
                            *a = _mm256_add_epi16(*a, _mm256_maddubs_epi16(w, y));
                        }
                    }
                    let sc = _mm256_loadu_si256(l.sc[s].as_ptr() as *const __m256i);
                    for jj in 0..M {
                        isum[jj] = _mm256_add_epi32(isum[jj], _mm256_madd_epi16(a16[jj], sc));
                    }
                }
                let mn = _mm256_loadu_si256(l.mn[p].as_ptr() as *const __m256i);
                for jj in 0..M {
                    let j = j0 + jj;
                    let bp = c.bs32.as_ptr().add(j * k / 32 + b * 8 + 2 * p);
                    let bs = _mm256_set1_epi32((bp as *const i32).read_unaligned());
                    let imin = _mm256_madd_epi16(mn, bs);
                    if gemm {
                        let da = _mm256_set1_ps(*c.a.d.get_unchecked(j * nb + b));
                        acc[jj] = _mm256_fmadd_ps(
                            _mm256_cvtepi32_ps(isum[jj]),
                            _mm256_mul_ps(dv, da),
                            acc[jj],
                        );
                        accm[jj] = _mm256_fmadd_ps(
                            _mm256_cvtepi32_ps(imin),
                            _mm256_mul_ps(dmv, da),
                            accm[jj],
                        );
                    } else {
                        isum_b[jj] = _mm256_add_epi32(isum_b[jj], isum[jj]);
                        imin_b[jj] = _mm256_add_epi32(imin_b[jj], imin);
                    }
                }
            }
            if !gemm {
                for jj in 0..M {
                    let da = _mm256_set1_ps(*c.a.d.get_unchecked((j0 + jj) * nb + b));
                    acc[jj] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(isum_b[jj]),
                        _mm256_mul_ps(dv, da),
                        acc[jj],
                    );
                    accm[jj] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(imin_b[jj]),
                        _mm256_mul_ps(dmv, da),
                        accm[jj],
                    );
                }
            }
        }
        for jj in 0..M {
            let o = &mut out[(j0 + jj) * nr + 8 * g..][..8];
            _mm256_storeu_ps(o.as_mut_ptr(), _mm256_sub_ps(acc[jj], accm[jj]));
        }
    }

    /// All outputs of the band, four input rows by one weight row at a time.
    #[inline(always)]
    unsafe fn rows_band(c: &Band, gemm_rows: usize, n: usize, out: &mut [f32]) {
        let mut j0 = 0;
        while j0 < n {
            let m = GEMM_ROWS.min(n - j0);
            let gemm = j0 < gemm_rows;
            for i in 0..c.nr {
                match m {
                    4 => tile::<4>(c, i, j0, gemm, out),
                    3 => tile::<3>(c, i, j0, gemm, out),
                    2 => tile::<2>(c, i, j0, gemm, out),
                    _ => tile::<1>(c, i, j0, gemm, out),
                }
            }
            j0 += m;
        }
    }

    /// Sums the eight i32 lanes of each of four vectors: `[Σ v0, Σ v1, Σ v2, Σ v3]`.
    #[inline(always)]
    unsafe fn hsum4(v: [__m256i; 4]) -> [i32; 4] {
        let a = _mm256_hadd_epi32(v[0], v[1]);
        let b = _mm256_hadd_epi32(v[2], v[3]);
        let s = _mm256_hadd_epi32(a, b);
        let r = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        let mut o = [0i32; 4];
        _mm_storeu_si128(o.as_mut_ptr() as *mut __m128i, r);
        o
    }

    /// Outputs of weight row `i` for input rows `j0..j0 + M`.
    #[inline(always)]
    unsafe fn tile<const M: usize>(c: &Band, i: usize, j0: usize, gemm: bool, out: &mut [f32]) {
        let (k, nb, nr) = (c.k, c.nb, c.nr);
        let m4 = _mm256_set1_epi8(0x0F);
        let wrow = c.w.as_ptr().add(i * c.row_bytes);
        let mut acc = [0.0f32; M];
        let mut accm = [0.0f32; M];
        for b in 0..nb {
            let bc = c.consts.get_unchecked(i * nb + b);
            let qs = wrow.add(b * BLOCK_BYTES + 16);
            let mut sums = [[_mm256_setzero_si256(); 4]; M];
            for p in 0..4 {
                let raw = _mm256_loadu_si256(qs.add(p * 32) as *const __m256i);
                let lo = _mm256_and_si256(raw, m4);
                let hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                let sl = _mm256_set1_epi16(bc.sc[2 * p]);
                let sh = _mm256_set1_epi16(bc.sc[2 * p + 1]);
                for (jj, s) in sums.iter_mut().enumerate() {
                    let q8 = c.a.qs.as_ptr().add((j0 + jj) * k + b * QK + p * 64);
                    let yl = _mm256_loadu_si256(q8 as *const __m256i);
                    let yh = _mm256_loadu_si256(q8.add(32) as *const __m256i);
                    let pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, yl), sl);
                    let ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, yh), sh);
                    s[p] = _mm256_add_epi32(pl, ph);
                }
            }
            for jj in 0..M {
                let j = j0 + jj;
                let isum = hsum4(sums[jj]);
                let bs = c
                    .bs32
                    .get_unchecked(j * k / 32 + b * 8..j * k / 32 + b * 8 + 8);
                let imin = min_sums(&bc.mn, bs);
                let da = *c.a.d.get_unchecked(j * nb + b);
                accumulate(
                    gemm,
                    isum,
                    imin,
                    bc.d * da,
                    bc.dmin * da,
                    &mut acc[jj],
                    &mut accm[jj],
                );
            }
        }
        for jj in 0..M {
            out[(j0 + jj) * nr + i] = acc[jj] - accm[jj];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rows` Q4_K rows of `k` with varied scales, mins and nibbles.
    fn weights(rows: usize, k: usize) -> Vec<u8> {
        let nb = k / QK;
        let mut raw = vec![0u8; rows * nb * BLOCK_BYTES];
        for (bi, b) in raw.chunks_exact_mut(BLOCK_BYTES).enumerate() {
            let d = 0.002 + (bi % 7) as f32 * 3e-4;
            let dmin = 0.001 + (bi % 5) as f32 * 2e-4;
            b[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
            b[2..4].copy_from_slice(&f16::from_f32(dmin).to_le_bytes());
            for (t, v) in b[4..].iter_mut().enumerate() {
                *v = ((bi * 131 + t * 89 + t * t * 7) % 256) as u8;
            }
        }
        raw
    }

    fn acts(n: usize, k: usize) -> Vec<f32> {
        (0..n * k)
            .map(|i| (((i * 53 + i / 7) % 199) as f32 - 99.0) / 17.0)
            .collect()
    }

    /// Row `r` of Q4_K `raw` dequantized.
    fn dequant(raw: &[u8], k: usize, r: usize) -> Vec<f64> {
        let nb = k / QK;
        let mut v = vec![0.0; k];
        for b in 0..nb {
            let blk = &raw[(r * nb + b) * BLOCK_BYTES..][..BLOCK_BYTES];
            let c = block_consts(blk);
            for p in 0..4 {
                for l in 0..32 {
                    let q = blk[16 + p * 32 + l];
                    for (h, nib) in [(0, q & 15), (1, q >> 4)] {
                        let s = 2 * p + h;
                        v[b * QK + s * 32 + l] = c.d as f64 * c.sc[s] as f64 * nib as f64
                            - c.dmin as f64 * c.mn[s] as f64;
                    }
                }
            }
        }
        v
    }

    #[test]
    fn vector_and_scalar_kernels_agree_bit_for_bit() {
        // n = 7: the lane kernel (gemm rows 0..4, gemv rows 4..7); n = 3: the row kernel.
        for n in [7, 3] {
            check_against_scalar(n);
        }
    }

    fn check_against_scalar(n: usize) {
        let (rows, k) = (24, 512);
        let raw = weights(rows, k);
        let rb = k / QK * BLOCK_BYTES;
        let a = quantize_acts(&acts(n, k), n, k);
        let (r0, nr) = (8, 16);
        let mut fast = vec![0.0; n * nr];
        band(&raw, rb, r0, nr, k, &a, &mut fast);
        let nb = k / QK;
        let w = &raw[r0 * rb..(r0 + nr) * rb];
        let consts: Vec<_> = w.chunks_exact(BLOCK_BYTES).map(block_consts).collect();
        let bs32: Vec<i16> = a.bsums.chunks_exact(2).map(|p| p[0] + p[1]).collect();
        let ctx = Band {
            w,
            row_bytes: rb,
            nr,
            k,
            nb,
            consts: &consts,
            bs32: &bs32,
            a: &a,
        };
        let mut slow = vec![0.0; n * nr];
        band_scalar(&ctx, n - n % GEMM_ROWS, n, &mut slow);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&slow), "n = {n}");
        // The result is the dot product of the dequantized values.
        for j in 0..n {
            for i in 0..nr {
                let w = dequant(&raw, k, r0 + i);
                let terms =
                    (0..k).map(|e| w[e] * a.qs[j * k + e] as f64 * a.d[j * nb + e / QK] as f64);
                let exact: f64 = terms.clone().sum();
                let scale: f64 = terms.map(f64::abs).sum();
                let got = fast[j * nr + i] as f64;
                assert!((got - exact).abs() <= 1e-5 * scale, "{got} vs {exact}");
            }
        }
    }

    #[test]
    fn gemm_rows_and_gemv_rows_take_their_own_grouping() {
        // One input row repeated: rows 0..4 go through gemm, row 4 through gemv. Same integer
        // sums, so all agree to rounding; the gemm rows agree exactly with each other and the
        // gemv row exactly with a one-row product (also gemv).
        let (k, n) = (1024, 5);
        let raw = weights(8, k);
        let rb = k / QK * BLOCK_BYTES;
        let mut row = acts(1, k);
        for b in 0..k / QK {
            row[b * QK + 5] = 7.5; // one extreme per block: both quantizers agree
        }
        let x: Vec<f32> = (0..n).flat_map(|_| row.iter().copied()).collect();
        let a = quantize_acts(&x, n, k);
        assert_eq!(&a.qs[..k], &a.qs[4 * k..]);
        let mut o = vec![0.0; n * 8];
        band(&raw, rb, 0, 8, k, &a, &mut o);
        for i in 0..8 {
            let (g, v) = (o[i], o[4 * 8 + i]);
            assert!((g - v).abs() <= 1e-5 * g.abs().max(1.0), "{g} vs {v}");
            for j in 1..4 {
                assert_eq!(o[j * 8 + i].to_bits(), g.to_bits());
            }
        }
        let mut by_gemv = vec![0.0; 8];
        let single = quantize_acts(&row, 1, k);
        band(&raw, rb, 0, 8, k, &single, &mut by_gemv);
        assert_eq!(by_gemv, o[32..]);
    }

    #[test]
    fn the_4x8_quantizer_prefers_the_positive_extreme() {
        let k = QK;
        let mut row = vec![0.25f32; k];
        row[3] = -2.0;
        row[9] = 2.0;
        let x: Vec<f32> = (0..5).flat_map(|_| row.iter().copied()).collect();
        let a = quantize_acts(&x, 5, k);
        // Rows 0..4: the 4x8 routine (positive extreme: negative scale).
        assert!(a.d[0] < 0.0);
        assert_eq!((a.qs[3], a.qs[9]), (127, -127));
        // Row 4: the reference (first extreme, here negative: positive scale).
        assert!(a.d[4] > 0.0);
        assert_eq!((a.qs[4 * k + 3], a.qs[4 * k + 9]), (-127, 127));
        let s0: i16 = a.qs[..16].iter().map(|&v| v as i16).sum();
        assert_eq!(a.bsums[0], s0);
        // Without a tie both agree.
        row[9] = 1.0;
        let x: Vec<f32> = (0..5).flat_map(|_| row.iter().copied()).collect();
        let a = quantize_acts(&x, 5, k);
        assert_eq!(a.d[0], a.d[4]);
        assert_eq!(&a.qs[..k], &a.qs[4 * k..]);
    }
}
