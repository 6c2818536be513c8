//! Element types of safetensors tensors.

use std::fmt;

/// A safetensors element type that qforge reads and writes.
///
/// The declaration order is the order of the `safetensors` crate's `Dtype` (increasing
/// alignment); the reference writer lays tensors out by descending dtype in this order, then by
/// name, and [`Ord`] follows it. The sub-byte and exotic types (`F4`, `F6_*`, `F8_E8M0`, `C64`)
/// are not supported and are rejected by the reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(non_camel_case_types)]
pub enum Dtype {
    /// Boolean, one byte (0 or 1).
    BOOL,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// 8-bit float, 5 exponent bits and 2 mantissa bits, IEEE-like (infinities and NaNs).
    F8_E5M2,
    /// 8-bit float, 4 exponent bits and 3 mantissa bits, finite only (`e4m3fn`): the only NaN
    /// codes are 0x7F and 0xFF, and there are no infinities.
    F8_E4M3,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 16-bit integer.
    U16,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 64-bit integer.
    U64,
}

impl Dtype {
    /// Every supported dtype, in [`Ord`] order.
    pub const ALL: [Dtype; 15] = [
        Dtype::BOOL,
        Dtype::U8,
        Dtype::I8,
        Dtype::F8_E5M2,
        Dtype::F8_E4M3,
        Dtype::I16,
        Dtype::U16,
        Dtype::F16,
        Dtype::BF16,
        Dtype::I32,
        Dtype::U32,
        Dtype::F32,
        Dtype::F64,
        Dtype::I64,
        Dtype::U64,
    ];

    /// The name used in safetensors headers, e.g. `BF16`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::BOOL => "BOOL",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::F8_E5M2 => "F8_E5M2",
            Dtype::F8_E4M3 => "F8_E4M3",
            Dtype::I16 => "I16",
            Dtype::U16 => "U16",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I32 => "I32",
            Dtype::U32 => "U32",
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::U64 => "U64",
        }
    }

    /// The dtype named `name` in a header (case-sensitive, as the format is), if supported.
    pub fn from_name(name: &str) -> Option<Dtype> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Dtype::BOOL | Dtype::U8 | Dtype::I8 | Dtype::F8_E5M2 | Dtype::F8_E4M3 => 1,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }

    /// Whether this is a floating-point type (convertible with
    /// [`TensorView::to_f32`](super::TensorView::to_f32)).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            Dtype::F8_E5M2 | Dtype::F8_E4M3 | Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64
        )
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::Dtype as Reference;

    fn reference(d: Dtype) -> Reference {
        serde_json::from_value(serde_json::Value::String(d.name().to_owned())).unwrap()
    }

    #[test]
    fn names_sizes_and_order_agree_with_the_safetensors_crate() {
        for d in Dtype::ALL {
            assert_eq!(Dtype::from_name(d.name()), Some(d));
            let r = reference(d);
            assert_eq!(r.to_string(), d.name());
            assert_eq!(r.bitsize() as u64, d.size() * 8, "{d}");
        }
        for a in Dtype::ALL {
            for b in Dtype::ALL {
                assert_eq!(a.cmp(&b), reference(a).cmp(&reference(b)), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn unsupported_and_misspelled_names_are_rejected() {
        for n in [
            "F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "C64", "f32", "FLOAT", "",
        ] {
            assert_eq!(Dtype::from_name(n), None, "{n}");
        }
    }
}
