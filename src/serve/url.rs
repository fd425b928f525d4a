//! From a request target to a mount-relative path, and back.
//!
//! The path is percent-decoded exactly once, strictly (a `%` not followed by
//! two hex digits, or bytes that are not UTF-8, are refused), and the result
//! goes to `view::path::components` like every other path from a person: no
//! spelling of `..`, `/`, or NUL reaches the catalog. `%2F` decodes to a `/`
//! that separates components, as it would on a mount.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// The longest request path accepted (decoded paths are never longer).
pub const MAX_PATH: usize = 8192;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the URL is {0} bytes long; at most {MAX_PATH} are accepted")]
    TooLong(usize),
    #[error("bad percent-encoding in the URL near '{0}': '%' must be followed by two hex digits (write a literal % as %25)")]
    BadPercent(String),
    #[error("the URL's path does not decode to UTF-8 text; names in the archive are UTF-8")]
    NotUtf8,
}

/// The mount-relative path of a request path (`/main/Day01/a.mov` ->
/// `main/Day01/a.mov`; `/` -> ``). One trailing `/` (a folder's URL) is dropped.
pub fn decode_path(raw: &str) -> Result<String, UrlError> {
    if raw.len() > MAX_PATH {
        return Err(UrlError::TooLong(raw.len()));
    }
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => {
                    let end = (i + 3).min(b.len());
                    return Err(UrlError::BadPercent(String::from_utf8_lossy(&b[i..end]).into_owned()));
                }
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).map_err(|_| UrlError::NotUtf8)?;
    let s = s.strip_prefix('/').unwrap_or(&s);
    Ok(s.strip_suffix('/').unwrap_or(s).to_string())
}

/// Characters escaped in a path we print: controls, space, and those that
/// mean something else in a URL (`?`, `#`, `%`) or that shells and chat
/// programs cut links at. `:` and `@` stay readable (slice names).
const PATH_SET: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');

/// `/`-joined, percent-encoded URL path of a mount-relative path.
pub fn encode_path(path: &str) -> String {
    format!("/{}", utf8_percent_encode(path, PATH_SET))
}

/// A query's `key=value` pairs, percent-decoded (`+` is a space only in
/// forms, not here). Pairs that do not decode are dropped: a query only
/// carries optional parameters, whose absence the caller reports.
pub fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = q else { return Vec::new() };
    q.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let k = percent_encoding::percent_decode_str(k).decode_utf8().ok()?;
            let v = percent_encoding::percent_decode_str(v).decode_utf8().ok()?;
            Some((k.into_owned(), v.into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_decode_once() {
        assert_eq!(decode_path("/main/Day01/A001C003.mov").unwrap(), "main/Day01/A001C003.mov");
        assert_eq!(decode_path("/").unwrap(), "");
        assert_eq!(decode_path("/main/Day01/").unwrap(), "main/Day01");
        assert_eq!(decode_path("/main/My%20Clip.mov").unwrap(), "main/My Clip.mov");
        // Decoded once: %2525 is the name "%25", not "%".
        assert_eq!(decode_path("/main/a%2525").unwrap(), "main/a%25");
        assert_eq!(decode_path("/main/caf%C3%A9.wav").unwrap(), "main/café.wav");
    }

    #[test]
    fn encoded_dot_dot_and_nul_decode_to_what_the_resolver_refuses() {
        use crate::view::path::{components, PathError};
        let p = decode_path("/main/%2e%2e/%2E%2E/etc/passwd").unwrap();
        assert!(matches!(components(&p), Err(PathError::DotDot(_))), "{p}");
        let p = decode_path("/main/a%00b").unwrap();
        assert_eq!(components(&p), Err(PathError::Nul));
        let p = decode_path("//etc/passwd").unwrap();
        assert!(matches!(components(&p), Err(PathError::Absolute(_))), "{p}");
        let p = decode_path("/main%2F..%2F..").unwrap();
        assert!(matches!(components(&p), Err(PathError::DotDot(_))), "{p}");
    }

    #[test]
    fn bad_percent_encoding_and_non_utf8_are_refused() {
        assert_eq!(decode_path("/main/a%zz"), Err(UrlError::BadPercent("%zz".into())));
        assert_eq!(decode_path("/main/a%4"), Err(UrlError::BadPercent("%4".into())));
        assert_eq!(decode_path("/main/a%"), Err(UrlError::BadPercent("%".into())));
        assert_eq!(decode_path("/main/%ff%fe"), Err(UrlError::NotUtf8));
    }

    #[test]
    fn overlong_urls_are_refused() {
        let long = format!("/main/{}", "a".repeat(MAX_PATH));
        assert_eq!(decode_path(&long), Err(UrlError::TooLong(long.len())));
    }

    #[test]
    fn encoding_then_decoding_gives_the_path_back() {
        for p in ["main/Day01/A001C003.mov@01:00:10:00-01:00:20:00+24", "main/My Clip #2?.mov", "main/100%.wav", "main/café"] {
            assert_eq!(decode_path(&encode_path(p)).unwrap(), p);
        }
        assert_eq!(encode_path("main/a b@01:00:00:00-01:00:01:00"), "/main/a%20b@01:00:00:00-01:00:01:00");
    }

    #[test]
    fn query_pairs_decode() {
        assert_eq!(query_pairs(Some("expires=10&sig=ab%20")), [("expires".into(), "10".into()), ("sig".into(), "ab ".into())]);
        assert!(query_pairs(None).is_empty());
        assert_eq!(query_pairs(Some("tc&x=%ff")), [("tc".to_string(), String::new())]);
    }
}
