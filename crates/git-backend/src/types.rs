//! Plain data types of the backend API: object ids, ref names, repository paths, commits,
//! trees, diffs and changes. None of them is a git2 type.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A git object id (SHA-1), shown as 40 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 20]);

impl ObjectId {
    /// Wraps raw bytes.
    pub const fn from_bytes(bytes: [u8; 20]) -> Self {
        ObjectId(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The id git gives a blob with this content (`git hash-object`), computed without a
    /// repository: lets a caller name the blob it is about to write, e.g. to cache what it
    /// knows about that content.
    pub fn of_blob(content: &[u8]) -> Self {
        use sha1::Digest as _;
        let mut hasher = sha1::Sha1::new();
        hasher.update(format!("blob {}\0", content.len()).as_bytes());
        hasher.update(content);
        ObjectId(hasher.finalize().into())
    }

    /// Parses exactly 40 hex digits (either case). Anything else, including abbreviated ids,
    /// is [`Error::InvalidInput`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bytes = text.as_bytes();
        if bytes.len() != 40 {
            return Err(Error::invalid(format!(
                "`{}` is not a commit id (expected 40 hex digits)",
                truncate(text, 64)
            )));
        }
        let mut out = [0u8; 20];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hi = hex_value(pair[0]);
            let lo = hex_value(pair[1]);
            match (hi, lo) {
                (Some(h), Some(l)) => out[i] = (h << 4) | l,
                _ => {
                    return Err(Error::invalid(format!(
                        "`{}` is not a commit id (expected 40 hex digits)",
                        truncate(text, 64)
                    )));
                }
            }
        }
        Ok(ObjectId(out))
    }

    /// The first `n` hex digits, for messages.
    pub fn short(&self, n: usize) -> String {
        let mut s = self.to_string();
        s.truncate(n.min(40));
        s
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Cuts `text` to at most `max` characters for use in a message.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    let cut: String = text.chars().take(max).collect();
    if cut.len() < text.len() {
        format!("{cut}...")
    } else {
        cut
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        ObjectId::parse(s)
    }
}

/// A full reference name (`refs/heads/main`), checked against git's rules.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefName(String);

impl RefName {
    /// Checks `name` against git's reference-name rules; it must start with `refs/`.
    pub fn new(name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        if !name.starts_with("refs/") {
            return Err(Error::invalid(format!(
                "reference `{}` must start with `refs/`",
                truncate(&name, 100)
            )));
        }
        check_ref_format(&name).map_err(|why| {
            Error::invalid(format!(
                "invalid reference name `{}`: {why}",
                truncate(&name, 100)
            ))
        })?;
        Ok(RefName(name))
    }

    /// `refs/heads/<branch>`.
    pub fn branch(branch: &str) -> Result<Self, Error> {
        RefName::new(format!("refs/heads/{branch}"))
    }

    /// `refs/remotes/<remote>/<branch>`.
    pub fn remote_tracking(remote: &str, branch: &str) -> Result<Self, Error> {
        RefName::new(format!("refs/remotes/{remote}/{branch}"))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The branch name, for `refs/heads/...` references.
    pub fn branch_name(&self) -> Option<&str> {
        self.0.strip_prefix("refs/heads/")
    }
}

impl fmt::Display for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefName({})", self.0)
    }
}

impl AsRef<str> for RefName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// git's reference-name rules (`git check-ref-format`).
fn check_ref_format(name: &str) -> Result<(), &'static str> {
    if name.ends_with('/') || name.contains("//") {
        return Err("must not end with `/` or contain `//`");
    }
    if name.ends_with('.') || name.contains("..") || name.contains("@{") || name == "@" {
        return Err("must not end with `.` or contain `..` or `@{`");
    }
    if name.chars().any(|c| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        return Err("must not contain spaces, control characters or ~ ^ : ? * [ \\");
    }
    if name
        .split('/')
        .any(|c| c.is_empty() || c.starts_with('.') || c.ends_with(".lock"))
    {
        return Err("components must not be empty, start with `.` or end with `.lock`");
    }
    Ok(())
}

