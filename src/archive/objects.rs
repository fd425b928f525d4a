//! The content-addressed objects stored in packs and indexed by the catalog.
//!
//! Metadata objects are canonical JSON: human-inspectable, documented in the
//! README, and deterministic (struct field order, entries sorted by name), so an
//! object's id, the BLAKE3 of its bytes, is stable. They are small next to the
//! essence they describe, and packs store them zstd-compressed.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A BLAKE3 digest: the id of every chunk and object, and a file's content hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub fn of(data: &[u8]) -> Hash {
        Hash(*blake3::hash(data).as_bytes())
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn from_hex(s: &str) -> Option<Hash> {
        let v = hex::decode(s).ok()?;
        Some(Hash(v.try_into().ok()?))
    }
    pub fn from_slice(s: &[u8]) -> Option<Hash> {
        Some(Hash(s.try_into().ok()?))
    }
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_string()
    }
}

impl From<blake3::Hash> for Hash {
    fn from(h: blake3::Hash) -> Hash {
        Hash(*h.as_bytes())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.short())
    }
}
impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}
impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = String::deserialize(d)?;
        Hash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("bad hash"))
    }
}

/// Kinds of pack record. The numbers are part of the on-disk format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    Chunk = 1,
    Blob = 2,
    Tree = 3,
    Commit = 4,
    Ref = 5,
    Media = 6,
    /// A rendered proxy: (source content hash, profile, settings version) -> blob.
    Proxy = 7,
    /// A timecode a user recorded (`reelfs tc set/clear`): see `TcFactRecord`.
    TcFact = 8,
}

impl RecordKind {
    pub fn from_u8(v: u8) -> Option<RecordKind> {
        Some(match v {
            1 => RecordKind::Chunk,
            2 => RecordKind::Blob,
            3 => RecordKind::Tree,
            4 => RecordKind::Commit,
            5 => RecordKind::Ref,
            6 => RecordKind::Media,
            7 => RecordKind::Proxy,
            8 => RecordKind::TcFact,
            _ => return None,
        })
    }
}

/// What a name in a tree is. Files and folders have content (a blob, a tree);
/// the special kinds are kept as tar, restic and borg keep them: a symlink's
/// target, a device's numbers, and for FIFOs and sockets only that they exist.
/// The serialized names and the codes are part of the on-disk format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    #[serde(rename = "chardev")]
    CharDevice,
    #[serde(rename = "blockdev")]
    BlockDevice,
}

impl EntryKind {
    pub fn code(self) -> i64 {
        match self {
            EntryKind::File => 1,
            EntryKind::Dir => 2,
            EntryKind::Symlink => 3,
            EntryKind::Fifo => 4,
            EntryKind::Socket => 5,
            EntryKind::CharDevice => 6,
            EntryKind::BlockDevice => 7,
        }
    }
    pub fn from_code(c: i64) -> Option<EntryKind> {
        match c {
            1 => Some(EntryKind::File),
            2 => Some(EntryKind::Dir),
            3 => Some(EntryKind::Symlink),
            4 => Some(EntryKind::Fifo),
            5 => Some(EntryKind::Socket),
            6 => Some(EntryKind::CharDevice),
            7 => Some(EntryKind::BlockDevice),
            _ => None,
        }
    }
    /// Neither a file nor a folder: no blob or tree behind the entry's hash.
    pub fn is_special(self) -> bool {
        !matches!(self, EntryKind::File | EntryKind::Dir)
    }
    /// The word `ls` and `diff` print for it.
    pub fn word(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "folder",
            EntryKind::Symlink => "symlink",
            EntryKind::Fifo => "fifo",
            EntryKind::Socket => "socket",
            EntryKind::CharDevice => "char device",
            EntryKind::BlockDevice => "block device",
        }
    }
    /// The `ls -l` type letter.
    pub fn letter(self) -> char {
        match self {
            EntryKind::File => '-',
            EntryKind::Dir => 'd',
            EntryKind::Symlink => 'l',
            EntryKind::Fifo => 'p',
            EntryKind::Socket => 's',
            EntryKind::CharDevice => 'c',
            EntryKind::BlockDevice => 'b',
        }
    }
}

