//! Pack files: append-only containers of records, self-describing so the catalog
//! can be rebuilt from them alone.
//!
//! ```text
//! header   "RLFSPAK1" | version u32 LE | reserved u32                     16 bytes
//! record   kind u8 | codec u8 | reserved u16 | raw_len u32 | stored_len u32
//!          | id [32] | payload [stored_len]                             44 + n bytes
//! trailer  entry*: kind u8 | codec u8 | reserved u16 | raw_len u32
//!          | stored_len u32 | offset u64 (of the record header) | id [32]   52 bytes each
//! footer   count u64 | trailer_offset u64 | blake3(trailer entries) [32] | "RLFSEND1"
//! ```
//! `id` is the BLAKE3 of the record's raw (uncompressed) payload, so every record
//! verifies itself. A pack without a valid footer (a crash mid-write) can still be
//! scanned record by record.

use super::error::{ArchiveError, IoContext, Result};
use super::objects::{Hash, RecordKind};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const PACK_MAGIC: &[u8; 8] = b"RLFSPAK1";
pub const FOOTER_MAGIC: &[u8; 8] = b"RLFSEND1";
pub const PACK_VERSION: u32 = 1;
pub const HEADER_LEN: u64 = 16;
pub const RECORD_HEADER_LEN: u64 = 44;
pub const TRAILER_ENTRY_LEN: usize = 52;
pub const FOOTER_LEN: u64 = 56;

pub const CODEC_RAW: u8 = 0;
pub const CODEC_ZSTD: u8 = 1;

/// Where a record lives, as the catalog and the trailer describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLoc {
    pub kind: RecordKind,
    pub codec: u8,
    pub raw_len: u32,
    pub stored_len: u32,
    /// Offset of the record header in the pack; payload starts RECORD_HEADER_LEN later.
    pub offset: u64,
    pub id: Hash,
}

impl RecordLoc {
    pub fn payload_offset(&self) -> u64 {
        self.offset + RECORD_HEADER_LEN
    }
}

/// File name of pack number `n`, spread over 256 directories so no folder holds
/// hundreds of thousands of files at petabyte scale.
pub fn pack_rel_path(n: i64) -> String {
    format!("{:02x}/{:08}.pack", n & 0xff, n)
}

pub struct PackWriter {
    path: PathBuf,
    file: BufWriter<File>,
    pos: u64,
    entries: Vec<RecordLoc>,
    /// Position at which writeback was last started (see `write_all`).
    kicked: u64,
}

/// Start writing dirty pages back every this many bytes, so the fsync that
/// seals a pack finds little left to do instead of stalling the pipeline.
const WRITEBACK_EVERY: u64 = 64 << 20;

impl PackWriter {
    pub fn create(path: &Path) -> Result<PackWriter> {
        // Pack folders and packs take the archive's permission policy (the mode
        // of the folder above them), whatever the umask.
        let dir = path.parent().unwrap_or(Path::new("."));
        let policy = super::perms::Policy::inherited(dir)?;
        policy.create_dir_all(dir)?;
        let file = policy.create_new_file(path)?;
        let mut w = PackWriter {
            path: path.into(),
            file: BufWriter::with_capacity(8 << 20, file),
            pos: 0,
            entries: Vec::new(),
            kicked: 0,
        };
        let mut hdr = Vec::with_capacity(16);
        hdr.extend_from_slice(PACK_MAGIC);
        hdr.extend_from_slice(&PACK_VERSION.to_le_bytes());
        hdr.extend_from_slice(&0u32.to_le_bytes());
        w.write_all(&hdr)?;
        Ok(w)
    }

