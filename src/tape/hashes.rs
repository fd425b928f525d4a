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

/// The same hashes in two halves that can run on two threads (MD5 and SHA-1
/// are the slow ones): `Hashing` is their sum when one thread will do.
#[derive(Default)]
pub struct MainHalf(Option<Hashing>);
pub struct SideHalf {
    md5: md5::Md5,
    sha1: sha1::Sha1,
}

impl Hashing {
    /// Split into the BLAKE3 + xxHash64 half and the MD5 + SHA-1 half.
    pub fn halves() -> (MainHalf, SideHalf) {
        (MainHalf(Some(Hashing::default())), SideHalf { md5: md5::Md5::new(), sha1: sha1::Sha1::new() })
    }
}

impl MainHalf {
    pub fn update(&mut self, data: &[u8]) {
        if let Some(h) = self.0.as_mut() {
            h.blake3.update(data);
            h.xxh64.update(data);
            h.bytes += data.len() as u64;
        }
    }
    pub fn join(self, side: SideHalf) -> FileHashes {
        let mut h = self.0.unwrap_or_default();
        h.md5 = side.md5;
        h.sha1 = side.sha1;
        h.finish()
    }
}

impl SideHalf {
    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.sha1.update(data);
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
        let (mut main, mut side) = Hashing::halves();
        main.update(b"hel");
        side.update(b"hel");
        main.update(b"lo\n");
        side.update(b"lo\n");
        assert_eq!(main.join(side), h);
    }
}
