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
//!
//! This module is the codec only: bytes in, bytes out, and reads through
//! [`ReadAt`]. Where packs live is `pack_store.rs`; writing them, `pack_writer.rs`.

use super::chunk_buffers::ChunkBuf;
use super::error::{ArchiveError, IoContext, Result};
use super::objects::{Hash, RecordKind};
use super::read_at::{ReadAt, DIRECT_ALIGN};
use std::path::PathBuf;

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

/// The pack number in a name `pack_rel_path` made (`xx/NNNNNNNN.pack`); None
/// for anything else a store may hold.
pub fn parse_pack_name(name: &str) -> Option<i64> {
    let (dir, file) = name.split_once('/')?;
    if dir.is_empty() || dir.contains('/') {
        return None;
    }
    file.strip_suffix(".pack")?.parse().ok()
}

/// The 16 bytes every pack begins with.
pub fn encode_header() -> [u8; HEADER_LEN as usize] {
    let mut hdr = [0u8; HEADER_LEN as usize];
    hdr[0..8].copy_from_slice(PACK_MAGIC);
    hdr[8..12].copy_from_slice(&PACK_VERSION.to_le_bytes());
    hdr
}

/// The header written before a record's payload.
pub fn encode_record_header(loc: &RecordLoc) -> [u8; RECORD_HEADER_LEN as usize] {
    let mut hdr = [0u8; RECORD_HEADER_LEN as usize];
    hdr[0] = loc.kind as u8;
    hdr[1] = loc.codec;
    hdr[4..8].copy_from_slice(&loc.raw_len.to_le_bytes());
    hdr[8..12].copy_from_slice(&loc.stored_len.to_le_bytes());
    hdr[12..44].copy_from_slice(&loc.id.0);
    hdr
}

/// Trailer (one entry per record) and footer, to append at `trailer_offset`,
/// the end of a pack's last record.
pub fn encode_tail(entries: &[RecordLoc], trailer_offset: u64) -> Vec<u8> {
    let mut trailer = Vec::with_capacity(entries.len() * TRAILER_ENTRY_LEN + FOOTER_LEN as usize);
    for e in entries {
        trailer.push(e.kind as u8);
        trailer.push(e.codec);
        trailer.extend_from_slice(&[0, 0]);
        trailer.extend_from_slice(&e.raw_len.to_le_bytes());
        trailer.extend_from_slice(&e.stored_len.to_le_bytes());
        trailer.extend_from_slice(&e.offset.to_le_bytes());
        trailer.extend_from_slice(&e.id.0);
    }
    let digest = blake3::hash(&trailer);
    trailer.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    trailer.extend_from_slice(&trailer_offset.to_le_bytes());
    trailer.extend_from_slice(digest.as_bytes());
    trailer.extend_from_slice(FOOTER_MAGIC);
    trailer
}

fn bad(pack: &str, msg: impl Into<String>) -> ArchiveError {
    ArchiveError::BadPack { path: PathBuf::from(pack), msg: msg.into() }
}

fn parse_entry(b: &[u8], pack: &str) -> Result<RecordLoc> {
    let kind = RecordKind::from_u8(b[0]).ok_or_else(|| bad(pack, format!("unknown record kind {}", b[0])))?;
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let mut off = [0u8; 8];
    off.copy_from_slice(&b[12..20]);
    let mut id = [0u8; 32];
    id.copy_from_slice(&b[20..52]);
    Ok(RecordLoc { kind, codec: b[1], raw_len: u32_at(4), stored_len: u32_at(8), offset: u64::from_le_bytes(off), id: Hash(id) })
}

/// Decode a trailer's entries, checking them against the footer's count and digest.
pub fn decode_trailer(trailer: &[u8], footer: &[u8; FOOTER_LEN as usize], pack: &str) -> Result<Vec<RecordLoc>> {
    if !trailer.len().is_multiple_of(TRAILER_ENTRY_LEN) || (trailer.len() / TRAILER_ENTRY_LEN) as u64 != footer_count(footer) {
        return Err(bad(pack, "trailer offset/count do not match the file size"));
    }
    if blake3::hash(trailer).as_bytes() != &footer[16..48] {
        return Err(bad(pack, "trailer checksum mismatch"));
    }
    trailer.chunks_exact(TRAILER_ENTRY_LEN).map(|e| parse_entry(e, pack)).collect()
}

fn footer_count(footer: &[u8; FOOTER_LEN as usize]) -> u64 {
    u64::from_le_bytes(footer[0..8].try_into().unwrap_or_default())
}

