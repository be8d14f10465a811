//! `flipt.yaml` / `flipt.yml` in an environment directory, and commit messages.

use std::fmt;

use serde::Deserialize;

use crate::error::{Location, Problem};
use crate::template::{Template, TemplateError, TemplateValue};

/// The names of the configuration file, in lookup order.
pub const CONFIG_FILES: [&str; 2] = ["flipt.yaml", "flipt.yml"];

/// Flipt's built-in commit message template: the change itself for one change, else
/// `updated multiple resources`, a blank line, and one change per line.
pub const DEFAULT_COMMIT_TEMPLATE: &str = "{{- if eq (len .Changes) 1 }}\n{{- (index .Changes 0) }}\n{{- else -}}\nupdated multiple resources\n{{ range $change := .Changes }}\n{{ $change }}\n{{- end }}\n{{- end }}";

/// The repository configuration of an environment directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepositoryConfig {
    /// `version` as written (`"2.0"`, `"2.0.0"`, or absent).
    pub version: Option<String>,
    /// `templates.commit_message`, parsed.
    pub commit_message: Option<Template>,
    /// `templates.proposal_title` (kept, unused: proposals are not supported).
    pub proposal_title: Option<String>,
    /// `templates.proposal_body` (kept, unused).
    pub proposal_body: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    version: Option<serde_yaml::Value>,
    #[serde(default)]
    templates: Option<RawTemplates>,
}

#[derive(Debug, Default, Deserialize)]
struct RawTemplates {
    #[serde(default)]
    commit_message: Option<String>,
    #[serde(default)]
    proposal_title: Option<String>,
    #[serde(default)]
    proposal_body: Option<String>,
}

impl RepositoryConfig {
    /// Parses `flipt.yaml`. `version` may be `"2.0"`, `"2.0.0"` or absent (Flipt itself only
    /// loads `"2.0.0"`); other keys than `version` and `templates` are ignored, as Flipt does.
    /// A commit template that does not parse, or fails on sample changes, is a problem.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<RepositoryConfig, Vec<Problem>> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            vec![Problem::file(
                path,
                format!("the file is not valid UTF-8 ({e})"),
            )]
        })?;
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            yaml_guard::check(text).map_err(|e| vec![Problem::file(path, e)])?;
            serde_yaml::from_str(text).map_err(|e| {
                vec![Problem::at(
                    path,
                    Location {
                        line: e.location().map(|l| l.line()),
                        ..Location::default()
                    },
                    e.to_string(),
                )]
            })?
        };
        let mut problems = Vec::new();
        let version = match raw.version {
            None | Some(serde_yaml::Value::Null) => None,
            Some(serde_yaml::Value::String(v)) => Some(v),
            Some(serde_yaml::Value::Number(n)) => Some(n.to_string()),
            Some(_) => {
                problems.push(Problem::file(
                    path,
                    "version must be a string such as \"2.0\"",
                ));
                None
            }
        };
        if let Some(v) = &version
            && !matches!(v.as_str(), "2" | "2.0" | "2.0.0")
        {
            problems.push(Problem::file(
                path,
                format!(
                    "unsupported flipt config version: \"{}\" (expected \"2.0\")",
                    crate::key::shorten(v)
                ),
            ));
        }
        let templates = raw.templates.unwrap_or_default();
        let commit_message = match templates.commit_message.filter(|t| !t.trim().is_empty()) {
            None => None,
            Some(src) => match Template::parse(&src) {
                Ok(t) => {
                    if let Err(e) = t.render(&sample_data()) {
                        problems.push(Problem::file(
                            path,
                            format!("templates.commit_message: {e}"),
                        ));
                    }
                    Some(t)
                }
                Err(e) => {
                    problems.push(Problem::file(
                        path,
                        format!("templates.commit_message: {e}"),
                    ));
                    None
                }
            },
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(RepositoryConfig {
            version,
            commit_message,
            proposal_title: templates.proposal_title,
            proposal_body: templates.proposal_body,
        })
    }
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// Created.
    Create,
    /// Updated.
    Update,
    /// Deleted.
    Delete,
}

