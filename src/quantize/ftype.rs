//! llama.cpp's file types (`enum llama_ftype` in `include/llama.h`) and the type names
//! `llama-quantize` accepts for them (`QUANT_OPTIONS` in `tools/quantize/quantize.cpp`).

use qforge_formats::ggml::GgmlType;
use std::fmt;

/// A llama.cpp file type: the mixture `llama-quantize` produces, stored as `general.file_type`.
///
/// Every value of the pinned `enum llama_ftype` is here, with its numeric id. Ids 4-6 and 33-35
/// were removed upstream and have no variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(non_camel_case_types)]
#[repr(u32)]
pub enum LlamaFtype {
    /// `LLAMA_FTYPE_ALL_F32`.
    ALL_F32 = 0,
    /// `LLAMA_FTYPE_MOSTLY_F16`.
    MOSTLY_F16 = 1,
    /// `LLAMA_FTYPE_MOSTLY_Q4_0`.
    MOSTLY_Q4_0 = 2,
    /// `LLAMA_FTYPE_MOSTLY_Q4_1`.
    MOSTLY_Q4_1 = 3,
    /// `LLAMA_FTYPE_MOSTLY_Q8_0`.
    MOSTLY_Q8_0 = 7,
    /// `LLAMA_FTYPE_MOSTLY_Q5_0`.
    MOSTLY_Q5_0 = 8,
    /// `LLAMA_FTYPE_MOSTLY_Q5_1`.
    MOSTLY_Q5_1 = 9,
    /// `LLAMA_FTYPE_MOSTLY_Q2_K`.
    MOSTLY_Q2_K = 10,
    /// `LLAMA_FTYPE_MOSTLY_Q3_K_S`.
    MOSTLY_Q3_K_S = 11,
    /// `LLAMA_FTYPE_MOSTLY_Q3_K_M`.
    MOSTLY_Q3_K_M = 12,
    /// `LLAMA_FTYPE_MOSTLY_Q3_K_L`.
    MOSTLY_Q3_K_L = 13,
    /// `LLAMA_FTYPE_MOSTLY_Q4_K_S`.
    MOSTLY_Q4_K_S = 14,
    /// `LLAMA_FTYPE_MOSTLY_Q4_K_M`.
    MOSTLY_Q4_K_M = 15,
    /// `LLAMA_FTYPE_MOSTLY_Q5_K_S`.
    MOSTLY_Q5_K_S = 16,
    /// `LLAMA_FTYPE_MOSTLY_Q5_K_M`.
    MOSTLY_Q5_K_M = 17,
    /// `LLAMA_FTYPE_MOSTLY_Q6_K`.
    MOSTLY_Q6_K = 18,
    /// `LLAMA_FTYPE_MOSTLY_IQ2_XXS`.
    MOSTLY_IQ2_XXS = 19,
    /// `LLAMA_FTYPE_MOSTLY_IQ2_XS`.
    MOSTLY_IQ2_XS = 20,
    /// `LLAMA_FTYPE_MOSTLY_Q2_K_S`.
    MOSTLY_Q2_K_S = 21,
    /// `LLAMA_FTYPE_MOSTLY_IQ3_XS`.
    MOSTLY_IQ3_XS = 22,
    /// `LLAMA_FTYPE_MOSTLY_IQ3_XXS`.
    MOSTLY_IQ3_XXS = 23,
    /// `LLAMA_FTYPE_MOSTLY_IQ1_S`.
    MOSTLY_IQ1_S = 24,
    /// `LLAMA_FTYPE_MOSTLY_IQ4_NL`.
    MOSTLY_IQ4_NL = 25,
    /// `LLAMA_FTYPE_MOSTLY_IQ3_S`.
    MOSTLY_IQ3_S = 26,
    /// `LLAMA_FTYPE_MOSTLY_IQ3_M`.
    MOSTLY_IQ3_M = 27,
    /// `LLAMA_FTYPE_MOSTLY_IQ2_S`.
    MOSTLY_IQ2_S = 28,
    /// `LLAMA_FTYPE_MOSTLY_IQ2_M`.
    MOSTLY_IQ2_M = 29,
    /// `LLAMA_FTYPE_MOSTLY_IQ4_XS`.
    MOSTLY_IQ4_XS = 30,
    /// `LLAMA_FTYPE_MOSTLY_IQ1_M`.
    MOSTLY_IQ1_M = 31,
    /// `LLAMA_FTYPE_MOSTLY_BF16`.
    MOSTLY_BF16 = 32,
    /// `LLAMA_FTYPE_MOSTLY_TQ1_0`.
    MOSTLY_TQ1_0 = 36,
    /// `LLAMA_FTYPE_MOSTLY_TQ2_0`.
    MOSTLY_TQ2_0 = 37,
    /// `LLAMA_FTYPE_MOSTLY_MXFP4_MOE`.
    MOSTLY_MXFP4_MOE = 38,
    /// `LLAMA_FTYPE_MOSTLY_NVFP4`. Declared by llama.h but not offered by `llama-quantize`, and
    /// `llama_ftype_get_default_type` has no type for it, so quantizing to it fails.
    MOSTLY_NVFP4 = 39,
    /// `LLAMA_FTYPE_MOSTLY_Q1_0`.
    MOSTLY_Q1_0 = 40,
    /// `LLAMA_FTYPE_MOSTLY_Q2_0`.
    MOSTLY_Q2_0 = 41,
}