/// A device node's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceNumber {
    pub major: u32,
    pub minor: u32,
}

/// What a tree entry carries beyond (name, kind, hash, size, mode, mtime,
/// owner): set only for the kinds that need it, and left out of the JSON when
/// unset, so trees written before special files were kept encode to the same
/// bytes and keep their ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryExtra {
    /// A symlink's target, exactly as the link held it: never resolved, never
    /// made absolute (it may point anywhere, even outside the archive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A character or block device's numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<DeviceNumber>,
    /// Hard links: files of one tree with the same group are one file (one
    /// inode) with several names, restored as such (tar and restic track them
    /// by inode at ingest). The number means nothing beyond the grouping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_group: Option<u64>,
    /// User extended attributes (`user.*`, other than the mount's own read-only
    /// `user.reelfs.*`): Finder tags and resource forks that Samba keeps in
    /// them, labels set with `setfattr`. Values are bytes, written as hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xattrs: Option<std::collections::BTreeMap<String, XattrValue>>,
    /// When the entry's metadata last changed through a writable mount (chmod,
    /// chown, link, unlink of another name, rename, xattrs, utimens), as ctime
    /// is. `stat` shows the later of it and mtime (a write moves both). Left
    /// out when never set, so trees of ingested files keep their bytes and ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctime_ns: Option<i64>,
}

/// An extended attribute's value: any bytes, kept in the JSON as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XattrValue(pub Vec<u8>);

impl Serialize for XattrValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}
impl<'de> Deserialize<'de> for XattrValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<XattrValue, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s).map(XattrValue).map_err(|_| serde::de::Error::custom("bad xattr value"))
    }
}

/// Whether an extended attribute is one the archive keeps: a user attribute,
/// not one of the mount's derived `user.reelfs.*` ones.
pub fn keeps_xattr(name: &str) -> bool {
    name.starts_with("user.") && !name.starts_with("user.reelfs.")
}

impl EntryExtra {
    pub fn is_empty(&self) -> bool {
        *self == EntryExtra::default()
    }
    /// JSON for the catalog's `extra` column; None when there is nothing to keep.
    pub fn to_column(&self) -> Option<String> {
        (!self.is_empty()).then(|| serde_json::to_string(self).unwrap_or_default())
    }
    pub fn from_column(s: Option<String>) -> EntryExtra {
        s.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()
    }
}

/// The hash a special entry carries in place of a blob or tree id: BLAKE3 of
/// what it is, domain-separated so it never equals a file's content hash (a
/// file holding the text of a link target is not that link, and `diff` pairs
/// renames by hash).
pub fn special_hash(kind: EntryKind, extra: &EntryExtra) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"reelfs special entry\0");
    h.update(kind.word().as_bytes());
    h.update(b"\0");
    if let Some(t) = &extra.target {
        h.update(t.as_bytes());
    }
    if let Some(d) = extra.rdev {
        h.update(format!("{}:{}", d.major, d.minor).as_bytes());
    }
    Hash::from(h.finalize())
}

/// One name in a directory. For a file `hash` is its content hash (the blob); for a
/// directory it is the child tree's id, so equal subtrees have equal hashes and a
/// diff can skip them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    pub name: String,
    pub kind: EntryKind,
    pub hash: Hash,
    /// File size, or for a directory the total size of the files below it.
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: i64,
    /// Numeric owner and group, as tar's `--numeric-owner` keeps them. None in
    /// trees written before owners were recorded: the field is left out of the
    /// JSON then, so those trees keep their bytes and ids, and such entries show
    /// as owned by whoever mounts or restores them (as they always did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// Symlink target, device numbers, hard-link group (see `EntryExtra`).
    #[serde(flatten)]
    pub extra: EntryExtra,
}

