//! The `Range` request header (RFC 9110 §14), as a pure function of the
//! header's text and the representation's length: no I/O, so every case is a
//! unit test and a property test.
//!
//! Decisions a server must make, and the ones made here (nginx makes the same):
//! - a range whose first byte is past its last (`bytes=5-1`) or a header that
//!   does not parse is refused (416), not silently ignored, so a client bug
//!   shows instead of costing a whole-file transfer;
//! - at most `MAX_RANGES` ranges: a header of 10,000 tiny ranges is a request
//!   for 10,000 multipart headers and seeks, refused with 416;
//! - ranges that overlap or touch are coalesced (RFC 9110 §14.2 allows it), so
//!   `bytes=0-,0-,0-` cannot make one request send the file many times.

/// The most ranges one request may ask for.
pub const MAX_RANGES: usize = 64;

/// A byte range, `end` exclusive, within the representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
    /// The `Content-Range` value of this range of a `size`-byte representation.
    pub fn content_range(&self, size: u64) -> String {
        format!("bytes {}-{}/{}", self.start, self.end - 1, size)
    }
}

/// What a `Range` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No header, or a unit other than bytes: the whole representation (200).
    Whole,
    /// One or more satisfiable ranges, in the order to send them (206).
    Ranges(Vec<ByteRange>),
    /// Nothing to send (416 with `Content-Range: bytes */size`); the reason is
    /// for the response body.
    Unsatisfiable(String),
}

/// Parse `header` (the value of `Range`, if any) against a representation of `size` bytes.
pub fn parse(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(h) = header else { return RangeRequest::Whole };
    let h = h.trim();
    let Some((unit, set)) = h.split_once('=') else {
        return RangeRequest::Unsatisfiable(format!("malformed Range header '{}'; expected e.g. bytes=0-1023", clip(h)));
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        // RFC 9110: a range unit the server does not know is ignored.
        return RangeRequest::Whole;
    }
    let specs: Vec<&str> = set.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if specs.is_empty() {
        return RangeRequest::Unsatisfiable("empty Range header; expected e.g. bytes=0-1023".into());
    }
    if specs.len() > MAX_RANGES {
        return RangeRequest::Unsatisfiable(format!("{} ranges in one request; at most {MAX_RANGES} are served", specs.len()));
    }
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        match parse_one(spec, size) {
            Ok(Some(r)) => out.push(r),
            Ok(None) => {} // valid but outside the representation
            Err(msg) => return RangeRequest::Unsatisfiable(msg),
        }
    }
    if out.is_empty() {
        return RangeRequest::Unsatisfiable(format!("no requested range overlaps the {size} bytes there are"));
    }
    RangeRequest::Ranges(coalesce(out))
}

/// One `first-last`, `first-` or `-suffix`. Ok(None): well-formed but not
/// satisfiable for this size (starts at or past the end, or an empty suffix).
fn parse_one(spec: &str, size: u64) -> Result<Option<ByteRange>, String> {
    let bad = || format!("malformed range '{}'; expected first-last, first- or -suffix in bytes", clip(spec));
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Result<u64, String> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        // A number too large for u64 is past any end: treat it as the largest.
        Ok(s.parse::<u64>().unwrap_or(u64::MAX))
    };
    if a.is_empty() {
        let n = num(b)?;
        if n == 0 || size == 0 {
            return Ok(None);
        }
        return Ok(Some(ByteRange { start: size.saturating_sub(n), end: size }));
    }
    let first = num(a)?;
    let last = if b.is_empty() { None } else { Some(num(b)?) };
    if let Some(last) = last {
        if last < first {
            return Err(format!("range '{}' ends before it starts", clip(spec)));
        }
    }
    if first >= size {
        return Ok(None);
    }
    let end = last.map(|l| l.saturating_add(1).min(size)).unwrap_or(size);
    Ok(Some(ByteRange { start: first, end }))
}

/// Ranges in request order, unless two overlap or touch: then sorted and merged.
fn coalesce(mut rs: Vec<ByteRange>) -> Vec<ByteRange> {
    let mut sorted = rs.clone();
    sorted.sort_by_key(|r| r.start);
    let touches = sorted.windows(2).any(|w| w[1].start <= w[0].end);
    if !touches {
        return rs;
    }
    rs.clear();
    for r in sorted {
        match rs.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => rs.push(r),
        }
    }
    rs
}

