//! `flipt-storage`: the git-backed storage service for Flipt v2 feature flags.
//!
//! This binary is the composition root: it parses the command line, loads the configuration
//! with `config-model`, and (as the workspace grows) is the only place that maps the
//! configuration to concrete backends and starts the runtime.

mod auth;
mod cli;
mod config_cmd;
mod http;
mod logging;
mod serve;
mod tls;
mod validate;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Config { command } => config_cmd::run(command),
        cli::Command::Serve { config, ready_file } => run_server(config.as_deref(), ready_file),
        cli::Command::Validate {
            path,
            reference,
            directory,
        } => validate::run(path, reference, &directory),
    }
}

fn run_server(path: Option<&std::path::Path>, ready_file: Option<std::path::PathBuf>) -> ExitCode {
    let loaded = match config_model::load_file(path, &config_model::ProcessEnv) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    logging::init(&loaded.config.log);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve::serve(loaded.config, ready_file)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
