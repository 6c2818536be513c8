//! Phi-3 metadata (`src/models/phi3.cpp`): queries scaled by `1/sqrt(head_dim)` before attention;
//! llama.cpp disables Phi's sliding window, so `attention.sliding_window` is ignored.

use super::super::error::ModelError;
use super::super::hparams::{HParams, Meta};

/// Reads the phi3 keys (none beyond the common ones) and sets the query scale.
pub(super) fn read_hparams(_m: &Meta<'_>, hp: &mut HParams) -> Result<(), ModelError> {
    hp.n_swa = 0;
    hp.q_scale = Some(1.0 / (hp.head_dim as f32).sqrt());
    Ok(())
}
