//! `flipt-storage config validate` and `config print`, as users run them.

use integration_tests::{flipt_storage, run, workspace_root};

#[test]
fn validate_without_a_path_checks_the_built_in_default() {
    let out = run(flipt_storage().args(["config", "validate"]));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("built-in default configuration is valid"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("default: memory, no remote, branch main"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("default: storage default, directory / (default)"),
        "{out:?}"
    );
}

#[test]
fn validate_accepts_every_example() {
    let examples = workspace_root().join("examples");
    for name in [
        "memory.yml",
        "local-https-token.yml",
        "ssh-known-hosts.yml",
        "two-environments.yml",
    ] {
        let out = run(flipt_storage()
            .args(["config", "validate"])
            .arg(examples.join(name))
            .env("GITHUB_TOKEN", "ghp_example")
            .env("GITEA_PASSWORD", "pw")
            .env("FLAGS_WEBHOOK_SECRET", "hook"));
        assert_eq!(out.code, Some(0), "{name}: {out:?}");
        assert!(out.stdout.contains("is valid"), "{name}: {out:?}");
    }
}

#[test]
fn validate_summarises_remotes_without_userinfo() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yml");
    std::fs::write(
        &path,
        "storage:\n  default:\n    remote: https://alice@git.example.com/flags.git\n    branch: prod\n",
    )
    .unwrap();
    let out = run(flipt_storage().args(["config", "validate"]).arg(&path));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("remote https://git.example.com/flags.git, branch prod"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("alice"), "{out:?}");
}

#[test]
fn validate_prints_every_problem_with_its_line_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yml");
    std::fs::write(
        &path,
        "storage:\n  default:\n    poll_interval: 10ms\n    remote: https://h/r.git\n    brnch: main\nlog:\n  level: loud\n",
    )
    .unwrap();
    let out = run(flipt_storage().args(["config", "validate"]).arg(&path));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("3 error(s)"), "{out:?}");
    assert!(
        out.stderr
            .contains("storage.default.poll_interval: must be at least 1s, got 10ms (line 3)"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(
            "storage.default.brnch: unknown key `brnch`; did you mean `branch`? (line 5)"
        ),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(
            "log.level: `loud` is not allowed (allowed: debug, info, warn, error) (line 7)"
        ),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn validate_applies_environment_variables() {
    let out = run(flipt_storage()
        .args(["config", "validate"])
        .env("FLIPT_STORAGE_DEFAULT_POLL_INTERVAL", "1ms"));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("from environment variable FLIPT_STORAGE_DEFAULT_POLL_INTERVAL"),
        "{out:?}"
    );
    let out = run(flipt_storage()
        .args(["config", "validate"])
        .env("FLIPT_STORAGE_DEFAULT_BRANCH", "develop"));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("branch develop"), "{out:?}");
}

#[test]
fn validate_reports_an_unreadable_file() {
    let out = run(flipt_storage().args(["config", "validate", "/nonexistent/flipt.yml"]));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("cannot read `/nonexistent/flipt.yml`"),
        "{out:?}"
    );
}

#[test]
fn print_shows_the_effective_configuration_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yml");
    std::fs::write(
        &path,
        "credentials:\n  gh:\n    type: access_token\n    access_token: ghp_SECRETVALUE\nstorage:\n  default:\n    remote: https://github.com/acme/flags.git\n    credentials: gh\n    webhook_secret: ${env:HOOK}\n",
    )
    .unwrap();
    let out = run(flipt_storage()
        .args(["config", "print"])
        .arg(&path)
        .env("HOOK", "hook_SECRETVALUE")
        .env("FLIPT_LOG_LEVEL", "debug"));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        !out.stdout.contains("SECRETVALUE") && !out.stderr.contains("SECRETVALUE"),
        "{out:?}"
    );
    assert!(out.stdout.contains("access_token: <redacted>"), "{out:?}");
    assert!(out.stdout.contains("webhook_secret: <redacted>"), "{out:?}");
    // Defaults and overrides are applied.
    assert!(out.stdout.contains("poll_interval: 30s"), "{out:?}");
    assert!(out.stdout.contains("fetch_policy: strict"), "{out:?}");
    assert!(out.stdout.contains("level: debug"), "{out:?}");
    // What it prints is itself a valid configuration (with the secrets to be filled in).
    let printed = dir.path().join("printed.yml");
    std::fs::write(&printed, &out.stdout).unwrap();
    let again = run(flipt_storage().args(["config", "validate"]).arg(&printed));
    assert_eq!(again.code, Some(0), "{again:?}");
}
