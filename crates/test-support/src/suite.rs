//! The remote kinds of the backend conformance suite: `file://` and smart HTTP, both bare
//! repositories changed by "another user" through the git CLI.

use git_backend::testsuite::{RemoteKind, TestRemote};
use git_backend::{ObjectId, Remote};

use crate::{BareRemote, GitHttpServer};

/// Bare repositories reached over `file://` (libgit2's local transport runs no hooks).
#[derive(Debug, Default, Clone, Copy)]
pub struct FileRemotes;

/// Bare repositories served over smart HTTP by a [`GitHttpServer`] each.
#[derive(Debug, Default, Clone, Copy)]
pub struct HttpRemotes;

struct Served {
    remote: BareRemote,
    url: String,
    _server: Option<GitHttpServer>,
}

impl RemoteKind for FileRemotes {
    fn name(&self) -> &str {
        "file"
    }

    fn create(&self) -> Box<dyn TestRemote> {
        let remote = BareRemote::new();
        let url = remote.file_url();
        Box::new(Served {
            remote,
            url,
            _server: None,
        })
    }

    fn runs_hooks(&self) -> bool {
        false
    }
}

impl RemoteKind for HttpRemotes {
    fn name(&self) -> &str {
        "http"
    }

    fn create(&self) -> Box<dyn TestRemote> {
        let remote = BareRemote::new();
        let server = GitHttpServer::builder(remote.project_root()).start();
        let url = server.url(crate::REMOTE_DIR_NAME);
        Box::new(Served {
            remote,
            url,
            _server: Some(server),
        })
    }

    fn runs_hooks(&self) -> bool {
        true
    }
}

fn id(hex: &str) -> ObjectId {
    ObjectId::parse(hex.trim()).expect("git prints full ids")
}

impl TestRemote for Served {
    fn remote(&self) -> Remote {
        Remote::anonymous(self.url.clone())
    }

    fn head(&self, branch: &str) -> Option<ObjectId> {
        self.remote.head(branch).map(|h| id(&h))
    }

    fn commit_as_other_user(&self, branch: &str, path: &str, content: &str) -> ObjectId {
        id(&self
            .remote
            .cli_commit(branch, &[(path, Some(content))], "a change by another user"))
    }

    fn reject_pushes(&self, message: &str) {
        let script = format!(
            "#!/bin/sh\necho '{}' >&2\nexit 1\n",
            message.replace('\'', "")
        );
        self.remote.install_hook("pre-receive", &script);
    }

    fn fsck(&self) {
        self.remote.fsck();
    }
}