/// Read a sealed pack's trailer index. `pack` names it in errors.
pub fn read_trailer(src: &dyn ReadAt, pack: &str) -> Result<Vec<RecordLoc>> {
    let len = src.len();
    if len < HEADER_LEN + FOOTER_LEN {
        return Err(bad(pack, "too short to be a sealed pack"));
    }
    let mut footer = [0u8; FOOTER_LEN as usize];
    src.read_exact_at(len - FOOTER_LEN, &mut footer).at(pack)?;
    if &footer[48..56] != FOOTER_MAGIC {
        return Err(bad(pack, "no footer (pack was not sealed: interrupted write?)"));
    }
    let count = footer_count(&footer);
    let trailer_offset = u64::from_le_bytes(footer[8..16].try_into().unwrap_or_default());
    let tlen = count.checked_mul(TRAILER_ENTRY_LEN as u64).ok_or_else(|| bad(pack, "bad trailer count"))?;
    if trailer_offset.checked_add(tlen) != Some(len - FOOTER_LEN) {
        return Err(bad(pack, "trailer offset/count do not match the file size"));
    }
    let mut trailer = vec![0u8; tlen as usize];
    src.read_exact_at(trailer_offset, &mut trailer).at(pack)?;
    decode_trailer(&trailer, &footer, pack)
}

