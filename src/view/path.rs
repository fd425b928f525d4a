//! Checking a mount-relative path before anything is looked up.
//!
//! The mount gets names one at a time from the kernel, which never sends `..`
//! or `/` inside a name; the CLI and the HTTP server get whole paths from
//! people and from the network. Every such path goes through `components`
//! first, so no spelling of a path can climb out of the archive's namespace:
//! `..`, `.`, absolute paths, NUL and empty components are refused here, by
//! kind, before a single catalog row is read. Percent-decoding is the
//! caller's job (the server decodes once, then calls this).

/// The longest name one component may have, in bytes (Linux NAME_MAX).
pub const NAME_MAX: usize = 255;

/// Why a path was refused. Each says what to give instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("'{0}' is an absolute path; give a path inside the archive, starting with a branch (e.g. main/Day01/A001C003.mov)")]
    Absolute(String),
    #[error("'{0}' has an empty component (a doubled or trailing '/'); give each folder name once, e.g. main/Day01/A001C003.mov")]
    EmptyComponent(String),
    #[error("'{0}' contains '..'; name the file from the branch down (e.g. main/Day01/A001C003.mov), never upwards")]
    DotDot(String),
    #[error("'{0}' contains a '.' component; drop it and name the file from the branch down (e.g. main/Day01/A001C003.mov)")]
    Dot(String),
    #[error("the path contains a NUL byte; a name in the archive never does")]
    Nul,
    #[error("'{0}': a component is longer than 255 bytes, which no name in the archive can be")]
    NameTooLong(String),
}

/// The components of `path`, or why it is not a path inside the archive.
/// The empty path names the root (the list of branches).
pub fn components(path: &str) -> Result<Vec<&str>, PathError> {
    if path.contains('\0') {
        return Err(PathError::Nul);
    }
    if path.is_empty() {
        return Ok(Vec::new());
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute(path.to_string()));
    }
    let parts: Vec<&str> = path.split('/').collect();
    for p in &parts {
        match *p {
            "" => return Err(PathError::EmptyComponent(path.to_string())),
            ".." => return Err(PathError::DotDot(path.to_string())),
            "." => return Err(PathError::Dot(path.to_string())),
            p if p.len() > NAME_MAX => return Err(PathError::NameTooLong(path.to_string())),
            _ => {}
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_paths_split_into_their_names() {
        assert_eq!(components("main/Day01/A001/A001C003.mov").unwrap(), ["main", "Day01", "A001", "A001C003.mov"]);
        assert_eq!(components("main").unwrap(), ["main"]);
        assert!(components("").unwrap().is_empty());
        // Names a user may give that look odd but stay inside the archive.
        assert_eq!(components("main/A001C003.mov@01:00:10:00-01:00:20:00+24").unwrap().len(), 2);
        assert_eq!(components("main/..hidden/...").unwrap(), ["main", "..hidden", "..."]);
        assert_eq!(components(".history/main").unwrap(), [".history", "main"]);
    }

    #[test]
    fn dot_dot_is_refused_wherever_it_is() {
        for p in ["..", "../etc/passwd", "main/..", "main/../../etc", "main/Day01/../x"] {
            assert_eq!(components(p), Err(PathError::DotDot(p.to_string())), "{p}");
        }
    }

    #[test]
    fn absolute_paths_are_refused() {
        for p in ["/", "/etc/passwd", "/main/Day01"] {
            assert_eq!(components(p), Err(PathError::Absolute(p.to_string())), "{p}");
        }
    }

    #[test]
    fn nul_is_refused_before_anything_else() {
        assert_eq!(components("main/a\0b"), Err(PathError::Nul));
        assert_eq!(components("\0"), Err(PathError::Nul));
        assert_eq!(components("/x\0/.."), Err(PathError::Nul));
    }

    #[test]
    fn empty_and_dot_components_are_refused() {
        for p in ["main//x", "main/", "main/x/"] {
            assert_eq!(components(p), Err(PathError::EmptyComponent(p.to_string())), "{p}");
        }
        assert_eq!(components("main/./x"), Err(PathError::Dot("main/./x".into())));
        assert_eq!(components("."), Err(PathError::Dot(".".into())));
    }

    #[test]
    fn overlong_names_are_refused() {
        let long = format!("main/{}", "a".repeat(256));
        assert_eq!(components(&long), Err(PathError::NameTooLong(long.clone())));
        assert!(components(&format!("main/{}", "a".repeat(255))).is_ok());
    }

    #[test]
    fn every_message_says_what_to_give_instead() {
        for e in [components("/x"), components("a//b"), components("a/.."), components("a/./b")] {
            let msg = e.unwrap_err().to_string();
            assert!(msg.contains("main/"), "{msg}");
        }
    }
}
