//! Lane-parallel scale searches: the K-quant super-blocks' independent sub-blocks quantized
//! side by side, one sub-block per SIMD lane.
//!
//! llama.cpp's reference quantizers run the scale search of one sub-block after another. Here
//! each lane of an 8-wide f32 vector holds one sub-block and executes exactly the sequence of
//! IEEE f32 operations the scalar code executes for it (additions, multiplications, divisions
//! and square roots correctly rounded, no fused multiply-add, sums accumulated in element
//! order); the C's data-dependent branches become per-lane selects, with the same comparison
//! predicates (ordered `<`, `>`, `<=`, `==`; unordered `!=`), and `nearest_int` is the same
//! bit trick per lane. The results are therefore bit-identical to the scalar code, which
//! remains the fallback (no AVX2, or non-finite input, whose NaN payloads the scalar code keeps
//! in the C's order) and the oracle the lane code is tested against.
//!
//! The lane code needs AVX2 and is chosen at run time ([`active`]); elsewhere the scalar code
//! runs.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(all(test, target_arch = "x86_64"))]
mod tests;

#[cfg(target_arch = "x86_64")]
use super::nearest_int;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the lane code may be used (see [`set_enabled`]).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Allows (the default) or forbids the lane-parallel quantizers, e.g. to compare their speed
/// with the scalar code's; both give the same bytes.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether this CPU can run the lane-parallel quantizers (x86-64 with AVX2), detected once.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static AVX2: OnceLock<bool> = OnceLock::new();
        *AVX2.get_or_init(|| std::arch::is_x86_feature_detected!("avx2"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the K-quant quantizers take their lane-parallel path: [`available`] and not
/// disabled by [`set_enabled`].
pub fn active() -> bool {
    ENABLED.load(Ordering::Relaxed) && available()
}

#[cfg(target_arch = "x86_64")]
/// The levels of a group from the inverse scale and min a lane-parallel asymmetric search
/// reports for it: `MAX(0, MIN(nmax, nearest_int(iscale * (x - min))))`, the operations the
/// search performed (a degenerate group reports 0 and 0, giving levels 0).
pub(crate) fn qkx_levels(nmax: i32, x: &[f32], iscale: f32, min: f32, l: &mut [u8]) {
    for (li, &xi) in l.iter_mut().zip(x) {
        *li = nmax.min(nearest_int(iscale * (xi - min))).max(0) as u8;
    }
}

#[cfg(target_arch = "x86_64")]
/// The levels of a group from the inverse scale a lane-parallel symmetric search reports for
/// it: `nmax + MAX(-nmax, MIN(nmax - 1, nearest_int(iscale * x)))`, or 0 for an all-zero
/// group (`None`).
pub(crate) fn qx_levels(nmax: i32, x: &[f32], iscale: Option<f32>, l: &mut [i8]) {
    match iscale {
        None => l.fill(0),
        Some(iscale) => {
            for (li, &xi) in l.iter_mut().zip(x) {
                *li = (nmax + (nmax - 1).min(nearest_int(iscale * xi)).max(-nmax)) as i8;
            }
        }
    }
}
