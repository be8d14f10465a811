//! Fetch, ls-remote and push over libgit2's transports, with the callbacks that hand
//! credentials to libgit2 and check host keys and certificates.
//!
//! This module is one of the two audited places that call `expose_secret()`: a secret leaves
//! its `SecretString` only here, at the moment libgit2 asks for it.

use std::cell::RefCell;
use std::collections::BTreeMap;

use git_backend::*;
use git2::{AutotagOption, Direction, FetchOptions, PushOptions, RemoteCallbacks, Repository};
use secrecy::ExposeSecret;

use crate::convert::{git_oid, oid};
use crate::ops;

/// How often a long download logs its progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

/// libgit2 asks again and again after a wrong password; give up after this many attempts.
const MAX_CREDENTIAL_ATTEMPTS: usize = 3;

/// Host and port of an ssh remote URL (`ssh://user@host:port/path` or `user@host:path`).
fn ssh_host_port(url: &str) -> Option<(String, Option<u16>)> {
    let (authority, scheme) = match url.strip_prefix("ssh://") {
        Some(rest) => (rest.split('/').next().unwrap_or(""), true),
        None if !url.contains("://") => (url.split(':').next().unwrap_or(""), false),
        None => return None,
    };
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    if scheme {
        if let Some(rest) = host_port.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return Some((host.to_owned(), port));
        }
        if let Some((host, port)) = host_port.rsplit_once(':') {
            return Some((host.to_owned(), port.parse().ok()));
        }
    }
    Some((host_port.to_owned(), None))
}

fn host_key_algorithm(t: Option<git2::cert::SshHostKeyType>) -> &'static str {
    use git2::cert::SshHostKeyType as T;
    match t {
        Some(T::Rsa) => "ssh-rsa",
        Some(T::Dss) => "ssh-dss",
        Some(T::Ecdsa256) => "ecdsa-sha2-nistp256",
        Some(T::Ecdsa384) => "ecdsa-sha2-nistp384",
        Some(T::Ecdsa521) => "ecdsa-sha2-nistp521",
        Some(T::Ed255219) => "ssh-ed25519",
        _ => "unknown",
    }
}

/// What the callbacks learned during one operation: our own precise error (libgit2 replaces
/// the messages of callback errors), and the per-reference push statuses.
#[derive(Default)]
struct Outcome {
    error: Option<Error>,
    rejections: Vec<(String, String)>,
}

