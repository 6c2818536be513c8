//! Compute backends: the trait the model code is written against, and the CPU implementation.