/// Walk a pack record by record from its header, for packs whose trailer is
/// missing or damaged. Stops at the first record header that does not parse.
pub fn scan_records(src: &dyn ReadAt, pack: &str) -> Result<Vec<RecordLoc>> {
    let len = src.len();
    let mut hdr = [0u8; HEADER_LEN as usize];
    src.read_exact_at(0, &mut hdr).at(pack)?;
    if &hdr[0..8] != PACK_MAGIC {
        return Err(bad(pack, "not a reelfs pack (bad magic)"));
    }
    let mut out = Vec::new();
    let mut pos = HEADER_LEN;
    let mut rh = [0u8; RECORD_HEADER_LEN as usize];
    while pos + RECORD_HEADER_LEN <= len {
        if src.read_exact_at(pos, &mut rh).is_err() {
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
pub fn read_record(src: &dyn ReadAt, pack: &str, loc: &RecordLoc) -> Result<Vec<u8>> {
    // A recycled buffer (archive/chunk_buffers.rs): the read overwrites it
    // whole, so a fresh zero-filled one would only cost page faults.
    let mut stored = super::chunk_buffers::take(loc.stored_len as usize);
    src.read_exact_at(loc.payload_offset(), &mut stored).at(pack)?;
    decode_record(stored, pack, loc)
}

/// `read_record` for a chunk a loader keeps: read around the page cache where
/// the pack prefers it (archive/pack_file.rs), so the disk writes straight into
/// the buffer the loader keeps, at its first aligned address.
/// `direct` false keeps the read buffered: for a caller that copies the same
/// bytes from the pack again inside the kernel (`copy_file_range`), which
/// then finds them cached instead of reading the disk twice.
pub fn read_chunk_record(src: &dyn ReadAt, pack: &str, loc: &RecordLoc, direct: bool) -> Result<ChunkBuf> {
    let stored = read_stored(src, loc.payload_offset(), loc.stored_len as usize, direct).at(pack)?;
    let raw = match loc.codec {
        CODEC_RAW => stored,
        codec => {
            let decoded = decode_from(&stored, codec, loc.raw_len);
            super::chunk_buffers::give(stored.into_buffer());
            ChunkBuf::whole(decoded.map_err(|what| damaged(pack, loc, what))?)
        }
    };
    if Hash::of(&raw) != loc.id {
        return Err(damaged(pack, loc, "content does not match its BLAKE3 id".into()));
    }
    Ok(raw)
}

/// `len` stored bytes at `offset`, read directly when the source prefers it.
pub(crate) fn read_stored(src: &dyn ReadAt, offset: u64, len: usize, direct: bool) -> std::io::Result<ChunkBuf> {
    if direct && src.prefers_direct(offset, len) {
        // The aligned span around the bytes, at the buffer's first aligned
        // address; the bytes start `head` into it.
        let head = (offset % DIRECT_ALIGN as u64) as usize;
        let span = (head + len).next_multiple_of(DIRECT_ALIGN);
        let mut buf = super::chunk_buffers::take(span + DIRECT_ALIGN);
        let base = buf.as_ptr().align_offset(DIRECT_ALIGN);
        if base < DIRECT_ALIGN {
            match read_direct_span(src, offset - head as u64, &mut buf[base..base + span], head + len) {
                Ok(()) => return Ok(ChunkBuf::part(buf, base + head, len)),
                // Refused after all (the source remembers): read buffered.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(e) => return Err(e),
            }
            src.read_exact_at(offset, &mut buf[base + head..base + head + len])?;
            return Ok(ChunkBuf::part(buf, base + head, len));
        }
    }
    let mut buf = super::chunk_buffers::take(len);
    src.read_exact_at(offset, &mut buf)?;
    Ok(ChunkBuf::whole(buf))
}

/// Fill `span` (aligned, at an aligned `at`) with direct reads until at least
/// `need` bytes are in; only the end of the file may cut a read short.
fn read_direct_span(src: &dyn ReadAt, at: u64, span: &mut [u8], need: usize) -> std::io::Result<()> {
    let mut done = 0;
    while done < need {
        match src.read_direct_at(at + done as u64, &mut span[done..]) {
            Ok(n) if n % DIRECT_ALIGN == 0 && n > 0 => done += n,
            Ok(n) if done + n >= need => done += n,
            Ok(n) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("source ended early: {need} bytes wanted at offset {at}, only {} there", done + n),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A record's stored payload, decoded and checked against its id.
pub fn decode_record(stored: Vec<u8>, pack: &str, loc: &RecordLoc) -> Result<Vec<u8>> {
    let raw = decode(stored, loc.codec, loc.raw_len).map_err(|what| damaged(pack, loc, what))?;
    if Hash::of(&raw) != loc.id {
        return Err(damaged(pack, loc, "content does not match its BLAKE3 id".into()));
    }
    Ok(raw)
}

pub fn decode(stored: Vec<u8>, codec: u8, raw_len: u32) -> std::result::Result<Vec<u8>, String> {
    if codec == CODEC_RAW {
        return Ok(stored);
    }
    // The stored bytes' buffer goes back once decoded.
    let raw = decode_from(&stored, codec, raw_len);
    super::chunk_buffers::give(stored);
    raw
}

/// Stored bytes of a compressed record, decoded into a recycled buffer.
fn decode_from(stored: &[u8], codec: u8, raw_len: u32) -> std::result::Result<Vec<u8>, String> {
    match codec {
        CODEC_RAW => Ok(stored.to_vec()),
        CODEC_ZSTD => {
            let mut raw = super::chunk_buffers::take(raw_len as usize);
            raw.clear();
            zstd::bulk::Decompressor::new().and_then(|mut d| d.decompress_to_buffer(stored, &mut raw)).map_err(|e| format!("zstd: {e}"))?;
            if raw.len() != raw_len as usize {
                return Err(format!("decompressed to {} bytes, expected {}", raw.len(), raw_len));
            }
            Ok(raw)
        }
        c => Err(format!("unknown codec {c}")),
    }
}

pub fn damaged(pack: &str, loc: &RecordLoc, what: String) -> ArchiveError {
    ArchiveError::Damaged { chunk: loc.id.to_hex(), pack: pack.to_string(), offset: loc.offset, what }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::test_support::direct_io_here;

    fn record(kind: RecordKind, payload: &[u8], at: u64) -> (RecordLoc, Vec<u8>) {
        let loc = RecordLoc {
            kind,
            codec: CODEC_RAW,
            raw_len: payload.len() as u32,
            stored_len: payload.len() as u32,
            offset: at,
            id: Hash::of(payload),
        };
        let mut b = encode_record_header(&loc).to_vec();
        b.extend_from_slice(payload);
        (loc, b)
    }

    /// A whole pack built from the codec alone, in memory.
    fn pack_of(payloads: &[&[u8]]) -> (Vec<u8>, Vec<RecordLoc>) {
        let mut bytes = encode_header().to_vec();
        let mut locs = Vec::new();
        for p in payloads {
            let (loc, b) = record(RecordKind::Chunk, p, bytes.len() as u64);
            bytes.extend_from_slice(&b);
            locs.push(loc);
        }
        let tail = encode_tail(&locs, bytes.len() as u64);
        bytes.extend_from_slice(&tail);
        (bytes, locs)
    }

    #[test]
    fn codec_round_trips_over_bytes() {
        let (bytes, locs) = pack_of(&[b"one", b"two two"]);
        assert_eq!(&bytes[..8], PACK_MAGIC);
        assert_eq!(read_trailer(&bytes, "mem").unwrap(), locs);
        // A scan is for packs without a trailer: cut before it, it finds every record.
        let unsealed = bytes[..(locs[1].payload_offset() + 7) as usize].to_vec();
        assert_eq!(scan_records(&unsealed, "mem").unwrap(), locs);
        assert_eq!(read_record(&bytes, "mem", &locs[1]).unwrap(), b"two two");
    }

    #[test]
    fn a_damaged_trailer_is_refused_and_the_scan_still_finds_the_records() {
        let (mut bytes, locs) = pack_of(&[b"abc"]);
        let t = bytes.len() - FOOTER_LEN as usize - 1;
        bytes[t] ^= 1;
        assert!(matches!(read_trailer(&bytes, "mem"), Err(ArchiveError::BadPack { .. })));
        assert_eq!(scan_records(&bytes, "mem").unwrap()[..1], locs[..]);
    }

    #[test]
    fn a_short_source_is_an_io_error_naming_the_pack() {
        let (bytes, locs) = pack_of(&[&[9u8; 100]]);
        let short = bytes[..(locs[0].payload_offset() + 50) as usize].to_vec();
        let err = read_record(&short, "packs/00/00000001.pack", &locs[0]).unwrap_err();
        assert!(matches!(&err, ArchiveError::Io { source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof), "{err}");
        assert!(err.to_string().starts_with("packs/00/00000001.pack: "), "{err}");
    }

    /// A pack on disk whose pages are not cached (written back, then dropped).
    fn cold_pack(bytes: &[u8]) -> (tempfile::TempDir, super::super::pack_file::PackFile) {
        use std::os::unix::io::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pack");
        std::fs::write(&path, bytes).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        f.sync_all().unwrap();
        // SAFETY: advice only; any range is valid.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        (dir, super::super::pack_file::PackFile::new(f))
    }

    #[test]
    fn chunk_records_read_around_the_page_cache_are_the_bytes_and_a_flipped_one_is_caught() {
        // Records at unaligned offsets, the last one ending in the file's
        // last, partial block: each read direct from where its block starts.
        let big: Vec<u8> = (0..(600u32 << 10)).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
        let odd: Vec<u8> = big.iter().rev().take(300_001).copied().collect();
        let (bytes, locs) = pack_of(&[b"small", &big, &odd]);
        let (_dir, pack) = cold_pack(&bytes[..(locs[2].payload_offset() as usize + odd.len())]);
        assert!(pack.prefers_direct(locs[1].payload_offset(), big.len()) || !direct_io_here());
        for (loc, want) in locs.iter().zip([&b"small"[..], &big, &odd]) {
            assert_eq!(&read_chunk_record(&pack, "p", loc, true).unwrap()[..], want);
        }
        // A zstd record: read direct, decoded into a buffer of its own.
        let packed = zstd::bulk::compress(&big, 1).unwrap();
        let mut bytes = encode_header().to_vec();
        bytes.extend_from_slice(&[7u8; 1000]);
        let loc = RecordLoc {
            kind: RecordKind::Chunk,
            codec: CODEC_ZSTD,
            raw_len: big.len() as u32,
            stored_len: packed.len() as u32,
            offset: bytes.len() as u64,
            id: Hash::of(&big),
        };
        bytes.extend_from_slice(&encode_record_header(&loc));
        bytes.extend_from_slice(&packed);
        bytes.extend_from_slice(&vec![0u8; 300 << 10]);
        let (_dir2, zpack) = cold_pack(&bytes);
        assert_eq!(&read_chunk_record(&zpack, "z", &loc, true).unwrap()[..], &big[..]);
        // One flipped byte in a record read direct: damaged, never wrong bytes.
        let (mut bad, locs) = pack_of(&[&big]);
        bad[locs[0].payload_offset() as usize + 123_457] ^= 0x40;
        let (_dir3, bad) = cold_pack(&bad);
        let err = read_chunk_record(&bad, "b", &locs[0], true).unwrap_err();
        assert!(matches!(err, ArchiveError::Damaged { .. }), "{err}");
        // A pack cut short inside the record: an end-of-file error, as buffered.
        let (cut, locs) = pack_of(&[&big]);
        let (_dir4, cut) = cold_pack(&cut[..locs[0].payload_offset() as usize + 400_000]);
        let err = read_chunk_record(&cut, "c", &locs[0], true).unwrap_err();
        assert!(matches!(&err, ArchiveError::Io { source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof), "{err}");
    }

    #[test]
    fn pack_names_parse_back_to_their_numbers() {
        assert_eq!(parse_pack_name(&pack_rel_path(300)), Some(300));
        assert_eq!(parse_pack_name("2c/00000300.pack.tmp"), None);
        assert_eq!(parse_pack_name("00000300.pack"), None);
        assert_eq!(parse_pack_name("a/b/00000300.pack"), None);
    }
}
