//! Support shared by the GGUF integration tests: the reference tools ([`oracle`]), qforge's
//! view of a file as gguf_dump.py JSON ([`dump`]), SHA-256 ([`sha256`]) and a deterministic
//! random generator.
#![allow(dead_code)]

pub mod dump;
pub mod oracle;
pub mod sha256;

/// A small deterministic generator (xorshift64*), so every run tests the same cases.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next raw 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
