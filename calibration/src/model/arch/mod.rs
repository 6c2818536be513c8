//! The supported GGUF architectures: which graph each runs (the structural choices of its
//! llama.cpp `src/models/*.cpp` graph) and the architecture-specific metadata each reads. Adding
//! a family means a variant here, a module reading its keys, and any new building block in the
//! shared layer walk.

mod gemma;
mod phi3;
mod qwen;

use super::error::ModelError;
use super::hparams::{HParams, Meta};

/// A GGUF `general.architecture` this crate runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// `llama`: dense or Mixtral-style MoE, NORM rope.
    Llama,
    /// `qwen2`: q/k/v biases, NEOX rope.
    Qwen2,
    /// `qwen3`: per-head q/k RMS norms before rope, NEOX rope.
    Qwen3,
    /// `qwen3moe`: qwen3 attention, softmax-gated experts (top-k, weights normalised).
    Qwen3Moe,
    /// `gemma2`: scaled embeddings, GELU FFN, post-norms, soft-capping, alternating sliding window.
    Gemma2,
    /// `gemma3` (text): gemma2 without soft-capping, q/k norms, local rope base on window layers.
    Gemma3,
    /// `phi3`: fused `attn_qkv`, fused gate/up in `ffn_up`, NEOX rope.
    Phi3,
}

/// How a layer's feed-forward block activates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `silu(gate) * up` (`ggml_swiglu`).
    SwiGlu,
    /// `gelu(gate) * up` (`ggml_geglu`, tanh GELU).
    GeGlu,
}

impl Arch {
    /// Every supported architecture's GGUF name.
    pub const NAMES: &'static str = "llama, qwen2, qwen3, qwen3moe, gemma2, gemma3, phi3";

    /// The architecture called `name` in GGUF metadata.
    pub fn from_name(name: &str) -> Option<Arch> {
        Some(match name {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "qwen3moe" => Arch::Qwen3Moe,
            "gemma2" => Arch::Gemma2,
            "gemma3" => Arch::Gemma3,
            "phi3" => Arch::Phi3,
            _ => return None,
        })
    }

    /// The GGUF name (the metadata key prefix).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Qwen3Moe => "qwen3moe",
            Arch::Gemma2 => "gemma2",
            Arch::Gemma3 => "gemma3",
            Arch::Phi3 => "phi3",
        }
    }

    /// NEOX rope (pairs `i, i + n_rot/2`) rather than NORM (adjacent pairs).
    pub fn rope_neox(self) -> bool {
        !matches!(self, Arch::Llama)
    }

    /// Per-head RMS norms of Q and K (`attn_q_norm`, `attn_k_norm`) before rope.
    pub fn qk_norm(self) -> bool {
        matches!(self, Arch::Qwen3 | Arch::Qwen3Moe | Arch::Gemma3)
    }

    /// RMS norms after attention and after the FFN (`attn_post_norm`, `ffn_post_norm`).
    pub fn post_norms(self) -> bool {
        matches!(self, Arch::Gemma2 | Arch::Gemma3)
    }

    /// The feed-forward activation.
    pub fn activation(self) -> Activation {
        match self {
            Arch::Gemma2 | Arch::Gemma3 => Activation::GeGlu,
            _ => Activation::SwiGlu,
        }
    }

    /// Gate and up fused in one `ffn_up` of `2 * n_ff` rows (gate first).
    pub fn fused_gate_up(self) -> bool {
        matches!(self, Arch::Phi3)
    }

    /// The output layer is always the token embedding (gemma2 ignores `output.weight`).
    pub fn output_is_token_embd(self) -> bool {
        matches!(self, Arch::Gemma2)
    }

    /// Whether an `output.bias` is added to the logits when present.
    pub fn output_bias(self) -> bool {
        matches!(self, Arch::Qwen2 | Arch::Phi3)
    }

    /// Reads the architecture-specific hyper-parameters into `hp` (the common ones are read).
    pub(super) fn read_hparams(self, m: &Meta<'_>, hp: &mut HParams) -> Result<(), ModelError> {
        match self {
            Arch::Llama => Ok(()),
            Arch::Qwen2 | Arch::Qwen3 | Arch::Qwen3Moe => qwen::read_hparams(self, m, hp),
            Arch::Gemma2 | Arch::Gemma3 => gemma::read_hparams(self, m, hp),
            Arch::Phi3 => phi3::read_hparams(m, hp),
        }
    }
}
