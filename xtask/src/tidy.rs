//! `cargo xtask tidy`: the project's rules that neither rustc nor clippy checks.
//!
//! - Workspace crates depend on each other only along the edges in [`RULES`], the table form
//!   of "Dependency direction" in ARCHITECTURE.md.
//! - Member manifests take every dependency from the root `[workspace.dependencies]` and
//!   their lints from `[workspace.lints]` (which is what makes `unsafe_code` deny).
//! - Every crate root starts with a `//!` paragraph.
//! - `unsafe_code` is lowered only in [`UNSAFE_CODE_ALLOWED`], never forbidden, and nothing
//!   claims `Send` or `Sync` with `unsafe impl`.
//! - `expose_secret` is called only in [`EXPOSE_SECRET_ALLOWED`] and in test code.
//!
//! The checks read `cargo metadata` and the source text; they run as `cargo xtask tidy` and as
//! a test of this crate, so `cargo test -p xtask` checks the real workspace.

use std::{
    collections::{BTreeSet, HashSet},
    fs,
    path::{Path, PathBuf},
    process::Stdio,
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::{cargo, project_root};

/// Which workspace crates each workspace crate may use as a normal or build dependency.
///
/// Keep in step with "Dependency direction" in ARCHITECTURE.md. A name ending in `*` matches
/// every crate with that prefix; an exact name wins over a pattern. Crates listed here that do
/// not exist yet are fine; a workspace crate missing from the table is an error.
const RULES: &[Rule] = &[
    // Bounds on hostile YAML, shared by the two crates that parse YAML.
    Rule::library("yaml-guard", &[]),
    Rule::library("config-model", &["yaml-guard"]),
    Rule::library("credentials", &["config-model", "git-backend"]),
    Rule::library("git-backend", &[]),
    // The git2 code shared by the git2 backends: transport callbacks, host-key checks, push
    // status handling.
    Rule::library("git2-support", &["git-backend"]),
    // Backends never depend on each other.
    Rule::library("git-backend-*", &["git-backend", "git2-support"]),
    Rule::library("resource-model", &["git-backend", "yaml-guard"]),
    Rule::library(
        "remote-sync",
        &["git-backend", "credentials", "config-model"],
    ),
    Rule::library("storage-proto", &[]),
    // Concrete backends (`git-backend-*`) only as dev-dependencies.
    Rule::library(
        "storage-grpc",
        &[
            "storage-proto",
            "git-backend",
            "remote-sync",
            "credentials",
            "config-model",
            "resource-model",
        ],
    ),
    Rule {
        krate: "test-support",
        role: Role::DevOnly,
        may_use: &["git-backend", "config-model"],
    },
    // The composition root: the only crate that names concrete backends.
    Rule {
        krate: "storage-server",
        role: Role::Binary,
        may_use: &["*"],
    },
    Rule {
        krate: "integration-tests",
        role: Role::Tests,
        may_use: &["*"],
    },
    // The benchmark harness (`cargo xtask bench`): a tool like the integration tests (it
    // starts the real binary and uses test-support's git servers); nothing depends on it.
    Rule {
        krate: "storage-bench",
        role: Role::Tests,
        may_use: &["*"],
    },
    Rule {
        krate: "xtask",
        role: Role::Tool,
        may_use: &[],
    },
];

/// Whether a crate is a concrete backend; backends never depend on each other.
fn is_backend(name: &str) -> bool {
    name.starts_with("git-backend-")
}

/// The binary; no library may depend on it, not even for its tests.
const BINARY: &str = "storage-server";

/// Files that may lower the `unsafe_code` lint (with `#![expect(unsafe_code, reason = "...")]`).
///
/// This list must match the "Unsafe code" section of ARCHITECTURE.md.
const UNSAFE_CODE_ALLOWED: &[&str] = &[
    // Process-wide libgit2 settings (`git2::opts` setters are `unsafe fn`) and glibc's
    // `malloc_trim`.
    "crates/git2-support/src/global.rs",
    // setpriority(2) for the snapshot build threads.
    "crates/storage-grpc/src/background.rs",
];

/// Files outside tests that may call `expose_secret()`: where a credential is handed to
/// libgit2, and the server's constant-time token and webhook-HMAC checks.
const EXPOSE_SECRET_ALLOWED: &[&str] = &[
    "crates/git2-support/src/transport.rs",
    "crates/storage-server/src/auth.rs",
];

/// Directories (relative to the workspace root) whose Rust files are checked.
const SOURCE_DIRS: &[&str] = &["crates", "xtask", "tests"];

/// This file spells out the patterns it looks for, so the source checks skip it.
const CHECKER: &str = "xtask/src/tidy.rs";

pub(crate) fn tidy() -> Result<()> {
    let workspace = Workspace::load(&project_root())?;
    let violations = workspace.violations()?;
    if violations.is_empty() {
        println!("tidy: ok ({} crates)", workspace.packages.len());
        return Ok(());
    }
    for violation in &violations {
        println!("{violation}");
    }
    bail!("tidy: {} violation(s)", violations.len())
}

/// What a crate is, which decides the rules for its dev-dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Library,
    /// A helper for tests that only dev-dependencies may name.
    DevOnly,
    Binary,
    Tests,
    Tool,
}

