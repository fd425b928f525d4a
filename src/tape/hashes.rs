//! The hashes a file gets on its way to tape, computed in one pass over its
//! bytes: BLAKE3 (what the archive verifies against), MD5 and SHA-1 (the LTFS
//! `ltfs.hash.*` extended attributes stock LTFS tools read) and xxHash64 (what
//! ASC MHL manifests from camera-to-post tools carry, with MD5).

use md5::Digest;

pub struct Hashing {
    blake3: blake3::Hasher,
    md5: md5::Md5,
    sha1: sha1::Sha1,
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
            md5: md5::Md5::new(),
            sha1: sha1::Sha1::new(),
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
            md5: hex::encode(self.md5.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
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
pub struct Md5Part(md5::Md5);
pub struct Sha1Xxh64Part {
    sha1: sha1::Sha1,
    xxh64: xxhash_rust::xxh64::Xxh64,
}

impl Hashing {
    pub fn parts() -> (Blake3Part, Md5Part, Sha1Xxh64Part) {
        (
            Blake3Part { blake3: blake3::Hasher::new(), bytes: 0 },
            Md5Part(md5::Md5::new()),
            Sha1Xxh64Part { sha1: sha1::Sha1::new(), xxh64: xxhash_rust::xxh64::Xxh64::new(0) },
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
}
