//! Versions of the features format and what each one added.

use std::fmt;

/// A version of Flipt's features format (`version:` of a document).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// 1.0: flags with variants and rules, segments with constraints.
    V1_0,
    /// 1.1: flag `type` (boolean flags) and `rollouts`.
    V1_1,
    /// 1.2: rules and rollouts over several segments (`keys` with an `operator`).
    V1_2,
    /// 1.3: flag `metadata` and a variant marked `default: true`.
    V1_3,
    /// 1.4: namespace details (`namespace: {key, name, description}`); Flipt v2's schema
    /// accepts them in every version, and so does this crate.
    V1_4,
    /// 1.5: no field this crate needs to gate.
    V1_5,
    /// 1.6: `isoneof`/`isnotoneof` constraint values as YAML lists (before: a JSON list in a
    /// string). The latest; a document without `version` is read as 1.6.
    V1_6,
}

impl Version {
    /// The latest version, given to new documents.
    pub const LATEST: Version = Version::V1_6;

    /// Every version, oldest first.
    pub const ALL: [Version; 7] = [
        Version::V1_0,
        Version::V1_1,
        Version::V1_2,
        Version::V1_3,
        Version::V1_4,
        Version::V1_5,
        Version::V1_6,
    ];

    /// `"1.0"` ... `"1.6"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
            Version::V1_3 => "1.3",
            Version::V1_4 => "1.4",
            Version::V1_5 => "1.5",
            Version::V1_6 => "1.6",
        }
    }

    /// Parses `"1.0"` ... `"1.6"` (also `"1.6.0"`).
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let text = text
            .strip_suffix(".0")
            .filter(|t| t.len() == 3)
            .unwrap_or(text);
        Version::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!(Version::parse("1.0"), Some(Version::V1_0));
        assert_eq!(Version::parse("1.6.0"), Some(Version::V1_6));
        assert_eq!(Version::parse("1.7"), None);
        assert_eq!(Version::parse("2.0"), None);
        assert_eq!(Version::parse("1"), None);
        assert!(Version::V1_0 < Version::LATEST);
    }
}
