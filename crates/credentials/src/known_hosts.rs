//! SSH host-key verification against `known_hosts` data: plain and hashed host entries,
//! `[host]:port` entries, wildcard and negated patterns, and `@revoked` keys.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Digest as _;
use ssh_key::known_hosts::{HostPatterns, KnownHosts, Marker};

use git_backend::HostKey;

/// The SHA-256 fingerprint of a key blob, as OpenSSH prints it (`SHA256:...`).
pub fn fingerprint(blob: &[u8]) -> String {
    let digest = sha2::Sha256::digest(blob);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

/// How `known_hosts` data judged a host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A matching entry has this exact key.
    Trusted,
    /// The key is listed as `@revoked` for this host.
    Revoked,
    /// The host is known with other keys of the same type: the key changed.
    Changed,
    /// The host is known, but only with keys of other types (listed).
    OtherTypes(Vec<String>),
    /// No entry names the host.
    Unknown,
}

/// The name a host is looked up by: `host` on port 22, `[host]:port` otherwise.
pub fn lookup_name(host: &str, port: Option<u16>) -> String {
    match port {
        None | Some(22) => host.to_owned(),
        Some(p) => format!("[{host}]:{p}"),
    }
}

/// Glob match with `*` and `?`, case-insensitive (host names are).
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn hashed_matches(salt: &[u8], hash: &[u8; 20], name: &str) -> bool {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(hash).is_ok()
}

fn host_matches(patterns: &HostPatterns, name: &str) -> bool {
    match patterns {
        HostPatterns::Patterns(list) => {
            let mut matched = false;
            for p in list {
                if let Some(negated) = p.strip_prefix('!') {
                    if glob(negated, name) {
                        return false;
                    }
                } else if glob(p, name) {
                    matched = true;
                }
            }
            matched
        }
        HostPatterns::HashedName { salt, hash } => hashed_matches(salt, hash, name),
    }
}

/// Judges `key` for `host`/`port` against `known_hosts` text. Lines that cannot be parsed
/// are skipped (and counted in the second value, for a log line).
pub fn judge(text: &str, host: &str, port: Option<u16>, key: &HostKey) -> (Verdict, usize) {
    let name = lookup_name(host, port);
    let mut skipped = 0;
    let mut same_type_seen = false;
    let mut other_types: Vec<String> = Vec::new();
    let mut trusted = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // Parse line by line so that one bad line does not hide the others.
        let Some(Ok(entry)) = KnownHosts::new(trimmed).next() else {
            skipped += 1;
            continue;
        };
        if !host_matches(entry.host_patterns(), &name) {
            continue;
        }
        let Ok(blob) = entry.public_key().to_bytes() else {
            skipped += 1;
            continue;
        };
        let algorithm = entry.public_key().algorithm().as_str().to_owned();
        match entry.marker() {
            Some(Marker::Revoked) => {
                if blob == key.blob {
                    return (Verdict::Revoked, skipped);
                }
            }
            // Host certificates are not offered by libssh2; such entries vouch for nothing here.
            Some(Marker::CertAuthority) => {}
            None => {
                if blob == key.blob {
                    trusted = true;
                } else if algorithm == key.algorithm {
                    same_type_seen = true;
                } else if !other_types.contains(&algorithm) {
                    other_types.push(algorithm);
                }
            }
        }
    }
    let verdict = if trusted {
        Verdict::Trusted
    } else if same_type_seen {
        Verdict::Changed
    } else if !other_types.is_empty() {
        Verdict::OtherTypes(other_types)
    } else {
        Verdict::Unknown
    };
    (verdict, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    fn key() -> HostKey {
        let blob = base64::engine::general_purpose::STANDARD
            .decode(ED)
            .unwrap();
        HostKey {
            algorithm: "ssh-ed25519".into(),
            blob,
        }
    }

    #[test]
    fn globs() {
        assert!(glob("*.example.com", "git.EXAMPLE.com"));
        assert!(glob("git?.example.com", "git1.example.com"));
        assert!(!glob("*.example.com", "example.com"));
        assert!(glob("[127.0.0.1]:2222", "[127.0.0.1]:2222"));
    }

    #[test]
    fn plain_ported_wildcard_and_negated_entries() {
        let k = key();
        assert_eq!(
            judge(
                &format!("example.com ssh-ed25519 {ED}\n"),
                "example.com",
                None,
                &k
            )
            .0,
            Verdict::Trusted
        );
        assert_eq!(
            judge(
                &format!("example.com ssh-ed25519 {ED}\n"),
                "example.com",
                Some(22),
                &k
            )
            .0,
            Verdict::Trusted
        );
        assert_eq!(
            judge(
                &format!("example.com ssh-ed25519 {ED}\n"),
                "example.com",
                Some(2222),
                &k
            )
            .0,
            Verdict::Unknown
        );
        assert_eq!(
            judge(
                &format!("[example.com]:2222 ssh-ed25519 {ED}\n"),
                "example.com",
                Some(2222),
                &k
            )
            .0,
            Verdict::Trusted
        );
        assert_eq!(
            judge(
                &format!("*.example.com,!bad.example.com ssh-ed25519 {ED}\n"),
                "git.example.com",
                None,
                &k
            )
            .0,
            Verdict::Trusted
        );
        assert_eq!(
            judge(
                &format!("*.example.com,!bad.example.com ssh-ed25519 {ED}\n"),
                "bad.example.com",
                None,
                &k
            )
            .0,
            Verdict::Unknown
        );
        assert_eq!(
            judge(
                &format!("# comment\n\ngarbage line\nexample.com ssh-ed25519 {ED}\n"),
                "example.com",
                None,
                &k
            ),
            (Verdict::Trusted, 1)
        );
    }

    #[test]
    fn revoked_and_changed_keys() {
        let k = key();
        let text = format!("example.com ssh-ed25519 {ED}\n@revoked example.com ssh-ed25519 {ED}\n");
        assert_eq!(judge(&text, "example.com", None, &k).0, Verdict::Revoked);
        let other = "AAAAC3NzaC1lZDI1NTE5AAAAIBBBqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        assert_eq!(
            judge(
                &format!("example.com ssh-ed25519 {other}\n"),
                "example.com",
                None,
                &k
            )
            .0,
            Verdict::Changed
        );
    }

    #[test]
    fn fingerprints_look_like_openssh() {
        let f = fingerprint(&key().blob);
        assert!(f.starts_with("SHA256:") && !f.ends_with('='), "{f}");
        assert_eq!(f.len(), "SHA256:".len() + 43);
    }
}