impl Verb {
    /// `create`, `update`, `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Delete => "delete",
        }
    }
}

/// The kind of a changed resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `flipt.config.Namespace`.
    Namespace,
    /// `flipt.core.Flag`.
    Flag,
    /// `flipt.core.Segment`.
    Segment,
}

impl ResourceKind {
    /// The protobuf package (`flipt.core`, or `flipt.config` for namespaces).
    pub fn package(self) -> &'static str {
        match self {
            ResourceKind::Namespace => "flipt.config",
            _ => "flipt.core",
        }
    }

    /// The message name (`Flag`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::Namespace => "Namespace",
            ResourceKind::Flag => "Flag",
            ResourceKind::Segment => "Segment",
        }
    }
}

/// One change of a commit, as commit templates see it (`.Changes[i]`): `Verb`, and
/// `Resource` with `Type` (`Package`, `Name`; prints as `flipt.core.Flag`), `Namespace` and
/// `Key`. It prints as `<verb> <type> [<namespace>/]<key>`, e.g. `create flag default/my-flag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// What happened.
    pub verb: Verb,
    /// To what kind of resource.
    pub kind: ResourceKind,
    /// The namespace (empty for namespace changes).
    pub namespace: String,
    /// The key.
    pub key: String,
}

impl fmt::Display for ChangeRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ",
            self.verb.as_str(),
            self.kind.name().to_lowercase()
        )?;
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        f.write_str(&self.key)
    }
}

impl ChangeRecord {
    fn to_value(&self) -> TemplateValue {
        let s = |t: &str| TemplateValue::str(t);
        let r#type = TemplateValue::Object {
            fields: vec![
                ("Package".into(), s(self.kind.package())),
                ("Name".into(), s(self.kind.name())),
            ],
            display: Some(format!("{}.{}", self.kind.package(), self.kind.name())),
        };
        let resource = TemplateValue::object([
            ("Type", r#type),
            ("Namespace", s(&self.namespace)),
            ("Key", s(&self.key)),
        ]);
        TemplateValue::Object {
            fields: vec![
                ("Verb".into(), s(self.verb.as_str())),
                ("Resource".into(), resource),
            ],
            display: Some(self.to_string()),
        }
    }
}

/// What commit templates see of the environment (`.Environment`): `Name`, `Storage`,
/// `Directory`, `Default`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvironmentInfo {
    /// The environment's key.
    pub name: String,
    /// The storage it lives in.
    pub storage: String,
    /// Its directory in the repository (empty: the root).
    pub directory: String,
    /// Whether it is the default environment.
    pub default: bool,
}

fn template_data(env: &EnvironmentInfo, changes: &[ChangeRecord]) -> TemplateValue {
    let environment = TemplateValue::object([
        ("Name", TemplateValue::str(env.name.clone())),
        ("Storage", TemplateValue::str(env.storage.clone())),
        ("Directory", TemplateValue::str(env.directory.clone())),
        ("Default", TemplateValue::Bool(env.default)),
    ]);
    TemplateValue::object([
        ("Environment", environment),
        (
            "Changes",
            TemplateValue::List(changes.iter().map(ChangeRecord::to_value).collect()),
        ),
    ])
}

fn sample_data() -> TemplateValue {
    let change = |verb, kind, ns: &str, key: &str| ChangeRecord {
        verb,
        kind,
        namespace: ns.into(),
        key: key.into(),
    };
    template_data(
        &EnvironmentInfo {
            name: "production".into(),
            storage: "default".into(),
            ..EnvironmentInfo::default()
        },
        &[
            change(Verb::Create, ResourceKind::Flag, "default", "sample-flag"),
            change(
                Verb::Delete,
                ResourceKind::Segment,
                "default",
                "sample-segment",
            ),
        ],
    )
}