#[derive(Debug)]
struct Rule {
    krate: &'static str,
    role: Role,
    may_use: &'static [&'static str],
}

impl Rule {
    const fn library(krate: &'static str, may_use: &'static [&'static str]) -> Self {
        Self {
            krate,
            role: Role::Library,
            may_use,
        }
    }

    /// The rule for `krate`: an exact entry, else the first matching pattern.
    fn of(krate: &str) -> Option<&'static Rule> {
        RULES
            .iter()
            .find(|rule| rule.krate == krate)
            .or_else(|| RULES.iter().find(|rule| name_matches(rule.krate, krate)))
    }

    fn allows(&self, dependency: &str) -> bool {
        self.may_use
            .iter()
            .any(|allowed| name_matches(allowed, dependency))
    }
}

fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Build,
    Dev,
}

#[derive(Debug)]
struct Dependency {
    name: String,
    kind: Kind,
    /// Whether it is a path dependency, as workspace crates are (not a registry crate that
    /// happens to have a workspace crate's name).
    local: bool,
}

#[derive(Debug)]
struct Package {
    name: String,
    manifest: PathBuf,
    dependencies: Vec<Dependency>,
    /// `src/lib.rs` or its equivalent; the binaries' `main.rs` for a binary-only crate.
    roots: Vec<PathBuf>,
}

#[derive(Debug)]
struct Workspace {
    root: PathBuf,
    packages: Vec<Package>,
}

