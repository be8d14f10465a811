//! Git branch-name rules (`git check-ref-format --branch`), so that a bad `branch` is caught
//! when the configuration loads rather than at the first fetch.

/// Checks that `name` is a valid git branch name; the error says which rule it breaks.
pub fn check_branch_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name == "@" || name.starts_with('-') {
        return Err(format!("`{name}` is not a valid branch name"));
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err("must not start or end with `/` or contain `//`".into());
    }
    if name.ends_with('.') {
        return Err("must not end with `.`".into());
    }
    if name.contains("..") || name.contains("@{") {
        return Err("must not contain `..` or `@{`".into());
    }
    if let Some(c) = name.chars().find(|c| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        return Err(format!(
            "must not contain {:?} (spaces, control characters and ~ ^ : ? * [ \\ are not allowed)",
            c
        ));
    }
    for component in name.split('/') {
        if component.starts_with('.') || component.ends_with(".lock") {
            return Err(format!(
                "component `{component}` must not start with `.` or end with `.lock`"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_names() {
        for ok in [
            "main",
            "develop",
            "flipt/prod/feature-1",
            "release-1.2",
            "a_b",
        ] {
            assert!(check_branch_name(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_what_git_refuses() {
        for bad in [
            "", "@", "-x", "/a", "a/", "a//b", "a.", "a..b", "a@{b", "a b", "a~1", "a^", "a:b",
            "a?", "a*", "a[", "a\\b", ".a", "a/.b", "a.lock", "a/b.lock", "a\u{7}",
        ] {
            assert!(check_branch_name(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
