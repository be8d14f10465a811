//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Git-backed storage for Flipt v2 feature flags.
#[derive(Debug, Parser)]
#[command(name = "flipt-storage", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server (the built-in default configuration without --config: one memory
    /// storage and one environment).
    Serve {
        /// The configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Once both ports listen, write `{"grpc":"ADDR","http":"ADDR"}` to this file
        /// (atomically).
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Check or show a configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate a configuration file (the built-in default without PATH), with the `FLIPT_*`
    /// environment variables applied. Prints a summary and exits 0, or prints every problem
    /// and exits 1.
    Validate {
        /// The configuration file.
        path: Option<PathBuf>,
    },
    /// Print the effective configuration (defaults and `FLIPT_*` overrides applied) as YAML,
    /// with secrets redacted.
    Print {
        /// The configuration file.
        path: Option<PathBuf>,
    },
}
