//! The crate's one error type, and the problems that validation collects.

use std::fmt;

use git_backend::{ObjectId, Refusal};

/// Where a problem sits inside a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// The document of a multi-document stream, counted from 1 (empty documents, made of
    /// comments or nothing, are not counted).
    pub document: Option<usize>,
    /// The item inside the document: `flag my-flag`, `segment beta-users`, `flag 3` (by
    /// position when it has no usable key), `namespace`.
    pub item: Option<String>,
    /// The line in the file, counted from 1, when known.
    pub line: Option<usize>,
}

/// One thing wrong with the files of an environment: which file, where in it, and what.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Problem {
    /// The file, relative to the repository root (or to the directory given to
    /// [`crate::validate_dir`]).
    pub file: String,
    /// Where in the file.
    pub location: Location,
    /// What is wrong, as a lowercase fragment.
    pub message: String,
}

impl Problem {
    /// A problem of a whole file.
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            file: file.into(),
            location: Location::default(),
            message: message.into(),
        }
    }

    /// A problem at a location.
    pub fn at(file: impl Into<String>, location: Location, message: impl Into<String>) -> Self {
        Problem {
            file: file.into(),
            location,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        let l = &self.location;
        if let Some(line) = l.line {
            write!(f, ":{line}")?;
        }
        let mut parts = Vec::new();
        if let Some(d) = l.document {
            parts.push(format!("document {d}"));
        }
        if let Some(item) = &l.item {
            parts.push(item.clone());
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A list of problems, shown one per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// What went wrong. Messages are lowercase fragments that name the resource and the reason,
/// in Flipt's wording where Flipt has one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A namespace or resource that must exist does not.
    #[error("{0}")]
    NotFound(String),
    /// A namespace or resource that is being created exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is invalid: a bad key, an unknown segment or variant, a segment in use,
    /// the protected `default` namespace.
    #[error("{0}")]
    InvalidArgument(String),
    /// The state of the repository does not allow the write (its files do not validate, or
    /// `flipt.yaml` has a commit template that cannot be rendered).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A resource the write touches changed between the revision the client read and the
    /// current head.
    #[error("{resource} changed since revision {base}; the current revision is {head}")]
    Conflict {
        /// What changed, e.g. `flag default/my-flag`.
        resource: String,
        /// The revision the client read.
        base: ObjectId,
        /// The current head.
        head: ObjectId,
    },
    /// The files of an environment do not validate: every problem found.
    #[error("the environment does not validate:\n{0}")]
    Invalid(Problems),
    /// Reading the repository failed.
    #[error(transparent)]
    Backend(#[from] git_backend::Error),
}

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(m) => Refusal::NotFound(m),
            Error::AlreadyExists(m) => Refusal::AlreadyExists(m),
            Error::InvalidArgument(m) => Refusal::Invalid(m),
            Error::FailedPrecondition(m) => Refusal::FailedPrecondition(m),
            Error::Conflict {
                resource,
                base,
                head,
            } => Refusal::Precondition {
                resource,
                base,
                head,
            },
            Error::Invalid(p) => Refusal::Invalid(p.to_string()),
            Error::Backend(b) => Refusal::Backend(b),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