/// Callbacks for one operation on `remote`.
fn callbacks<'a>(remote: &'a Remote, outcome: &'a RefCell<Outcome>) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    let mut attempts = 0usize;
    let provider = remote.credentials.clone();
    let display = remote.display.clone();
    cb.credentials(move |url, username_from_url, allowed| {
        attempts += 1;
        let fail = |e: Error| {
            let message = e.to_string();
            outcome.borrow_mut().error = Some(e);
            Err(git2::Error::from_str(&message))
        };
        if attempts > MAX_CREDENTIAL_ATTEMPTS {
            return fail(Error::Unauthenticated {
                message: format!("authentication to `{display}` failed: the remote refused the configured credentials"),
                source: None,
            });
        }
        let request = CredentialRequest {
            url,
            username_from_url,
            allowed: AllowedCredentials {
                user_pass: allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT),
                ssh_key: allowed.contains(git2::CredentialType::SSH_KEY) || allowed.contains(git2::CredentialType::SSH_MEMORY),
            },
        };
        let credential = match provider.credential(&request) {
            Ok(Some(c)) => c,
            Ok(None) => {
                return fail(Error::Unauthenticated {
                    message: format!("`{display}` asks for credentials and none are configured"),
                    source: None,
                });
            }
            Err(e) => return fail(e),
        };
        // libssh2 first asks only for the user name when the URL has none.
        if allowed == git2::CredentialType::USERNAME {
            let user = match &credential {
                Credential::SshKey { username, .. } | Credential::UserPass { username, .. } => username.clone(),
                _ => String::new(),
            };
            return git2::Cred::username(&user);
        }
        match credential {
            Credential::UserPass { username, password } => git2::Cred::userpass_plaintext(&username, password.expose_secret()),
            Credential::SshKey { username, private_key, passphrase } => git2::Cred::ssh_key_from_memory(
                &username,
                None,
                private_key.expose_secret(),
                passphrase.as_ref().map(|p| p.expose_secret()),
            )
            .or_else(|e| {
                fail(Error::Unauthenticated {
                    message: format!("the ssh key for `{display}` cannot be used (wrong passphrase or not a private key): {}", e.message()),
                    source: None,
                })
            }),
            _ => fail(Error::Unsupported("unsupported credential kind".into())),
        }
    });
    let provider = remote.credentials.clone();
    let url = remote.url.clone();
    cb.certificate_check(move |cert, host| {
        let reject = |e: Error| {
            let message = e.to_string();
            outcome.borrow_mut().error = Some(e);
            Err(git2::Error::from_str(&message))
        };
        if let Some(hostkey) = cert.as_hostkey() {
            // Verified here in full, never handed back to libgit2's own check (which reads
            // only ~/.ssh/known_hosts).
            let Some(blob) = hostkey.hostkey() else {
                return reject(Error::Untrusted(format!("`{host}` presented no host key")));
            };
            let key = HostKey { algorithm: host_key_algorithm(hostkey.hostkey_type()).to_owned(), blob: blob.to_vec() };
            let port = ssh_host_port(&url).and_then(|(_, p)| p);
            return match provider.verify_host_key(host, port, &key) {
                Ok(()) => Ok(git2::CertificateCheckStatus::CertificateOk),
                Err(e) => reject(e),
            };
        }
        if cert.as_x509().is_some() {
            let trust = provider.tls_trust();
            if trust.insecure_skip_verify {
                return Ok(git2::CertificateCheckStatus::CertificateOk);
            }
            if let Some(pem) = &trust.ca_pem {
                // Verified against this storage's bundle only: libgit2's own CA settings are
                // process-wide, so one storage's CA must not become trusted for another.
                let der = cert.as_x509().map(|x| x.data().to_vec()).unwrap_or_default();
                return match crate::tls::verify(&der, host, pem) {
                    Ok(()) => Ok(git2::CertificateCheckStatus::CertificateOk),
                    Err(why) => reject(Error::Untrusted(format!(
                        "the TLS certificate of `{host}` is not trusted by the storage's CA bundle: {why}"
                    ))),
                };
            }
        }
        Ok(git2::CertificateCheckStatus::CertificatePassthrough)
    });
    // Long downloads (a first clone, a big fetch) report progress under `PROGRESS_TARGET`: a
    // log line every few seconds (objects, bytes, rate) and, for a progress bar, a finer
    // `TRACE` event every tick.
    let shown = remote.display.clone();
    let started = std::time::Instant::now();
    let mut last_report = started;
    let mut last_tick = started;
    cb.transfer_progress(move |p| {
        let now = std::time::Instant::now();
        if now.duration_since(last_tick) >= PROGRESS_TICK {
            last_tick = now;
            tracing::trace!(
                target: PROGRESS_TARGET,
                remote = %shown,
                objects = p.received_objects(),
                total_objects = p.total_objects(),
                bytes = p.received_bytes(),
                done = false,
            );
        }
        if now.duration_since(last_report) >= PROGRESS_EVERY {
            last_report = now;
            let secs = now.duration_since(started).as_secs_f64().max(0.001);
            tracing::info!(
                target: PROGRESS_TARGET,
                remote = %shown,
                objects = p.received_objects(),
                total_objects = p.total_objects(),
                bytes = p.received_bytes(),
                rate_kib_s = (p.received_bytes() as f64 / 1024.0 / secs).round() as u64,
                "fetch in progress"
            );
        }
        true
    });
    cb.push_update_reference(move |refname, status| {
        if let Some(status) = status {
            outcome
                .borrow_mut()
                .rejections
                .push((refname.to_owned(), status.to_owned()));
        }
        Ok(())
    });
    cb
}