/// `LLAMA_FTYPE_GUESSED`: the flag llama.cpp ORs into a file type it inferred from tensor types
/// because the file had no `general.file_type`.
pub const LLAMA_FTYPE_GUESSED: u32 = 1024;

impl LlamaFtype {
    /// Every file type, in id order.
    pub const ALL: [LlamaFtype; 36] = [
        Self::ALL_F32,
        Self::MOSTLY_F16,
        Self::MOSTLY_Q4_0,
        Self::MOSTLY_Q4_1,
        Self::MOSTLY_Q8_0,
        Self::MOSTLY_Q5_0,
        Self::MOSTLY_Q5_1,
        Self::MOSTLY_Q2_K,
        Self::MOSTLY_Q3_K_S,
        Self::MOSTLY_Q3_K_M,
        Self::MOSTLY_Q3_K_L,
        Self::MOSTLY_Q4_K_S,
        Self::MOSTLY_Q4_K_M,
        Self::MOSTLY_Q5_K_S,
        Self::MOSTLY_Q5_K_M,
        Self::MOSTLY_Q6_K,
        Self::MOSTLY_IQ2_XXS,
        Self::MOSTLY_IQ2_XS,
        Self::MOSTLY_Q2_K_S,
        Self::MOSTLY_IQ3_XS,
        Self::MOSTLY_IQ3_XXS,
        Self::MOSTLY_IQ1_S,
        Self::MOSTLY_IQ4_NL,
        Self::MOSTLY_IQ3_S,
        Self::MOSTLY_IQ3_M,
        Self::MOSTLY_IQ2_S,
        Self::MOSTLY_IQ2_M,
        Self::MOSTLY_IQ4_XS,
        Self::MOSTLY_IQ1_M,
        Self::MOSTLY_BF16,
        Self::MOSTLY_TQ1_0,
        Self::MOSTLY_TQ2_0,
        Self::MOSTLY_MXFP4_MOE,
        Self::MOSTLY_NVFP4,
        Self::MOSTLY_Q1_0,
        Self::MOSTLY_Q2_0,
    ];

    /// The numeric id (the value of `general.file_type`).
    pub fn id(self) -> u32 {
        self as u32
    }

