//! One test per rule of BEHAVIOUR.md §1; each would fail if its rule broke.

use std::time::Duration;

use config_model::*;

use crate::harness::*;

// ----------------------------------------------------------------------------- defaults

#[test]
fn no_config_is_one_memory_storage_and_one_default_environment() {
    for text in ["", "   \n", "# only a comment\n"] {
        let c = ok(both(text, &[])).config;
        assert_eq!(c.storages.len(), 1);
        let s = &c.storages["default"];
        assert_eq!(s.backend, Backend::Memory);
        assert_eq!(s.branch, "main");
        assert_eq!(s.poll_interval, Duration::from_secs(30));
        assert_eq!(s.remote, None);
        assert_eq!(s.name, "default");
        assert_eq!(s.signature.name, "flipt");
        assert_eq!(s.signature.email, "flipt[bot]@noreply.flipt.io");
        assert_eq!(c.environments.len(), 1);
        let e = &c.environments[0];
        assert_eq!(
            (
                e.name.as_str(),
                e.storage.as_str(),
                e.directory.as_str(),
                e.default
            ),
            ("default", "default", "", true)
        );
        assert_eq!(c.server.host, "0.0.0.0");
        assert_eq!((c.server.grpc_port, c.server.http_port), (9000, 8080));
        assert_eq!(c.server.tls, None);
        assert_eq!(c.server.max_request_bytes, 4 * 1024 * 1024);
        assert_eq!(c.server.max_concurrent_streams, 4096);
        assert_eq!(c.server.git_timeout, Duration::from_secs(30));
        assert_eq!(
            (c.log.level, c.log.encoding),
            (LogLevel::Info, LogEncoding::Console)
        );
        assert!(!c.authentication.required);
        assert!(!c.authentication.token.enabled);
    }
}

#[test]
fn load_file_without_path_is_the_default() {
    let l = load_file(None, &env(&[])).unwrap();
    assert_eq!(
        l.config.to_redacted_yaml(),
        ok(file("")).config.to_redacted_yaml()
    );
    assert!(l.warnings.is_empty());
}