/// Maps a transport error, preferring the precise error the callbacks recorded.
fn network_error(remote: &Remote, what: &str, e: git2::Error, outcome: &RefCell<Outcome>) -> Error {
    if let Some(err) = outcome.borrow_mut().error.take() {
        return err;
    }
    let message = format!("failed to {what} `{}`: {}", remote.display, e.message());
    let lower = e.message().to_ascii_lowercase();
    // Writing what was received (the pack, its index, references) can fill the local disk.
    if matches!(
        e.class(),
        git2::ErrorClass::Os
            | git2::ErrorClass::Filesystem
            | git2::ErrorClass::Odb
            | git2::ErrorClass::Indexer
            | git2::ErrorClass::Zlib
    ) && crate::convert::is_disk_full(&e)
    {
        return Error::StorageFull {
            message,
            source: Some(Box::new(e)),
        };
    }
    match (e.code(), e.class()) {
        (git2::ErrorCode::Auth, _) => Error::Unauthenticated {
            message,
            source: Some(Box::new(e)),
        },
        (git2::ErrorCode::Certificate, _) => Error::Untrusted(message),
        (_, git2::ErrorClass::Ssh) if lower.contains("hostkey") || lower.contains("host key") => {
            Error::Untrusted(message)
        }
        _ if lower.contains("extract public key from private key") => Error::Unauthenticated {
            message: format!("{message} (wrong passphrase, or a key format libssh2 cannot read)"),
            source: Some(Box::new(e)),
        },
        _ if lower.contains("status code: 401")
            || lower.contains("authentication")
            || lower.contains("failed to authenticate") =>
        {
            Error::Unauthenticated {
                message,
                source: Some(Box::new(e)),
            }
        }
        _ if lower.contains("status code: 403") => Error::PermissionDenied(message),
        _ if lower.contains("status code: 404")
            || lower.contains("could not find repository")
            || lower.contains("failed to resolve path") =>
        {
            Error::NotFound(message)
        }
        (git2::ErrorCode::NotFound, _) => Error::NotFound(message),
        _ => Error::Unavailable {
            message,
            source: Some(Box::new(e)),
        },
    }
}

fn connect<'r>(repo: &'r Repository, remote: &Remote) -> Result<git2::Remote<'r>> {
    repo.remote_anonymous(&remote.url).map_err(|e| {
        Error::invalid(format!(
            "invalid remote `{}`: {}",
            remote.display,
            e.message()
        ))
    })
}

fn advertised(list: &[git2::RemoteHead<'_>]) -> BTreeMap<String, ObjectId> {
    list.iter()
        .map(|h| (h.name().to_owned(), oid(h.oid())))
        .collect()
}

/// The remote's references under `refs/` (no peeled tag entries, no HEAD).
fn ls_remote_once(repo: &Repository, remote: &Remote) -> Result<Vec<Ref>> {
    let outcome = RefCell::new(Outcome::default());
    let mut r = connect(repo, remote)?;
    let conn = r
        .connect_auth(Direction::Fetch, Some(callbacks(remote, &outcome)), None)
        .map_err(|e| network_error(remote, "connect to", e, &outcome))?;
    let heads = advertised(
        conn.list()
            .map_err(|e| network_error(remote, "list references of", e, &outcome))?,
    );
    Ok(heads
        .into_iter()
        .filter(|(name, _)| !name.ends_with("^{}"))
        .filter_map(|(name, target)| RefName::new(name).ok().map(|name| Ref { name, target }))
        .collect())
}

/// Whether an error is the transient one of libgit2's local transport listing references of
/// a `file://` remote while another writer's temporary push reference (see [`push_local`])
/// is deleted under it.
fn is_vanished_temp_ref(e: &Error) -> bool {
    e.to_string().contains("refs/flipt-tmp/")
}

/// Runs `op`, again (a few times) when it hit a vanished temporary reference.
fn retry_vanished<T>(mut op: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 0;
    loop {
        match op() {
            Err(e) if is_vanished_temp_ref(&e) && attempt < 5 => attempt += 1,
            other => return other,
        }
    }
}

/// The remote's references under `refs/` (no peeled tag entries, no HEAD).
pub(crate) fn ls_remote(repo: &Repository, remote: &Remote) -> Result<Vec<Ref>> {
    retry_vanished(|| ls_remote_once(repo, remote))
}

/// Fetches `refspecs` (full history, no tags) and, with `prune`, deletes local destinations
/// the remote no longer has. Returns the references that changed.
pub(crate) fn fetch(
    repo: &Repository,
    remote: &Remote,
    refspecs: &[String],
    prune: bool,
) -> Result<Vec<RefChange>> {
    retry_vanished(|| fetch_once(repo, remote, refspecs, prune))
}

/// One parsed refspec `[+]src:dst`; a `*` may appear once on each side.
struct Spec<'a> {
    src: &'a str,
    dst: &'a str,
}