impl Workspace {
    fn load(root: &Path) -> Result<Self> {
        let output = cargo()
            .current_dir(root)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .stderr(Stdio::inherit())
            .output()
            .context("failed to run `cargo metadata`")?;
        if !output.status.success() {
            bail!("`cargo metadata` failed ({})", output.status);
        }
        let metadata: Value =
            serde_json::from_slice(&output.stdout).context("failed to parse `cargo metadata`")?;
        let members: HashSet<&str> = array(&metadata, "workspace_members")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut packages = Vec::new();
        for package in array(&metadata, "packages")? {
            if members.contains(string(package, "id")?) {
                packages.push(Package::from_metadata(package)?);
            }
        }
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self {
            root: root.to_owned(),
            packages,
        })
    }

    fn violations(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        self.check_dependencies(&mut out);
        self.check_manifests(&mut out)?;
        self.check_crate_docs(&mut out)?;
        self.check_sources(&mut out)?;
        Ok(out)
    }

    /// A path relative to the workspace root, for messages.
    fn relative<'a>(&self, path: &'a Path) -> std::borrow::Cow<'a, str> {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
    }

    fn check_dependencies(&self, out: &mut Vec<String>) {
        let names: HashSet<&str> = self.packages.iter().map(|p| p.name.as_str()).collect();
        for package in &self.packages {
            let manifest = self.relative(&package.manifest);
            let Some(rule) = Rule::of(&package.name) else {
                out.push(format!(
                    "{manifest}: workspace crate `{}` has no dependency rule; add it to the table \
                     in xtask/src/tidy.rs and to ARCHITECTURE.md",
                    package.name
                ));
                continue;
            };
            let dependencies = package.dependencies.iter().filter(|dep| {
                dep.local && dep.name != package.name && names.contains(dep.name.as_str())
            });
            for dep in dependencies {
                let name = &dep.name;
                if Rule::of(name).is_some_and(|theirs| theirs.role == Role::Tests) {
                    out.push(format!(
                        "{manifest}: nothing may depend on `{name}` (test and benchmark crates \
                         are leaves)"
                    ));
                    continue;
                }
                let dev_only = Rule::of(name).is_some_and(|theirs| theirs.role == Role::DevOnly);
                match dep.kind {
                    Kind::Normal | Kind::Build if dev_only && rule.role != Role::Tests => {
                        out.push(format!(
                            "{manifest}: `{name}` is for tests only; make it a dev-dependency"
                        ));
                    }
                    Kind::Normal | Kind::Build if !rule.allows(name) => out.push(format!(
                        "{manifest}: `{}` must not depend on `{name}` (it may use: {}); \
                         see \"Dependency direction\" in ARCHITECTURE.md",
                        package.name,
                        allowed_list(rule),
                    )),
                    Kind::Dev if is_backend(&package.name) && is_backend(name) => {
                        out.push(format!(
                            "{manifest}: backend `{}` must not depend on backend `{name}`, \
                             not even for tests (shared test code goes in `git-backend`'s \
                             `testsuite` feature)",
                            package.name
                        ));
                    }
                    Kind::Dev
                        if name == BINARY && matches!(rule.role, Role::Library | Role::DevOnly) =>
                    {
                        out.push(format!(
                            "{manifest}: library `{}` must not depend on the binary \
                             `{BINARY}`, not even for tests",
                            package.name
                        ));
                    }
                    _ => {}
                }
            }
        }
    }

    fn check_manifests(&self, out: &mut Vec<String>) -> Result<()> {
        for package in &self.packages {
            let text = read(&package.manifest)?;
            check_manifest(&self.relative(&package.manifest), &text, out);
        }
        Ok(())
    }

    fn check_crate_docs(&self, out: &mut Vec<String>) -> Result<()> {
        for path in self.packages.iter().flat_map(|p| &p.roots) {
            let text = read(path)?;
            let first = text.lines().map(str::trim).find(|line| !line.is_empty());
            if !first.is_some_and(|line| line.starts_with("//!")) {
                out.push(format!(
                    "{}:1: a crate root starts with a `//!` paragraph: what the crate is for, \
                     what it must not depend on, and an example",
                    self.relative(path)
                ));
            }
        }
        Ok(())
    }

    fn check_sources(&self, out: &mut Vec<String>) -> Result<()> {
        let mut files = Vec::new();
        for dir in SOURCE_DIRS {
            rust_files(&self.root.join(dir), &mut files)?;
        }
        files.sort();
        for file in files {
            let relative = self.relative(&file).replace('\\', "/");
            if relative != CHECKER {
                check_source(&relative, &read(&file)?, out);
            }
        }
        Ok(())
    }
}

impl Package {
    fn from_metadata(package: &Value) -> Result<Self> {
        let name = string(package, "name")?.to_owned();
        let dependencies = array(package, "dependencies")?
            .iter()
            .map(|dep| {
                let kind = match dep["kind"].as_str() {
                    None => Kind::Normal,
                    Some("build") => Kind::Build,
                    Some("dev") => Kind::Dev,
                    Some(other) => bail!("unknown dependency kind `{other}`"),
                };
                Ok(Dependency {
                    name: string(dep, "name")?.to_owned(),
                    kind,
                    local: dep["source"].is_null(),
                })
            })
            .collect::<Result<_>>()?;

        let targets = array(package, "targets")?;
        let kinds = |target: &Value, wanted: &[&str]| {
            target["kind"].as_array().is_some_and(|kinds| {
                kinds
                    .iter()
                    .any(|k| wanted.contains(&k.as_str().unwrap_or("")))
            })
        };
        let library = ["lib", "rlib", "dylib", "cdylib", "staticlib", "proc-macro"];
        let mut roots: Vec<PathBuf> = Vec::new();
        for wanted in [&library[..], &["bin"]] {
            for target in targets.iter().filter(|target| kinds(target, wanted)) {
                roots.push(string(target, "src_path")?.into());
            }
            if !roots.is_empty() {
                break;
            }
        }

        Ok(Self {
            name,
            manifest: string(package, "manifest_path")?.into(),
            dependencies,
            roots,
        })
    }
}

