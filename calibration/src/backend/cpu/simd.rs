//! Run-time selection of x86 vector instructions. Kernels are written once as plain Rust with
//! exact operations (`mul_add` is a fused multiply-add on every path), then compiled a second
//! time with AVX2/FMA/F16C enabled; both builds give bit-identical results, the second faster.

/// Whether the CPU has AVX2, FMA and F16C (checked once, then cached by std).
#[inline]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `$name(args)`, which runs the `#[inline(always)]` function `$body(args)` compiled
/// with AVX2/FMA/F16C when the CPU has them, and as plain code otherwise.
macro_rules! dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? => $body:ident) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma,f16c")]
                unsafe fn fast($($a: $t),*) $(-> $r)? {
                    $body($($a),*)
                }
                if $crate::backend::cpu::simd::has_avx2_fma() {
                    // SAFETY: the CPU supports the features `fast` was compiled for.
                    return unsafe { fast($($a),*) };
                }
            }
            $body($($a),*)
        }
    };
}
pub(crate) use dispatch;