impl<'a> Spec<'a> {
    fn parse(spec: &'a str) -> Result<Self> {
        let body = spec.strip_prefix('+').unwrap_or(spec);
        let (src, dst) = body
            .split_once(':')
            .ok_or_else(|| Error::invalid(format!("refspec `{spec}` has no destination")))?;
        if src.matches('*').count() != dst.matches('*').count()
            || src.matches('*').count() > 1
            || !dst.starts_with("refs/")
        {
            return Err(Error::invalid(format!("unsupported refspec `{spec}`")));
        }
        Ok(Spec { src, dst })
    }

    fn wildcard(&self) -> bool {
        self.src.contains('*')
    }

    /// The destination of a remote reference, if this refspec maps it.
    fn map_src(&self, name: &str) -> Option<String> {
        if !self.wildcard() {
            return (name == self.src).then(|| self.dst.to_owned());
        }
        let (pre, post) = self.src.split_once('*')?;
        let middle = name.strip_prefix(pre)?.strip_suffix(post)?;
        let (dpre, dpost) = self.dst.split_once('*')?;
        Some(format!("{dpre}{middle}{dpost}"))
    }

    /// Whether a local reference is a destination of this refspec.
    fn matches_dst(&self, name: &str) -> bool {
        match self.dst.split_once('*') {
            None => name == self.dst,
            Some((pre, post)) => {
                name.len() > pre.len() + post.len() && name.starts_with(pre) && name.ends_with(post)
            }
        }
    }
}

/// Fetches `refspecs` (full history, no tags) and, with `prune`, deletes local destinations
/// the remote no longer has. Returns the references that changed.
fn fetch_once(
    repo: &Repository,
    remote: &Remote,
    refspecs: &[String],
    prune: bool,
) -> Result<Vec<RefChange>> {
    let specs: Vec<Spec<'_>> = refspecs
        .iter()
        .map(|s| Spec::parse(s))
        .collect::<Result<_>>()?;
    let local_dsts = |repo: &Repository| -> Result<BTreeMap<RefName, ObjectId>> {
        Ok(ops::all_refs(repo)?
            .into_iter()
            .filter(|(n, _)| specs.iter().any(|s| s.matches_dst(n.as_str())))
            .collect())
    };
    let before = local_dsts(repo)?;
    let outcome = RefCell::new(Outcome::default());
    let mut r = connect(repo, remote)?;
    let mut conn = r
        .connect_auth(Direction::Fetch, Some(callbacks(remote, &outcome)), None)
        .map_err(|e| network_error(remote, "connect to", e, &outcome))?;
    let heads = advertised(
        conn.list()
            .map_err(|e| network_error(remote, "list references of", e, &outcome))?,
    );
    // What each local destination should become, from the advertisement.
    let mut wanted: BTreeMap<String, ObjectId> = BTreeMap::new();
    for (name, id) in &heads {
        for s in &specs {
            if let Some(dst) = s.map_src(name) {
                wanted.insert(dst, *id);
            }
        }
    }
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(_, id)| repo.find_commit(git_oid(**id)).is_err())
        .map(|(dst, _)| dst.clone())
        .collect();
    if !missing.is_empty() {
        let active: Vec<&str> = refspecs.iter().map(String::as_str).collect();
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(callbacks(remote, &outcome));
        fo.download_tags(AutotagOption::None);
        fo.update_fetchhead(false);
        let downloaded = conn.remote().download(&active, Some(&mut fo));
        // Ends a progress bar that the ticks may have started, whatever the outcome.
        tracing::trace!(target: PROGRESS_TARGET, remote = %remote.display, done = true);
        downloaded.map_err(|e| network_error(remote, "fetch from", e, &outcome))?;
    }
    drop(conn);
    // Move the destinations ourselves: the advertisement says exactly what they should be.
    for (dst, id) in &wanted {
        let name = RefName::new(dst.clone())?;
        if before.get(&name) != Some(id) {
            ops::update_ref(
                repo,
                &RefUpdate {
                    name,
                    new: Some(*id),
                    expected: Expected::Any,
                    message: format!("fetch {}", remote.display),
                },
            )?;
        }
    }
    if prune {
        for name in before.keys() {
            if !wanted.contains_key(name.as_str()) {
                ops::update_ref(
                    repo,
                    &RefUpdate {
                        name: name.clone(),
                        new: None,
                        expected: Expected::Any,
                        message: "prune".into(),
                    },
                )?;
            }
        }
    }
    let after = local_dsts(repo)?;
    let mut changes = Vec::new();
    for name in before
        .keys()
        .chain(after.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (old, new) = (before.get(name).copied(), after.get(name).copied());
        if old != new {
            changes.push(RefChange {
                name: name.clone(),
                old,
                new,
            });
        }
    }
    Ok(changes)
}