impl TreeEntry {
    /// A symlink, FIFO, socket or device entry (size: the target's length for a
    /// link, as `lstat` gives it; 0 otherwise).
    pub fn special(name: String, kind: EntryKind, extra: EntryExtra, mode: u32, mtime_ns: i64, owner: Option<Owner>) -> TreeEntry {
        let size = extra.target.as_ref().map(|t| t.len() as u64).unwrap_or(0);
        TreeEntry { name, kind, hash: special_hash(kind, &extra), size, mode, mtime_ns, owner, extra }
    }
}

/// A file's numeric owner and group. Names are not kept: an archive outlives the
/// machine's user database, and the same name may be another id elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// The owner of a file whose metadata this is.
    pub fn of(meta: &std::fs::Metadata) -> Owner {
        use std::os::unix::fs::MetadataExt;
        Owner { uid: meta.uid(), gid: meta.gid() }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// Sorted by name (byte order), unique.
    pub entries: Vec<TreeEntry>,
}

impl Tree {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    pub fn id(&self) -> Hash {
        Hash::of(&self.encode())
    }
    pub fn total_size(&self) -> u64 {
        // Saturating: files written through the mount may be up to i64::MAX
        // bytes each (sparse), and a folder of two must not wrap to a small size.
        // Capped at i64::MAX, the largest size the catalog's integers hold.
        self.entries.iter().fold(0u64, |a, e| a.saturating_add(e.size)).min(i64::MAX as u64)
    }
}

/// One span of a file: `length` bytes at `file_offset`, taken from `chunk` starting
/// at `chunk_offset`. Ingest produces whole chunks (chunk_offset 0); copy-on-write
/// writes produce partial spans that reuse untouched chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    pub file_offset: u64,
    pub length: u64,
    pub chunk: Hash,
    pub chunk_offset: u64,
}

/// The `chunk` of an extent that is a run of zero bytes (a hole left by a
/// truncate or a seek past the end): it names no stored chunk, so a hole of any
/// length is one extent and reading it touches no pack. A fixed 32-byte value
/// rather than a new field, so the extent rows and records keep their shape
/// (archives written before zero runs read unchanged) and code that does not
/// know zero runs fails on an unknown chunk instead of inventing bytes. No
/// BLAKE3 output is expected to equal it (ASCII, 2^-256).
pub const ZERO_RUN: Hash = Hash(*b"reelfs zero run, no chunk stored");

impl Extent {
    /// `length` zero bytes at `file_offset`.
    pub fn zeros(file_offset: u64, length: u64) -> Extent {
        Extent { file_offset, length, chunk: ZERO_RUN, chunk_offset: 0 }
    }
    pub fn is_zero_run(&self) -> bool {
        self.chunk == ZERO_RUN
    }
    pub fn end(&self) -> u64 {
        self.file_offset.saturating_add(self.length)
    }
}

/// Bytes of a file that are zero runs (they are never read from packs).
pub fn zero_run_bytes(extents: &[Extent]) -> u64 {
    extents.iter().filter(|e| e.is_zero_run()).fold(0u64, |a, e| a.saturating_add(e.length))
}

/// A file's content: its BLAKE3 (what `b3sum` prints) and the extents that make it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub hash: Hash,
    pub size: u64,
    pub extents: Vec<Extent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub tree: Hash,
    /// One parent normally, two for a merge, none for a branch's first commit.
    pub parents: Vec<Hash>,
    pub time_ns: i64,
    pub author: String,
    pub message: String,
    pub branch: String,
}

impl Commit {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A branch head move. Refs carry a sequence number so a catalog rebuilt from
/// packs takes the newest head per branch; `head: None` deletes the branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefRecord {
    pub branch: String,
    pub head: Option<Hash>,
    pub seq: i64,
    pub time_ns: i64,
}

/// Probed media facts (or the probe error) for one content hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaRecord {
    pub blob: Hash,
    pub facts: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// A rendered proxy of a source (by content hash): the catalog's `proxies` row,
