//! Dequantization of every IQ type against llama.cpp's `to_float`: on blocks llama.cpp
//! quantized, on random blocks, and on blocks that walk through every grid point.

use super::{assert_dequantize_matches, ALL};
use crate::ggml::GgmlType;
use crate::oracle;

/// Blocks quantized by llama.cpp itself, with an importance matrix (which every IQ quantizer
/// accepts and IQ2_XXS, IQ2_XS and IQ1_S require). One oracle call per type: llama.cpp builds
/// its IQ1/IQ2 grid neighbourhoods in every process, which takes seconds for IQ1_S.
#[test]
fn dequantize_matches_on_llama_cpp_blocks() {
    let (seed, nrows, n_per_row) = (11, 8, 1024);
    let rows = oracle::test_rows(seed, nrows, n_per_row);
    let im = oracle::test_imatrix(seed, n_per_row);
    for ty in ALL {
        let Some(bytes) = oracle::quantize(ty, n_per_row, &rows, Some(&im)) else {
            return;
        };
        assert_dequantize_matches(ty, &bytes, &format!("seed {seed}, {nrows}x{n_per_row}"));
    }
}

/// The fp16 scale bits of a block: the first two bytes of every IQ type but IQ1_M, whose scale
/// is spread over the top nibbles of its four little-endian scale words (bytes 48..56).
fn scale_bits(ty: GgmlType, block: &[u8]) -> u16 {
    if ty == GgmlType::IQ1_M {
        (0..4).fold(0, |acc, i| {
            acc | (u16::from(block[49 + 2 * i] >> 4) << (4 * i))
        })
    } else {
        u16::from_le_bytes([block[0], block[1]])
    }
}

fn set_scale_bits(ty: GgmlType, block: &mut [u8], bits: u16) {
    if ty == GgmlType::IQ1_M {
        for i in 0..4 {
            let nibble = ((bits >> (4 * i)) & 0xf) as u8;
            block[49 + 2 * i] = (block[49 + 2 * i] & 0x0f) | (nibble << 4);
        }
    } else {
        block[..2].copy_from_slice(&bits.to_le_bytes());
    }
}

/// Clears the top exponent bit of a block's fp16 scale when it encodes infinity or NaN.
fn force_finite_scale(ty: GgmlType, block: &mut [u8]) {
    let bits = scale_bits(ty, block);
    if bits & 0x7c00 == 0x7c00 {
        set_scale_bits(ty, block, bits & !0x4000);
    }
}

fn random_blocks(ty: GgmlType, seed: u64, nblocks: usize) -> Vec<u8> {
    let mut rng = oracle::Rng::new(seed);
    let mut bytes: Vec<u8> = (0..nblocks * ty.type_size())
        .map(|_| rng.next_u64() as u8)
        .collect();
    for b in bytes.chunks_exact_mut(ty.type_size()) {
        force_finite_scale(ty, b);
    }
    bytes
}

#[test]
fn dequantize_matches_on_random_blocks() {
    for ty in ALL {
        for seed in [1, 2, 3] {
            let bytes = random_blocks(ty, seed * 100 + ty.id() as u64, 64);
            assert_dequantize_matches(ty, &bytes, &format!("random blocks, seed {seed}"));
        }
    }
}

/// Grid points each block of a grid type addresses, and how many the grid has.
fn grid_slots(ty: GgmlType) -> (usize, usize) {
    match ty {
        GgmlType::IQ2_XXS => (32, 256),
        GgmlType::IQ2_XS => (32, 512),
        GgmlType::IQ2_S => (32, 1024),
        GgmlType::IQ3_XXS => (64, 256),
        GgmlType::IQ3_S => (64, 512),
        GgmlType::IQ1_S | GgmlType::IQ1_M => (32, 2048),
        _ => (0, 0),
    }
}

/// Makes slot `k` of `block` address grid point `index`, from the block layouts of
/// `ggml-common.h` and the index arithmetic of the `dequantize_row_*` functions.
fn set_grid_index(ty: GgmlType, block: &mut [u8], k: usize, index: usize) {
    let (lo, hi) = (index as u8, (index >> 8) as u8);
    match ty {
        // 8 bytes per 32 weights: four index bytes, then the sign/scale word.
        GgmlType::IQ2_XXS => block[2 + 8 * (k / 4) + k % 4] = lo,
        // uint16 codes: 9-bit index, 7-bit sign index.
        GgmlType::IQ2_XS => {
            block[2 + 2 * k] = lo;
            block[3 + 2 * k] = (block[3 + 2 * k] & !1) | hi;
        }
        // qs[k] low bits, qh[k/4] bits 2(k%4)..2(k%4)+1 high bits.
        GgmlType::IQ2_S => {
            block[2 + k] = lo;
            let (qh, shift) = (66 + k / 4, 2 * (k % 4));
            block[qh] = (block[qh] & !(3 << shift)) | (hi << shift);
        }
        GgmlType::IQ3_XXS => block[2 + k] = lo,
        // qs[k] low bits, bit k%8 of qh[k/8] ninth bit.
        GgmlType::IQ3_S => {
            block[2 + k] = lo;
            let (qh, bit) = (66 + k / 8, k % 8);
            block[qh] = (block[qh] & !(1 << bit)) | (hi << bit);
        }
        // qs[k] low bits, bits 3(k%4).. of the uint16 qh[k/4] high bits.
        GgmlType::IQ1_S => {
            block[2 + k] = lo;
            let off = 34 + 2 * (k / 4);
            let mut h = u16::from_le_bytes([block[off], block[off + 1]]);
            let shift = 3 * (k % 4);
            h = (h & !(7 << shift)) | (u16::from(hi) << shift);
            block[off..off + 2].copy_from_slice(&h.to_le_bytes());
        }
        // qs[k] low bits, low 3 bits of a nibble of qh[k/2] high bits.
        GgmlType::IQ1_M => {
            block[k] = lo;
            let (qh, shift) = (32 + k / 2, 4 * (k % 2));
            block[qh] = (block[qh] & !(7 << shift)) | (hi << shift);
        }
        _ => unreachable!("{ty} has no grid"),
    }
}

/// Every grid point of every grid type, so that each generated table entry is compared.
#[test]
fn dequantize_matches_on_every_grid_point() {
    for ty in ALL {
        let (per_block, points) = grid_slots(ty);
        if per_block == 0 {
            continue;
        }
        let nblocks = points / per_block;
        let mut bytes = random_blocks(ty, 500 + ty.id() as u64, nblocks);
        for (b, block) in bytes.chunks_exact_mut(ty.type_size()).enumerate() {
            // A scale of 1.0, so that no point is hidden by a zero or tiny scale.
            set_scale_bits(ty, block, 0x3c00);
            for k in 0..per_block {
                set_grid_index(ty, block, k, b * per_block + k);
            }
        }
        assert_dequantize_matches(ty, &bytes, "grid sweep");
    }
}
