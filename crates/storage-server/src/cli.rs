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
    /// Validate Flipt resources the way the server would: a directory of features files, or
    /// a repository at HEAD (or `--ref`). Prints every problem with file and location and
    /// exits 1 if there is any.
    Validate {
        /// A directory, or a git repository (bare or with `.git`). Default: `.`.
        path: Option<PathBuf>,
        /// In a repository: the branch, full reference or commit id to check (default HEAD).
        #[arg(long = "ref")]
        reference: Option<String>,
        /// In a repository: the environment directory inside it (default: the root).
        #[arg(long, default_value = "")]
        directory: String,
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