#[test]
fn an_unreadable_file_is_an_error_naming_it() {
    let err = load_file(
        Some(std::path::Path::new("/nonexistent/flipt.yml")),
        &env(&[]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/flipt.yml"), "{err}");
}

#[test]
fn empty_storage_section_is_the_default_storage() {
    let c = ok(file("storage: {}\n")).config;
    assert_eq!(c.storages.keys().collect::<Vec<_>>(), ["default"]);
    let c = ok(file("storage:\n")).config;
    assert_eq!(c.storages.keys().collect::<Vec<_>>(), ["default"]);
}

#[test]
fn a_remote_alone_keeps_every_other_default() {
    let c = ok(both(
        "storage:\n  default:\n    remote: https://github.com/acme/flags.git\n",
        &[],
    ))
    .config;
    let s = &c.storages["default"];
    assert_eq!(s.backend, Backend::Memory);
    assert_eq!(s.fetch_policy, FetchPolicy::Strict);
    assert_eq!(s.branch, "main");
    assert_eq!(s.poll_interval, Duration::from_secs(30));
    assert_eq!(s.remote.as_ref().unwrap().transport(), Transport::Https);
}

#[test]
fn storages_without_default_and_without_environments_is_an_error_naming_both() {
    let errs = errors(both("storage:\n  prod:\n    branch: main\n", &[]));
    assert_error(
        &errs,
        "storage",
        &["`default` storage", "`environments`", "prod"],
    );
}

// ----------------------------------------------------------------------------- storage

#[test]
fn storage_name_defaults_to_the_id_and_is_display_only() {
    let c = ok(both("storage:\n  default:\n    name: Main flags\n", &[])).config;
    assert_eq!(c.storages["default"].name, "Main flags");
    assert_eq!(c.storages["default"].id, "default");
}

#[test]
fn local_backend_needs_a_path() {
    let c = ok(both(
        "storage:\n  default:\n    backend:\n      type: local\n      path: /var/lib/flipt\n",
        &[],
    ))
    .config;
    assert_eq!(
        c.storages["default"].backend,
        Backend::Local {
            path: "/var/lib/flipt".into()
        }
    );
    let errs = errors(both(
        "storage:\n  default:\n    backend:\n      type: local\n",
        &[],
    ));
    assert_error(
        &errs,
        "storage.default.backend.path",
        &["required", "local"],
    );
}

#[test]
fn unknown_backend_type_is_an_error_naming_the_allowed_ones() {
    let errs = errors(both(
        "storage:\n  default:\n    backend:\n      type: s3\n",
        &[],
    ));
    assert_error(
        &errs,
        "storage.default.backend.type",
        &["s3", "memory", "local"],
    );
}

#[test]
fn memory_backend_with_a_path_warns() {
    let l = ok(file(
        "storage:\n  default:\n    backend:\n      type: memory\n      path: /x\n",
    ));
    assert_warning(&l, "storage.default.backend.path", &["ignored"]);
}

#[test]
fn every_remote_form_is_accepted() {
    for url in [
        "https://github.com/acme/flags.git",
        "http://127.0.0.1:8080/git/flags.git",
        "ssh://git@github.com:2222/acme/flags.git",
        "git@github.com:acme/flags.git",
        "file:///srv/git/flags.git",
    ] {
        let yaml = format!("storage:\n  default:\n    remote: \"{url}\"\n");
        let c = ok(both(&yaml, &[])).config;
        assert!(c.storages["default"].remote.is_some(), "{url}");
    }
}

#[test]
fn a_password_in_the_remote_url_is_an_error_that_does_not_repeat_it() {
    let r = both(
        "storage:\n  default:\n    remote: https://alice:hunter2@github.com/acme/flags.git\n",
        &[],
    );
    let err = r.unwrap_err();
    assert_error(
        &err.errors().cloned().collect::<Vec<_>>(),
        "storage.default.remote",
        &["password", "credentials"],
    );
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn bad_remote_urls_are_errors() {
    for url in ["ftp://host/repo", "/srv/repo.git", "https://", "not a url"] {
        let yaml = format!("storage:\n  default:\n    remote: \"{url}\"\n");
        let errs = errors(both(&yaml, &[]));
        assert_error(&errs, "storage.default.remote", &[]);
    }
}

#[test]
fn branch_must_be_a_valid_git_branch_name() {
    let c = ok(both("storage:\n  default:\n    branch: flipt/prod\n", &[])).config;
    assert_eq!(c.storages["default"].branch, "flipt/prod");
    for bad in ["a..b", "has space", "x.lock", "-x", "a~b"] {
        let errs = errors(both(
            &format!("storage:\n  default:\n    branch: \"{bad}\"\n"),
            &[],
        ));
        assert_error(
            &errs,
            "storage.default.branch",
            &["not a valid branch name"],
        );
    }
}

#[test]
fn poll_interval_is_a_duration_of_at_least_one_second() {
    let remote = "    remote: https://h/r.git\n";
    let c = ok(both(
        &format!("storage:\n  default:\n{remote}    poll_interval: 1m30s\n"),
        &[],
    ))
    .config;
    assert_eq!(c.storages["default"].poll_interval, Duration::from_secs(90));
    let errs = errors(both(
        &format!("storage:\n  default:\n{remote}    poll_interval: 500ms\n"),
        &[],
    ));
    assert_error(
        &errs,
        "storage.default.poll_interval",
        &["at least 1s", "500ms"],
    );
    let errs = errors(both(
        &format!("storage:\n  default:\n{remote}    poll_interval: soon\n"),
        &[],
    ));
    assert_error(&errs, "storage.default.poll_interval", &["soon"]);
    let errs = errors(both(
        &format!("storage:\n  default:\n{remote}    poll_interval: 30\n"),
        &[],
    ));
    assert_error(&errs, "storage.default.poll_interval", &["unit"]);
}

#[test]
fn fetch_policy_is_strict_or_lenient() {
    let remote = "    remote: https://h/r.git\n";
    let c = ok(both(
        &format!("storage:\n  default:\n{remote}    fetch_policy: lenient\n"),
        &[],
    ))
    .config;
    assert_eq!(c.storages["default"].fetch_policy, FetchPolicy::Lenient);
    let c = ok(both(
        &format!("storage:\n  default:\n{remote}    fetch_policy: strict\n"),
        &[],
    ))
    .config;
    assert_eq!(c.storages["default"].fetch_policy, FetchPolicy::Strict);
    let errs = errors(both(
        &format!("storage:\n  default:\n{remote}    fetch_policy: relaxed\n"),
        &[],
    ));
    assert_error(
        &errs,
        "storage.default.fetch_policy",
        &["relaxed", "strict", "lenient"],
    );
}

#[test]
fn fetch_policy_or_poll_interval_without_remote_warns() {
    let l = ok(both(
        "storage:\n  default:\n    fetch_policy: lenient\n    poll_interval: 10s\n",
        &[],
    ));
    assert_warning(&l, "storage.default.fetch_policy", &["without `remote`"]);
    assert_warning(&l, "storage.default.poll_interval", &["without `remote`"]);
}

#[test]
fn credentials_must_name_a_defined_entry() {
    let yaml = "credentials:\n  github:\n    type: access_token\n    access_token: t0k\nstorage:\n  default:\n    remote: https://h/r.git\n    credentials: gitlab\n";
    let errs = errors(both(yaml, &[]));
    assert_error(&errs, "storage.default.credentials", &["gitlab", "github"]);
    let errs = errors(both(
        "storage:\n  default:\n    remote: https://h/r.git\n    credentials: gitlab\n",
        &[],
    ));
    assert_error(
        &errs,
        "storage.default.credentials",
        &["gitlab", "no `credentials` section"],
    );
    let yaml = "credentials:\n  GitHub:\n    type: access_token\n    access_token: t0k\nstorage:\n  default:\n    remote: https://h/r.git\n    credentials: GITHUB\n";
    let c = ok(file(yaml)).config;
    assert_eq!(c.storages["default"].credentials.as_deref(), Some("github"));
}

#[test]
fn ca_cert_path_and_bytes_are_exclusive() {
    let yaml = "storage:\n  default:\n    remote: https://h/r.git\n    ca_cert_path: /etc/ca.pem\n    ca_cert_bytes: \"-----BEGIN CERTIFICATE-----\\nx\\n-----END CERTIFICATE-----\"\n";
    let errs = errors(both(yaml, &[]));
    assert_error(&errs, "storage.default.ca_cert_bytes", &["only one"]);
    let yaml = "storage:\n  default:\n    remote: https://h/r.git\n    ca_cert_bytes: \"-----BEGIN CERTIFICATE-----\\nx\\n-----END CERTIFICATE-----\"\n";
    let c = ok(both(yaml, &[])).config;
    assert!(matches!(
        c.storages["default"].ca_cert,
        Some(CaCert::Pem(_))
    ));
    let errs = errors(both(
        "storage:\n  default:\n    remote: https://h/r.git\n    ca_cert_bytes: garbage\n",
        &[],
    ));
    assert_error(&errs, "storage.default.ca_cert_bytes", &["PEM"]);
}

#[test]
fn tls_settings_apply_to_https_remotes_only() {
    let c = ok(both(
        "storage:\n  default:\n    remote: https://h/r.git\n    insecure_skip_tls: true\n",
        &[],
    ))
    .config;
    assert!(c.storages["default"].insecure_skip_tls);
    let errs = errors(both(
        "storage:\n  default:\n    remote: http://h/r.git\n    insecure_skip_tls: true\n",
        &[],
    ));
    assert_error(
        &errs,
        "storage.default.insecure_skip_tls",
        &["https", "http"],
    );
    let errs = errors(both(
        "storage:\n  default:\n    remote: git@h:r.git\n    ca_cert_path: /ca.pem\n",
        &[],
    ));
    assert_error(&errs, "storage.default.ca_cert_path", &["https", "ssh"]);
    let errs = errors(both(
        "storage:\n  default:\n    remote: https://h/r.git\n    insecure_skip_tls: maybe\n",
        &[],
    ));
    assert_error(
        &errs,
        "storage.default.insecure_skip_tls",
        &["true or false"],
    );
}

#[test]
fn signature_sets_the_committer_and_signing_is_not_supported() {
    let c = ok(both(
        "storage:\n  default:\n    signature:\n      name: Bot\n      email: bot@acme.example\n",
        &[],
    ))
    .config;
    assert_eq!(
        c.storages["default"].signature,
        Signature {
            name: "Bot".into(),
            email: "bot@acme.example".into()
        }
    );
    let errs = errors(both(
        "storage:\n  default:\n    signature:\n      enabled: true\n",
        &[],
    ));
    assert_error(
        &errs,
        "storage.default.signature.enabled",
        &["not supported"],
    );
    ok(both(
        "storage:\n  default:\n    signature:\n      enabled: false\n",
        &[],
    ));
}

#[test]
fn ids_are_case_insensitive_and_stored_lower_case() {
    let c = ok(file(
        "storage:\n  Prod:\n    branch: main\nenvironments:\n  Production:\n    storage: PROD\n",
    ))
    .config;
    assert!(c.storages.contains_key("prod"));
    assert_eq!(c.environments[0].id, "production");
    assert_eq!(c.environments[0].name, "production");
    assert_eq!(c.environments[0].storage, "prod");
    let errs = errors(file(
        "storage:\n  Prod: {}\n  prod: {}\nenvironments:\n  x:\n    storage: prod\n",
    ));
    assert_error(&errs, "storage.prod", &["duplicate id"]);
}

// ----------------------------------------------------------------------------- credentials

#[test]
fn basic_credentials_need_both_or_neither() {
    let c = ok(both("credentials:\n  git:\n    type: basic\n    basic:\n      username: alice\n      password: s3cret\n", &[])).config;
    assert!(
        matches!(&c.credentials["git"].kind, CredentialKind::Basic(Some(b)) if b.username == "alice")
    );
    let c = ok(file(
        "credentials:\n  git:\n    type: basic\n    basic: {}\n",
    ))
    .config;
    assert!(matches!(
        &c.credentials["git"].kind,
        CredentialKind::Basic(None)
    ));
    let errs = errors(both(
        "credentials:\n  git:\n    type: basic\n    basic:\n      username: alice\n",
        &[],
    ));
    assert_error(
        &errs,
        "credentials.git.basic.password",
        &["both or neither"],
    );
    let errs = errors(both(
        "credentials:\n  git:\n    type: basic\n    basic:\n      password: s3cret\n",
        &[],
    ));
    assert_error(
        &errs,
        "credentials.git.basic.username",
        &["both or neither"],
    );
}

#[test]
fn access_tokens_are_required_and_username_is_optional() {
    let c = ok(both(
        "credentials:\n  gh:\n    type: access_token\n    access_token: t0k\n",
        &[],
    ))
    .config;
    assert!(matches!(
        &c.credentials["gh"].kind,
        CredentialKind::AccessToken { username: None, .. }
    ));
    assert_eq!(DEFAULT_TOKEN_USERNAME, "x-token-auth");
    let c = ok(both("credentials:\n  gl:\n    type: access_token\n    access_token: t0k\n    username: oauth2\n", &[])).config;
    assert!(
        matches!(&c.credentials["gl"].kind, CredentialKind::AccessToken { username: Some(u), .. } if u == "oauth2")
    );
    let errs = errors(both("credentials:\n  gh:\n    type: access_token\n", &[]));
    assert_error(&errs, "credentials.gh.access_token", &["required"]);
    let errs = errors(file(
        "credentials:\n  gh:\n    type: access_token\n    access_token: ''\n",
    ));
    assert_error(&errs, "credentials.gh.access_token", &["empty"]);
    let c = ok(both(
        "credentials:\n  gh:\n    type: access_token\n    access_token_path: /run/secrets/token\n",
        &[],
    ))
    .config;
    assert!(matches!(
        &c.credentials["gh"].kind,
        CredentialKind::AccessToken {
            token: SecretSource::File(_),
            ..
        }
    ));
}

#[test]
fn username_is_valid_only_with_access_tokens() {
    let errs = errors(both(
        "credentials:\n  k:\n    type: ssh\n    username: x\n    ssh:\n      private_key_path: /k\n",
        &[],
    ));
    assert_error(
        &errs,
        "credentials.k.username",
        &["only valid with `type: access_token`"],
    );
    let errs = errors(both(
        "credentials:\n  k:\n    type: basic\n    ssh:\n      private_key_path: /k\n",
        &[],
    ));
    assert_error(&errs, "credentials.k.ssh", &["only valid with `type: ssh`"]);
}

#[test]
fn ssh_credentials() {
    let c = ok(both(
        "credentials:\n  k:\n    type: ssh\n    ssh:\n      private_key_path: /keys/id\n",
        &[],
    ))
    .config;
    let CredentialKind::Ssh(s) = &c.credentials["k"].kind else {
        panic!()
    };
    assert_eq!(s.user, "git");
    assert!(!s.user_explicit);
    assert!(s.passphrase.is_none(), "the passphrase is optional");
    assert!(!s.insecure_ignore_host_key);
    let yaml = "credentials:\n  k:\n    type: ssh\n    ssh:\n      user: deploy\n      private_key_bytes: KEY\n      password: pass\n      insecure_ignore_host_key: true\n";
    let c = ok(both(yaml, &[])).config;
    let CredentialKind::Ssh(s) = &c.credentials["k"].kind else {
        panic!()
    };
    assert_eq!(
        (s.user.as_str(), s.user_explicit, s.insecure_ignore_host_key),
        ("deploy", true, true)
    );
    assert!(matches!(s.private_key, SecretSource::Inline(_)));
    let yaml = "credentials:\n  k:\n    type: ssh\n    ssh:\n      private_key_path: /k\n      known_hosts: \"h ssh-ed25519 AAAA\"\n";
    let c = ok(both(yaml, &[])).config;
    let CredentialKind::Ssh(s) = &c.credentials["k"].kind else {
        panic!()
    };
    assert_eq!(s.known_hosts.as_deref(), Some("h ssh-ed25519 AAAA"));
}

#[test]
fn ssh_needs_exactly_one_private_key() {
    let errs = errors(both(
        "credentials:\n  k:\n    type: ssh\n    ssh:\n      user: git\n",
        &[],
    ));
    assert_error(
        &errs,
        "credentials.k.ssh",
        &["exactly one of `private_key_path` and `private_key_bytes`"],
    );
    let errs = errors(both(
        "credentials:\n  k:\n    type: ssh\n    ssh:\n      private_key_path: /k\n      private_key_bytes: K\n",
        &[],
    ));
    assert_error(&errs, "credentials.k.ssh.private_key_bytes", &["only one"]);
}

#[test]
fn unknown_credential_types_name_the_allowed_ones() {
    let errs = errors(both("credentials:\n  x:\n    type: access-token\n", &[]));
    assert_error(
        &errs,
        "credentials.x.type",
        &["access-token", "basic", "access_token", "ssh"],
    );
    let errs = errors(both("credentials:\n  x:\n    type: github_app\n", &[]));
    assert_error(&errs, "credentials.x.type", &["not supported"]);
    let errs = errors(file("credentials:\n  x:\n    basic: {}\n"));
    assert_error(&errs, "credentials.x.type", &["required"]);
}

#[test]
fn env_references_are_resolved_and_an_unset_one_names_key_and_variable() {
    let yaml = "credentials:\n  gh:\n    type: access_token\n    access_token: ${env:GH_TOKEN}\n";
    let c = ok(both(yaml, &[("GH_TOKEN", "from-env")])).config;
    let CredentialKind::AccessToken {
        token: SecretSource::Inline(t),
        ..
    } = &c.credentials["gh"].kind
    else {
        panic!()
    };
    use secrecy::ExposeSecret;
    assert_eq!(t.expose_secret(), "from-env");
    let errs = errors(both(yaml, &[]));
    assert_error(
        &errs,
        "credentials.gh.access_token",
        &["GH_TOKEN", "not set"],
    );
    // References work in any string, not only secrets.
    let c = ok(both(
        "storage:\n  default:\n    branch: ${env:BRANCH}\n",
        &[("BRANCH", "develop")],
    ))
    .config;
    assert_eq!(c.storages["default"].branch, "develop");
}

#[test]
fn ssh_url_user_conflicting_with_explicit_ssh_user_is_an_error() {
    let creds = |user: &str| {
        format!("credentials:\n  k:\n    type: ssh\n    ssh:\n{user}      private_key_path: /k\n")
    };
    let yaml = format!(
        "{}storage:\n  default:\n    remote: git@github.com:acme/f.git\n    credentials: k\n",
        creds("      user: deploy\n")
    );
    let errs = errors(both(&yaml, &[]));
    assert_error(
        &errs,
        "storage.default.credentials",
        &["conflicting SSH users", "git", "deploy"],
    );
    let yaml = format!(
        "{}storage:\n  default:\n    remote: ssh://deploy@github.com/acme/f.git\n    credentials: k\n",
        creds("")
    );
    ok(both(&yaml, &[]));
    let yaml = format!(
        "{}storage:\n  default:\n    remote: ssh://deploy@github.com/acme/f.git\n    credentials: k\n",
        creds("      user: deploy\n")
    );
    ok(both(&yaml, &[]));
}

#[test]
fn credential_kind_must_fit_the_transport() {
    let ssh = "credentials:\n  k:\n    type: ssh\n    ssh:\n      private_key_path: /k\n";
    let errs = errors(both(
        &format!("{ssh}storage:\n  default:\n    remote: https://h/r.git\n    credentials: k\n"),
        &[],
    ));
    assert_error(&errs, "storage.default.credentials", &["ssh key", "https"]);
    let token = "credentials:\n  t:\n    type: access_token\n    access_token: x\n";
    let errs = errors(both(
        &format!("{token}storage:\n  default:\n    remote: git@h:r.git\n    credentials: t\n"),
        &[],
    ));
    assert_error(
        &errs,
        "storage.default.credentials",
        &["ssh remote needs `type: ssh`"],
    );
    let l = ok(both(
        &format!(
            "{token}storage:\n  default:\n    remote: file:///srv/r.git\n    credentials: t\n"
        ),
        &[],
    ));
    assert_warning(&l, "storage.default.credentials", &["file://"]);
}

// ----------------------------------------------------------------------------- environments

#[test]
fn a_single_environment_is_the_default() {
    let c = ok(both(
        "environments:\n  production:\n    storage: default\n",
        &[],
    ))
    .config;
    assert!(c.environments[0].default);
    assert_eq!(c.default_environment().name, "production");
}

#[test]
fn several_environments_need_exactly_one_default() {
    let two =
        "storage:\n  default: {}\nenvironments:\n  a:\n    directory: a\n  b:\n    directory: b\n";
    let errs = errors(file(two));
    assert_error(&errs, "environments", &["exactly one"]);
    let yaml = "environments:\n  a:\n    directory: a\n    default: true\n  b:\n    directory: b\n    default: true\n";
    let errs = errors(both(yaml, &[]));
    assert_error(&errs, "environments.b.default", &["only one"]);
    let yaml = "environments:\n  a:\n    directory: a\n    default: true\n  b:\n    directory: b\n";
    let c = ok(both(yaml, &[])).config;
    assert_eq!(c.default_environment().name, "a");
    assert!(!c.environments[1].default);
}

#[test]
fn environment_storage_must_exist() {
    let errs = errors(both("environments:\n  prod:\n    storage: nope\n", &[]));
    assert_error(
        &errs,
        "environments.prod.storage",
        &["unknown storage `nope`", "default"],
    );
    let errs = errors(both(
        "storage:\n  git:\n    branch: main\nenvironments:\n  prod:\n    directory: x\n",
        &[],
    ));
    assert_error(&errs, "environments.prod.storage", &["required", "git"]);
}

#[test]
fn directories_are_normalised() {
    for (dir, want) in [
        ("", ""),
        (".", ""),
        ("/", ""),
        ("prod/", "prod"),
        ("/a/b/", "a/b"),
        ("./a//b", "a/b"),
    ] {
        let yaml = format!("environments:\n  e:\n    directory: \"{dir}\"\n");
        let c = ok(file(&yaml)).config;
        assert_eq!(c.environments[0].directory, want, "{dir:?}");
    }
    let errs = errors(both("environments:\n  e:\n    directory: a/../b\n", &[]));
    assert_error(&errs, "environments.e.directory", &[".."]);
}

#[test]
fn environments_sharing_a_storage_need_distinct_directories() {
    let yaml =
        "environments:\n  a:\n    directory: /\n    default: true\n  b:\n    directory: \".\"\n";
    let errs = errors(both(yaml, &[]));
    assert_error(
        &errs,
        "environments.b.directory",
        &["share storage", "distinct"],
    );
    let yaml =
        "environments:\n  a:\n    directory: prod/\n    default: true\n  b:\n    directory: prod\n";
    errors(both(yaml, &[]));
    let yaml = "environments:\n  a:\n    directory: prod\n    default: true\n  b:\n    directory: staging\n";
    ok(both(yaml, &[]));
    // On different storages the same directory is fine.
    let yaml = "storage:\n  default: {}\n  other: {}\nenvironments:\n  a:\n    default: true\n  b:\n    storage: other\n";
    ok(file(yaml));
}

#[test]
fn environment_names_default_to_the_id_and_must_be_unique() {
    let yaml = "environments:\n  a:\n    name: prod\n    directory: a\n    default: true\n  b:\n    name: prod\n    directory: b\n";
    let errs = errors(both(yaml, &[]));
    assert_error(&errs, "environments.b.name", &["prod", "also used"]);
    let errs = errors(both("environments:\n  a:\n    name: \"has space\"\n", &[]));
    assert_error(
        &errs,
        "environments.a.name",
        &["not a valid environment name"],
    );
}

#[test]
fn scm_is_not_supported() {
    let errs = errors(both(
        "environments:\n  a:\n    scm:\n      type: github\n",
        &[],
    ));
    assert_error(&errs, "environments.a.scm", &["not supported"]);
}

#[test]
fn an_empty_environments_section_is_an_error() {
    let errs = errors(file("environments: {}\n"));
    assert_error(&errs, "environments", &["at least one"]);
}

// ----------------------------------------------------------------------------- top level

#[test]
fn version_must_be_2_0() {
    ok(both("version: \"2.0\"\n", &[]));
    ok(file("version: 2.0\n"));
    let errs = errors(both("version: \"1.0\"\n", &[]));
    assert_error(&errs, "version", &["1.0", "\"2.0\""]);
}

#[test]
fn other_flipt_sections_warn_once_each_and_are_ignored() {
    let yaml = "ui:\n  enabled: true\ncors:\n  enabled: true\ntracing:\n  enabled: false\nauthorization:\n  required: false\n";
    let l = ok(file(yaml));
    for section in ["ui", "cors", "tracing", "authorization"] {
        assert_eq!(
            l.warnings.iter().filter(|w| w.path == section).count(),
            1,
            "{section}"
        );
    }
    // Their environment variables are ignored too.
    ok(load_str(
        "",
        None,
        &env(&[
            ("FLIPT_UI_ENABLED", "true"),
            ("FLIPT_TRACING_OTLP_ENDPOINT", "x"),
        ]),
    ));
}

#[test]
fn unknown_keys_are_errors_with_their_line_and_a_suggestion() {
    let errs = errors(file("storgae:\n  default: {}\n"));
    assert_error(&errs, "storgae", &["unknown key", "did you mean `storage`"]);
    let yaml = "storage:\n  default:\n    branch: main\n    polll_interval: 10s\n";
    let errs = errors(file(yaml));
    assert_error(
        &errs,
        "storage.default.polll_interval",
        &["did you mean `poll_interval`"],
    );
    let d = errs
        .iter()
        .find(|d| d.path == "storage.default.polll_interval")
        .unwrap();
    assert_eq!(d.origin, Origin::Line(4));
    let errs = errors(file("log:\n  zzz: 1\n"));
    assert_error(&errs, "log.zzz", &["allowed: level, encoding"]);
}

#[test]
fn every_problem_is_reported_at_once_in_a_stable_order() {
    let yaml = "storage:\n  default:\n    branch: 'a b'\n    poll_interval: 1ms\n    fetch_policy: x\n    remote: https://h/r.git\nlog:\n  level: loud\nserver:\n  grpc_port: 70000\n";
    let first = file(yaml).unwrap_err();
    let paths: Vec<&str> = first.errors().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "log.level",
            "server.grpc_port",
            "storage.default.branch",
            "storage.default.fetch_policy",
            "storage.default.poll_interval"
        ]
    );
    assert_eq!(first.to_string(), file(yaml).unwrap_err().to_string());
    assert!(first.to_string().contains("(line 3)"));
    let d = first
        .errors()
        .find(|d| d.path == "server.grpc_port")
        .unwrap();
    assert_eq!(d.origin, Origin::Line(10));
}

#[test]
fn malformed_yaml_and_non_mapping_documents_are_errors() {
    let errs = errors(file("storage: [\n"));
    assert!(errs[0].message.contains("malformed YAML"), "{errs:?}");
    let errs = errors(file("- a\n- b\n"));
    assert!(errs[0].message.contains("mapping"), "{errs:?}");
    let errs = errors(file("storage: 5\n"));
    assert_error(&errs, "storage", &["mapping"]);
    let errs = errors(file("storage:\n  default:\n    backend: local\n"));
    assert_error(&errs, "storage.default.backend", &["expected a mapping"]);
}

// ----------------------------------------------------------------------------- environment variables

#[test]
fn environment_variables_override_the_file() {
    let yaml = "storage:\n  default:\n    branch: main\nlog:\n  level: info\n";
    let l = ok(load_str(
        yaml,
        None,
        &env(&[
            ("FLIPT_STORAGE_DEFAULT_BRANCH", "develop"),
            ("FLIPT_LOG_LEVEL", "DEBUG"),
        ]),
    ));
    assert_eq!(l.config.storages["default"].branch, "develop");
    assert_eq!(l.config.log.level, LogLevel::Debug);
    let l = ok(load_str(
        "",
        None,
        &env(&[("FLIPT_SERVER_HTTP_PORT", "9090")]),
    ));
    assert_eq!(l.config.server.http_port, 9090);
}

#[test]
fn ids_in_variables_may_contain_underscores() {
    let l = ok(load_str(
        "",
        None,
        &env(&[
            ("FLIPT_STORAGE_PROD_EU_REMOTE", "https://h/r.git"),
            ("FLIPT_STORAGE_PROD_EU_POLL_INTERVAL", "1m"),
            ("FLIPT_ENVIRONMENTS_PROD_EU_STORAGE", "prod_eu"),
        ]),
    ));
    assert_eq!(
        l.config.storages["prod_eu"].poll_interval,
        Duration::from_secs(60)
    );
    assert_eq!(l.config.environments[0].name, "prod_eu");
}

#[test]
fn a_variable_matching_no_key_is_an_error() {
    let err = load_str("", None, &env(&[("FLIPT_STORAGE_DEFAULT_COLOUR", "red")])).unwrap_err();
    let d = err.errors().next().unwrap();
    assert!(d.message.contains("FLIPT_STORAGE_DEFAULT_COLOUR"), "{d}");
    assert_eq!(
        d.origin,
        Origin::EnvVar("FLIPT_STORAGE_DEFAULT_COLOUR".into())
    );
    assert!(load_str("", None, &env(&[("FLIPT_NOPE", "1")])).is_err());
}

#[test]
fn errors_from_variables_name_the_variable() {
    let err = load_str(
        "",
        None,
        &env(&[
            ("FLIPT_STORAGE_DEFAULT_POLL_INTERVAL", "1ms"),
            ("FLIPT_STORAGE_DEFAULT_REMOTE", "https://h/r.git"),
        ]),
    )
    .unwrap_err();
    let d = err
        .errors()
        .find(|d| d.path == "storage.default.poll_interval")
        .unwrap();
    assert_eq!(
        d.origin,
        Origin::EnvVar("FLIPT_STORAGE_DEFAULT_POLL_INTERVAL".into())
    );
    assert!(
        err.to_string()
            .contains("from environment variable FLIPT_STORAGE_DEFAULT_POLL_INTERVAL")
    );
}

// ----------------------------------------------------------------------------- server, log, authentication

#[test]
fn server_settings() {
    let yaml = "server:\n  host: 127.0.0.1\n  grpc_port: 0\n  http_port: 0\n  max_request_bytes: 1048576\n  max_concurrent_streams: 10\n  git_timeout: 5s\n";
    let c = ok(both(yaml, &[])).config;
    assert_eq!(c.server.host, "127.0.0.1");
    assert_eq!((c.server.grpc_port, c.server.http_port), (0, 0));
    assert_eq!(c.server.max_request_bytes, 1 << 20);
    assert_eq!(c.server.max_concurrent_streams, 10);
    assert_eq!(c.server.git_timeout, Duration::from_secs(5));
    let errs = errors(both("server:\n  grpc_port: 65536\n", &[]));
    assert_error(&errs, "server.grpc_port", &["65535"]);
    let errs = errors(both("server:\n  grpc_port: 9000\n  http_port: 9000\n", &[]));
    assert_error(&errs, "server.http_port", &["differ"]);
    let errs = errors(both("server:\n  git_timeout: 1ms\n", &[]));
    assert_error(&errs, "server.git_timeout", &["100ms"]);
    let errs = errors(both("server:\n  max_concurrent_streams: 0\n", &[]));
    assert_error(&errs, "server.max_concurrent_streams", &[]);
}

#[test]
fn https_needs_a_certificate_and_key() {
    let errs = errors(both("server:\n  protocol: https\n", &[]));
    assert_error(&errs, "server.cert_file", &["required"]);
    assert_error(&errs, "server.cert_key", &["required"]);
    let l = ok(both(
        "server:\n  protocol: HTTPS\n  cert_file: /tls/cert.pem\n  cert_key: /tls/key.pem\n",
        &[],
    ));
    assert_eq!(
        l.config.server.tls.as_ref().unwrap().cert_file,
        std::path::PathBuf::from("/tls/cert.pem")
    );
    // Files are read when used: missing ones are warnings here.
    assert_warning(&l, "server.cert_file", &["does not exist"]);
    let errs = errors(both("server:\n  protocol: gopher\n", &[]));
    assert_error(&errs, "server.protocol", &["http", "https"]);
}

#[test]
fn log_settings() {
    for (level, want) in [
        ("debug", LogLevel::Debug),
        ("INFO", LogLevel::Info),
        ("Warn", LogLevel::Warn),
        ("error", LogLevel::Error),
    ] {
        let c = ok(both(&format!("log:\n  level: {level}\n"), &[])).config;
        assert_eq!(c.log.level, want);
    }
    let c = ok(both("log:\n  encoding: json\n", &[])).config;
    assert_eq!(c.log.encoding, LogEncoding::Json);
    let errs = errors(both("log:\n  level: trace\n", &[]));
    assert_error(&errs, "log.level", &["debug, info, warn, error"]);
    let errs = errors(both("log:\n  encoding: xml\n", &[]));
    assert_error(&errs, "log.encoding", &["console, json"]);
}

#[test]
fn token_authentication() {
    let yaml = "authentication:\n  required: true\n  methods:\n    token:\n      enabled: true\n      storage:\n        tokens:\n          ci:\n            credential: abc123\n";
    let c = ok(both(yaml, &[])).config;
    assert!(c.authentication.required && c.authentication.token.enabled);
    assert!(c.authentication.token.tokens.contains_key("ci"));
    let errs = errors(both("authentication:\n  required: true\n", &[]));
    assert_error(
        &errs,
        "authentication.required",
        &["no way to authenticate"],
    );
    let errs = errors(file(
        "authentication:\n  methods:\n    oidc:\n      enabled: true\n",
    ));
    assert_error(&errs, "authentication.methods.oidc", &["not supported"]);
    let l = ok(both(
        "authentication:\n  methods:\n    token:\n      storage:\n        tokens:\n          ci:\n            credential: abc\n",
        &[],
    ));
    assert_warning(&l, "authentication.methods.token", &["not accepted"]);
}

#[test]
fn missing_files_are_warnings_not_errors() {
    let yaml = "credentials:\n  k:\n    type: ssh\n    ssh:\n      private_key_path: /nonexistent/id\n      known_hosts_path: /nonexistent/kh\n";
    let l = ok(both(yaml, &[]));
    assert_warning(
        &l,
        "credentials.k.ssh.private_key_path",
        &["does not exist"],
    );
    assert_warning(
        &l,
        "credentials.k.ssh.known_hosts_path",
        &["does not exist"],
    );
}

#[test]
fn the_example_configurations_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut count = 0;
    let vars = env(&[
        ("GITHUB_TOKEN", "t"),
        ("GITEA_PASSWORD", "p"),
        ("FLAGS_WEBHOOK_SECRET", "w"),
    ]);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            if let Err(e) = load_file(Some(&path), &vars) {
                panic!("{} is invalid:\n{e}", path.display());
            }
            count += 1;
        }
    }
    assert!(
        count >= 4,
        "expected the example configurations in {}",
        dir.display()
    );
}
