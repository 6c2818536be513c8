//! Gemma 2 / Gemma 3 metadata (`src/models/gemma2.cpp`, `gemma3.cpp`): sliding-window layers, the
//! window layers' rope base, soft-capping, and the query and embedding scales.

use super::super::error::ModelError;
use super::super::hparams::{HParams, Meta};
use super::Arch;

/// Reads the gemma keys as each `load_arch_hparams` does.
pub(super) fn read_hparams(arch: Arch, m: &Meta<'_>, hp: &mut HParams) -> Result<(), ModelError> {
    if arch == Arch::Gemma2 {
        // Window 4096 unless given, every other layer (period 2), both soft-caps on by default;
        // the window layers use the global rope base and scale unless a window base is given.
        hp.n_swa = m.uint("attention.sliding_window")?.unwrap_or(4096);
        hp.load_swa_pattern(m, 2)?;
        hp.rope_freq_base_swa = m.float("rope.freq_base_swa")?.unwrap_or(hp.rope_freq_base);
        hp.rope_freq_scale_swa = hp.rope_freq_scale;
        hp.attn_softcap = m.float("attn_logit_softcapping")?.unwrap_or(50.0);
        hp.final_softcap = m.float("final_logit_softcapping")?.unwrap_or(30.0);
    } else {
        // A window only when one is given (period 6); the window layers' rope base defaults to
        // llama.cpp's 10000 and their scale to 1; no attention soft-capping.
        match m.uint("attention.sliding_window")? {
            Some(n) if n > 0 => {
                hp.n_swa = n;
                hp.load_swa_pattern(m, 6)?;
                hp.rope_freq_base_swa = m.float("rope.freq_base_swa")?.unwrap_or(10000.0);
            }
            _ => {
                hp.n_swa = 0;
                hp.rope_freq_base_swa = 10000.0;
            }
        }
        hp.rope_freq_scale_swa = 1.0;
        hp.attn_softcap = 0.0;
        hp.final_softcap = m.float("final_logit_softcapping")?.unwrap_or(0.0);
    }
    if hp.n_swa == 0 {
        hp.swa_layers.iter_mut().for_each(|s| *s = false);
    }
    // The 27B sizes (46 layers for gemma2, 62 for gemma3) scale queries by n_embd / n_head.
    let big =
        (arch == Arch::Gemma2 && hp.n_layer == 46) || (arch == Arch::Gemma3 && hp.n_layer == 62);
    let d = if big {
        hp.n_embd / hp.n_head
    } else {
        hp.head_dim
    };
    hp.q_scale = Some(1.0 / (d as f32).sqrt());
    hp.embd_scale = Some((hp.n_embd as f32).sqrt());
    Ok(())
}
