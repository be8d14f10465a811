//! Problems found while loading a configuration, with where they were found.

use std::fmt;

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The configuration loads, but something in it is probably not what was meant.
    Warning,
    /// The configuration cannot be used.
    Error,
}

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// A line of the configuration file (1-based).
    Line(usize),
    /// An environment variable (`FLIPT_...`).
    EnvVar(String),
    /// Not known: a built-in default, or a problem that concerns no single key.
    Unknown,
}

/// One problem with a configuration: the key path it concerns, what is wrong, and where.
///
/// The message never contains a secret value: callers only ever describe secrets by their
/// key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Dotted key path, e.g. `storage.prod.poll_interval`; empty for the whole file.
    pub path: String,
    /// What is wrong and what is allowed, as a lowercase sentence fragment.
    pub message: String,
    /// Where the offending value was found.
    pub origin: Origin,
}

impl Diagnostic {
    pub(crate) fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
            origin: Origin::Unknown,
        }
    }

    pub(crate) fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
            origin: Origin::Unknown,
        }
    }

    /// Whether this diagnostic stops the configuration from loading.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        if self.path.is_empty() {
            write!(f, "{level}: {}", self.message)?;
        } else {
            write!(f, "{level}: {}: {}", self.path, self.message)?;
        }
        match &self.origin {
            Origin::Line(line) => write!(f, " (line {line})"),
            Origin::EnvVar(name) => write!(f, " (from environment variable {name})"),
            Origin::Unknown => Ok(()),
        }
    }
}

/// A configuration that could not be loaded: every problem found, errors and warnings, in a
/// stable order (by key path, then message).
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// The file the configuration came from, if any (shown in the message).
    pub file: Option<String>,
    /// Every diagnostic, errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// The diagnostics that are errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors().count();
        match &self.file {
            Some(file) => write!(f, "invalid configuration in `{file}`: {count} error(s)")?,
            None => write!(f, "invalid configuration: {count} error(s)")?,
        }
        for d in &self.diagnostics {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

/// Sorts diagnostics into the stable order documented on [`ConfigError`].
pub(crate) fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (a.path.as_str(), a.message.as_str()).cmp(&(b.path.as_str(), b.message.as_str()))
    });
}
