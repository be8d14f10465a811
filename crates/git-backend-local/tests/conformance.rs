//! The backend conformance suite, against repositories on disk.

use std::sync::{Arc, Mutex};

use git_backend::DynBackend;
use git_backend::testsuite::{Harness, RemoteKind};
use git_backend_local::{LocalBackend, LocalOptions};

#[derive(Default)]
struct Local {
    dirs: Mutex<Vec<tempfile::TempDir>>,
}

#[async_trait::async_trait]
impl Harness for Local {
    async fn new_backend(&self) -> DynBackend {
        let dir = tempfile::tempdir().unwrap();
        let mut options = LocalOptions::new(dir.path().join("repo"), "main");
        options.poll_interval = std::time::Duration::from_millis(200);
        let backend = LocalBackend::open(options).unwrap();
        self.dirs.lock().unwrap().push(dir);
        Arc::new(backend)
    }

    fn remote_kinds(&self) -> Vec<Arc<dyn RemoteKind>> {
        vec![
            Arc::new(test_support::FileRemotes),
            Arc::new(test_support::HttpRemotes),
        ]
    }
}

git_backend::conformance_tests!(Local::default());
