//! Evaluations over a forward pass: perplexity, KL-divergence against a base model, quality gates.
