//! The backend conformance suite, against in-memory repositories: with the default
//! compaction, and with a compaction after every commit (so that every check also runs
//! across compactions).

use std::sync::Arc;

use git_backend::DynBackend;
use git_backend::testsuite::{Harness, RemoteKind};
use git_backend_memory::{MemoryBackend, MemoryBackendOptions};

struct Memory {
    compact_every: usize,
}

#[async_trait::async_trait]
impl Harness for Memory {
    async fn new_backend(&self) -> DynBackend {
        Arc::new(
            MemoryBackend::new(MemoryBackendOptions {
                compact_every: self.compact_every,
                max_packs: 4,
                ..Default::default()
            })
            .unwrap(),
        )
    }

    fn remote_kinds(&self) -> Vec<Arc<dyn RemoteKind>> {
        vec![
            Arc::new(test_support::FileRemotes),
            Arc::new(test_support::HttpRemotes),
        ]
    }
}

mod default_compaction {
    git_backend::conformance_tests!(super::Memory {
        compact_every: 1000
    });
}

mod compaction_after_every_commit {
    git_backend::conformance_tests!(super::Memory { compact_every: 1 });
}
