//! Logs through `tracing`: human-readable by default, JSON with `log.encoding: json`, level
//! from `log.level` (or `RUST_LOG` when set, for debugging).

use std::io::IsTerminal as _;

use config_model::{LogConfig, LogEncoding};
use tracing_subscriber::EnvFilter;

pub(crate) fn init(log: &LogConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(log.level.as_str()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match log.encoding {
        LogEncoding::Json => builder.json().try_init(),
        LogEncoding::Console => builder.try_init(),
    };
    if let Err(e) = result {
        eprintln!("cannot start logging: {e}");
    }
}
