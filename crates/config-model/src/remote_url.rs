//! Remote repository URLs: the forms git users write, parsed and checked once, and shown
//! without userinfo everywhere.

use std::fmt;

/// How a remote is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `https://`
    Https,
    /// `http://`
    Http,
    /// `ssh://user@host[:port]/path` or the scp form `user@host:path`.
    Ssh,
    /// `file://` (a repository on this machine).
    File,
}

impl Transport {
    /// The URL scheme, as written in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Https => "https",
            Transport::Http => "http",
            Transport::Ssh => "ssh",
            Transport::File => "file",
        }
    }
}

/// A validated remote URL.
///
/// Its `Display` and `Debug` forms leave out userinfo (and never could show a password: a URL
/// with one is refused by [`RemoteUrl::parse`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RemoteUrl {
    raw: String,
    transport: Transport,
    user: Option<String>,
    host: String,
    port: Option<u16>,
    path: String,
    scp: bool,
}

impl RemoteUrl {
    /// Parses a remote URL: `https://`, `http://`, `ssh://[user@]host[:port]/path`, the scp
    /// form `[user@]host:path`, or `file:///path`. A password in the URL is refused (it belongs
    /// in `credentials`).
    pub fn parse(text: &str) -> Result<RemoteUrl, String> {
        let raw = text.trim();
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("must not contain spaces or control characters".into());
        }
        if let Some(scheme_end) = raw.find("://") {
            Self::parse_scheme_url(raw, &raw[..scheme_end])
        } else {
            Self::parse_scp(raw)
        }
    }

    fn parse_scheme_url(raw: &str, scheme: &str) -> Result<RemoteUrl, String> {
        let transport = match scheme.to_ascii_lowercase().as_str() {
            "https" => Transport::Https,
            "http" => Transport::Http,
            "ssh" => Transport::Ssh,
            "file" => Transport::File,
            other => {
                return Err(format!(
                    "unsupported scheme `{other}` (allowed: https, http, ssh, file, or the scp form user@host:path)"
                ));
            }
        };
        let url = url::Url::parse(raw).map_err(|e| format!("is not a valid URL: {e}"))?;
        if url.password().is_some() {
            return Err(
                "must not contain a password; put it in a `credentials` entry and refer to it with `credentials`"
                    .into(),
            );
        }
        let user = (!url.username().is_empty()).then(|| url.username().to_owned());
        let host = url.host_str().unwrap_or_default().to_owned();
        match transport {
            Transport::File => {
                if user.is_some() || url.port().is_some() {
                    return Err("a file:// URL takes no user or port".into());
                }
                if !host.is_empty() && host != "localhost" {
                    return Err(format!(
                        "a file:// URL must name a local path, not host `{host}`"
                    ));
                }
            }
            _ if host.is_empty() => return Err("has no host".into()),
            _ => {}
        }
        let path = url.path().to_owned();
        if path.is_empty() || path == "/" {
            return Err("has no repository path".into());
        }
        Ok(RemoteUrl {
            raw: raw.to_owned(),
            transport,
            user,
            host,
            port: url.port(),
            path,
            scp: false,
        })
    }

    fn parse_scp(raw: &str) -> Result<RemoteUrl, String> {
        let not_url = || {
            format!(
                "`{}` is not a remote URL (use https://, http://, ssh://, file:// or user@host:path)",
                redact_userinfo(raw)
            )
        };
        let colon = raw.find(':').ok_or_else(not_url)?;
        if raw[..colon].contains('/') {
            return Err(not_url());
        }
        let (userhost, path) = (&raw[..colon], &raw[colon + 1..]);
        let (user, host) = match userhost.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, userhost),
        };
        if let Some(u) = user {
            if u.is_empty() {
                return Err("has an empty user before `@`".into());
            }
            if u.contains(':') {
                return Err("must not contain a password".into());
            }
        }
        if host.is_empty() || path.is_empty() {
            return Err(format!(
                "`{}` is not a valid scp-form remote (expected user@host:path)",
                redact_userinfo(raw)
            ));
        }
        Ok(RemoteUrl {
            raw: raw.to_owned(),
            transport: Transport::Ssh,
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port: None,
            path: path.to_owned(),
            scp: true,
        })
    }

    /// How the remote is reached.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The user named in the URL, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The host (empty for `file://`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, when the URL names one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The repository path on the host.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the URL is in scp form (`user@host:path`).
    pub fn is_scp_form(&self) -> bool {
        self.scp
    }

    /// The URL as written, for handing to the git transport. It may hold a user name, never
    /// a password; use `Display` for anything shown to people.
    pub fn as_transport_url(&self) -> &str {
        &self.raw
    }
}