    /// The file type with id `id`, or `None` for removed or unknown ids. The
    /// [`LLAMA_FTYPE_GUESSED`] flag is not accepted here; strip it first.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.id() == id)
    }

    /// The tensor type this file type quantizes to by default (`llama_ftype_get_default_type`
    /// in `src/llama-quant.cpp`), or `None` where llama.cpp has none (NVFP4) and refuses with
    /// "invalid output file type".
    pub fn default_type(self) -> Option<GgmlType> {
        use GgmlType as T;
        use LlamaFtype as F;
        Some(match self {
            F::MOSTLY_Q4_0 => T::Q4_0,
            F::MOSTLY_Q4_1 => T::Q4_1,
            F::MOSTLY_Q5_0 => T::Q5_0,
            F::MOSTLY_Q5_1 => T::Q5_1,
            F::MOSTLY_Q8_0 => T::Q8_0,
            F::MOSTLY_F16 => T::F16,
            F::MOSTLY_BF16 => T::BF16,
            F::ALL_F32 => T::F32,
            F::MOSTLY_Q1_0 => T::Q1_0,
            F::MOSTLY_Q2_0 => T::Q2_0,
            F::MOSTLY_MXFP4_MOE => T::MXFP4,
            F::MOSTLY_Q2_K_S | F::MOSTLY_Q2_K => T::Q2_K,
            F::MOSTLY_IQ3_XS => T::IQ3_S,
            F::MOSTLY_Q3_K_S | F::MOSTLY_Q3_K_M | F::MOSTLY_Q3_K_L => T::Q3_K,
            F::MOSTLY_Q4_K_S | F::MOSTLY_Q4_K_M => T::Q4_K,
            F::MOSTLY_Q5_K_S | F::MOSTLY_Q5_K_M => T::Q5_K,
            F::MOSTLY_Q6_K => T::Q6_K,
            F::MOSTLY_TQ1_0 => T::TQ1_0,
            F::MOSTLY_TQ2_0 => T::TQ2_0,
            F::MOSTLY_IQ2_XXS => T::IQ2_XXS,
            F::MOSTLY_IQ2_XS => T::IQ2_XS,
            F::MOSTLY_IQ2_S => T::IQ2_XS,
            F::MOSTLY_IQ2_M => T::IQ2_S,
            F::MOSTLY_IQ3_XXS => T::IQ3_XXS,
            F::MOSTLY_IQ1_S => T::IQ1_S,
            F::MOSTLY_IQ1_M => T::IQ1_M,
            F::MOSTLY_IQ4_NL => T::IQ4_NL,
            F::MOSTLY_IQ4_XS => T::IQ4_XS,
            F::MOSTLY_IQ3_S | F::MOSTLY_IQ3_M => T::IQ3_S,
            F::MOSTLY_NVFP4 => return None,
        })
    }

    /// The canonical name `llama-quantize` accepts for this file type (`Q4_K_M`, not the alias
    /// `Q4_K`; `F32` for [`ALL_F32`](Self::ALL_F32)). NVFP4, which `llama-quantize` does not
    /// offer, is named `NVFP4`.
    pub fn name(self) -> &'static str {
        QUANT_OPTIONS
            .iter()
            .find(|o| o.ftype == self && !o.is_alias() && !o.is_copy())
            .map_or("NVFP4", |o| o.name)
    }

    /// The description llama.cpp logs for a model of this file type (`llama_ftype_name` in
    /// `src/llama-model-loader.cpp`), e.g. `Q4_K - Medium` or `all F32`.
    pub fn llama_name(self) -> &'static str {
        use LlamaFtype as F;
        match self {
            F::ALL_F32 => "all F32",
            F::MOSTLY_F16 => "F16",
            F::MOSTLY_BF16 => "BF16",
            F::MOSTLY_Q1_0 => "Q1_0",
            F::MOSTLY_Q2_0 => "Q2_0",
            F::MOSTLY_Q4_0 => "Q4_0",
            F::MOSTLY_Q4_1 => "Q4_1",
            F::MOSTLY_Q5_0 => "Q5_0",
            F::MOSTLY_Q5_1 => "Q5_1",
            F::MOSTLY_Q8_0 => "Q8_0",
            F::MOSTLY_MXFP4_MOE => "MXFP4 MoE",
            F::MOSTLY_NVFP4 => "NVFP4",
            F::MOSTLY_Q2_K => "Q2_K - Medium",
            F::MOSTLY_Q2_K_S => "Q2_K - Small",
            F::MOSTLY_Q3_K_S => "Q3_K - Small",
            F::MOSTLY_Q3_K_M => "Q3_K - Medium",
            F::MOSTLY_Q3_K_L => "Q3_K - Large",
            F::MOSTLY_Q4_K_S => "Q4_K - Small",
            F::MOSTLY_Q4_K_M => "Q4_K - Medium",
            F::MOSTLY_Q5_K_S => "Q5_K - Small",
            F::MOSTLY_Q5_K_M => "Q5_K - Medium",
            F::MOSTLY_Q6_K => "Q6_K",
            F::MOSTLY_TQ1_0 => "TQ1_0 - 1.69 bpw ternary",
            F::MOSTLY_TQ2_0 => "TQ2_0 - 2.06 bpw ternary",
            F::MOSTLY_IQ2_XXS => "IQ2_XXS - 2.0625 bpw",
            F::MOSTLY_IQ2_XS => "IQ2_XS - 2.3125 bpw",
            F::MOSTLY_IQ2_S => "IQ2_S - 2.5 bpw",
            F::MOSTLY_IQ2_M => "IQ2_M - 2.7 bpw",
            F::MOSTLY_IQ3_XS => "IQ3_XS - 3.3 bpw",
            F::MOSTLY_IQ3_XXS => "IQ3_XXS - 3.0625 bpw",
            F::MOSTLY_IQ1_S => "IQ1_S - 1.5625 bpw",
            F::MOSTLY_IQ1_M => "IQ1_M - 1.75 bpw",
            F::MOSTLY_IQ4_NL => "IQ4_NL - 4.5 bpw",
            F::MOSTLY_IQ4_XS => "IQ4_XS - 4.25 bpw",
            F::MOSTLY_IQ3_S => "IQ3_S - 3.4375 bpw",
            F::MOSTLY_IQ3_M => "IQ3_S mix - 3.66 bpw",
        }
    }

    /// Whether `llama-quantize` refuses this file type without an importance matrix for an
    /// ordinary model: its mixture assigns one of the types that need one (IQ1_S, IQ1_M,
    /// IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, or Q2_K inside a Q2_K_S file) to tensors other than
    /// `token_embd.weight` and `output.weight`. IQ3_XS is included because its mixture turns
    /// `attn_q`, `attn_k` and the middle `ffn_gate`/`ffn_up` tensors into IQ3_XXS.
    ///
    /// The decision llama-quantize actually takes is per tensor; see
    /// [`TensorPlan::requires_imatrix`](crate::quantize::TensorPlan::requires_imatrix).
    pub fn requires_imatrix(self) -> bool {
        use LlamaFtype as F;
        matches!(
            self,
            F::MOSTLY_IQ1_S
                | F::MOSTLY_IQ1_M
                | F::MOSTLY_IQ2_XXS
                | F::MOSTLY_IQ2_XS
                | F::MOSTLY_IQ2_S
                | F::MOSTLY_IQ2_M
                | F::MOSTLY_IQ3_XXS
                | F::MOSTLY_IQ3_XS
                | F::MOSTLY_Q2_K_S
        )
    }
}

