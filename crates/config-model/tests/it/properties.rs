//! Bad input never panics: random bytes, and random trees of real configuration keys with
//! random values.

use config_model::load_str;
use proptest::prelude::*;
use serde_yaml::{Mapping, Value};

use crate::harness::env;

const KEYS: &[&str] = &[
    "version",
    "storage",
    "credentials",
    "environments",
    "server",
    "log",
    "authentication",
    "default",
    "prod",
    "backend",
    "type",
    "path",
    "remote",
    "branch",
    "poll_interval",
    "fetch_policy",
    "name",
    "ca_cert_path",
    "ca_cert_bytes",
    "insecure_skip_tls",
    "signature",
    "email",
    "enabled",
    "webhook_secret",
    "basic",
    "username",
    "password",
    "access_token",
    "ssh",
    "user",
    "private_key_path",
    "private_key_bytes",
    "known_hosts",
    "directory",
    "storage",
    "scm",
    "host",
    "grpc_port",
    "http_port",
    "protocol",
    "level",
    "encoding",
    "required",
    "methods",
    "token",
    "tokens",
    "credential",
    "ui",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_map(|n| Value::Number(n.into())),
        "[a-z:/.@${}_ -]{0,24}".prop_map(Value::String),
        prop::sample::select(vec![
            "local",
            "memory",
            "https://h/r.git",
            "git@h:r",
            "30s",
            "0",
            "${env:X}",
            "true",
            "ssh",
            "basic",
            "access_token",
            "/",
            ".."
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|entries| {
                let mut m = Mapping::new();
                for (k, v) in entries {
                    m.insert(Value::String(k.to_owned()), v);
                }
                Value::Mapping(m)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = load_str(&text, None, &env(&[]));
    }

    #[test]
    fn random_configuration_trees_never_panic(value in tree()) {
        let text = serde_yaml::to_string(&value).unwrap();
        let _ = load_str(&text, None, &env(&[("X", "y")]));
    }

    #[test]
    fn random_variables_never_panic(name in "[A-Z_]{1,40}", value in "[ -~]{0,20}") {
        let _ = load_str("", None, &env(&[(&format!("FLIPT_{name}"), &value)]));
    }
}