/// Removes `user[:password]@` from a URL-like string, for messages about input that did not
/// parse as a URL.
pub fn redact_userinfo(text: &str) -> String {
    let (prefix, rest) = match text.find("://") {
        Some(i) => (&text[..i + 3], &text[i + 3..]),
        None => ("", text),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{prefix}{}", &rest[at + 1..]),
        None => text.to_owned(),
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scp {
            return write!(f, "{}:{}", self.host, self.path);
        }
        f.write_str(&redact_userinfo(&self.raw))
    }
}

impl fmt::Debug for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let u = RemoteUrl::parse("https://github.com/org/flags.git").unwrap();
        assert_eq!(
            (u.transport(), u.host(), u.path()),
            (Transport::Https, "github.com", "/org/flags.git")
        );
        let u = RemoteUrl::parse("http://127.0.0.1:8080/git/flags.git").unwrap();
        assert_eq!((u.transport(), u.port()), (Transport::Http, Some(8080)));
        let u = RemoteUrl::parse("ssh://git@example.com:2222/org/flags.git").unwrap();
        assert_eq!(
            (u.transport(), u.user(), u.port()),
            (Transport::Ssh, Some("git"), Some(2222))
        );
        let u = RemoteUrl::parse("git@github.com:org/flags.git").unwrap();
        assert_eq!(
            (u.transport(), u.user(), u.host(), u.path()),
            (Transport::Ssh, Some("git"), "github.com", "org/flags.git")
        );
        assert!(u.is_scp_form());
        let u = RemoteUrl::parse("file:///srv/git/flags.git").unwrap();
        assert_eq!(
            (u.transport(), u.path()),
            (Transport::File, "/srv/git/flags.git")
        );
    }

    #[test]
    fn refuses_passwords_without_echoing_them() {
        for url in [
            "https://alice:s3cret@example.com/r.git",
            "ssh://git:s3cret@example.com/r.git",
        ] {
            let err = RemoteUrl::parse(url).unwrap_err();
            assert!(err.contains("password"), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
        let err = RemoteUrl::parse("ftp://alice:s3cret@example.com/r.git").unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            "",
            "   ",
            "/srv/repo.git",
            "repo",
            "ftp://x/y",
            "https://",
            "https://host",
            "https://host/",
            "file://remotehost/x",
            "@host:path",
            "host:",
            "a b:c",
            "file://u@/x",
        ] {
            assert!(RemoteUrl::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn display_leaves_out_userinfo() {
        let u = RemoteUrl::parse("https://alice@example.com/r.git").unwrap();
        assert_eq!(u.to_string(), "https://example.com/r.git");
        assert_eq!(format!("{u:?}"), "RemoteUrl(https://example.com/r.git)");
        let u = RemoteUrl::parse("ssh://git@example.com:22/r.git").unwrap();
        assert_eq!(u.to_string(), "ssh://example.com:22/r.git");
        let u = RemoteUrl::parse("git@github.com:org/r.git").unwrap();
        assert_eq!(u.to_string(), "github.com:org/r.git");
        assert_eq!(redact_userinfo("x://a:b@h/p@q"), "x://h/p@q");
    }
}
