//! Signed links: a URL that carries its own permission.
//!
//! `?expires=UNIX_SECS&sig=HEX` where `sig` is HMAC-SHA256, under the
//! server's key, of `expires` and the decoded mount-relative path. A link
//! opens exactly one path (a folder's link lists that folder; the files in it
//! need links of their own) until it expires. The signature is checked with
//! the MAC's constant-time comparison, so timing tells an attacker nothing
//! about how much of a guess was right.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// Fewer key bytes than this is a password, not a key.
pub const MIN_KEY_BYTES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("{0}: cannot read the token key ({1}); make one with `head -c 32 /dev/urandom > {0}` and keep it private")]
    KeyUnreadable(String, String),
    #[error("{0}: the token key has {1} bytes; use at least {MIN_KEY_BYTES} random bytes (`head -c 32 /dev/urandom > {0}`)")]
    KeyTooShort(String, usize),
    #[error("this server serves signed links only; ask for one made with `reelfs share ARCHIVE PATH`")]
    Unsigned,
    #[error("this link's signature does not match its path; links cannot be edited, ask for a new one (`reelfs share`)")]
    BadSignature,
    #[error("this link expired {0} seconds ago; ask for a new one (`reelfs share --expires ...`)")]
    Expired(u64),
}

/// The server's signing key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key, even in a debug log.
        write!(f, "Signer(<{} key bytes>)", self.key.len())
    }
}

impl Signer {
    pub fn new(key: Vec<u8>) -> Result<Signer, SignError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(SignError::KeyTooShort("key".into(), key.len()));
        }
        Ok(Signer { key })
    }

    /// The key in `path` (its bytes as they are; a trailing newline is part of it).
    pub fn from_file(path: &Path) -> Result<Signer, SignError> {
        let shown = path.display().to_string();
        let key = std::fs::read(path).map_err(|e| SignError::KeyUnreadable(shown.clone(), e.to_string()))?;
        if key.len() < MIN_KEY_BYTES {
            return Err(SignError::KeyTooShort(shown, key.len()));
        }
        Ok(Signer { key })
    }

    fn mac(&self, path: &str, expires: u64) -> HmacSha256 {
        // Any key length is valid for HMAC: `new_from_slice` cannot fail.
        let mut m = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        m.update(format!("reelfs-link-v1\n{expires}\n{path}").as_bytes());
        m
    }

    /// The signature of `path` (mount-relative, decoded) until `expires`.
    pub fn sign(&self, path: &str, expires: u64) -> String {
        hex::encode(self.mac(path, expires).finalize().into_bytes())
    }

    /// The query string that opens `path` until `expires`.
    pub fn query(&self, path: &str, expires: u64) -> String {
        format!("expires={expires}&sig={}", self.sign(path, expires))
    }

    /// Whether the request's `expires` and `sig` open `path` at `now`.
    pub fn verify(&self, path: &str, expires: Option<&str>, sig: Option<&str>, now: u64) -> Result<(), SignError> {
        let (Some(expires), Some(sig)) = (expires, sig) else { return Err(SignError::Unsigned) };
        let expires: u64 = expires.parse().map_err(|_| SignError::BadSignature)?;
        let sig = hex::decode(sig).map_err(|_| SignError::BadSignature)?;
        self.mac(path, expires).verify_slice(&sig).map_err(|_| SignError::BadSignature)?;
        // Checked after the signature, so an expiry date cannot be probed without a valid link.
        if now > expires {
            return Err(SignError::Expired(now - expires));
        }
        Ok(())
    }
}

/// `24h`, `90m`, `7d`, `3600s` or plain seconds, as seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a duration; write e.g. 24h, 90m, 7d or 3600s"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("'{s}': unknown unit '{unit}'; use s, m, h or d (e.g. 24h)")),
    };
    n.checked_mul(mult).filter(|&v| v > 0).ok_or_else(|| format!("'{s}' must be a positive duration, e.g. 24h"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap()
    }

    #[test]
    fn a_signed_link_opens_its_path_until_it_expires() {
        let s = signer();
        let sig = s.sign("main/a.mov", 1000);
        assert_eq!(s.verify("main/a.mov", Some("1000"), Some(&sig), 999), Ok(()));
        assert_eq!(s.verify("main/a.mov", Some("1000"), Some(&sig), 1000), Ok(()));
        assert_eq!(s.verify("main/a.mov", Some("1000"), Some(&sig), 1010), Err(SignError::Expired(10)));
    }

    #[test]
    fn edited_links_are_refused() {
        let s = signer();
        let sig = s.sign("main/a.mov", 1000);
        assert_eq!(s.verify("main/b.mov", Some("1000"), Some(&sig), 0), Err(SignError::BadSignature));
        assert_eq!(s.verify("main/a.mov", Some("2000"), Some(&sig), 0), Err(SignError::BadSignature));
        let mut bad = sig.clone();
        bad.replace_range(0..1, if &sig[0..1] == "0" { "1" } else { "0" });
        assert_eq!(s.verify("main/a.mov", Some("1000"), Some(&bad), 0), Err(SignError::BadSignature));
        assert_eq!(s.verify("main/a.mov", Some("1000"), Some("zz"), 0), Err(SignError::BadSignature));
        assert_eq!(s.verify("main/a.mov", Some("x"), Some(&sig), 0), Err(SignError::BadSignature));
        assert_eq!(s.verify("main/a.mov", None, Some(&sig), 0), Err(SignError::Unsigned));
        // Another key's signature does not open it.
        let other = Signer::new(b"another key, also sixteen+".to_vec()).unwrap();
        assert_eq!(s.verify("main/a.mov", Some("1000"), Some(&other.sign("main/a.mov", 1000)), 0), Err(SignError::BadSignature));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(matches!(Signer::new(b"short".to_vec()), Err(SignError::KeyTooShort(_, 5))));
        let msg = format!("{:?}", signer());
        assert!(!msg.contains("0123"), "{msg}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(86400));
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("7d"), Ok(7 * 86400));
        assert_eq!(parse_duration("30"), Ok(30));
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("1w").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