fn describe(e: Expected) -> String {
    match e {
        Expected::Any => "anything".into(),
        Expected::Absent => "nothing".into(),
        Expected::Value(v) => v.to_string(),
    }
}

fn remote_moved(update: &PushUpdate, actual: Option<ObjectId>) -> Error {
    Error::RemoteMoved {
        reference: update.remote_ref.to_string(),
        expected: describe(update.expected),
        actual: actual.map_or_else(|| "nothing".into(), |a| a.to_string()),
    }
}

/// Pushes one reference update with compare-and-swap (BEHAVIOUR §3): the remote's
/// advertised value is compared with the expectation and the push goes out on the same
/// connection, so receive-pack moves the reference only if it still holds that value.
pub(crate) fn push(repo: &Repository, remote: &Remote, update: &PushUpdate) -> Result<()> {
    if update.expected == Expected::Any {
        return Err(Error::invalid(
            "a push must say what the remote reference holds now (Expected::Any is refused)",
        ));
    }
    if let Some(path) = remote.url.strip_prefix("file://") {
        return push_local(repo, remote, std::path::Path::new(path), update);
    }
    let outcome = RefCell::new(Outcome::default());
    let mut r = connect(repo, remote)?;
    let mut conn = r
        .connect_auth(Direction::Push, Some(callbacks(remote, &outcome)), None)
        .map_err(|e| network_error(remote, "connect to", e, &outcome))?;
    let heads = advertised(
        conn.list()
            .map_err(|e| network_error(remote, "list references of", e, &outcome))?,
    );
    let current = heads.get(update.remote_ref.as_str()).copied();
    if !update.expected.matches(current) {
        return Err(remote_moved(update, current));
    }
    if current.is_some() && current == update.local {
        return Ok(());
    }
    let spec = match update.local {
        Some(id) => format!("{id}:{}", update.remote_ref),
        None => format!(":{}", update.remote_ref),
    };
    let mut po = PushOptions::new();
    po.remote_callbacks(callbacks(remote, &outcome));
    let result = conn.remote().push(&[spec.as_str()], Some(&mut po));
    drop(conn);
    if let Err(e) = result {
        if e.code() == git2::ErrorCode::NotFastForward {
            return Err(remote_moved(update, current));
        }
        return Err(network_error(remote, "push to", e, &outcome));
    }
    let rejection = outcome.borrow_mut().rejections.pop();
    if let Some((reference, reason)) = rejection {
        // A competing push that won between our connection and our update also shows up as
        // a per-reference failure: tell the two apart by looking again.
        let now = ls_remote(repo, remote)?
            .into_iter()
            .find(|r| r.name == update.remote_ref)
            .map(|r| r.target);
        if !update.expected.matches(now) && now != update.local {
            return Err(remote_moved(update, now));
        }
        return Err(Error::Rejected { reference, reason });
    }
    Ok(())
}

