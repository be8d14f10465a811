//! `cargo xtask ci`, and the `lint` and `test` steps it is made of (the last step, a short
//! run of every fuzz target, is `fuzz.rs`).

use std::{
    ffi::OsString,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{cargo, deny, display, fuzz, run, succeeds, tidy};

/// A step of `ci`, run in the workspace root.
type Step = fn() -> Result<()>;

/// Installs what is missing (as root), then runs every check in order, stopping at the first
/// failing step.
pub(crate) fn ci() -> Result<()> {
    let steps: [(&str, Step); 7] = [
        ("setup", setup),
        ("fmt", fmt),
        ("clippy", clippy),
        ("tidy", tidy::tidy),
        ("deny", deny::deny),
        ("test", || test(&[])),
        ("fuzz", || {
            fuzz::run_targets(fuzz::TARGETS, fuzz::CI_SECONDS)
        }),
    ];
    let start = Instant::now();
    for (i, (name, step)) in steps.iter().enumerate() {
        eprintln!("\n==> [{}/{}] {name}", i + 1, steps.len());
        let step_start = Instant::now();
        let result = step();
        let took = secs(step_start.elapsed());
        if let Err(err) = result {
            eprintln!("<== {name}: FAILED after {took}");
            return Err(err.context(format!("ci step `{name}` failed")));
        }
        eprintln!("<== {name}: ok in {took}");
    }
    eprintln!("\nci: all steps passed in {}", secs(start.elapsed()));
    Ok(())
}

/// `cargo fmt --check`, then clippy with warnings as errors.
pub(crate) fn lint() -> Result<()> {
    fmt()?;
    clippy()
}

/// The test suite under nextest (with `args` passed on), then the doctests, which nextest
/// does not run.
pub(crate) fn test(args: &[OsString]) -> Result<()> {
    run(cargo()
        .args(["nextest", "run", "--workspace", "--locked"])
        .args(args))?;
    run(cargo().args(["test", "--workspace", "--doc", "--locked"]))
}

fn fmt() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))
}

fn clippy() -> Result<()> {
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))
}

/// Installs the tools the checks and tests need when running as root; otherwise fails with
/// the commands that would install them, since tests never install anything themselves.
fn setup() -> Result<()> {
    let mut missing: Vec<(&str, Vec<Command>)> = Vec::new();
    // Programs the tests run, and the Debian packages that provide them.
    let packages: Vec<&str> = REQUIRED_PROGRAMS
        .iter()
        .filter(|(program, _)| !program_available(program))
        .map(|(_, package)| *package)
        .collect();
    if !packages.is_empty() {
        let mut update = Command::new("apt-get");
        update.arg("update");
        let mut install = Command::new("apt-get");
        install
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&packages)
            .args(["pkg-config", "libssl-dev", "zlib1g-dev"]);
        missing.push(("test programs", vec![update, install]));
    }
    for tool in ["deny", "nextest", "fuzz"] {
        if !succeeds(cargo().args([tool, "--version"])) {
            let mut install = cargo();
            install.args(["install", "--locked", &format!("cargo-{tool}")]);
            missing.push((tool, vec![install]));
        }
    }
    if missing.is_empty() {
        eprintln!("all tools present");
        return Ok(());
    }

    if is_root()? {
        for (_, commands) in &mut missing {
            for command in commands {
                run(command)?;
            }
        }
        return Ok(());
    }
    for (tool, commands) in &missing {
        eprintln!("missing `{tool}`; install it (as root) with:");
        for command in commands {
            eprintln!("    {}", display(command));
        }
    }
    let names: Vec<&str> = missing.iter().map(|(tool, _)| *tool).collect();
    bail!("missing tools: {}", names.join(", "))
}

/// Programs the test suite runs (real servers and clients, never mocks), with the Debian
/// package of each.
const REQUIRED_PROGRAMS: &[(&str, &str)] = &[
    ("sshd", "openssh-server"),
    ("ssh-keygen", "openssh-client"),
    ("curl", "curl"),
    ("openssl", "openssl"),
    ("setpriv", "util-linux"),
];

fn program_available(program: &str) -> bool {
    Path::new("/usr/sbin").join(program).is_file()
        || std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn is_root() -> Result<bool> {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .context("failed to run `id -u`")?;
    Ok(output.status.success() && String::from_utf8_lossy(&output.stdout).trim() == "0")
}

fn secs(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}
