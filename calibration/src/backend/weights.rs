//! What a backend is given for a weight tensor, and how its matrix products round activations.

use qforge_formats::ggml::GgmlType;

/// One weight tensor's stored form: name, ggml type, dimensions and raw bytes.
#[derive(Clone, Copy, Debug)]
pub struct WeightView<'a> {
    /// Tensor name (for error messages and activation observers).
    pub name: &'a str,
    /// Element type of `data`.
    pub ty: GgmlType,
    /// `[ne0, ne1, ne2]`: row length, rows, stacked matrices (1 when 2-D).
    pub ne: [usize; 3],
    /// Raw bytes, `ne1 * ne2` rows of `ty`.
    pub data: &'a [u8],
}

/// How llama.cpp's CPU backend converts the f32 activations of a product with a weight of a given
/// type (`type_traits_cpu[type].vec_dot_type`, and the x86 `quantize_row_*` it then uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActRounding {
    /// F32 weights: activations unchanged.
    None,
    /// F16 weights: activations rounded to F16.
    F16,
    /// BF16 weights: activations rounded to BF16.
    Bf16,
    /// Q8_0 blocks of 32 (Q4_0, Q5_0, Q8_0, IQ4_NL, MXFP4, ...).
    Q8_0,
    /// Q8_1 blocks of 32 with their F16 sum (Q4_1, Q5_1): the weight minimum multiplies that sum.
    Q8_1,
    /// Q8_K blocks of 256 (K-quants, IQ types except IQ4_NL, ternary types).
    Q8K,
}

impl ActRounding {
    /// The rounding llama.cpp applies to activations multiplied by weights of type `ty`.
    pub fn for_type(ty: GgmlType) -> ActRounding {
        use GgmlType::*;
        match ty {
            F32 | F64 | I8 | I16 | I32 | I64 => ActRounding::None,
            F16 => ActRounding::F16,
            BF16 => ActRounding::Bf16,
            Q4_1 | Q5_1 | Q8_1 => ActRounding::Q8_1,
            Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | Q8_K | IQ2_XXS | IQ2_XS | IQ3_XXS | IQ3_S
            | IQ2_S | IQ1_S | IQ1_M | IQ4_XS | TQ1_0 | TQ2_0 => ActRounding::Q8K,
            Q4_0 | Q5_0 | Q8_0 | IQ4_NL | MXFP4 | NVFP4 | Q1_0 | Q2_0 => ActRounding::Q8_0,
        }
    }

    /// Elements per block of the activation type (1 for float types).
    pub fn block(self) -> usize {
        match self {
            ActRounding::None | ActRounding::F16 | ActRounding::Bf16 => 1,
            ActRounding::Q8_0 | ActRounding::Q8_1 => 32,
            ActRounding::Q8K => 256,
        }
    }
}
