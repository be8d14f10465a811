//! No secret reaches `Debug` output, an error message or `config print`.

use config_model::*;

use crate::harness::*;

const SECRETS: &[&str] = &[
    "pw-SECRET-basic",
    "tok-SECRET-access",
    "key-SECRET-bytes",
    "pass-SECRET-phrase",
    "hook-SECRET-webhook",
    "auth-SECRET-token",
    "env-SECRET-resolved",
];

pub(crate) fn every_secret() -> String {
    r#"
credentials:
  basic:
    type: basic
    basic: { username: alice, password: pw-SECRET-basic }
  token:
    type: access_token
    access_token: tok-SECRET-access
  key:
    type: ssh
    ssh: { private_key_bytes: key-SECRET-bytes, password: pass-SECRET-phrase }
  fromenv:
    type: access_token
    access_token: ${env:TOKEN}
storage:
  default:
    remote: https://example.com/r.git
    credentials: token
    webhook_secret: hook-SECRET-webhook
authentication:
  required: true
  methods:
    token:
      enabled: true
      storage:
        tokens:
          ci: { credential: auth-SECRET-token }
"#
    .to_owned()
}

pub(crate) fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} leaks `{s}`:\n{text}");
    }
}

#[test]
fn debug_and_print_never_show_secrets() {
    let l = ok(load_str(
        &every_secret(),
        None,
        &env(&[("TOKEN", "env-SECRET-resolved")]),
    ));
    assert_clean("Debug", &format!("{:?}", l));
    assert_clean("Debug (pretty)", &format!("{:#?}", l.config));
    let printed = l.config.to_redacted_yaml();
    assert_clean("config print", &printed);
    assert!(printed.contains(REDACTED));
    // The redacted view still shows everything that is not secret.
    assert!(printed.contains("alice"));
    assert!(printed.contains("https://example.com/r.git"));
}

#[test]
fn errors_never_show_secrets() {
    // The same secrets, in a configuration full of mistakes around them.
    let bad = every_secret()
        .replace("type: basic", "type: basik")
        .replace(
            "remote: https://example.com/r.git",
            "remote: https://u:pw-SECRET-basic@example.com/r.git",
        )
        .replace("enabled: true", "enabled: maybe")
        + "  other:\n    webhook_secret: [hook-SECRET-webhook]\n    credentials: key\n";
    let err = load_str(
        &bad,
        Some("c.yml"),
        &env(&[("TOKEN", "env-SECRET-resolved")]),
    )
    .unwrap_err();
    assert!(err.errors().count() >= 4, "{err}");
    assert_clean("error Display", &err.to_string());
    assert_clean("error Debug", &format!("{err:?}"));
    // Secrets that fail validation are described, not repeated.
    let err = load_str(
        "credentials:\n  t:\n    type: access_token\n    access_token: {x: tok-SECRET-access}\n",
        None,
        &env(&[]),
    )
    .unwrap_err();
    assert_clean("type error", &err.to_string());
}

#[test]
fn secrets_from_variables_stay_out_of_messages() {
    let err = load_str(
        "",
        None,
        &env(&[
            ("FLIPT_CREDENTIALS_GH_ACCESS_TOKEN", "tok-SECRET-access"),
            ("FLIPT_CREDENTIALS_GH_TYPE", "bogus"),
            (
                "FLIPT_STORAGE_DEFAULT_WEBHOOK_SECRET",
                "hook-SECRET-webhook",
            ),
        ]),
    )
    .unwrap_err();
    assert_clean("error", &format!("{err} {err:?}"));
}

#[test]
fn a_value_glued_to_its_key_is_not_shown() {
    // `password:value` without the space is one key: the message shows only its first part.
    let err = load_str(
        "credentials:\n  b:\n    type: basic\n    basic: {username: alice, password:pw-SECRET-basic}\n  gh:tok-SECRET-access: x\nauthentication:\n  methods:\n    token:\n      storage:\n        tokens: {ci:auth-SECRET-token}\n",
        Some("c.yml"),
        &env(&[]),
    )
    .unwrap_err();
    let text = err.to_string();
    assert_clean("error", &text);
    assert_clean("error Debug", &format!("{err:?}"));
    assert!(
        text.contains("credentials.b.basic.password:...: `password:...` reads as one key: write a space after the colon (`password: value`)"),
        "{text}"
    );
    assert!(text.contains("credentials.gh:..."), "{text}");
    assert!(text.contains("tokens.ci:..."), "{text}");
}
