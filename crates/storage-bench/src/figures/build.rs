//! C1: a clean debug build of the workspace and the full test suite, in a target directory
//! of its own under the report directory (so the normal target directory stays as it is).
//! Tracked, no target; run only when selected with `--filter C1`.

use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};

use super::Ctx;
use crate::report::{Figure, Target};

fn timed(cmd: &mut Command) -> Result<f64> {
    eprintln!("   $ {cmd:?}");
    let t = Instant::now();
    let status = cmd.status()?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(t.elapsed().as_secs_f64())
}

fn has_nextest(cargo: &std::ffi::OsStr) -> bool {
    Command::new(cargo)
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub(super) async fn run(ctx: &mut Ctx) -> Result<Vec<Figure>> {
    let target = ctx.out.join("c1-target");
    if target.exists() {
        std::fs::remove_dir_all(&target)?;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let cmd = |args: &[&str]| {
        let mut c = Command::new(&cargo);
        c.args(args)
            .current_dir(&ctx.workspace)
            .env("CARGO_TARGET_DIR", &target);
        c
    };
    let build = tokio::task::block_in_place(|| timed(&mut cmd(&["build", "--workspace"])))?;
    let (suite, runner) = if has_nextest(&cargo) {
        (
            vec!["nextest", "run", "--workspace"],
            "cargo nextest run --workspace",
        )
    } else {
        (vec!["test", "--workspace"], "cargo test --workspace")
    };
    let mut test = tokio::task::block_in_place(|| timed(&mut cmd(&suite)))?;
    let runner = if suite[0] == "nextest" {
        // nextest does not run doctests; `cargo xtask test` runs them after it.
        test += tokio::task::block_in_place(|| timed(&mut cmd(&["test", "--workspace", "--doc"])))?;
        format!("{runner}` then `cargo test --workspace --doc")
    } else {
        runner.to_owned()
    };
    let _ = std::fs::remove_dir_all(&target);
    Ok(vec![
        Figure::alone(
            "C1-build",
            "clean debug build of the workspace",
            "s",
            vec![build],
            Target::Tracked,
            1,
        )
        .note(format!("`cargo build --workspace` from an empty CARGO_TARGET_DIR ({}), downloaded crates reused", target.display())),
        Figure::alone(
            "C1-test",
            "full test suite after that build",
            "s",
            vec![test],
            Target::Tracked,
            1,
        )
        .note(format!("`{runner}` in the same target directory (compiles the test targets, then runs them); CI's budget for the suite is 40 minutes")),
    ])
}