/// also written to the pack beside the proxy's blob so `check --rebuild-catalog`
/// restores it. `partial_at` is the first source frame that did not decode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyRecord {
    pub source: Hash,
    pub profile: String,
    pub settings_version: i64,
    pub blob: Hash,
    pub partial_at: Option<i64>,
    pub note: String,
    /// Source frames whose picture was damaged (or decoded from a damaged
    /// reference) and that show the last good picture instead. Left out of the
    /// record when empty, so undamaged proxies' records are as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub damaged: Vec<DamagedRange>,
}

/// A run of held frames in a proxy: frame numbers count from the source's first
/// frame (inclusive both ends); the timecodes are those frames' labels, when the
/// source has a start timecode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamagedRange {
    pub first_frame: u64,
    pub last_frame: u64,
    pub timecode_first: Option<String>,
    pub timecode_last: Option<String>,
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Branch names become directory names in the mount and are split on '@' and '/'
/// in paths, so those characters are not allowed.
pub fn valid_branch_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A user timecode fact (`reelfs tc set`, or a clear when `timecode` is None) as
/// stored in a pack: the `tc_facts` row it indexes, so `check --rebuild-catalog`
/// restores the facts along with the commits that recorded them. Written in the
/// same pack as that commit, before either row is committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcFactRecord {
    /// The commit that set or cleared it.
    pub commit: Hash,
    /// Path inside the branch, no leading `/`.
    pub path: String,
    /// The content it was recorded for.
    pub blob: Hash,
    pub timecode: Option<String>,
    pub reel: Option<String>,
    pub rate: Option<String>,
}

/// Why bytes are not a timecode fact record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TcFactRecordError {
    #[error("timecode fact record does not match its id (damaged)")]
    IdMismatch,
    #[error("timecode fact record does not parse: {0}")]
    Parse(String),
    #[error("timecode fact record names an unusable path '{0}'")]
    BadPath(String),
}

impl TcFactRecord {
    /// Canonical bytes (JSON, fields in struct order); the record id is their BLAKE3.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    pub fn id(&self) -> Hash {
        Hash::of(&self.encode())
    }
    /// The record from its bytes, checked against the id it was stored under and
    /// for a path a branch can hold (relative, no empty, `.` or `..` parts), so a
    /// damaged or crafted record is refused rather than indexed.
    pub fn decode(raw: &[u8], id: &Hash) -> std::result::Result<TcFactRecord, TcFactRecordError> {
        if Hash::of(raw) != *id {
            return Err(TcFactRecordError::IdMismatch);
        }
        let r: TcFactRecord = serde_json::from_slice(raw).map_err(|e| TcFactRecordError::Parse(e.to_string()))?;
        if r.path.is_empty() || r.path.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(TcFactRecordError::BadPath(r.path));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tc_fact_record_tests {
    use super::*;

    fn sample() -> TcFactRecord {
        TcFactRecord {
            commit: Hash::of(b"commit"),
            path: "Day01/card/phone.mp4".into(),
            blob: Hash::of(b"blob"),
            timecode: Some("01:00:00:00".into()),
            reel: Some("A001".into()),
            rate: Some("29.97 DF".into()),
        }
    }

    #[test]
    fn round_trip_and_stable_id() {
        let r = sample();
        let raw = r.encode();
        assert_eq!(TcFactRecord::decode(&raw, &r.id()).unwrap(), r);
        assert_eq!(r.id(), sample().id());
        let clear = TcFactRecord { timecode: None, reel: None, rate: None, ..sample() };
        assert_eq!(TcFactRecord::decode(&clear.encode(), &clear.id()).unwrap(), clear);
        assert_ne!(clear.id(), r.id());
    }

    #[test]
    fn rejects_damaged_bytes() {
        let r = sample();
        let id = r.id();
        let raw = r.encode();
        // Every single flipped bit is caught, wherever it lands.
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x04;
            assert_eq!(TcFactRecord::decode(&bad, &id), Err(TcFactRecordError::IdMismatch), "byte {i}");
        }
        assert_eq!(TcFactRecord::decode(&raw[..raw.len() - 1], &id), Err(TcFactRecordError::IdMismatch));
        // Bytes that hash right but are not a record, or name an escaping path.
        let junk = b"{\"commit\":1}";
        assert!(matches!(TcFactRecord::decode(junk, &Hash::of(junk)), Err(TcFactRecordError::Parse(_))));
        for p in ["", "../x.mov", "a//b", "/abs.mov", "a/./b"] {
            let bad = TcFactRecord { path: p.into(), ..sample() };
            assert!(matches!(TcFactRecord::decode(&bad.encode(), &bad.id()), Err(TcFactRecordError::BadPath(_))), "{p}");
        }
    }
}