    fn write_all(&mut self, b: &[u8]) -> Result<()> {
        self.file.write_all(b).at(&self.path)?;
        self.pos += b.len() as u64;
        if self.pos - self.kicked >= WRITEBACK_EVERY {
            self.kicked = self.pos;
            self.file.flush().at(&self.path)?;
            use std::os::unix::io::AsRawFd;
            // SAFETY: asynchronous writeback request on our own open descriptor;
            // it changes no data and its failure only costs speed.
            unsafe {
                libc::sync_file_range(self.file.get_ref().as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn size(&self) -> u64 {
        self.pos
    }

    /// Append one record; `stored` is the payload as written (compressed or not).
    pub fn append(&mut self, kind: RecordKind, codec: u8, id: Hash, raw_len: usize, stored: &[u8]) -> Result<RecordLoc> {
        let loc = RecordLoc {
            kind,
            codec,
            raw_len: raw_len as u32,
            stored_len: stored.len() as u32,
            offset: self.pos,
            id,
        };
        let mut hdr = [0u8; RECORD_HEADER_LEN as usize];
        hdr[0] = kind as u8;
        hdr[1] = codec;
        hdr[4..8].copy_from_slice(&loc.raw_len.to_le_bytes());
        hdr[8..12].copy_from_slice(&loc.stored_len.to_le_bytes());
        hdr[12..44].copy_from_slice(&id.0);
        self.write_all(&hdr)?;
        self.write_all(stored)?;
        self.entries.push(loc);
        Ok(loc)
    }

    pub fn record_count(&self) -> usize {
        self.entries.len()
    }

    /// Cut the pack back to `pos` bytes and its first `records` records: drops
    /// what a failed file appended, so it costs no space.
    pub fn truncate(&mut self, pos: u64, records: usize) -> Result<()> {
        use std::io::{Seek, SeekFrom};
        if pos > self.pos || records > self.entries.len() {
            return Err(bad(&self.path, "internal: truncate past the end"));
        }
        self.file.flush().at(&self.path)?;
        self.file.get_ref().set_len(pos).at(&self.path)?;
        self.file.seek(SeekFrom::Start(pos)).at(&self.path)?;
        self.pos = pos;
        self.entries.truncate(records);
        Ok(())
    }

    /// Append a metadata object, always zstd-compressed (JSON compresses well).
    pub fn append_object(&mut self, kind: RecordKind, raw: &[u8]) -> Result<RecordLoc> {
        let id = Hash::of(raw);
        let stored = zstd::bulk::compress(raw, 3).at(&self.path)?;
        self.append(kind, CODEC_ZSTD, id, raw.len(), &stored)
    }

    /// Write the trailer and footer, then fsync the file and its directory. After
    /// this returns, the records are durable and may be referenced by the catalog.
    pub fn seal(self) -> Result<(PathBuf, u64, Vec<RecordLoc>)> {
        let (path, size, entries, file) = self.seal_unsynced()?;
        sync_sealed(&file, &path)?;
        Ok((path, size, entries))
    }

    /// Write the trailer and footer without waiting for the disk: the caller
    /// must `sync_sealed` the returned file before anything references it.
    pub fn seal_unsynced(mut self) -> Result<(PathBuf, u64, Vec<RecordLoc>, File)> {
        let trailer_offset = self.pos;
        let mut trailer = Vec::with_capacity(self.entries.len() * TRAILER_ENTRY_LEN);
        for e in &self.entries {
            trailer.push(e.kind as u8);
            trailer.push(e.codec);
            trailer.extend_from_slice(&[0, 0]);
            trailer.extend_from_slice(&e.raw_len.to_le_bytes());
            trailer.extend_from_slice(&e.stored_len.to_le_bytes());
            trailer.extend_from_slice(&e.offset.to_le_bytes());
            trailer.extend_from_slice(&e.id.0);
        }
        let digest = blake3::hash(&trailer);
        let mut footer = Vec::with_capacity(FOOTER_LEN as usize);
        footer.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        footer.extend_from_slice(&trailer_offset.to_le_bytes());
        footer.extend_from_slice(digest.as_bytes());
        footer.extend_from_slice(FOOTER_MAGIC);
        self.write_all(&trailer)?;
        self.write_all(&footer)?;
        self.file.flush().at(&self.path)?;
        let file = self.file.into_inner().map_err(|e| ArchiveError::Io { path: self.path.clone(), source: e.into_error() })?;
        Ok((self.path, self.pos, self.entries, file))
    }
}

/// Make a sealed pack durable: the file, then its directory entry.
pub fn sync_sealed(file: &File, path: &Path) -> Result<()> {
    file.sync_all().at(path)?;
    if let Some(dir) = path.parent() {
        fsync_dir(dir)?;
    }
    Ok(())
}

pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

fn bad(path: &Path, msg: impl Into<String>) -> ArchiveError {
    ArchiveError::BadPack { path: path.into(), msg: msg.into() }
}

fn parse_entry(b: &[u8], path: &Path) -> Result<RecordLoc> {
    let kind = RecordKind::from_u8(b[0]).ok_or_else(|| bad(path, format!("unknown record kind {}", b[0])))?;
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let mut off = [0u8; 8];
    off.copy_from_slice(&b[12..20]);
    let mut id = [0u8; 32];
    id.copy_from_slice(&b[20..52]);
    Ok(RecordLoc {
        kind,
        codec: b[1],
        raw_len: u32_at(4),
        stored_len: u32_at(8),
        offset: u64::from_le_bytes(off),
        id: Hash(id),
    })
}

/// Read a sealed pack's trailer index.
pub fn read_trailer(path: &Path) -> Result<Vec<RecordLoc>> {
    let file = File::open(path).at(path)?;
    let len = file.metadata().at(path)?.len();
    if len < HEADER_LEN + FOOTER_LEN {
        return Err(bad(path, "too short to be a sealed pack"));
    }
    let mut footer = [0u8; FOOTER_LEN as usize];
    file.read_exact_at(&mut footer, len - FOOTER_LEN).at(path)?;
    if &footer[48..56] != FOOTER_MAGIC {
        return Err(bad(path, "no footer (pack was not sealed: interrupted write?)"));
    }
    let count = u64::from_le_bytes(footer[0..8].try_into().unwrap_or_default());
    let trailer_offset = u64::from_le_bytes(footer[8..16].try_into().unwrap_or_default());
    let tlen = count.checked_mul(TRAILER_ENTRY_LEN as u64).ok_or_else(|| bad(path, "bad trailer count"))?;
    if trailer_offset.checked_add(tlen) != Some(len - FOOTER_LEN) {
        return Err(bad(path, "trailer offset/count do not match the file size"));
    }
    let mut trailer = vec![0u8; tlen as usize];
    file.read_exact_at(&mut trailer, trailer_offset).at(path)?;
    if blake3::hash(&trailer).as_bytes() != &footer[16..48] {
        return Err(bad(path, "trailer checksum mismatch"));
    }
    trailer.chunks_exact(TRAILER_ENTRY_LEN).map(|e| parse_entry(e, path)).collect()
}

/// Walk a pack record by record from its header, for packs whose trailer is
/// missing or damaged. Stops at the first record header that does not parse.
pub fn scan_records(path: &Path) -> Result<Vec<RecordLoc>> {
    let file = File::open(path).at(path)?;
    let len = file.metadata().at(path)?.len();
    let mut hdr = [0u8; HEADER_LEN as usize];
    file.read_exact_at(&mut hdr, 0).at(path)?;
    if &hdr[0..8] != PACK_MAGIC {
        return Err(bad(path, "not a reelfs pack (bad magic)"));
    }
    let mut out = Vec::new();
    let mut pos = HEADER_LEN;
    let mut rh = [0u8; RECORD_HEADER_LEN as usize];
    while pos + RECORD_HEADER_LEN <= len {
        if file.read_exact_at(&mut rh, pos).is_err() {
            break;
        }
        let Some(kind) = RecordKind::from_u8(rh[0]) else { break };
        let raw_len = u32::from_le_bytes(rh[4..8].try_into().unwrap_or_default());
        let stored_len = u32::from_le_bytes(rh[8..12].try_into().unwrap_or_default());
        if pos + RECORD_HEADER_LEN + stored_len as u64 > len {
            break;
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(&rh[12..44]);
        out.push(RecordLoc { kind, codec: rh[1], raw_len, stored_len, offset: pos, id: Hash(id) });
        pos += RECORD_HEADER_LEN + stored_len as u64;
    }
    Ok(out)
}

/// Read a record's payload, decompress it, and check it against its id.
pub fn read_record(file: &File, path: &Path, loc: &RecordLoc) -> Result<Vec<u8>> {
    let mut stored = vec![0u8; loc.stored_len as usize];
    file.read_exact_at(&mut stored, loc.payload_offset()).at(path)?;
    let raw = decode(stored, loc.codec, loc.raw_len).map_err(|what| damaged(path, loc, what))?;
    if Hash::of(&raw) != loc.id {
        return Err(damaged(path, loc, "content does not match its BLAKE3 id".into()));
    }
    Ok(raw)
}

pub fn decode(stored: Vec<u8>, codec: u8, raw_len: u32) -> std::result::Result<Vec<u8>, String> {
    match codec {
        CODEC_RAW => Ok(stored),
        CODEC_ZSTD => {
            let raw = zstd::bulk::decompress(&stored, raw_len as usize).map_err(|e| format!("zstd: {e}"))?;
            if raw.len() != raw_len as usize {
                return Err(format!("decompressed to {} bytes, expected {}", raw.len(), raw_len));
            }
            Ok(raw)
        }
        c => Err(format!("unknown codec {c}")),
    }
}

pub fn damaged(path: &Path, loc: &RecordLoc, what: String) -> ArchiveError {
    ArchiveError::Damaged {
        chunk: loc.id.to_hex(),
        pack: path.display().to_string(),
        offset: loc.offset,
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_read_trailer_and_scan_agree() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("00/00000001.pack");
        let mut w = PackWriter::create(&p).unwrap();
        let data = b"hello world".repeat(100);
        let id = Hash::of(&data);
        w.append(RecordKind::Chunk, CODEC_RAW, id, data.len(), &data).unwrap();
        w.append_object(RecordKind::Tree, b"{\"entries\":[]}").unwrap();
        let (_, _, entries) = w.seal().unwrap();
        let t = read_trailer(&p).unwrap();
        assert_eq!(t, entries);
        assert_eq!(scan_records(&p).unwrap(), entries);
        let f = File::open(&p).unwrap();
        assert_eq!(read_record(&f, &p, &t[0]).unwrap(), data);
        assert_eq!(read_record(&f, &p, &t[1]).unwrap(), b"{\"entries\":[]}");
    }

    #[test]
    fn flipped_byte_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.pack");
        let mut w = PackWriter::create(&p).unwrap();
        let data = vec![7u8; 5000];
        w.append(RecordKind::Chunk, CODEC_RAW, Hash::of(&data), data.len(), &data).unwrap();
        let (_, _, entries) = w.seal().unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[(HEADER_LEN + RECORD_HEADER_LEN + 100) as usize] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        let f = File::open(&p).unwrap();
        assert!(matches!(read_record(&f, &p, &entries[0]), Err(ArchiveError::Damaged { .. })));
    }

    #[test]
    fn unsealed_pack_scans_but_has_no_trailer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.pack");
        let mut w = PackWriter::create(&p).unwrap();
        let data = vec![1u8; 100];
        w.append(RecordKind::Chunk, CODEC_RAW, Hash::of(&data), 100, &data).unwrap();
        w.file.flush().unwrap();
        drop(w);
        assert!(read_trailer(&p).is_err());
        assert_eq!(scan_records(&p).unwrap().len(), 1);
    }
}
