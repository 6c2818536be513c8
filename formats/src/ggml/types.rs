//! The ggml tensor types of the pinned llama.cpp commit (`ggml/include/ggml.h`, `ggml.c::type_traits`).

use std::fmt;

/// Elements in a K-quant super-block (`QK_K`).
pub const QK_K: usize = 256;

/// A ggml tensor element type, with the numeric id used in GGUF files.
///
/// Removed ids (4, 5, 31-33, 36-38) have no variant: [`GgmlType::from_id`] rejects them as
/// llama.cpp's GGUF reader does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(non_camel_case_types, missing_docs)]
#[repr(u32)]
pub enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
    NVFP4 = 40,
    Q1_0 = 41,
    Q2_0 = 42,
}

/// Static traits of one type: name, elements per block and bytes per block.
struct Traits {
    name: &'static str,
    block_size: usize,
    type_size: usize,
    quantized: bool,
}

const fn t(name: &'static str, block_size: usize, type_size: usize, quantized: bool) -> Traits {
    Traits {
        name,
        block_size,
        type_size,
        quantized,
    }
}

impl GgmlType {
    /// Every live type, in id order.
    pub const ALL: [GgmlType; 35] = [
        Self::F32,
        Self::F16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q8_1,
        Self::Q2_K,
        Self::Q3_K,
        Self::Q4_K,
        Self::Q5_K,
        Self::Q6_K,
        Self::Q8_K,
        Self::IQ2_XXS,
        Self::IQ2_XS,
        Self::IQ3_XXS,
        Self::IQ1_S,
        Self::IQ4_NL,
        Self::IQ3_S,
        Self::IQ2_S,
        Self::IQ4_XS,
        Self::I8,
        Self::I16,
        Self::I32,
        Self::I64,
        Self::F64,
        Self::IQ1_M,
        Self::BF16,
        Self::TQ1_0,
        Self::TQ2_0,
        Self::MXFP4,
        Self::NVFP4,
        Self::Q1_0,
        Self::Q2_0,
    ];

    /// The type with GGUF/ggml id `id`, or `None` for removed or unknown ids.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| *t as u32 == id)
    }

    /// The ggml type id.
    pub fn id(self) -> u32 {
        self as u32
    }

    fn traits(self) -> Traits {
        use GgmlType::*;
        match self {
            F32 => t("f32", 1, 4, false),
            F16 => t("f16", 1, 2, false),
            BF16 => t("bf16", 1, 2, false),
            F64 => t("f64", 1, 8, false),
            I8 => t("i8", 1, 1, false),
            I16 => t("i16", 1, 2, false),
            I32 => t("i32", 1, 4, false),
            I64 => t("i64", 1, 8, false),
            Q4_0 => t("q4_0", 32, 18, true),
            Q4_1 => t("q4_1", 32, 20, true),
            Q5_0 => t("q5_0", 32, 22, true),
            Q5_1 => t("q5_1", 32, 24, true),
            Q8_0 => t("q8_0", 32, 34, true),
            Q8_1 => t("q8_1", 32, 36, true),
            Q2_K => t("q2_K", QK_K, 84, true),
            Q3_K => t("q3_K", QK_K, 110, true),
            Q4_K => t("q4_K", QK_K, 144, true),
            Q5_K => t("q5_K", QK_K, 176, true),
            Q6_K => t("q6_K", QK_K, 210, true),
            Q8_K => t("q8_K", QK_K, 292, true),
            IQ2_XXS => t("iq2_xxs", QK_K, 66, true),
            IQ2_XS => t("iq2_xs", QK_K, 74, true),
            IQ2_S => t("iq2_s", QK_K, 82, true),
            IQ3_XXS => t("iq3_xxs", QK_K, 98, true),
            IQ3_S => t("iq3_s", QK_K, 110, true),
            IQ1_S => t("iq1_s", QK_K, 50, true),
            IQ1_M => t("iq1_m", QK_K, 56, true),
            IQ4_NL => t("iq4_nl", 32, 18, true),
            IQ4_XS => t("iq4_xs", QK_K, 136, true),
            TQ1_0 => t("tq1_0", QK_K, 54, true),
            TQ2_0 => t("tq2_0", QK_K, 66, true),
            MXFP4 => t("mxfp4", 32, 17, true),
            NVFP4 => t("nvfp4", 64, 36, true),
            Q1_0 => t("q1_0", 128, 18, true),
            Q2_0 => t("q2_0", 64, 18, true),
        }
    }

    /// ggml's type name (`ggml_type_name`), e.g. `q4_K`.
    pub fn name(self) -> &'static str {
        self.traits().name
    }

    /// Elements per block (`ggml_blck_size`).
    pub fn block_size(self) -> usize {
        self.traits().block_size
    }

    /// Bytes per block (`ggml_type_size`).
    pub fn type_size(self) -> usize {
        self.traits().type_size
    }

    /// Whether this is a block-quantized type (`ggml_is_quantized`).
    pub fn is_quantized(self) -> bool {
        self.traits().quantized
    }

    /// Bytes taken by `n` elements, or `None` when `n` is not a whole number of blocks or the
    /// size overflows.
    pub fn row_size(self, n: u64) -> Option<u64> {
        let bs = self.block_size() as u64;
        if n % bs != 0 {
            return None;
        }
        (n / bs).checked_mul(self.type_size() as u64)
    }

    /// Bits per weight of this type.
    pub fn bits_per_weight(self) -> f64 {
        self.type_size() as f64 * 8.0 / self.block_size() as f64
    }

    /// The type whose [`name`](Self::name) equals `name`, ignoring case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_removed_ids_are_rejected() {
        for t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
            assert_eq!(GgmlType::from_name(t.name()), Some(t));
        }
        for removed in [4, 5, 31, 32, 33, 36, 37, 38, 43, 1000] {
            assert_eq!(GgmlType::from_id(removed), None);
        }
    }

    #[test]
    fn bits_per_weight_match_the_published_table() {
        assert_eq!(GgmlType::Q4_K.bits_per_weight(), 4.5);
        assert_eq!(GgmlType::Q6_K.bits_per_weight(), 6.5625);
        assert_eq!(GgmlType::IQ4_XS.bits_per_weight(), 4.25);
        assert_eq!(GgmlType::IQ1_S.bits_per_weight(), 1.5625);
        assert_eq!(GgmlType::Q8_0.row_size(4096), Some(4352));
        assert_eq!(GgmlType::Q4_K.row_size(100), None);
    }
}
