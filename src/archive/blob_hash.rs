//! A file's content hash and outboard at commit time, re-hashing only the
//! blocks that changed since a version whose outboard is known.
//!
//! A commit through the mount used to read and hash the whole file after any
//! write (8.5 s for a 4 GiB file after a 4 KB write). A block's chaining value
//! depends only on its bytes and its offset, and a block's bytes are named by
//! the extents that cover it (content-addressed chunks): so a block whose
//! extents, seen from the block's start, are the same in the new extent list
//! as in the base version has the base's CV, and only the other blocks are
//! read. The merge of the CVs gives the plain BLAKE3 of the new bytes.

use super::error::{ArchiveError, Result};
use super::objects::{Extent, Hash, ZERO_RUN};
use super::outboard::{self, Cv, BLOCK_LEN};
use super::read::BlobReader;

/// A version of the file whose outboard is known: its extents, size and CVs
/// (checked with `outboard::matches` by the caller).
pub struct Base<'a> {
    pub extents: &'a [Extent],
    pub size: u64,
    pub cvs: &'a [Cv],
}

/// The hash of `reader`'s bytes (its plain BLAKE3), their outboard (empty for
/// a single block), and how many blocks were read to get them.
pub fn hash_blocks(reader: &BlobReader, base: Option<&Base>) -> Result<(Hash, Vec<Cv>, usize)> {
    let size = reader.size;
    if !outboard::has_blocks(size) {
        let mut buf = vec![0u8; size as usize];
        read_full(reader, 0, &mut buf)?;
        return Ok((Hash::of(&buf), Vec::new(), usize::from(size > 0)));
    }
    let n = outboard::block_count(size);
    let new_ext = reader.extents().iter().map(|r| r.extent).collect::<Vec<_>>();
    let (mut at_new, mut at_base) = (0usize, 0usize);
    let mut cvs = Vec::with_capacity(n);
    let mut buf = vec![0u8; BLOCK_LEN as usize];
    let mut read = 0usize;
    for k in 0..n {
        let start = k as u64 * BLOCK_LEN;
        let end = (start + BLOCK_LEN).min(size);
        let reuse = base.and_then(|b| {
            let cv = b.cvs.get(k)?;
            let base_end = (start + BLOCK_LEN).min(b.size);
            if base_end != end || b.cvs.len() != outboard::block_count(b.size) {
                return None;
            }
            let mine = pieces(&new_ext, &mut at_new, start, end);
            let theirs = pieces(b.extents, &mut at_base, start, end);
            (mine == theirs && !mine.is_empty()).then_some(*cv)
        });
        let cv = match reuse {
            Some(cv) => cv,
            None => {
                let block = &mut buf[..(end - start) as usize];
                read_full(reader, start, block)?;
                read += 1;
                outboard::block_cv(block, start)
            }
        };
        cvs.push(cv);
    }
    Ok((outboard::root_of(&cvs), cvs, read))
}

fn read_full(reader: &BlobReader, offset: u64, buf: &mut [u8]) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = reader.read_at(offset + done as u64, &mut buf[done..])?;
        if n == 0 {
            return Err(ArchiveError::Inconsistent(format!("file ends early at {}", offset + done as u64)));
        }
        done += n;
    }
    Ok(())
}

