//! `cargo xtask deny`: cargo-deny with the policy in `deny.toml`.
//!
//! Where the RustSec database cannot be fetched, `ADVISORY_DB_SNAPSHOT` names a copy of
//! its files (not a git repository). cargo-deny only opens databases that are git clones in
//! its own directory layout, so the snapshot is copied under `target/advisory-dbs`, committed
//! there, and cargo-deny runs offline with a generated config whose `db-path` points at it.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{cargo, project_root, run};

/// The variable naming a snapshot directory of the advisory database.
const SNAPSHOT_VAR: &str = "ADVISORY_DB_SNAPSHOT";

/// The directory cargo-deny uses for `https://github.com/rustsec/advisory-db` inside its
/// `db-path`: the URL's last segment and a hash of the URL.
const DB_DIR: &str = "advisory-db-3157b0e258782691";

pub(crate) fn deny() -> Result<()> {
    let Some(snapshot) = env::var_os(SNAPSHOT_VAR) else {
        return run(cargo().args(["deny", "check"]));
    };
    let root = project_root();
    let db_root = root.join("target").join("advisory-dbs");
    prepare_snapshot(Path::new(&snapshot), &db_root.join(DB_DIR))?;
    let config = write_offline_config(&root, &db_root)?;
    // cargo-deny reads `cargo metadata --offline`, which needs every crate downloaded.
    run(cargo().arg("fetch"))?;
    run(cargo()
        .args(["deny", "--offline", "--config"])
        .arg(config)
        .arg("check"))
}

/// Makes `db` a git repository holding the snapshot, reusing an earlier copy of the same
/// snapshot (identified by its `SNAPSHOT` file).
fn prepare_snapshot(snapshot: &Path, db: &Path) -> Result<()> {
    let wanted = fs::read_to_string(snapshot.join("SNAPSHOT"))
        .with_context(|| format!("failed to read `SNAPSHOT` in ${SNAPSHOT_VAR}"))?;
    let current = fs::read_to_string(db.join("SNAPSHOT")).ok();
    if current.as_deref() == Some(wanted.as_str()) && db.join(".git").is_dir() {
        eprintln!("advisory db: reusing {} ({})", db.display(), wanted.trim());
        return Ok(());
    }

    eprintln!(
        "advisory db: copying {} ({})",
        snapshot.display(),
        wanted.trim()
    );
    // Built beside the final directory and renamed into place, so an interrupted run never
    // leaves a half-made database that a later run would reuse.
    let staging = db.with_extension("partial");
    remove_dir_if_exists(&staging)?;
    copy_dir(snapshot, &staging)?;
    run(git(&staging).args(["init", "-q"]))?;
    run(git(&staging).args(["add", "-A"]))?;
    run(git(&staging)
        .args(["-c", "user.name=xtask", "-c", "user.email=xtask@localhost"])
        .args(["-c", "commit.gpgsign=false"])
        .args(["commit", "-q", "--no-verify", "-m", "snapshot"]))?;
    remove_dir_if_exists(db)?;
    fs::rename(&staging, db)
        .with_context(|| format!("failed to move {} to {}", staging.display(), db.display()))
}

/// A `git` command in `dir`, unaffected by a repository that the caller's environment names
/// (as it does inside git hooks).
fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir);
    for var in ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"] {
        cmd.env_remove(var);
    }
    cmd
}

/// Writes `deny.toml` with `[advisories] db-path` set to `db_root`, returning its path.
///
/// The `--config` override is needed because cargo-deny has no flag for the database path
/// and expands only environment variables in it, not paths relative to the workspace.
fn write_offline_config(root: &Path, db_root: &Path) -> Result<PathBuf> {
    let policy = fs::read_to_string(root.join("deny.toml")).context("failed to read deny.toml")?;
    if policy
        .lines()
        .any(|line| line.trim_start().starts_with("db-path"))
    {
        bail!("deny.toml sets `db-path`, which the offline run needs to set itself");
    }
    // A JSON string of a path is also a valid TOML basic string.
    let db_path = format!("db-path = {}", serde_json::to_string(&db_root)?);
    let mut config = String::new();
    let mut inserted = false;
    for line in policy.lines() {
        config.push_str(line);
        config.push('\n');
        if !inserted && line.trim() == "[advisories]" {
            config.push_str(&db_path);
            config.push('\n');
            inserted = true;
        }
    }
    if !inserted {
        config.push_str(&format!("\n[advisories]\n{db_path}\n"));
    }
    let path = root.join("target").join("deny-offline.toml");
    fs::write(&path, config).with_context(|| format!("failed to write {}", path.display()))?;
    Ok(path)
}

/// Copies a directory tree, leaving the copies writable (the snapshot is read-only, and a
/// later run must be able to delete the copy).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("failed to create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("failed to read {}", from.display()))? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_dir(&source, &target)?;
        } else {
            fs::copy(&source, &target)
                .with_context(|| format!("failed to copy {}", source.display()))?;
            let mut permissions = fs::metadata(&target)?.permissions();
            #[expect(
                clippy::permissions_set_readonly_false,
                reason = "the copy is private to this user under target/"
            )]
            permissions.set_readonly(false);
            fs::set_permissions(&target, permissions)?;
        }
    }
    Ok(())
}

fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("failed to remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}