#[cfg(test)]
mod owner_tests {
    use super::*;

    /// A tree as written before owners were recorded: it must read as "owner not
    /// recorded" and encode to the same bytes, so its id (and every commit above
    /// it) stays what it was.
    #[test]
    fn trees_without_owners_keep_their_bytes_and_ids() {
        let hash = Hash::of(b"clip").to_hex();
        let old = format!(r#"{{"entries":[{{"name":"A001.mov","kind":"file","hash":"{hash}","size":5,"mode":420,"mtime_ns":7}}]}}"#);
        let t: Tree = serde_json::from_str(&old).unwrap();
        assert_eq!(t.entries[0].owner, None);
        assert_eq!(t.encode(), old.as_bytes());
        assert_eq!(t.id(), Hash::of(old.as_bytes()));
        // With an owner: recorded, round-trips, and is part of the id.
        let mut owned = t.clone();
        owned.entries[0].owner = Some(Owner { uid: 1000, gid: 44 });
        let raw = owned.encode();
        assert!(String::from_utf8_lossy(&raw).ends_with(r#""mtime_ns":7,"owner":{"uid":1000,"gid":44}}]}"#));
        assert_eq!(serde_json::from_slice::<Tree>(&raw).unwrap(), owned);
        assert_ne!(owned.id(), t.id());
    }
}

#[cfg(test)]
mod special_entry_tests {
    use super::*;

    /// Special entries round-trip through their JSON, carry what they are in
    /// their id, and never share a hash with a file whose bytes are the target.
    #[test]
    fn special_entries_round_trip_and_are_kept_apart_from_files() {
        let link = TreeEntry::special(
            "up".into(),
            EntryKind::Symlink,
            EntryExtra { target: Some("../../etc/passwd".into()), ..Default::default() },
            0o777,
            5,
            None,
        );
        assert_eq!(link.size, 16);
        assert_ne!(link.hash, Hash::of(b"../../etc/passwd"));
        let dev = TreeEntry::special(
            "null".into(),
            EntryKind::CharDevice,
            EntryExtra { rdev: Some(DeviceNumber { major: 1, minor: 3 }), ..Default::default() },
            0o666,
            5,
            None,
        );
        let fifo = TreeEntry::special("p".into(), EntryKind::Fifo, EntryExtra::default(), 0o644, 5, None);
        let sock = TreeEntry::special("s".into(), EntryKind::Socket, EntryExtra::default(), 0o644, 5, None);
        assert_ne!(fifo.hash, sock.hash);
        let t = Tree { entries: vec![dev, link, fifo, sock] };
        let raw = t.encode();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains(r#""kind":"symlink""#) && text.contains(r#""target":"../../etc/passwd""#), "{text}");
        assert!(text.contains(r#""kind":"chardev""#) && text.contains(r#""rdev":{"major":1,"minor":3}"#), "{text}");
        assert_eq!(serde_json::from_slice::<Tree>(&raw).unwrap(), t);
        for e in &t.entries {
            assert_eq!(EntryKind::from_code(e.kind.code()), Some(e.kind));
            assert_eq!(EntryExtra::from_column(e.extra.to_column()), e.extra);
        }
        assert_eq!(EntryExtra::default().to_column(), None);
    }
}