impl fmt::Display for LlamaFtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry of `llama-quantize`'s type list: the name it accepts, the file type it selects
/// and the description its help prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantOption {
    /// The name, as listed (matching is case-insensitive).
    pub name: &'static str,
    /// The file type selected. `COPY` selects [`LlamaFtype::ALL_F32`] plus copy-only mode.
    pub ftype: LlamaFtype,
    /// The description printed by `llama-quantize --help`.
    pub desc: &'static str,
}

impl QuantOption {
    /// Whether this is `COPY`: copy every tensor unchanged (`params.only_copy`).
    pub fn is_copy(&self) -> bool {
        self.name == "COPY"
    }

    /// Whether this is one of the aliases `Q3_K`, `Q4_K`, `Q5_K` (for the `_M` variants).
    pub fn is_alias(&self) -> bool {
        self.desc.starts_with("alias for ")
    }
}

const fn opt(name: &'static str, ftype: LlamaFtype, desc: &'static str) -> QuantOption {
    QuantOption { name, ftype, desc }
}

/// `QUANT_OPTIONS` of the pinned `tools/quantize/quantize.cpp`, in its order. The order
/// matters: a numeric type picks the first entry with that id (so `15` is reported as `Q4_K`,
/// and `0` as `F32`, never `COPY`).
pub const QUANT_OPTIONS: [QuantOption; 39] = {
    use LlamaFtype as F;
    [
        opt("Q1_0", F::MOSTLY_Q1_0, " 1.125 bpw quantization"),
        opt("Q2_0", F::MOSTLY_Q2_0, " 2.25 bpw quantization (group 64)"),
        opt("Q4_0", F::MOSTLY_Q4_0, " 4.34G, +0.4685 ppl @ Llama-3-8B"),
        opt("Q4_1", F::MOSTLY_Q4_1, " 4.78G, +0.4511 ppl @ Llama-3-8B"),
        opt("MXFP4_MOE", F::MOSTLY_MXFP4_MOE, " MXFP4 MoE"),
        opt("Q5_0", F::MOSTLY_Q5_0, " 5.21G, +0.1316 ppl @ Llama-3-8B"),
        opt("Q5_1", F::MOSTLY_Q5_1, " 5.65G, +0.1062 ppl @ Llama-3-8B"),
        opt("IQ2_XXS", F::MOSTLY_IQ2_XXS, " 2.06 bpw quantization"),
        opt("IQ2_XS", F::MOSTLY_IQ2_XS, " 2.31 bpw quantization"),
        opt("IQ2_S", F::MOSTLY_IQ2_S, " 2.5  bpw quantization"),
        opt("IQ2_M", F::MOSTLY_IQ2_M, " 2.7  bpw quantization"),
        opt("IQ1_S", F::MOSTLY_IQ1_S, " 1.56 bpw quantization"),
        opt("IQ1_M", F::MOSTLY_IQ1_M, " 1.75 bpw quantization"),
        opt("TQ1_0", F::MOSTLY_TQ1_0, " 1.69 bpw ternarization"),
        opt("TQ2_0", F::MOSTLY_TQ2_0, " 2.06 bpw ternarization"),
        opt("Q2_K", F::MOSTLY_Q2_K, " 2.96G, +3.5199 ppl @ Llama-3-8B"),
        opt(
            "Q2_K_S",
            F::MOSTLY_Q2_K_S,
            " 2.96G, +3.1836 ppl @ Llama-3-8B",
        ),
        opt("IQ3_XXS", F::MOSTLY_IQ3_XXS, " 3.06 bpw quantization"),
        opt("IQ3_S", F::MOSTLY_IQ3_S, " 3.44 bpw quantization"),
        opt("IQ3_M", F::MOSTLY_IQ3_M, " 3.66 bpw quantization mix"),
        opt("Q3_K", F::MOSTLY_Q3_K_M, "alias for Q3_K_M"),
        opt("IQ3_XS", F::MOSTLY_IQ3_XS, " 3.3 bpw quantization"),
        opt(
            "Q3_K_S",
            F::MOSTLY_Q3_K_S,
            " 3.41G, +1.6321 ppl @ Llama-3-8B",
        ),
        opt(
            "Q3_K_M",
            F::MOSTLY_Q3_K_M,
            " 3.74G, +0.6569 ppl @ Llama-3-8B",
        ),
        opt(
            "Q3_K_L",
            F::MOSTLY_Q3_K_L,
            " 4.03G, +0.5562 ppl @ Llama-3-8B",
        ),
        opt(
            "IQ4_NL",
            F::MOSTLY_IQ4_NL,
            " 4.50 bpw non-linear quantization",
        ),
        opt(
            "IQ4_XS",
            F::MOSTLY_IQ4_XS,
            " 4.25 bpw non-linear quantization",
        ),
        opt("Q4_K", F::MOSTLY_Q4_K_M, "alias for Q4_K_M"),
        opt(
            "Q4_K_S",
            F::MOSTLY_Q4_K_S,
            " 4.37G, +0.2689 ppl @ Llama-3-8B",
        ),
        opt(
            "Q4_K_M",
            F::MOSTLY_Q4_K_M,
            " 4.58G, +0.1754 ppl @ Llama-3-8B",
        ),
        opt("Q5_K", F::MOSTLY_Q5_K_M, "alias for Q5_K_M"),
        opt(
            "Q5_K_S",
            F::MOSTLY_Q5_K_S,
            " 5.21G, +0.1049 ppl @ Llama-3-8B",
        ),
        opt(
            "Q5_K_M",
            F::MOSTLY_Q5_K_M,
            " 5.33G, +0.0569 ppl @ Llama-3-8B",
        ),
        opt("Q6_K", F::MOSTLY_Q6_K, " 6.14G, +0.0217 ppl @ Llama-3-8B"),
        opt("Q8_0", F::MOSTLY_Q8_0, " 7.96G, +0.0026 ppl @ Llama-3-8B"),
        opt("F16", F::MOSTLY_F16, "14.00G, +0.0020 ppl @ Mistral-7B"),
        opt("BF16", F::MOSTLY_BF16, "14.00G, -0.0050 ppl @ Mistral-7B"),
        opt("F32", F::ALL_F32, "26.00G              @ 7B"),
        opt("COPY", F::ALL_F32, "only copy tensors, no quantizing"),
    ]
};