/// Whether a path component is `.git` as git's own path checks see it (`verify_path` with
/// `core.protectNTFS`, on by default, and `core.protectHFS`; `git fsck`'s `hasDotgit`): any
/// case, HFS+'s ignored code points removed, NTFS's trailing dots and spaces, its 8.3 short
/// name `git~1` and an alternate data stream (`.git::$INDEX_ALLOCATION`). A commit holding
/// one is refused by remotes that check pushes and cannot be checked out by git clients.
fn is_dot_git(component: &str) -> bool {
    // Code points that HFS+ ignores in names (git's `next_hfs_char`).
    let hfs_ignored = |c: char| {
        matches!(
            c,
            '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}'
        )
    };
    let folded: String = component
        .chars()
        .filter(|c| !hfs_ignored(*c))
        .flat_map(char::to_lowercase)
        .collect();
    let ntfs = folded.split(':').next().unwrap_or("");
    let ntfs = ntfs.trim_end_matches(['.', ' ']);
    ntfs == ".git" || ntfs == "git~1"
}

/// A path of a file inside the repository: relative, `/`-separated, with no empty, `.` or
/// `..` component, no `.git` component (in any of the forms git refuses, see `is_dot_git`), no
/// backslash and no NUL. Such a path can never leave the repository or reach into git's own
/// files.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoPath(String);

/// Longest accepted repository path, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

impl RepoPath {
    /// Checks and wraps a path.
    pub fn new(path: impl Into<String>) -> Result<Self, Error> {
        let path = path.into();
        let bad = |why: &str| {
            Error::invalid(format!(
                "invalid path `{}`: {why}",
                truncate(&path.replace('\0', "\\0"), 100)
            ))
        };
        if path.is_empty() {
            return Err(bad("must not be empty"));
        }
        if path.len() > MAX_PATH_LEN {
            return Err(bad("too long"));
        }
        if path.starts_with('/') {
            return Err(bad("must be relative (no leading `/`)"));
        }
        if path.contains('\0') || path.contains('\\') || path.chars().any(|c| c.is_control()) {
            return Err(bad("must not contain NUL, `\\` or control characters"));
        }
        for component in path.split('/') {
            match component {
                "" => {
                    return Err(bad(
                        "must not contain empty components (`//` or a trailing `/`)",
                    ));
                }
                "." | ".." => return Err(bad("must not contain `.` or `..` components")),
                c if is_dot_git(c) => {
                    return Err(bad(
                        "must not contain a `.git` component (nor one that NTFS or HFS+ reads as `.git`, which git refuses)",
                    ));
                }
                _ => {}
            }
        }
        Ok(RepoPath(path))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The directory part (`None` at the root).
    pub fn parent(&self) -> Option<&str> {
        self.0.rfind('/').map(|i| &self.0[..i])
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// Whether this path is `dir` or lies under it (`dir` empty means the root).
    pub fn starts_with_dir(&self, dir: &str) -> bool {
        dir.is_empty()
            || self.0 == dir
            || (self.0.starts_with(dir) && self.0.as_bytes().get(dir.len()) == Some(&b'/'))
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoPath({})", self.0)
    }
}

/// A point in time as git records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Offset from UTC in minutes.
    pub offset_minutes: i32,
}

impl Timestamp {
    /// Now, in UTC.
    pub fn now() -> Self {
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Timestamp {
            seconds,
            offset_minutes: 0,
        }
    }
}

/// An author or committer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// When; `None` in a request means now.
    pub time: Option<Timestamp>,
}

impl Signature {
    /// A signature dated now.
    pub fn now(name: impl Into<String>, email: impl Into<String>) -> Self {
        Signature {
            name: name.into(),
            email: email.into(),
            time: Some(Timestamp::now()),
        }
    }
}

/// A commit as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit id.
    pub id: ObjectId,
    /// Its tree.
    pub tree: ObjectId,
    /// Its parents, first parent first.
    pub parents: Vec<ObjectId>,
    /// The full message.
    pub message: String,
    /// The author (with time).
    pub author: Signature,
    /// The committer (with time).
    pub committer: Signature,
}

/// What a tree entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// An executable file.
    Executable,
    /// A symbolic link (its blob holds the target).
    Symlink,
    /// A directory.
    Directory,
    /// A submodule (a commit of another repository).
    Submodule,
}

