//! Qwen 2 / Qwen 3 / Qwen 3 MoE metadata (`src/models/qwen2.cpp`, `qwen3.cpp`, `qwen3moe.cpp`).
//! Their graphs differ from llama's only in structure (biases, q/k norms, NEOX rope), which the
//! layer walk reads from the tensors present and from [`Arch`].

use super::super::error::ModelError;
use super::super::hparams::{HParams, Meta};
use super::Arch;

/// qwen3moe: the experts' width (`expert_feed_forward_length`, else `n_ff / n_expert_used`) and
/// the expert counts llama.cpp requires; qwen2 and qwen3 read nothing beyond the common keys.
pub(super) fn read_hparams(arch: Arch, m: &Meta<'_>, hp: &mut HParams) -> Result<(), ModelError> {
    if arch != Arch::Qwen3Moe {
        return Ok(());
    }
    if hp.n_expert == 0 {
        return Err(m.err("expert_count", "must be > 0 for qwen3moe"));
    }
    hp.n_ff_exp = match m.uint("expert_feed_forward_length")? {
        Some(n) if n > 0 => n,
        _ => hp.n_ff / hp.n_expert_used,
    };
    if hp.n_ff_exp == 0 {
        return Err(m.err(
            "expert_feed_forward_length",
            "is missing (and no feed_forward_length)",
        ));
    }
    Ok(())
}