/// Parses a type argument the way `try_parse_ftype` in `quantize.cpp` does: first by name,
/// ignoring ASCII case; failing that, as a decimal integer (`std::stoi`: leading whitespace,
/// an optional sign, then digits, with anything after the digits ignored) matched against the
/// ids in [`QUANT_OPTIONS`] order. Returns `None` where llama-quantize reports an invalid ftype.
pub fn parse_ftype(arg: &str) -> Option<&'static QuantOption> {
    if let Some(o) = QUANT_OPTIONS
        .iter()
        .find(|o| o.name.eq_ignore_ascii_case(arg))
    {
        return Some(o);
    }
    let id = stoi(arg)?;
    QUANT_OPTIONS
        .iter()
        .find(|o| i64::from(o.ftype.id()) == i64::from(id))
}

/// `std::stoi` in the "C" locale: `None` where it would throw (no digits, or out of `int` range).
fn stoi(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    let mut i = 0;
    // C isspace: space, \t, \n, \v, \f, \r.
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let negative = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let start = i;
    let mut value: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        value = value
            .saturating_mul(10)
            .saturating_add(i64::from(b[i] - b'0'));
        i += 1;
    }
    if i == start {
        return None;
    }
    let value = if negative { -value } else { value };
    i32::try_from(value).ok()
}