/// An entry of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// Full path from the repository root.
    pub path: String,
    /// Blob, tree or commit id.
    pub id: ObjectId,
    /// What it is.
    pub kind: EntryKind,
}

/// A file read from a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBlob {
    /// The blob id.
    pub id: ObjectId,
    /// The content.
    pub content: Vec<u8>,
}

/// How a path changed between two commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// Added.
    Added,
    /// Content or mode changed.
    Modified,
    /// Removed.
    Deleted,
}

/// One changed file between two commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffEntry {
    /// Full path of the file.
    pub path: String,
    /// How it changed.
    pub kind: ChangeKind,
    /// Blob before (absent for additions).
    pub old: Option<ObjectId>,
    /// Blob after (absent for deletions).
    pub new: Option<ObjectId>,
}

/// One change of a commit request.
#[derive(Clone, PartialEq, Eq)]
pub enum Change {
    /// Write a file, creating directories as needed.
    Put {
        /// Where.
        path: RepoPath,
        /// The new content.
        content: Vec<u8>,
    },
    /// Remove a file; directories left empty disappear.
    Delete {
        /// Which file.
        path: RepoPath,
    },
}

impl Change {
    /// The path the change touches.
    pub fn path(&self) -> &RepoPath {
        match self {
            Change::Put { path, .. } | Change::Delete { path } => path,
        }
    }
}

impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Put { path, content } => write!(f, "Put({path}, {} bytes)", content.len()),
            Change::Delete { path } => write!(f, "Delete({path})"),
        }
    }
}

/// A request to create a commit (no reference moves).
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// The parent; `None` for a root commit (applied to the empty tree).
    pub parent: Option<ObjectId>,
    /// The changes, applied in order to the parent's tree.
    pub changes: Vec<Change>,
    /// The commit message.
    pub message: String,
    /// The author.
    pub author: Signature,
    /// The committer.
    pub committer: Signature,
}

/// What a compare-and-swap expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Anything (an unconditional update).
    Any,
    /// The reference must not exist.
    Absent,
    /// The reference must point at this id.
    Value(ObjectId),
}

impl Expected {
    /// `Absent` for `None`, `Value` otherwise.
    pub fn from_option(id: Option<ObjectId>) -> Self {
        id.map_or(Expected::Absent, Expected::Value)
    }

    /// Whether `current` satisfies the expectation.
    pub fn matches(&self, current: Option<ObjectId>) -> bool {
        match self {
            Expected::Any => true,
            Expected::Absent => current.is_none(),
            Expected::Value(v) => current == Some(*v),
        }
    }
}

/// A reference and what it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// Full name.
    pub name: RefName,
    /// The (peeled) commit id.
    pub target: ObjectId,
}

/// A local reference update with compare-and-swap.
#[derive(Debug, Clone)]
pub struct RefUpdate {
    /// The reference.
    pub name: RefName,
    /// The new value; `None` deletes the reference.
    pub new: Option<ObjectId>,
    /// What the reference must hold now.
    pub expected: Expected,
    /// Reflog message.
    pub message: String,
}

/// One reference update sent to a remote.
#[derive(Debug, Clone)]
pub struct PushUpdate {
    /// The commit to send; `None` deletes the remote reference.
    pub local: Option<ObjectId>,
    /// The reference on the remote.
    pub remote_ref: RefName,
    /// What the remote reference must hold now. `Expected::Any` is refused: a push never
    /// overwrites what it has not seen.
    pub expected: Expected,
}

/// A reference that changed in a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefChange {
    /// The local reference.
    pub name: RefName,
    /// Before.
    pub old: Option<ObjectId>,
    /// After (`None`: pruned).
    pub new: Option<ObjectId>,
}

/// What [`crate::GitBackend::fetch_and_follow`] moves after its fetch: `local` fast-forwarded
/// to what `tracking` holds (typically `refs/heads/main` to `refs/remotes/origin/main`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    /// The reference that follows (a local branch).
    pub local: RefName,
    /// The reference it follows (a remote-tracking reference the fetch moves).
    pub tracking: RefName,
    /// The reflog message of the move.
    pub message: String,
}

