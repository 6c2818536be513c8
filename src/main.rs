//! qforge command-line entry point.
fn main() {}
