//! Errors of importance-matrix collection.

use crate::eval::EvalError;

/// What can go wrong while collecting an importance matrix.
#[derive(Debug, thiserror::Error)]
pub enum ImatrixError {
    /// The text or the forward pass failed (chunking, model errors).
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// A sum of squared activations overflowed (llama-imatrix stops there too).
    #[error("non-finite values detected in {weight}")]
    NonFinite {
        /// The weight whose statistics overflowed.
        weight: String,
    },
    /// The same weight was seen with different input widths or expert counts.
    #[error("inconsistent size for {weight}: {what}")]
    Inconsistent {
        /// The weight.
        weight: String,
        /// What differed.
        what: String,
    },
    /// The parameters cannot be used.
    #[error("invalid imatrix parameters: {0}")]
    Params(String),
}
