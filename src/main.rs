//! qforge: quantization and model-conversion toolchain for large language models.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if cli::is_gate_failure(&e) {
                ExitCode::from(cli::EXIT_GATE_FAILED)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