impl Follow {
    /// The move to try in `state`: from what `local` holds to what `tracking` holds, when
    /// both exist and differ (whether it is a fast-forward is the backend's to check).
    pub fn pending(&self, state: &RefsState) -> Option<(ObjectId, ObjectId)> {
        let from = *state.refs.get(&self.local)?;
        let to = *state.refs.get(&self.tracking)?;
        (from != to).then_some((from, to))
    }
}

/// What [`crate::GitBackend::fetch_and_follow`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fetched {
    /// The references the fetch changed.
    pub changes: Vec<RefChange>,
    /// Whether the followed reference moved.
    pub followed: bool,
}

/// Options of [`crate::GitBackend::log`].
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// At most this many commits (0: no limit).
    pub limit: usize,
    /// Stop at (and leave out) these commits and their ancestors.
    pub hide: Vec<ObjectId>,
    /// Skip the first commits up to and including this one (for paging).
    pub after: Option<ObjectId>,
}

/// All references of a repository at one moment, as subscribers see them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefsState {
    /// Increases by one with every observed change.
    pub version: u64,
    /// Every reference under `refs/` with its target.
    pub refs: std::collections::BTreeMap<RefName, ObjectId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_exactly_40_hex_digits() {
        let id = ObjectId::parse("0123456789abcdefABCDEF0123456789abcdef01").unwrap();
        assert_eq!(id.to_string(), "0123456789abcdefabcdef0123456789abcdef01");
        for bad in [
            "",
            "deadbeef",
            "g123456789abcdefabcdef0123456789abcdef01",
            "0123456789abcdefabcdef0123456789abcdef012",
            "é123456789abcdefabcdef0123456789abcdef0",
        ] {
            assert!(ObjectId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn blob_ids_are_gits() {
        // `printf 'hello\n' | git hash-object --stdin` and the empty blob.
        assert_eq!(
            ObjectId::of_blob(b"hello\n").to_string(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert_eq!(
            ObjectId::of_blob(b"").to_string(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
    }

    #[test]
    fn ref_names_follow_git_rules() {
        assert!(RefName::new("refs/heads/main").is_ok());
        assert!(RefName::branch("flipt/prod/feature").is_ok());
        for bad in [
            "main",
            "refs/heads/",
            "refs/heads/a..b",
            "refs/heads/a b",
            "refs/heads/.a",
            "refs/heads/a.lock",
            "refs//x",
            "refs/heads/a~",
        ] {
            assert!(RefName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn repo_paths_never_escape() {
        for ok in [
            "a",
            "a/b.yaml",
            "dir with space/ünïcode.yaml",
            ".gitkeep",
            "a/.github/x",
        ] {
            assert!(RepoPath::new(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "/a",
            "a//b",
            "a/",
            "./a",
            "a/../b",
            "..",
            ".git/config",
            "a/.GIT/b",
            "a\0b",
            "a\\b",
            "a\nb",
            // What NTFS and HFS+ read as `.git`: git refuses to check these out, and `git
            // fsck` (so a remote with receive.fsckObjects) reports them as `hasDotgit`.
            ".git /config",
            ".GIT./config",
            "a/git~1/b",
            "GIT~1",
            ".git::$INDEX_ALLOCATION/x",
            ".g\u{200c}it/config",
            "\u{feff}.git/x",
        ] {
            assert!(RepoPath::new(bad).is_err(), "{bad:?}");
        }
        for ok in [
            ".gitignore",
            ".git-x/y",
            "git~2/x",
            ".github/x",
            "a.git/b",
            "git/x",
        ] {
            assert!(RepoPath::new(ok).is_ok(), "{ok:?}");
        }
        assert!(RepoPath::new("x".repeat(MAX_PATH_LEN + 1)).is_err());
        let p = RepoPath::new("prod/team/features.yaml").unwrap();
        assert_eq!(p.parent(), Some("prod/team"));
        assert_eq!(p.file_name(), "features.yaml");
        assert!(p.starts_with_dir("prod") && p.starts_with_dir("") && !p.starts_with_dir("pro"));
    }
}
