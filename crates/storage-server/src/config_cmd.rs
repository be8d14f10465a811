//! `config validate` and `config print`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use config_model::{Config, Loaded, ProcessEnv, load_file};

use crate::cli::ConfigCommand;

pub(crate) fn run(command: ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::Validate { path } => validate(path.as_deref()),
        ConfigCommand::Print { path } => print(path.as_deref()),
    }
}

/// Loads the configuration, printing warnings, or every problem on failure.
fn load(path: Option<&Path>) -> Option<Loaded> {
    match load_file(path, &ProcessEnv) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            Some(loaded)
        }
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}

fn validate(path: Option<&Path>) -> ExitCode {
    let Some(loaded) = load(path) else {
        return ExitCode::FAILURE;
    };
    let source = path.map_or_else(
        || "built-in default configuration".to_owned(),
        |p| format!("`{}`", p.display()),
    );
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. piped into `head`) is not a reason to fail validation.
    let _ = writeln!(out, "{source} is valid");
    let _ = write!(out, "{}", summary(&loaded.config));
    ExitCode::SUCCESS
}

fn print(path: Option<&Path>) -> ExitCode {
    let Some(loaded) = load(path) else {
        return ExitCode::FAILURE;
    };
    let _ = write!(
        std::io::stdout().lock(),
        "{}",
        loaded.config.to_redacted_yaml()
    );
    ExitCode::SUCCESS
}

/// A short summary: storages with backend, remote (without userinfo) and branch;
/// environments with storage and directory.
fn summary(config: &Config) -> String {
    let mut s = String::from("storages:\n");
    for st in config.storages.values() {
        let backend = match st.backend.path() {
            None => st.backend.kind().to_owned(),
            Some(path) => format!("{} ({})", st.backend.kind(), path.display()),
        };
        let remote = st
            .remote
            .as_ref()
            .map_or_else(|| "no remote".to_owned(), |r| format!("remote {r}"));
        s.push_str(&format!(
            "  {}: {backend}, {remote}, branch {}\n",
            st.id, st.branch
        ));
    }
    s.push_str("environments:\n");
    for e in &config.environments {
        let dir = if e.directory.is_empty() {
            "/"
        } else {
            e.directory.as_str()
        };
        let default = if e.default { " (default)" } else { "" };
        s.push_str(&format!(
            "  {}: storage {}, directory {dir}{default}\n",
            e.name, e.storage
        ));
    }
    s
}