fn allowed_list(rule: &Rule) -> String {
    if rule.may_use.is_empty() {
        "no workspace crate".to_owned()
    } else {
        rule.may_use
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Checks that every dependency of a member manifest says `workspace = true` (versions live in
/// the root `[workspace.dependencies]`), and that the manifest has `[lints] workspace = true`.
///
/// This is a line-based reading of TOML that understands what Cargo manifests use: tables,
/// dotted keys (`foo.workspace = true`), `[dependencies.foo]` tables, target-specific tables,
/// inline tables and values spanning lines.
fn check_manifest(path: &str, text: &str, out: &mut Vec<String>) {
    // Each dependency as its table path ending in its name, the line that declares it, and
    // whether it inherits from the workspace.
    let mut dependencies: Vec<(Vec<String>, usize, bool)> = Vec::new();
    let mut record = |key: &[String], line: usize, inherits: bool| match dependencies
        .iter_mut()
        .find(|(seen, ..)| seen == key)
    {
        Some((_, _, seen_inherits)) => *seen_inherits |= inherits,
        None => dependencies.push((key.to_vec(), line, inherits)),
    };
    let mut lints_inherited = false;
    let mut table = Vec::new();
    for (line, entry) in toml_entries(text) {
        match entry {
            Entry::Table(path) => {
                if let Some((key, [])) = dependency_key(&path) {
                    record(key, line, false);
                }
                table = path;
            }
            Entry::Value(key, value) => {
                let full: Vec<String> = table.iter().cloned().chain(key).collect();
                if full == ["lints", "workspace"] && value == "true" {
                    lints_inherited = true;
                }
                if let Some((key, rest)) = dependency_key(&full) {
                    let inherits = match rest {
                        [] => {
                            let value: String = value.split_whitespace().collect();
                            value.starts_with('{') && value.contains("workspace=true")
                        }
                        [field] => field == "workspace" && value == "true",
                        _ => false,
                    };
                    record(key, line, inherits);
                }
            }
        }
    }
    for (key, line, inherits) in dependencies {
        if !inherits {
            let name = key.last().expect("a dependency key ends in its name");
            out.push(format!(
                "{path}:{line}: write `{name}.workspace = true` and put its version and source \
                 in the root Cargo.toml's [workspace.dependencies]"
            ));
        }
    }
    if !lints_inherited {
        out.push(format!(
            "{path}: add `[lints] workspace = true` so the workspace lints apply"
        ));
    }
}

/// Splits a key path inside a dependency table (`dependencies.foo.workspace`,
/// `target.'cfg(unix)'.dev-dependencies.foo`) into the dependency's path and the rest.
fn dependency_key(path: &[String]) -> Option<(&[String], &[String])> {
    let tables = ["dependencies", "dev-dependencies", "build-dependencies"];
    let at = match path {
        [first, ..] if tables.contains(&first.as_str()) => 0,
        [target, _, table, ..] if target == "target" && tables.contains(&table.as_str()) => 2,
        _ => return None,
    };
    (path.len() > at + 1).then(|| path.split_at(at + 2))
}

#[derive(Debug, PartialEq)]
enum Entry {
    /// A `[table]` or `[[array.of.tables]]` header, as its key path.
    Table(Vec<String>),
    /// `key = value`, with the key split at its dots and the value's text (which may span
    /// lines).
    Value(Vec<String>, String),
}

/// The headers and key/value pairs of a TOML document with their (1-based) line numbers.
fn toml_entries(text: &str) -> Vec<(usize, Entry)> {
    let mut entries = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let line = strip_toml_comment(line).trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            let header = line.trim_start_matches('[').trim_end_matches(']');
            entries.push((index + 1, Entry::Table(split_key(header))));
            continue;
        }
        let Some((at, _)) = unquoted(line).find(|&(_, c)| c == '=') else {
            continue;
        };
        let mut value = line[at + 1..].trim().to_owned();
        while nesting(&value) > 0 {
            let Some((_, next)) = lines.next() else {
                break;
            };
            value.push(' ');
            value.push_str(strip_toml_comment(next).trim());
        }
        entries.push((index + 1, Entry::Value(split_key(&line[..at]), value)));
    }
    entries
}

/// The characters of one line of TOML that are outside strings, with their byte offsets.
fn unquoted(line: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut quote = None;
    let mut escaped = false;
    line.char_indices().filter(move |&(_, c)| match quote {
        Some(q) => {
            if escaped {
                escaped = false;
            } else if c == '\\' && q == '"' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            false
        }
        None if c == '"' || c == '\'' => {
            quote = Some(c);
            false
        }
        None => true,
    })
}

fn strip_toml_comment(line: &str) -> &str {
    let end = unquoted(line)
        .find(|&(_, c)| c == '#')
        .map_or(line.len(), |(at, _)| at);
    &line[..end]
}

/// How many brackets and braces a TOML value leaves open.
fn nesting(value: &str) -> i32 {
    unquoted(value)
        .map(|(_, c)| match c {
            '[' | '{' => 1,
            ']' | '}' => -1,
            _ => 0,
        })
        .sum()
}

/// `a."b.c".d` -> `["a", "b.c", "d"]`.
fn split_key(key: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut start = 0;
    let dots = unquoted(key).filter(|&(_, c)| c == '.').map(|(at, _)| at);
    for end in dots.chain([key.len()]) {
        let part = key[start..end].trim();
        parts.push(part.trim_matches(|c| c == '"' || c == '\'').to_owned());
        start = end + 1;
    }
    parts
}

/// Checks one Rust file (`path` relative to the workspace root) for lowered or forbidden
/// `unsafe_code`, `unsafe impl Send`/`Sync`, and `expose_secret` outside the allowed places.
fn check_source(path: &str, text: &str, out: &mut Vec<String>) {
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    // Whether the match at `at` follows `//` on its line; commented code is not code.
    let commented = |at: usize| {
        let start = text[..at].rfind('\n').map_or(0, |newline| newline + 1);
        text[start..at].contains("//")
    };

    for (at, word) in text.match_indices("unsafe_code") {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        if before.is_some_and(is_ident) || after.is_some_and(is_ident) || commented(at) {
            continue;
        }
        let line = line_of(at);
        match lint_level(text, at) {
            Some("forbid") => out.push(format!(
                "{path}:{line}: do not forbid `unsafe_code`: no attribute can lower `forbid` \
                 where unsafe is needed; the workspace lints already deny it"
            )),
            Some("allow" | "expect") if !UNSAFE_CODE_ALLOWED.contains(&path) => out.push(format!(
                "{path}:{line}: `unsafe_code` may be lowered only in the files listed under \
                 \"Unsafe code\" in ARCHITECTURE.md (UNSAFE_CODE_ALLOWED in xtask/src/tidy.rs)"
            )),
            _ => {}
        }
    }

    for (at, _) in text.match_indices("unsafe impl") {
        let rest = &text[at..];
        let header = &rest[..rest.find(['{', ';']).unwrap_or(rest.len())];
        if (header.contains("Send for") || header.contains("Sync for")) && !commented(at) {
            out.push(format!(
                "{path}:{}: no `unsafe impl Send`/`Sync`: share non-`Sync` values (such as a \
                 `git2::Repository`) behind a mutex or move them into `spawn_blocking`",
                line_of(at)
            ));
        }
    }

    if is_test_path(path) || EXPOSE_SECRET_ALLOWED.contains(&path) {
        return;
    }
    let test_lines = cfg_test_lines(text);
    for (at, word) in text.match_indices("expose_secret") {
        let after = &text[at + word.len()..];
        let call = after.starts_with('(') || after.starts_with("_mut(");
        let line = line_of(at);
        if call && !commented(at) && !test_lines.contains(&line) {
            out.push(format!(
                "{path}:{line}: `expose_secret()` is called only where a credential is handed \
                 to the transport or compared in constant time (EXPOSE_SECRET_ALLOWED in \
                 xtask/src/tidy.rs, see ARCHITECTURE.md)"
            ));
        }
    }
}

/// Test code: integration tests, `tests.rs` unit-test modules and the dev-only test-support
/// crate (which tidy keeps out of non-test builds).
fn is_test_path(path: &str) -> bool {
    let path = format!("/{path}");
    path.contains("/tests/")
        || path.ends_with("/tests.rs")
        || path.starts_with("/crates/test-support/")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The lint level attribute (`allow`, `expect`, `forbid` ...) whose lint list contains the lint
/// name at `at`, as in `#![expect(clippy::foo, unsafe_code, reason = "...")]`.
fn lint_level(text: &str, at: usize) -> Option<&str> {
    let before = &text[..at];
    let open = before.rfind('(')?;
    let in_list = before[open + 1..]
        .chars()
        .all(|c| is_ident(c) || c == ':' || c == ',' || c.is_whitespace());
    if !in_list {
        return None;
    }
    let head = before[..open].trim_end();
    let start = head.rfind(|c| !is_ident(c)).map_or(0, |i| i + 1);
    Some(&head[start..])
}

/// The (1-based) lines of items under a top-level-style `#[cfg(test)]` attribute, found by
/// counting braces; good enough for `mod tests { ... }` and test helpers.
fn cfg_test_lines(text: &str) -> BTreeSet<usize> {
    let mut lines = BTreeSet::new();
    let mut pending = false;
    let mut inside = false;
    let mut depth = 0;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if !inside {
            if trimmed == "#[cfg(test)]" {
                pending = true;
                continue;
            }
            let preamble =
                trimmed.is_empty() || trimmed.starts_with("#[") || trimmed.starts_with("//");
            if !pending || preamble {
                continue;
            }
            pending = false;
            inside = true;
            depth = 0;
        }
        lines.insert(index + 1);
        let (opened, closed) = braces(line);
        depth += opened - closed;
        if depth <= 0 && (closed > 0 || trimmed.ends_with(';')) {
            inside = false;
        }
    }
    lines
}

/// The `{` and `}` on a line of Rust outside strings, character literals and comments.
fn braces(line: &str) -> (i32, i32) {
    let (mut opened, mut closed) = (0, 0);
    let mut chars = line.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_string => {
                chars.next();
            }
            '"' => in_string = !in_string,
            _ if in_string => {}
            '/' if chars.peek() == Some(&'/') => break,
            '\'' => {
                // A character literal such as '{' (a lifetime has no closing quote after
                // one character).
                let mut ahead = chars.clone();
                if matches!((ahead.next(), ahead.next()), (Some(_), Some('\''))) {
                    chars.next();
                    chars.next();
                }
            }
            '{' => opened += 1,
            '}' => closed += 1,
            _ => {}
        }
    }
    (opened, closed)
}

