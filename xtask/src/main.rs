//! `cargo xtask`: the project's automation, written in Rust so that it needs nothing but cargo.
//!
//! `cargo xtask ci` is the README's test command: it installs what the checks need when run
//! as root, then runs formatting, clippy, `tidy` (the architecture rules that the compiler
//! cannot check), cargo-deny, the test suite and a short run of every fuzz target, stopping at
//! the first failure. Each step can also be run on its own; `cargo xtask help` lists them.
//!
//! External commands inherit stdio and are echoed before they run, so a CI log shows exactly
//! what to type to reproduce a failure.

mod bench;
mod ci;
mod deny;
mod fuzz;
mod tidy;

use std::{
    env,
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context as _, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  ci           install missing tools (as root), then run lint, tidy, deny, test and fuzz
  lint         cargo fmt --check and cargo clippy -D warnings
  tidy         check dependency direction, manifests, crate docs, unsafe code and secrets
  deny         cargo deny check (offline against $ADVISORY_DB_SNAPSHOT when it is set)
  test [args]  cargo nextest run --workspace [args], then the doctests
  fuzz [--seconds N] [--target NAME]...
               the cargo-fuzz targets in fuzz/ (RUSTC_BOOTSTRAP=1), N seconds each
               (default 60); ci runs each for 15 s
  bench [--quick] [--filter NAME]
               release build, then the benchmarks of PERFORMANCE.md against their
               baselines; writes target/bench/report.md, report.json and SVG charts
  help         show this message
";

fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> Result<()> {
    let mut args = env::args_os().skip(1);
    let command = args.next();
    let command = match &command {
        None => "help",
        Some(command) => command
            .to_str()
            .with_context(|| format!("unknown command {command:?}"))?,
    };
    let rest: Vec<OsString> = args.collect();
    if !matches!(command, "test" | "bench" | "fuzz") && !rest.is_empty() {
        bail!("`cargo xtask {command}` takes no arguments, got {rest:?}");
    }
    match command {
        "ci" => ci::ci(),
        "lint" => ci::lint(),
        "tidy" => tidy::tidy(),
        "deny" => deny::deny(),
        "test" => ci::test(&rest),
        "bench" => bench::bench(&rest),
        "fuzz" => fuzz::fuzz(&rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            bail!("unknown command `{command}`")
        }
    }
}

/// The workspace root, which every command runs in.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_owned()
}

/// A `cargo` command in the workspace root, using the cargo that runs xtask when there is one.
fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(project_root());
    cmd
}

/// Echoes `cmd`, runs it with inherited stdio and fails unless it exits successfully.
fn run(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    eprintln!("$ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("failed to start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Whether `cmd` runs and exits successfully; its output is discarded.
fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `cmd` as a shell line, e.g. `DEBIAN_FRONTEND=noninteractive apt-get install -y ...`.
///
/// The program is shown by its file name, so the cargo that `$CARGO` points to reads `cargo`.
fn display(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    let program = program.file_name().map_or(program.as_os_str(), |name| name);
    let envs = cmd.get_envs().filter_map(|(key, value)| {
        value.map(|value| format!("{}={}", key.to_string_lossy(), quote(value)))
    });
    envs.chain([quote(program)])
        .chain(cmd.get_args().map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(word: &std::ffi::OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_display_as_shell_lines() {
        let mut cmd = Command::new("/usr/bin/apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "it's", ""]);
        assert_eq!(
            display(&cmd),
            r"DEBIAN_FRONTEND=noninteractive apt-get install -y 'it'\''s' ''"
        );
    }
}