/// Renders a commit message: the repository's template if it has one, else the server's,
/// else Flipt's default.
pub fn commit_message(
    repository: Option<&Template>,
    server: Option<&Template>,
    env: &EnvironmentInfo,
    changes: &[ChangeRecord],
) -> Result<String, TemplateError> {
    let data = template_data(env, changes);
    match repository.or(server) {
        Some(t) => t.render(&data),
        None => {
            // Parsed once: every write without a template of its own renders it.
            static DEFAULT: std::sync::OnceLock<Result<Template, TemplateError>> =
                std::sync::OnceLock::new();
            match DEFAULT.get_or_init(|| Template::parse(DEFAULT_COMMIT_TEMPLATE)) {
                Ok(t) => t.render(&data),
                Err(e) => Err(e.clone()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(verb: Verb, kind: ResourceKind, ns: &str, key: &str) -> ChangeRecord {
        ChangeRecord {
            verb,
            kind,
            namespace: ns.into(),
            key: key.into(),
        }
    }

    #[test]
    fn default_messages() {
        let env = EnvironmentInfo::default();
        let one = [change(
            Verb::Create,
            ResourceKind::Flag,
            "default",
            "my-flag",
        )];
        assert_eq!(
            commit_message(None, None, &env, &one).unwrap(),
            "create flag default/my-flag"
        );
        let ns = [change(Verb::Update, ResourceKind::Namespace, "", "default")];
        assert_eq!(
            commit_message(None, None, &env, &ns).unwrap(),
            "update namespace default"
        );
        let two = [
            change(Verb::Create, ResourceKind::Flag, "default", "someFeature"),
            change(
                Verb::Delete,
                ResourceKind::Segment,
                "default",
                "someSegment",
            ),
        ];
        assert_eq!(
            commit_message(None, None, &env, &two).unwrap(),
            "updated multiple resources\n\ncreate flag default/someFeature\ndelete segment default/someSegment"
        );
    }

    #[test]
    fn versions_and_templates() {
        for ok in [
            "",
            "version: \"2.0\"\n",
            "version: \"2.0.0\"\n",
            "version: 2.0\n",
            "templates: {}\nother: 1\n",
        ] {
            assert!(
                RepositoryConfig::parse("flipt.yaml", ok.as_bytes()).is_ok(),
                "{ok}"
            );
        }
        let bad = RepositoryConfig::parse("flipt.yaml", b"version: \"3.0\"\n").unwrap_err();
        assert!(
            bad[0]
                .message
                .contains("unsupported flipt config version: \"3.0\""),
            "{bad:?}"
        );
        let bad = RepositoryConfig::parse(
            "flipt.yaml",
            b"templates:\n  commit_message: \"{{ if }}\"\n",
        )
        .unwrap_err();
        assert!(
            bad[0].message.starts_with("templates.commit_message:"),
            "{bad:?}"
        );
        let bad = RepositoryConfig::parse(
            "flipt.yaml",
            b"templates:\n  commit_message: \"{{ .Nope }}\"\n",
        )
        .unwrap_err();
        assert!(
            bad[0].message.contains("can't evaluate field Nope"),
            "{bad:?}"
        );
        let c = RepositoryConfig::parse(
            "flipt.yml",
            b"version: \"2.0\"\ntemplates:\n  commit_message: \"{{ .Environment.Name }}: {{ range .Changes }}{{ .Verb }} {{ .Resource.Type }} {{ .Resource.Key }};{{ end }}\"\n",
        )
        .unwrap();
        let env = EnvironmentInfo {
            name: "prod".into(),
            ..Default::default()
        };
        let msg = commit_message(
            c.commit_message.as_ref(),
            None,
            &env,
            &[change(Verb::Update, ResourceKind::Segment, "team", "s")],
        )
        .unwrap();
        assert_eq!(msg, "prod: update flipt.core.Segment s;");
    }
}
