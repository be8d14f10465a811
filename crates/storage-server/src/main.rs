//! `flipt-storage`: the git-backed storage service for Flipt v2 feature flags.
//!
//! This binary is the composition root: it parses the command line, loads the configuration
//! with `config-model`, and (as the workspace grows) is the only place that maps the
//! configuration to concrete backends and starts the runtime.

mod cli;
mod config_cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Config { command } => config_cmd::run(command),
    }
}
