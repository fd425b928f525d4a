//! The hashes a file gets on its way to tape, computed in one pass over its
//! bytes: BLAKE3 (what the archive verifies against), MD5 and SHA-1 (the LTFS
//! `ltfs.hash.*` extended attributes stock LTFS tools read) and xxHash64 (what
//! ASC MHL manifests from camera-to-post tools carry, with MD5).

use md5::Digest;

/// MD5 or SHA-1: the two hashes LTFS tools read that BLAKE3 and xxHash do not
/// replace. Through libcrypto when built with feature `tape-openssl` (about
/// 3x the md-5 crate's speed for MD5 on the bench machine, and MD5 is serial:
/// it set the pace of `tape write`); the pure-Rust crates otherwise, and when
/// libcrypto refuses the algorithm (an OpenSSL in FIPS-only mode has no MD5).
enum Legacy {
    #[cfg(feature = "tape-openssl")]
    OpenSsl(openssl::hash::Hasher),
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
}

#[derive(Clone, Copy)]
enum LegacyAlgo {
    Md5,
    Sha1,
}

impl Legacy {
    fn new(algo: LegacyAlgo) -> Legacy {
        #[cfg(feature = "tape-openssl")]
        {
            let md = match algo {
                LegacyAlgo::Md5 => openssl::hash::MessageDigest::md5(),
                LegacyAlgo::Sha1 => openssl::hash::MessageDigest::sha1(),
            };
            if let Ok(h) = openssl::hash::Hasher::new(md) {
                return Legacy::OpenSsl(h);
            }
        }
        match algo {
            LegacyAlgo::Md5 => Legacy::Md5(md5::Md5::new()),
            LegacyAlgo::Sha1 => Legacy::Sha1(sha1::Sha1::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            // EVP_DigestUpdate of an initialised MD5/SHA-1 context does not
            // fail (it only copies into the context's block buffer).
            #[cfg(feature = "tape-openssl")]
            Legacy::OpenSsl(h) => h.update(data).expect("libcrypto digest update"),
            Legacy::Md5(h) => h.update(data),
            Legacy::Sha1(h) => h.update(data),
        }
    }

    fn finish_hex(self) -> String {
        match self {
            #[cfg(feature = "tape-openssl")]
            Legacy::OpenSsl(mut h) => hex::encode(h.finish().expect("libcrypto digest final")),
            Legacy::Md5(h) => hex::encode(h.finalize()),
            Legacy::Sha1(h) => hex::encode(h.finalize()),
        }
    }
}

pub struct Hashing {
    blake3: blake3::Hasher,
    md5: Legacy,
    sha1: Legacy,
    xxh64: xxhash_rust::xxh64::Xxh64,
    pub bytes: u64,
}

/// The finished hashes, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct FileHashes {
    pub blake3: String,
    pub md5: String,
    pub sha1: String,
    pub xxh64: String,
}

impl Default for Hashing {
    fn default() -> Self {
        Hashing {
            blake3: blake3::Hasher::new(),
            md5: Legacy::new(LegacyAlgo::Md5),
            sha1: Legacy::new(LegacyAlgo::Sha1),
            xxh64: xxhash_rust::xxh64::Xxh64::new(0),
            bytes: 0,
        }
    }
}

impl Hashing {
    pub fn update(&mut self, data: &[u8]) {
        self.blake3.update(data);
        self.md5.update(data);
        self.sha1.update(data);
        self.xxh64.update(data);
        self.bytes += data.len() as u64;
    }

    pub fn finish(self) -> FileHashes {
        FileHashes {
            blake3: self.blake3.finalize().to_hex().to_string(),
            md5: self.md5.finish_hex(),
            sha1: self.sha1.finish_hex(),
            // ASC MHL writes xxh64 as 16 hex digits, big-endian.
            xxh64: format!("{:016x}", self.xxh64.digest()),
        }
    }
}

