//! `delegate_git_backend!` forwards every method, those with a default in the trait included:
//! a type built with it around a backend whose overrides answer differently from the trait's
//! defaults (which would call the required methods, and those fail here) must give the
//! overrides' answers. A method with a default that the macro does not forward fails this
//! test; add it to the list below when the trait gains one.

use async_trait::async_trait;
use git_backend::*;
use tokio::sync::watch;

/// Required methods fail; methods with a default answer with a mark.
#[derive(Debug)]
struct Marked;

fn required() -> Error {
    Error::Internal(
        "a required method was called: the default ran, not the forwarded override".into(),
    )
}

fn id(n: u8) -> ObjectId {
    ObjectId::parse(&format!("{n:02x}").repeat(20)).unwrap()
}

#[async_trait]
impl GitBackend for Marked {
    fn kind(&self) -> &'static str {
        "marked"
    }
    async fn resolve(&self, _: &RefName) -> Result<Option<ObjectId>> {
        Err(required())
    }
    async fn list_refs(&self, _: &str) -> Result<Vec<Ref>> {
        Err(required())
    }
    async fn update_ref(&self, _: RefUpdate) -> Result<()> {
        Err(required())
    }
    fn subscribe(&self) -> watch::Receiver<RefsState> {
        watch::channel(RefsState::default()).1
    }
    async fn refresh_refs(&self) -> Result<RefsState> {
        Err(required())
    }
    async fn commit_info(&self, _: ObjectId) -> Result<CommitInfo> {
        Err(required())
    }
    async fn read_blob(&self, _: ObjectId) -> Result<Vec<u8>> {
        Err(required())
    }
    async fn read_file(&self, _: ObjectId, _: &RepoPath) -> Result<Option<FileBlob>> {
        Err(required())
    }
    async fn list_tree(
        &self,
        _: ObjectId,
        _: Option<&RepoPath>,
        _: bool,
    ) -> Result<Vec<TreeEntry>> {
        Err(required())
    }
    async fn diff(&self, _: Option<ObjectId>, _: ObjectId) -> Result<Vec<DiffEntry>> {
        Err(required())
    }
    async fn log(&self, _: ObjectId, _: LogOptions) -> Result<Vec<CommitInfo>> {
        Err(required())
    }
    async fn is_ancestor(&self, _: ObjectId, _: ObjectId) -> Result<bool> {
        Err(required())
    }
    async fn create_commit(&self, _: CommitRequest) -> Result<ObjectId> {
        Err(required())
    }
    async fn ls_remote(&self, _: &Remote) -> Result<Vec<Ref>> {
        Err(required())
    }
    async fn fetch(&self, _: &Remote, _: &[String], _: bool) -> Result<Vec<RefChange>> {
        Err(required())
    }
    async fn push(&self, _: &Remote, _: PushUpdate) -> Result<()> {
        Err(required())
    }

    // The methods with a default.
    async fn changed_paths(&self, _: ObjectId, _: ObjectId) -> Result<Vec<String>> {
        Ok(vec!["marked".into()])
    }
    async fn fast_forward(&self, _: RefName, _: ObjectId, _: ObjectId, _: String) -> Result<bool> {
        Ok(true)
    }
    async fn fetch_and_follow(
        &self,
        _: &Remote,
        _: &[String],
        _: bool,
        _: Follow,
    ) -> Result<Fetched> {
        // The default would fail: it fetches first.
        Ok(Fetched {
            changes: Vec::new(),
            followed: true,
        })
    }
    async fn commit_to(
        &self,
        _: CommitRequest,
        _: RefName,
        _: Expected,
        _: String,
    ) -> Result<ObjectId> {
        Ok(id(7))
    }
}

struct Wrapper {
    inner: Marked,
}

impl std::fmt::Debug for Wrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wrapper")
    }
}

git2_support::delegate_git_backend!(Wrapper, inner);

#[tokio::test]
async fn the_macro_forwards_the_methods_with_a_default() {
    let w = Wrapper { inner: Marked };
    assert_eq!(w.kind(), "marked");
    assert_eq!(w.changed_paths(id(1), id(2)).await.unwrap(), ["marked"]);
    let main = RefName::branch("main").unwrap();
    assert!(
        w.fast_forward(main.clone(), id(1), id(2), "m".into())
            .await
            .unwrap()
    );
    let request = CommitRequest {
        parent: None,
        changes: Vec::new(),
        message: "m".into(),
        author: sig(),
        committer: sig(),
    };
    assert_eq!(
        w.commit_to(request, main.clone(), Expected::Absent, "m".into())
            .await
            .unwrap(),
        id(7)
    );
    let follow = Follow {
        local: main.clone(),
        tracking: RefName::remote_tracking("origin", "main").unwrap(),
        message: "m".into(),
    };
    let remote = Remote::anonymous("file:///nowhere");
    assert!(
        w.fetch_and_follow(&remote, &[], true, follow)
            .await
            .unwrap()
            .followed
    );
    // And the required ones reach the inner backend (which fails them).
    assert!(w.commit_info(id(1)).await.is_err());
}

fn sig() -> Signature {
    Signature {
        name: "t".into(),
        email: "t@example.com".into(),
        time: None,
    }
}