/// `file://` remotes: libgit2's local transport does not check the old value, so objects go
/// to a unique temporary reference and the branch is moved with a compare-and-swap on the
/// remote repository itself.
fn push_local(
    repo: &Repository,
    remote: &Remote,
    path: &std::path::Path,
    update: &PushUpdate,
) -> Result<()> {
    let target = Repository::open(path).map_err(|e| {
        Error::NotFound(format!(
            "failed to open `{}`: {}",
            remote.display,
            e.message()
        ))
    })?;
    let current = ops::resolve(&target, &update.remote_ref)?;
    if !update.expected.matches(current) {
        return Err(remote_moved(update, current));
    }
    if let Some(id) = update.local {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = format!(
            "refs/flipt-tmp/{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            nanos
        );
        let outcome = RefCell::new(Outcome::default());
        let spec = format!("{id}:{tmp}");
        // Another writer's temporary reference may vanish while libgit2 lists the remote's
        // references: pushing to our own unique temporary reference again is harmless.
        let pushed = retry_vanished(|| {
            let mut r = connect(repo, remote)?;
            let mut po = PushOptions::new();
            po.remote_callbacks(callbacks(remote, &outcome));
            r.push(&[spec.as_str()], Some(&mut po))
                .map_err(|e| network_error(remote, "push to", e, &outcome))
        });
        let moved = pushed.and_then(|()| {
            ops::update_ref(
                &target,
                &RefUpdate {
                    name: update.remote_ref.clone(),
                    new: Some(id),
                    expected: update.expected,
                    message: "push".into(),
                },
            )
            .map_err(|e| match e {
                Error::RefMoved { actual, .. } => Error::RemoteMoved {
                    reference: update.remote_ref.to_string(),
                    expected: describe(update.expected),
                    actual,
                },
                other => other,
            })
        });
        if let Ok(mut t) = target.find_reference(&tmp) {
            let _ = t.delete();
        }
        moved
    } else {
        ops::update_ref(
            &target,
            &RefUpdate {
                name: update.remote_ref.clone(),
                new: None,
                expected: update.expected,
                message: "push".into(),
            },
        )
        .map_err(|e| match e {
            Error::RefMoved { actual, .. } => Error::RemoteMoved {
                reference: update.remote_ref.to_string(),
                expected: describe(update.expected),
                actual,
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_hosts_and_ports() {
        assert_eq!(
            ssh_host_port("ssh://git@example.com:2222/a/b.git"),
            Some(("example.com".into(), Some(2222)))
        );
        assert_eq!(
            ssh_host_port("ssh://example.com/a.git"),
            Some(("example.com".into(), None))
        );
        assert_eq!(
            ssh_host_port("git@github.com:org/r.git"),
            Some(("github.com".into(), None))
        );
        assert_eq!(
            ssh_host_port("ssh://git@[::1]:2200/r.git"),
            Some(("::1".into(), Some(2200)))
        );
        assert_eq!(ssh_host_port("https://h/r.git"), None);
    }

    #[test]
    fn refspecs_map_and_match() {
        let s = Spec::parse("+refs/heads/flipt/prod/*:refs/remotes/origin/flipt/prod/*").unwrap();
        assert_eq!(
            s.map_src("refs/heads/flipt/prod/a").as_deref(),
            Some("refs/remotes/origin/flipt/prod/a")
        );
        assert_eq!(s.map_src("refs/heads/main"), None);
        assert!(s.matches_dst("refs/remotes/origin/flipt/prod/x"));
        assert!(!s.matches_dst("refs/remotes/origin/main"));
        let e = Spec::parse("+refs/heads/main:refs/remotes/origin/main").unwrap();
        assert_eq!(
            e.map_src("refs/heads/main").as_deref(),
            Some("refs/remotes/origin/main")
        );
        assert!(Spec::parse("refs/heads/*:refs/remotes/x").is_err());
        assert!(Spec::parse("nodst").is_err());
    }
}