/// The pieces of [start, end) as (offset in the block, length, chunk, offset
/// in the chunk), neighbours that continue the same chunk joined, so that the
/// same bytes cut differently compare equal. `at` is a cursor into the sorted
/// extents, moved forward as blocks advance.
fn pieces(ext: &[Extent], at: &mut usize, start: u64, end: u64) -> Vec<(u64, u64, Hash, u64)> {
    while *at < ext.len() && ext[*at].end() <= start {
        *at += 1;
    }
    let mut out: Vec<(u64, u64, Hash, u64)> = Vec::new();
    for e in ext[*at..].iter().take_while(|e| e.file_offset < end) {
        let s = e.file_offset.max(start);
        let t = e.end().min(end);
        if s >= t {
            continue;
        }
        let zero = e.is_zero_run();
        let (chunk, coff) = if zero { (ZERO_RUN, 0) } else { (e.chunk, e.chunk_offset + (s - e.file_offset)) };
        if let Some(last) = out.last_mut() {
            let contiguous = last.0 + last.1 == s - start && last.2 == chunk && (zero || last.3 + last.1 == coff);
            if contiguous {
                last.1 += t - s;
                continue;
            }
        }
        out.push((s - start, t - s, chunk, coff));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::pack::RECORD_HEADER_LEN;
    use crate::archive::{Archive, ArchiveError};

    use crate::archive::test_support::noise;

    /// Flip one stored byte of a committed file, at file offset `at`, in its pack.
    fn flip_stored_byte(a: &Archive, blob: &Hash, at: u64) {
        let ext = a.catalog.extents(blob).unwrap();
        let e = ext.iter().find(|e| e.file_offset <= at && at < e.end()).unwrap();
        let loc = a.catalog.chunk_loc(&e.chunk).unwrap().unwrap();
        assert_eq!(loc.codec, crate::archive::pack::CODEC_RAW);
        let name = a.catalog.pack_name(loc.pack).unwrap().unwrap();
        let path = a.root().join("packs").join(name);
        let pos = loc.offset + RECORD_HEADER_LEN + e.chunk_offset + (at - e.file_offset);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[pos as usize] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
    }

    fn commit_file(root: &std::path::Path, path: &str, base: &[Extent], writes: &[(u64, &[u8])], size: u64) -> Hash {
        {
            let a = Archive::open(root).unwrap();
            a.stage_write("main", path, base, writes, size, 0o644, 1, None, &Default::default()).unwrap();
        }
        let mut w = Archive::open_writer(root).unwrap();
        w.commit_staging("main", "test").unwrap().unwrap();
        w.resolve(&format!("main/{path}")).unwrap().entry.hash
    }

    #[test]
    fn a_commit_after_a_small_write_reads_only_the_touched_block_and_gives_the_b3sum_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a");
        drop(Archive::init(&root).unwrap());
        let mut bytes = noise(3 << 20, 7);
        let first = commit_file(&root, "big.bin", &[], &[(0, &bytes)], bytes.len() as u64);
        assert_eq!(first, Hash::of(&bytes));
        let a = Archive::open(&root).unwrap();
        // Damage a byte far from the write: a commit that re-read the whole
        // file would fail on it; one that re-hashes only the touched block
        // does not read it at all.
        flip_stored_byte(&a, &first, 2_900_000);
        let base = a.catalog.extents(&first).unwrap();
        drop(a);
        let patch = noise(4096, 99);
        let at = 1_500_000u64;
        let second = commit_file(&root, "big.bin", &base, &[(at, &patch)], bytes.len() as u64);
        bytes[at as usize..at as usize + 4096].copy_from_slice(&patch);
        assert_eq!(second, Hash::of(&bytes), "the commit's hash must be the file's BLAKE3 (what b3sum prints)");
        // The new version's outboard is recorded and hashes to it.
        let a = Archive::open(&root).unwrap();
        let cvs = a.catalog.blob_outboard(&second).unwrap().unwrap();
        assert!(outboard::matches(&second, bytes.len() as u64, &cvs));
    }

    /// A file written through the mount keeps the proof of its head, as an
    /// ingested one does (a server's first piece of it reads 16 KiB).
    #[test]
    fn a_written_file_keeps_the_proof_of_its_first_chunks_head() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a");
        drop(Archive::init(&root).unwrap());
        let bytes = noise(3 << 20, 13);
        let blob = commit_file(&root, "w.bin", &[], &[(0, &bytes)], bytes.len() as u64);
        let a = Archive::open(&root).unwrap();
        let ext = a.catalog.extents(&blob).unwrap();
        let proof = a.catalog.chunk_head(&ext[0].chunk).unwrap().expect("the first chunk's head proof");
        assert!(outboard::head_matches(&ext[0].chunk, ext[0].length, &bytes[..outboard::HEAD_LEN as usize], &proof));
        assert!(ext[1..].iter().all(|e| a.catalog.chunk_head(&e.chunk).unwrap().is_none()), "only the chunk that begins the file");
    }

    #[test]
    fn a_flipped_byte_fails_reads_of_its_block_only_and_other_blocks_of_the_chunk_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a");
        drop(Archive::init(&root).unwrap());
        let bytes = noise(3 << 20, 11);
        let blob = commit_file(&root, "one.bin", &[], &[(0, &bytes)], bytes.len() as u64);
        let a = Archive::open(&root).unwrap();
        // The chunker's seed is per archive: take the longest chunk (chunks
        // are at least 1 MiB, and 3 MiB holds at most two of them plus a tail,
        // so it has at least 4 blocks) and damage its block 3.
        let e = a.catalog.extents(&blob).unwrap().into_iter().max_by_key(|e| e.length).unwrap();
        assert!(e.length >= 4 * BLOCK_LEN && e.chunk_offset == 0, "{e:?}");
        let fo = e.file_offset;
        let bad = fo + 3 * BLOCK_LEN + 1234;
        flip_stored_byte(&a, &blob, bad);
        drop(a);
        let a = Archive::open(&root).unwrap();
        let r = a.blob_reader(&blob).unwrap();
        let mut buf = vec![0u8; 100_000];
        // Other blocks of the same chunk read, and read right.
        for off in [fo, fo + BLOCK_LEN + 10, fo + 2 * BLOCK_LEN] {
            assert_eq!(r.read_at(off, &mut buf).unwrap(), buf.len());
            assert_eq!(&buf[..], &bytes[off as usize..off as usize + buf.len()], "at {off}");
        }
        // Any read touching the damaged block is an error naming the damage, every time.
        for off in [bad - 10, fo + 3 * BLOCK_LEN, fo + 3 * BLOCK_LEN - 50] {
            match r.read_at(off, &mut buf) {
                Err(ArchiveError::Damaged { what, .. }) => assert!(what.contains("block 3"), "{what}"),
                other => panic!("read at {off}: expected damage, got {other:?}"),
            }
        }
        assert_eq!(r.read_at(fo + BLOCK_LEN + 10, &mut buf).unwrap(), buf.len());
    }

    #[test]
    fn check_deep_names_the_file_for_a_flipped_byte_in_the_first_a_middle_and_the_last_block() {
        let len = (3 << 20) + 777u64; // 13 blocks, the last one short
        for at in [100, 6 * BLOCK_LEN + 5, len - 3] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("a");
            drop(Archive::init(&root).unwrap());
            let bytes = noise(len as usize, at);
            let blob = commit_file(&root, "clip.mov", &[], &[(0, &bytes)], len);
            let w = Archive::open_writer(&root).unwrap();
            assert!(w.catalog.chunk_outboard(&w.catalog.extents(&blob).unwrap()[0].chunk).unwrap().is_some());
            let clean = crate::archive::check::check(&w, true, &Default::default()).unwrap();
            assert!(clean.ok(), "{clean:?}");
            flip_stored_byte(&w, &blob, at);
            let rep = crate::archive::check::check(&w, true, &Default::default()).unwrap();
            assert_eq!(rep.damaged_files, vec!["main/clip.mov".to_string()], "byte at {at}: {rep:?}");
        }
    }

    #[test]
    fn check_deep_reports_and_drops_an_outboard_that_does_not_match_its_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a");
        drop(Archive::init(&root).unwrap());
        let bytes = noise(3 << 20, 5);
        let blob = commit_file(&root, "f.bin", &[], &[(0, &bytes)], bytes.len() as u64);
        let w = Archive::open_writer(&root).unwrap();
        let chunk = w.catalog.extents(&blob).unwrap()[0].chunk;
        let mut cvs = w.catalog.chunk_outboard(&chunk).unwrap().unwrap();
        cvs[2][0] ^= 1;
        w.catalog.put_chunk_outboard(&chunk, &cvs).unwrap();
        let rep = crate::archive::check::check(&w, true, &Default::default()).unwrap();
        assert!(rep.problems.iter().any(|p| p.contains("outboard")), "{rep:?}");
        assert!(rep.damaged_files.is_empty(), "the data is fine: {rep:?}");
        assert_eq!(w.catalog.chunk_outboard(&chunk).unwrap(), None);
        // Reads still verify (whole) and return the right bytes.
        let r = w.blob_reader(&blob).unwrap();
        let mut buf = vec![0u8; 1000];
        r.read_at(2 * BLOCK_LEN, &mut buf).unwrap();
        assert_eq!(&buf[..], &bytes[2 * BLOCK_LEN as usize..2 * BLOCK_LEN as usize + 1000]);
    }
}