/// The same hashes in three parts that run on three threads: MD5 alone (the
/// slowest, and serial by design), SHA-1 with xxHash64, and BLAKE3 (fast)
/// on the thread that also writes. A profile of `tape write` had MD5 and
/// SHA-1 together on one thread as the slowest stage; apart, the pass runs at
/// the speed of MD5 alone. `Hashing` is their sum when one thread will do.
pub struct Blake3Part {
    blake3: blake3::Hasher,
    bytes: u64,
}
pub struct Md5Part(Legacy);
pub struct Sha1Xxh64Part {
    sha1: Legacy,
    xxh64: xxhash_rust::xxh64::Xxh64,
}

impl Hashing {
    pub fn parts() -> (Blake3Part, Md5Part, Sha1Xxh64Part) {
        (
            Blake3Part { blake3: blake3::Hasher::new(), bytes: 0 },
            Md5Part(Legacy::new(LegacyAlgo::Md5)),
            Sha1Xxh64Part { sha1: Legacy::new(LegacyAlgo::Sha1), xxh64: xxhash_rust::xxh64::Xxh64::new(0) },
        )
    }

    pub fn join(b: Blake3Part, m: Md5Part, s: Sha1Xxh64Part) -> FileHashes {
        Hashing { blake3: b.blake3, md5: m.0, sha1: s.sha1, xxh64: s.xxh64, bytes: b.bytes }.finish()
    }
}

impl Blake3Part {
    pub fn update(&mut self, data: &[u8]) {
        self.blake3.update(data);
        self.bytes += data.len() as u64;
    }

    pub fn finish_hex(&self) -> String {
        self.blake3.finalize().to_hex().to_string()
    }
}

impl Md5Part {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
}

impl Sha1Xxh64Part {
    pub fn update(&mut self, data: &[u8]) {
        self.sha1.update(data);
        self.xxh64.update(data);
    }
}

impl FileHashes {
    pub fn of(data: &[u8]) -> FileHashes {
        let mut h = Hashing::default();
        h.update(data);
        h.finish()
    }

    /// The extended attributes LTFS defines for hashes (LTFS Format 2.4,
    /// `ltfs.hash.<algorithm>sum`); on a Linux LTFS mount they are set in the
    /// `user.` namespace, which the driver strips before the index.
    pub fn ltfs_xattrs(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            ("ltfs.hash.md5sum".to_string(), self.md5.clone().into_bytes()),
            ("ltfs.hash.sha1sum".to_string(), self.sha1.clone().into_bytes()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        let h = FileHashes::of(b"hello\n");
        assert_eq!(h.md5, "b1946ac92492d2347c6235b4d2611184");
        assert_eq!(h.sha1, "f572d396fae9206628714fb2ce00f72e94f2258f");
        // As ascmhl 1.2 wrote for the same bytes.
        assert_eq!(h.xxh64, "e4c191d091bd8853");
        assert_eq!(h.blake3, blake3::hash(b"hello\n").to_hex().to_string());
        let (mut b, mut m, mut s) = Hashing::parts();
        for piece in [&b"hel"[..], b"lo\n"] {
            b.update(piece);
            m.update(piece);
            s.update(piece);
        }
        assert_eq!(Hashing::join(b, m, s), h);
    }

    #[test]
    fn the_pure_rust_fallback_gives_the_same_hashes() {
        let mut m = Legacy::Md5(md5::Md5::new());
        let mut s = Legacy::Sha1(sha1::Sha1::new());
        m.update(b"hello\n");
        s.update(b"hello\n");
        assert_eq!(m.finish_hex(), "b1946ac92492d2347c6235b4d2611184");
        assert_eq!(s.finish_hex(), "f572d396fae9206628714fb2ce00f72e94f2258f");
    }

    #[cfg(feature = "tape-openssl")]
    #[test]
    fn md5_and_sha1_come_from_libcrypto_when_built_in() {
        assert!(matches!(Legacy::new(LegacyAlgo::Md5), Legacy::OpenSsl(_)));
        assert!(matches!(Legacy::new(LegacyAlgo::Sha1), Legacy::OpenSsl(_)));
    }
}
