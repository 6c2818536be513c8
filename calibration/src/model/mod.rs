//! Model definitions: hyper-parameters, weights and the forward pass of each architecture.
