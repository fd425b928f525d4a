//! Conditional requests (RFC 9110 §13): what `If-Match`, `If-None-Match`,
//! `If-Modified-Since` and `If-Range` decide, as a pure function of the
//! request's headers and the representation's validators.
//!
//! The ETag is strong (the content hash), so `If-Range` with an ETag is a
//! byte-exact promise: a resumed download either continues the same bytes or
//! gets the whole new file, never a splice of two versions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The request's conditional headers, as sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct Conditions<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_range: Option<&'a str>,
}

/// What to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// 412: `If-Match` named other versions.
    PreconditionFailed,
    /// 304: the client's copy is current.
    NotModified,
    /// Serve, and honour a `Range` header if there is one.
    Serve { honour_range: bool },
}

/// The representation's validators: its strong ETag (quoted, as sent) and
/// last modification (whole seconds, as HTTP dates carry them).
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    pub etag: Option<&'a str>,
    pub last_modified_secs: Option<u64>,
}

pub fn decide(c: &Conditions, v: &Validators) -> Decision {
    if let Some(h) = c.if_match {
        // Strong comparison; a representation without an ETag matches only `*`... and
        // not even that when it does not exist, which cannot happen here.
        let ok = h.trim() == "*" || v.etag.is_some_and(|e| tags(h).any(|t| !is_weak(t) && t == e));
        if !ok {
            return Decision::PreconditionFailed;
        }
    }
    if let Some(h) = c.if_none_match {
        // Weak comparison, as RFC 9110 §13.1.2 says for If-None-Match.
        let hit = h.trim() == "*" || v.etag.is_some_and(|e| tags(h).any(|t| opaque(t) == opaque(e)));
        if hit {
            return Decision::NotModified;
        }
    } else if let (Some(h), Some(lm)) = (c.if_modified_since, v.last_modified_secs) {
        if let Some(since) = http_date_secs(h) {
            if lm <= since {
                return Decision::NotModified;
            }
        }
    }
    let honour_range = match c.if_range {
        None => true,
        Some(h) => {
            let h = h.trim();
            if h.starts_with('"') || h.starts_with("W/") {
                // Only a strong tag equal to ours: a weak one never validates a range.
                !is_weak(h) && v.etag == Some(h)
            } else {
                // A date validates only if it is exactly the last modification.
                matches!((http_date_secs(h), v.last_modified_secs), (Some(d), Some(lm)) if d == lm)
            }
        }
    };
    Decision::Serve { honour_range }
}

/// The entity tags of a comma-separated list.
fn tags(h: &str) -> impl Iterator<Item = &str> {
    h.split(',').map(str::trim).filter(|t| !t.is_empty())
}

fn is_weak(t: &str) -> bool {
    t.starts_with("W/")
}

fn opaque(t: &str) -> &str {
    t.strip_prefix("W/").unwrap_or(t)
}

/// Seconds since the epoch of an HTTP date (None: not a date).
pub fn http_date_secs(h: &str) -> Option<u64> {
    httpdate::parse_http_date(h.trim()).ok()?.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// The HTTP date of `secs` since the epoch.
pub fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Whole seconds of a modification time in nanoseconds (before 1970: 0).
pub fn secs_of_ns(ns: i64) -> u64 {
    u64::try_from(ns / 1_000_000_000).unwrap_or(0)
}

/// Now, in seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "\"abc\"";
    const LM: u64 = 1_700_000_000;

    fn v() -> Validators<'static> {
        Validators { etag: Some(TAG), last_modified_secs: Some(LM) }
    }

    fn d(c: Conditions) -> Decision {
        decide(&c, &v())
    }

    const SERVE_RANGE: Decision = Decision::Serve { honour_range: true };
    const SERVE_WHOLE: Decision = Decision::Serve { honour_range: false };

    #[test]
    fn no_conditions_serve_and_honour_a_range() {
        assert_eq!(d(Conditions::default()), SERVE_RANGE);
    }

    #[test]
    fn if_none_match_with_our_tag_is_304_and_weak_tags_count() {
        assert_eq!(d(Conditions { if_none_match: Some(TAG), ..Default::default() }), Decision::NotModified);
        assert_eq!(d(Conditions { if_none_match: Some("\"x\", W/\"abc\""), ..Default::default() }), Decision::NotModified);
        assert_eq!(d(Conditions { if_none_match: Some("*"), ..Default::default() }), Decision::NotModified);
        assert_eq!(d(Conditions { if_none_match: Some("\"other\""), ..Default::default() }), SERVE_RANGE);
    }

    #[test]
    fn if_modified_since_is_ignored_when_if_none_match_is_there() {
        let date = http_date(LM + 10);
        assert_eq!(d(Conditions { if_modified_since: Some(&date), ..Default::default() }), Decision::NotModified);
        let c = Conditions { if_none_match: Some("\"other\""), if_modified_since: Some(&date), ..Default::default() };
        assert_eq!(d(c), SERVE_RANGE);
        let older = http_date(LM - 1);
        assert_eq!(d(Conditions { if_modified_since: Some(&older), ..Default::default() }), SERVE_RANGE);
        assert_eq!(d(Conditions { if_modified_since: Some("not a date"), ..Default::default() }), SERVE_RANGE);
    }

    #[test]
    fn if_range_with_our_strong_tag_honours_the_range_anything_else_sends_the_whole() {
        assert_eq!(d(Conditions { if_range: Some(TAG), ..Default::default() }), SERVE_RANGE);
        assert_eq!(d(Conditions { if_range: Some("\"changed\""), ..Default::default() }), SERVE_WHOLE);
        assert_eq!(d(Conditions { if_range: Some("W/\"abc\""), ..Default::default() }), SERVE_WHOLE);
        let exact = http_date(LM);
        assert_eq!(d(Conditions { if_range: Some(&exact), ..Default::default() }), SERVE_RANGE);
        let later = http_date(LM + 1);
        assert_eq!(d(Conditions { if_range: Some(&later), ..Default::default() }), SERVE_WHOLE);
        assert_eq!(d(Conditions { if_range: Some("garbage"), ..Default::default() }), SERVE_WHOLE);
    }

    #[test]
    fn if_match_uses_strong_comparison() {
        assert_eq!(d(Conditions { if_match: Some(TAG), ..Default::default() }), SERVE_RANGE);
        assert_eq!(d(Conditions { if_match: Some("*"), ..Default::default() }), SERVE_RANGE);
        assert_eq!(d(Conditions { if_match: Some("W/\"abc\""), ..Default::default() }), Decision::PreconditionFailed);
        assert_eq!(d(Conditions { if_match: Some("\"x\""), ..Default::default() }), Decision::PreconditionFailed);
    }

    #[test]
    fn http_dates_round_trip() {
        assert_eq!(http_date_secs(&http_date(LM)), Some(LM));
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(secs_of_ns(-5), 0);
    }
}