/// The "allowed quantization types" table `llama-quantize` prints at the end of its usage text
/// (each line `"  %2d  or  %-7s : %s"`, `COPY` without an id).
pub fn allowed_types_help() -> String {
    let mut out = String::new();
    for o in &QUANT_OPTIONS {
        if o.is_copy() {
            out.push_str("          ");
        } else {
            out.push_str(&format!("  {:2}  or  ", o.ftype.id()));
        }
        out.push_str(&format!("{:<7} : {}\n", o.name, o.desc));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_those_of_llama_h() {
        // Values from the pinned include/llama.h.
        let expected: [(LlamaFtype, u32); 6] = [
            (LlamaFtype::MOSTLY_Q8_0, 7),
            (LlamaFtype::MOSTLY_Q2_K_S, 21),
            (LlamaFtype::MOSTLY_BF16, 32),
            (LlamaFtype::MOSTLY_TQ1_0, 36),
            (LlamaFtype::MOSTLY_MXFP4_MOE, 38),
            (LlamaFtype::MOSTLY_Q2_0, 41),
        ];
        for (f, id) in expected {
            assert_eq!(f.id(), id);
            assert_eq!(LlamaFtype::from_id(id), Some(f));
        }
        for removed in [4, 5, 6, 33, 34, 35, 42, LLAMA_FTYPE_GUESSED] {
            assert_eq!(LlamaFtype::from_id(removed), None);
        }
        for f in LlamaFtype::ALL {
            assert_eq!(LlamaFtype::from_id(f.id()), Some(f));
        }
    }

    #[test]
    fn names_parse_case_insensitively_and_aliases_resolve() {
        let q4 = parse_ftype("q4_k_m").unwrap();
        assert_eq!((q4.name, q4.ftype), ("Q4_K_M", LlamaFtype::MOSTLY_Q4_K_M));
        let alias = parse_ftype("Q4_K").unwrap();
        assert_eq!(
            (alias.name, alias.ftype),
            ("Q4_K", LlamaFtype::MOSTLY_Q4_K_M)
        );
        assert!(parse_ftype("copy").unwrap().is_copy());
        assert_eq!(
            parse_ftype("Mxfp4_Moe").unwrap().ftype,
            LlamaFtype::MOSTLY_MXFP4_MOE
        );
        assert_eq!(parse_ftype("NVFP4"), None);
        assert_eq!(parse_ftype("Q4_K_X"), None);
    }

    #[test]
    fn numbers_parse_like_stoi_and_pick_the_first_listed_name() {
        assert_eq!(parse_ftype("15").unwrap().name, "Q4_K");
        assert_eq!(parse_ftype("12").unwrap().name, "Q3_K");
        assert_eq!(parse_ftype("0").unwrap().name, "F32");
        assert_eq!(parse_ftype(" +7xyz").unwrap().name, "Q8_0");
        // stoi("0x10") reads the 0 and stops.
        assert_eq!(parse_ftype("0x10").unwrap().name, "F32");
        assert_eq!(parse_ftype("39"), None);
        assert_eq!(parse_ftype("-15"), None);
        assert_eq!(parse_ftype("99999999999"), None);
        assert_eq!(parse_ftype(""), None);
    }

    #[test]
    fn canonical_names_skip_aliases_and_copy() {
        assert_eq!(LlamaFtype::MOSTLY_Q4_K_M.name(), "Q4_K_M");
        assert_eq!(LlamaFtype::MOSTLY_Q3_K_M.name(), "Q3_K_M");
        assert_eq!(LlamaFtype::ALL_F32.name(), "F32");
        assert_eq!(LlamaFtype::MOSTLY_NVFP4.name(), "NVFP4");
        for o in QUANT_OPTIONS
            .iter()
            .filter(|o| !o.is_alias() && !o.is_copy())
        {
            assert_eq!(o.ftype.name(), o.name);
        }
    }

    #[test]
    fn default_types_follow_llama_ftype_get_default_type() {
        assert_eq!(
            LlamaFtype::MOSTLY_IQ3_XS.default_type(),
            Some(GgmlType::IQ3_S)
        );
        assert_eq!(
            LlamaFtype::MOSTLY_IQ2_S.default_type(),
            Some(GgmlType::IQ2_XS)
        );
        assert_eq!(
            LlamaFtype::MOSTLY_IQ2_M.default_type(),
            Some(GgmlType::IQ2_S)
        );
        assert_eq!(
            LlamaFtype::MOSTLY_IQ3_M.default_type(),
            Some(GgmlType::IQ3_S)
        );
        assert_eq!(
            LlamaFtype::MOSTLY_Q2_K_S.default_type(),
            Some(GgmlType::Q2_K)
        );
        assert_eq!(
            LlamaFtype::MOSTLY_MXFP4_MOE.default_type(),
            Some(GgmlType::MXFP4)
        );
        assert_eq!(LlamaFtype::MOSTLY_NVFP4.default_type(), None);
    }

    #[test]
    fn help_table_has_llama_quantize_layout() {
        let help = allowed_types_help();
        let lines: Vec<&str> = help.lines().collect();
        assert_eq!(lines.len(), QUANT_OPTIONS.len());
        assert_eq!(lines[0], "  40  or  Q1_0    :  1.125 bpw quantization");
        assert_eq!(lines[4], "  38  or  MXFP4_MOE :  MXFP4 MoE");
        assert_eq!(
            lines[38],
            "          COPY    : only copy tensors, no quantizing"
        );
    }
}
