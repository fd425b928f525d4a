//! ASC MHL v2 manifests (the ASC Media Hash List, as camera-to-post
//! verification tools such as `ascmhl`, Silverstack or ShotPut write them): an
//! `ascmhl/` folder at the root of what it covers, holding one hash list per
//! generation (`0001_<name>_<date>.mhl`) and `ascmhl_chain.xml`, which names
//! each generation with the C4 id of its file.

use sha2::Digest;

/// One file a manifest lists.
#[derive(Debug, Clone)]
pub struct MhlEntry {
    /// Relative to the manifest's root, `/`-separated.
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub md5: String,
    pub xxh64: String,
}

/// The two files of a first-generation history: (relative path, bytes).
pub fn manifest_files(root_name: &str, entries: &[MhlEntry], now_ns: i64, host: &str) -> Vec<(String, Vec<u8>)> {
    let list = hash_list(entries, now_ns, host);
    let safe_name: String = root_name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let t = utc(now_ns);
    let file = format!("0001_{safe_name}_{:04}-{:02}-{:02}_{:02}{:02}{:02}Z.mhl", t.0, t.1, t.2, t.3, t.4, t.5);
    let chain = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ascmhldirectory xmlns=\"urn:ASC:MHL:DIRECTORY:v2.0\">\n  <hashlist sequencenr=\"1\">\n    <path>{}</path>\n    <c4>{}</c4>\n  </hashlist>\n</ascmhldirectory>\n",
        escape(&file),
        c4_id(list.as_bytes())
    );
    vec![(format!("ascmhl/{file}"), list.into_bytes()), ("ascmhl/ascmhl_chain.xml".to_string(), chain.into_bytes())]
}

fn hash_list(entries: &[MhlEntry], now_ns: i64, host: &str) -> String {
    let now = iso(now_ns);
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<hashlist version=\"2.0\" xmlns=\"urn:ASC:MHL:v2.0\">\n");
    x.push_str(&format!(
        "  <creatorinfo>\n    <creationdate>{now}</creationdate>\n    <hostname>{}</hostname>\n    <tool version=\"{}\">reelfs</tool>\n  </creatorinfo>\n",
        escape(host),
        env!("CARGO_PKG_VERSION")
    ));
    x.push_str("  <processinfo>\n    <process>transfer</process>\n    <ignore>\n      <pattern>.DS_Store</pattern>\n      <pattern>ascmhl</pattern>\n      <pattern>ascmhl/</pattern>\n    </ignore>\n  </processinfo>\n  <hashes>\n");
    for e in entries {
        x.push_str(&format!(
            "    <hash>\n      <path size=\"{}\" lastmodificationdate=\"{}\">{}</path>\n      <md5 action=\"original\" hashdate=\"{now}\">{}</md5>\n      <xxh64 action=\"original\" hashdate=\"{now}\">{}</xxh64>\n    </hash>\n",
            e.size,
            iso(e.mtime_ns),
            escape(&e.path),
            escape(&e.md5),
            escape(&e.xxh64)
        ));
    }
    x.push_str("  </hashes>\n</hashlist>\n");
    x
}

/// Text for XML content and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => out.push_str(&format!("&#x{:X};", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The C4 id of `data` (SMPTE ST 2114): SHA-512 as a base-58 number, 88
/// digits padded with '1' (the alphabet's zero), after `c4`.
pub fn c4_id(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut n: Vec<u8> = sha2::Sha512::digest(data).to_vec();
    let mut digits = Vec::new();
    while n.iter().any(|b| *b != 0) {
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let cur = (rem << 8) | *b as u32;
            *b = (cur / 58) as u8;
            rem = cur % 58;
        }
        digits.push(ALPHABET[rem as usize]);
    }
    while digits.len() < 88 {
        digits.push(b'1');
    }
    digits.reverse();
    format!("c4{}", String::from_utf8_lossy(&digits))
}

/// (year, month, day, hour, minute, second) in UTC.
pub fn utc(ns: i64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = ns.div_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d, (rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32)
}

/// ISO 8601 in UTC, to the second, as MHL dates are written.
pub fn iso(ns: i64) -> String {
    let t = utc(ns);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00", t.0, t.1, t.2, t.3, t.4, t.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c4_of_empty_input_matches_the_reference() {
        // The C4 id of no bytes, as published with SMPTE ST 2114.
        assert_eq!(c4_id(b""), "c459dsjfscH38cYeXXYogktxf4Cd9ibshE3BHUo6a58hBXmRQdZrAkZzsWcbWtDg5oQstpDuni4Hirj75GEmTc1sFT");
    }

    #[test]
    fn dates_are_utc_civil() {
        assert_eq!(iso(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso(1_795_000_000 * 1_000_000_000), "2026-11-18T11:06:40+00:00");
    }

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(escape("a&b<c>\"'"), "a&amp;b&lt;c&gt;&quot;&apos;");
    }
}