/// A header quoted in a message, cut so a 10 KiB header does not become a 10 KiB body.
fn clip(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ranges(h: &str, size: u64) -> Vec<(u64, u64)> {
        match parse(Some(h), size) {
            RangeRequest::Ranges(v) => v.iter().map(|r| (r.start, r.end)).collect(),
            other => panic!("{h}: {other:?}"),
        }
    }

    fn refused(h: &str, size: u64) -> String {
        match parse(Some(h), size) {
            RangeRequest::Unsatisfiable(m) => m,
            other => panic!("{h}: expected 416, got {other:?}"),
        }
    }

    #[test]
    fn single_open_and_suffix_ranges() {
        assert_eq!(ranges("bytes=0-99", 1000), [(0, 100)]);
        assert_eq!(ranges("bytes=900-", 1000), [(900, 1000)]);
        assert_eq!(ranges("bytes=-100", 1000), [(900, 1000)]);
        // Past the end is clipped, a suffix longer than the file is the file.
        assert_eq!(ranges("bytes=990-5000", 1000), [(990, 1000)]);
        assert_eq!(ranges("bytes=-5000", 1000), [(0, 1000)]);
        assert_eq!(ranges("BYTES = 1-1", 10), [(1, 2)]);
    }

    #[test]
    fn no_header_or_another_unit_is_the_whole_file() {
        assert_eq!(parse(None, 10), RangeRequest::Whole);
        assert_eq!(parse(Some("items=0-3"), 10), RangeRequest::Whole);
    }

    #[test]
    fn multiple_ranges_keep_their_order_unless_they_overlap() {
        assert_eq!(ranges("bytes=500-599,0-99", 1000), [(500, 600), (0, 100)]);
        assert_eq!(ranges("bytes=0-99,50-199,500-", 1000), [(0, 200), (500, 1000)]);
        // Touching ranges merge too: one part is cheaper than two.
        assert_eq!(ranges("bytes=100-199,0-99", 1000), [(0, 200)]);
        // The same range many times is sent once.
        assert_eq!(ranges("bytes=0-,0-,0-,0-", 1000), [(0, 1000)]);
    }

    #[test]
    fn bad_ranges_are_refused_with_a_reason() {
        assert!(refused("bytes=5-1", 1000).contains("ends before it starts"));
        assert!(refused("bytes=abc", 1000).contains("malformed"));
        assert!(refused("bytes=1-2-3", 1000).contains("malformed"));
        assert!(refused("bytes=-", 1000).contains("malformed"));
        assert!(refused("bytes=", 1000).contains("empty"));
        assert!(refused("bytes 0-1", 1000).contains("malformed"));
        assert!(refused("bytes=+1-2", 1000).contains("malformed"));
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        assert!(refused("bytes=1000-", 1000).contains("overlaps"));
        assert!(refused("bytes=-0", 1000).contains("overlaps"));
        assert!(refused("bytes=0-", 0).contains("overlaps"));
        // One good range among bad ones is served.
        assert_eq!(ranges("bytes=5000-6000,0-0", 1000), [(0, 1)]);
    }

    #[test]
    fn ten_thousand_ranges_are_refused_and_the_message_stays_short() {
        let h = format!("bytes={}", (0..10_000).map(|i| format!("{i}-{i}")).collect::<Vec<_>>().join(","));
        let m = refused(&h, 1 << 20);
        assert!(m.contains("10000 ranges"), "{m}");
        let long = format!("bytes={}", "9".repeat(10_000));
        assert!(refused(&long, 10).len() < 300);
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        assert_eq!(ranges("bytes=0-99999999999999999999999", 10), [(0, 10)]);
        assert_eq!(ranges("bytes=-99999999999999999999999", 10), [(0, 10)]);
        assert!(refused("bytes=99999999999999999999999-", 10).contains("overlaps"));
    }

    #[test]
    fn content_range_names_the_last_byte_inclusive() {
        assert_eq!(ByteRange { start: 0, end: 100 }.content_range(1000), "bytes 0-99/1000");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever the header, the answer never reaches outside the file, no
        /// range is empty, and served ranges never overlap.
        #[test]
        fn any_header_gives_ranges_inside_the_file(h in "[ -~]{0,60}", size in 0u64..5000) {
            if let RangeRequest::Ranges(rs) = parse(Some(&h), size) {
                prop_assert!(!rs.is_empty() && rs.len() <= MAX_RANGES);
                for r in &rs {
                    prop_assert!(r.start < r.end && r.end <= size, "{:?} of {}", r, size);
                }
                let mut s = rs.clone();
                s.sort_by_key(|r| r.start);
                for w in s.windows(2) {
                    prop_assert!(w[0].end < w[1].start);
                }
            }
        }

        /// Well-formed single ranges select exactly the bytes RFC 9110 says.
        #[test]
        fn a_first_last_range_selects_those_bytes(a in 0u64..3000, len in 0u64..3000, size in 1u64..3000) {
            let b = a + len;
            let got = parse(Some(&format!("bytes={a}-{b}")), size);
            if a >= size {
                prop_assert!(matches!(got, RangeRequest::Unsatisfiable(_)));
            } else {
                prop_assert_eq!(got, RangeRequest::Ranges(vec![ByteRange { start: a, end: (b + 1).min(size) }]));
            }
        }

        #[test]
        fn range_lists_made_of_numbers_never_panic(parts in proptest::collection::vec((0u64..100, 0u64..100, 0u8..3), 1..80), size in 0u64..200) {
            let h = format!("bytes={}", parts.iter().map(|(a, b, k)| match k { 0 => format!("{a}-{b}"), 1 => format!("{a}-"), _ => format!("-{b}") }).collect::<Vec<_>>().join(","));
            let _ = parse(Some(&h), size);
        }
    }
}
