//! Bearer-token checks of the API and HMAC checks of webhooks: one of the two audited places
//! that read secrets (`expose_secret`), and both compare in constant time.

use std::collections::BTreeMap;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// The accepted bearer tokens, kept only as SHA-256 digests.
#[derive(Clone)]
pub(crate) struct Tokens {
    digests: Arc<Vec<[u8; 32]>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.digests.len())
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Equal-length comparison whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tokens {
    pub(crate) fn new(tokens: &BTreeMap<String, SecretString>) -> Self {
        Tokens {
            digests: Arc::new(
                tokens
                    .values()
                    .map(|t| digest(t.expose_secret().as_bytes()))
                    .collect(),
            ),
        }
    }

    /// Whether `authorization` (the header value) carries an accepted bearer token.
    pub(crate) fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(token) = authorization.and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        }) else {
            return false;
        };
        let given = digest(token.trim().as_bytes());
        // Compare against every token, without stopping early.
        self.digests
            .iter()
            .fold(false, |found, d| found | constant_time_eq(d, &given))
    }
}

/// Checks a GitHub-style `X-Hub-Signature-256: sha256=<hex>` header over `body`.
pub(crate) fn webhook_signature_ok(
    secret: &SecretString,
    body: &[u8],
    header: Option<&str>,
) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else {
        return false;
    };
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let tokens = Tokens::new(&[("ci".to_owned(), SecretString::from("abc"))].into());
        assert!(tokens.accepts(Some("Bearer abc")));
        assert!(!tokens.accepts(Some("Bearer abd")));
        assert!(!tokens.accepts(Some("abc")));
        assert!(!tokens.accepts(None));
        assert!(!format!("{tokens:?}").contains("abc"));
    }

    #[test]
    fn webhook_signatures() {
        let secret = SecretString::from("s3cret");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"payload");
        let sig: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(webhook_signature_ok(
            &secret,
            b"payload",
            Some(&format!("sha256={sig}"))
        ));
        assert!(!webhook_signature_ok(
            &secret,
            b"payload2",
            Some(&format!("sha256={sig}"))
        ));
        assert!(!webhook_signature_ok(
            &secret,
            b"payload",
            Some("sha256=zz")
        ));
        assert!(!webhook_signature_ok(&secret, b"payload", None));
    }
}
