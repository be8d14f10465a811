//! Keys of namespaces, flags, segments and variants: `^[-_,A-Za-z0-9]+$`, at most 255
//! characters. Namespace keys become directory names, so nothing else may reach a tree path.

use crate::error::Error;

/// The longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

/// Whether `key` is a valid key: one to 255 characters out of `A-Z a-z 0-9 - _ ,`.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b','))
}

/// Why `key` is not valid, or `None`.
pub(crate) fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        Some("must not be empty".into())
    } else if key.len() > MAX_KEY_LEN {
        Some(format!(
            "is {} characters long (at most {MAX_KEY_LEN})",
            key.len()
        ))
    } else if !is_valid_key(key) {
        Some("must match ^[-_,A-Za-z0-9]+$".into())
    } else {
        None
    }
}

/// Checks a key; `kind` names what it is (`namespace`, `flag`, `segment`, `variant`).
pub fn validate_key(kind: &str, key: &str) -> Result<(), Error> {
    match key_problem(key) {
        None => Ok(()),
        Some(why) => Err(Error::invalid(format!(
            "invalid {kind} key \"{}\": {why}",
            shorten(key)
        ))),
    }
}

/// Cuts a user-supplied text for messages.
pub(crate) fn shorten(text: &str) -> String {
    let cut: String = text
        .chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if cut.len() < text.len() {
        format!("{cut}...")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["a", "my-flag", "A_b,c-1", &"x".repeat(255)] {
            assert!(is_valid_key(ok), "{ok}");
            assert!(validate_key("flag", ok).is_ok());
        }
        for bad in [
            "",
            "..",
            "a/b",
            "a b",
            "é",
            ".",
            "a.b",
            &"x".repeat(256),
            "a\0",
        ] {
            assert!(!is_valid_key(bad), "{bad:?}");
            let err = validate_key("flag", bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid flag key"), "{err}");
        }
    }
}