/// Appends the `.rs` files under `dir`, skipping build output and hidden directories.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() {
            if !name.starts_with('.') && name != "target" {
                rust_files(&path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))
}

fn string<'a>(value: &'a Value, key: &str) -> Result<&'a str> {
    value[key]
        .as_str()
        .with_context(|| format!("`cargo metadata`: `{key}` is not a string"))
}

fn array<'a>(value: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    value[key]
        .as_array()
        .with_context(|| format!("`cargo metadata`: `{key}` is not an array"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_is_tidy() {
        let workspace = Workspace::load(&project_root()).unwrap();
        let violations = workspace.violations().unwrap();
        assert!(
            violations.is_empty(),
            "tidy violations:\n{}",
            violations.join("\n")
        );
    }

    #[test]
    fn rules_name_only_crates_in_the_table() {
        for rule in RULES {
            for allowed in rule.may_use {
                assert!(
                    *allowed == "*" || Rule::of(allowed).is_some(),
                    "`{}` may use `{allowed}`, which has no rule",
                    rule.krate
                );
            }
        }
        assert_eq!(Rule::of("git-backend").unwrap().krate, "git-backend");
        assert_eq!(
            Rule::of("git-backend-local").unwrap().krate,
            "git-backend-*"
        );
        assert!(
            !Rule::of("git-backend-local")
                .unwrap()
                .allows("git-backend-memory")
        );
        assert!(
            !Rule::of("storage-grpc")
                .unwrap()
                .allows("git-backend-local")
        );
    }

    #[test]
    fn dependencies_follow_the_table() {
        let package = |name: &str, deps: &[(&str, Kind)]| Package {
            name: name.to_owned(),
            manifest: PathBuf::from(format!("/w/crates/{name}/Cargo.toml")),
            dependencies: deps
                .iter()
                .map(|&(name, kind)| Dependency {
                    name: name.to_owned(),
                    kind,
                    local: true,
                })
                .collect(),
            roots: Vec::new(),
        };
        let workspace = Workspace {
            root: PathBuf::from("/w"),
            packages: vec![
                package("config-model", &[("storage-server", Kind::Dev)]),
                package("credentials", &[("storage-bench", Kind::Dev)]),
                package("git-backend", &[]),
                package("git-backend-local", &[("git-backend-memory", Kind::Normal)]),
                package(
                    "git-backend-memory",
                    &[
                        ("git-backend", Kind::Normal),
                        ("git-backend-local", Kind::Dev),
                    ],
                ),
                package(
                    "storage-grpc",
                    &[
                        ("git-backend-local", Kind::Dev),
                        ("git-backend-memory", Kind::Build),
                    ],
                ),
                package("remote-sync", &[("test-support", Kind::Normal)]),
                package("storage-server", &[("git-backend-local", Kind::Normal)]),
                package("test-support", &[("config-model", Kind::Normal)]),
                package("storage-bench", &[("test-support", Kind::Normal)]),
                package("unlisted", &[]),
            ],
        };
        let mut violations = Vec::new();
        workspace.check_dependencies(&mut violations);
        let crates: Vec<&str> = violations
            .iter()
            .map(|v| v.split('/').nth(1).unwrap())
            .collect();
        assert_eq!(
            crates,
            [
                "config-model",
                "credentials",
                "git-backend-local",
                "git-backend-memory",
                "storage-grpc",
                "remote-sync",
                "unlisted"
            ],
            "{violations:#?}"
        );
    }

    fn manifest_violations(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        check_manifest("Cargo.toml", text, &mut out);
        out
    }

    #[test]
    fn manifests_inherit_dependencies_and_lints() {
        let good = r#"
[package]
name = "x" # not a dependency = "1"

[dependencies]
anyhow.workspace = true
serde = { workspace = true, features = [
    "derive",
] }
tokio.workspace = true
tokio.features = ["rt"]

[dependencies.thiserror]
workspace = true

[target.'cfg(unix)'.dev-dependencies]
"tempfile" = { workspace = true }

[lints]
workspace = true
"#;
        assert_eq!(manifest_violations(good), Vec::<String>::new());

        let bad = r#"
[dependencies]
anyhow = "1"
config-model = { path = "../config-model" }
serde.version = "1"

[dependencies.thiserror]
version = "2"

[target.'cfg(unix)'.build-dependencies]
cc = { version = "1", features = ["parallel"] }
"#;
        let violations = manifest_violations(bad);
        let lines: Vec<&str> = violations
            .iter()
            .map(|v| v.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "Cargo.toml:3:",
                "Cargo.toml:4:",
                "Cargo.toml:5:",
                "Cargo.toml:7:",
                "Cargo.toml:11:",
                "Cargo.toml:",
            ]
        );
    }

    fn source_violations(path: &str, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        check_source(path, text, &mut out);
        out
    }

    #[test]
    fn unsafe_code_is_lowered_only_on_the_list() {
        let text = "\
#![expect(
    clippy::undocumented_unsafe_blocks,
    unsafe_code,
    reason = \"ffi\"
)]
#![deny(unsafe_code)]
// #![allow(unsafe_code)] is commented out
#[cfg_attr(test, allow(unsafe_code))]
#![forbid(unsafe_code)]
unsafe impl<T> Send for Wrapper<T> {}
unsafe impl Sync for Repo {}
unsafe impl GlobalAlloc for A {}
";
        let violations = source_violations("crates/x/src/lib.rs", text);
        let lines: Vec<&str> = violations
            .iter()
            .map(|v| v.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "crates/x/src/lib.rs:3:",
                "crates/x/src/lib.rs:8:",
                "crates/x/src/lib.rs:9:",
                "crates/x/src/lib.rs:10:",
                "crates/x/src/lib.rs:11:",
            ]
        );
    }

    #[test]
    fn secrets_are_exposed_only_in_audited_places_and_tests() {
        let text = r#"
fn token(t: &SecretString) -> &str {
    t.expose_secret() // line 3
}
// t.expose_secret() in a comment
fn format() -> String { format!("{}", '{') }

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        assert_eq!(secret.expose_secret(), "x");
    }
}

fn after_tests(t: &SecretString) {
    ExposeSecret::expose_secret(t);
}
"#;
        let violations = source_violations("crates/x/src/lib.rs", text);
        let lines: Vec<&str> = violations
            .iter()
            .map(|v| v.split(' ').next().unwrap())
            .collect();
        assert_eq!(lines, ["crates/x/src/lib.rs:3:", "crates/x/src/lib.rs:17:"]);

        assert!(source_violations("crates/x/tests/api.rs", text).is_empty());
        assert!(source_violations("tests/src/lib.rs", text).is_empty());
        assert!(source_violations("crates/storage-server/src/auth.rs", text).is_empty());
    }
}
