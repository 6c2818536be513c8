//! Byte views of the IQ grids and the sign lookup shared by the grid dequantizers.
//!
//! The C code reads a grid point through a `uint8_t *` (or `int8_t *`) cast of its `uint64_t`
//! or `uint32_t` entry, i.e. least significant byte first on the little-endian machines ggml
//! runs on. The views below unpack the generated tables that way once, at compile time.

use super::tables::{
    IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, KMASK_IQ2XS,
    KSIGNS_IQ2XS, NGRID_IQ1S,
};

const fn bytes8<const N: usize>(grid: &[u64; N]) -> [[u8; 8]; N] {
    let mut out = [[0u8; 8]; N];
    let mut i = 0;
    while i < N {
        out[i] = grid[i].to_le_bytes();
        i += 1;
    }
    out
}

const fn bytes4<const N: usize>(grid: &[u32; N]) -> [[u8; 4]; N] {
    let mut out = [[0u8; 4]; N];
    let mut i = 0;
    while i < N {
        out[i] = grid[i].to_le_bytes();
        i += 1;
    }
    out
}

const fn signed8<const N: usize>(grid: &[u64; N]) -> [[i8; 8]; N] {
    let mut out = [[0i8; 8]; N];
    let mut i = 0;
    while i < N {
        let b = grid[i].to_le_bytes();
        let mut j = 0;
        while j < 8 {
            out[i][j] = b[j] as i8;
            j += 1;
        }
        i += 1;
    }
    out
}

/// `iq2xxs_grid` as 8 magnitudes per point.
pub static IQ2XXS: [[u8; 8]; 256] = bytes8(&IQ2XXS_GRID);
/// `iq2xs_grid` as 8 magnitudes per point.
pub static IQ2XS: [[u8; 8]; 512] = bytes8(&IQ2XS_GRID);
/// `iq2s_grid` as 8 magnitudes per point.
pub static IQ2S: [[u8; 8]; 1024] = bytes8(&IQ2S_GRID);
/// `iq3xxs_grid` as 4 magnitudes per point.
pub static IQ3XXS: [[u8; 4]; 256] = bytes4(&IQ3XXS_GRID);
/// `iq3s_grid` as 4 magnitudes per point.
pub static IQ3S: [[u8; 4]; 512] = bytes4(&IQ3S_GRID);
/// `iq1s_grid` as 8 values in {-1, 0, 1} per point.
pub static IQ1S: [[i8; 8]; NGRID_IQ1S] = signed8(&IQ1S_GRID);

/// The sign byte of 7-bit sign index `index & 127` (`ksigns_iq2xs`).
#[inline]
pub(super) fn sign_byte(index: u32) -> u8 {
    KSIGNS_IQ2XS[(index & 127) as usize]
}

/// `v * (signs & kmask_iq2xs[j] ? -1.f : 1.f)`: the C multiplies by ±1 rather than negating.
#[inline]
pub(super) fn apply_sign(v: f32, signs: u8, j: usize) -> f32 {
    v * if signs & KMASK_IQ2XS[j] != 0 {
        -1.0
    } else {
        1.0
    }
}
