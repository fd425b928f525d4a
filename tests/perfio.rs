//! The mount's read path (issue 16, perfio): one read loop (`archive::read::Prefetched`)
//! serves the mount, serve and python, and a read inside a chunk the read-ahead holds
//! is answered from that chunk's memory (no per-request buffer, zeroing or copy).

use reelfs::archive::ingest::{self, IngestOptions};
use reelfs::archive::read::{Prefetched, ReadBuf};
use reelfs::archive::readahead::{Prefetcher, ReadAheadConfig};
use reelfs::archive::Archive;
use reelfs::fs::core::{FsCore, FsOptions};
use reelfs::fs::inodes::ROOT_INO;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

mod common;
use common::{noise, write};

/// An archive holding `card/clip.bin` (`len` bytes of noise, or of a pattern
/// zstd shrinks when `compressible`), and those bytes.
fn archive_with_clip(dir: &Path, len: usize, compressible: bool) -> (PathBuf, Vec<u8>) {
    let src = dir.join("card");
    let data = if compressible { (0..len).map(|i| (i / 7 % 251) as u8).collect() } else { noise(7, len) };
    write(&src.join("clip.bin"), &data, 0o644, 1_600_000_000);
    let root = dir.join("archive");
    drop(Archive::init(&root).unwrap());
    let mut a = Archive::open_writer(&root).unwrap();
    let opts = IngestOptions {
        branch: "main".into(),
        dest: "".into(),
        message: Some("ingest".into()),
        progress: Default::default(),
        prober: None,
        interrupt: Arc::new(AtomicBool::new(false)),
    };
    let rep = ingest::ingest(&mut a, &[src], &opts).unwrap();
    assert!(rep.failed.is_empty(), "{:?}", rep.failed);
    (root, data)
}

/// True when `buf` is a view into `chunk`'s own memory.
fn lends_from(buf: &ReadBuf, chunk: &[u8]) -> bool {
    let range = chunk.as_ptr_range();
    let p = buf.as_ptr();
    matches!(buf, ReadBuf::Chunk { .. }) && range.contains(&p) && p.wrapping_add(buf.len()) <= range.end
}

#[test]
fn prefetched_read_inside_a_cached_chunk_lends_the_chunk_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (root, data) = archive_with_clip(dir.path(), 3 << 20, false);
    let a = Archive::open(&root).unwrap();
    let r = a.resolve("main/card/clip.bin").unwrap();
    let reader = Arc::new(a.blob_reader(&r.entry.hash).unwrap());
    let prefetch = Prefetcher::new(a.store().clone(), ReadAheadConfig { cache_bytes: 64 << 20, workers: 1, queue: 8, max_window: 0 });
    let e = reader.extents()[0].clone();
    let chunk = prefetch.get(&e.extent.chunk, &e.loc).unwrap();
    let file = Prefetched { prefetch, reader };
    let (off, len) = (e.extent.file_offset + 4096, 128 << 10);
    let buf = file.read_buf(off, len).unwrap();
    assert_eq!(&buf[..], &data[off as usize..(off + len) as usize]);
    assert!(lends_from(&buf, &chunk), "a read inside a cached chunk was copied into a buffer of its own");
    // Past the end of the file: short, and still the right bytes.
    let tail = file.read_buf(data.len() as u64 - 10, 1 << 20).unwrap();
    assert_eq!(&tail[..], &data[data.len() - 10..]);
}

#[test]
fn mount_read_of_a_loaded_chunk_replies_from_its_memory() {
    let dir = tempfile::tempdir().unwrap();
    // Compressed chunks are loaded whole (decompressed and verified) on first
    // touch; a raw chunk is read by block-verified pread instead (format 2), so
    // only a chunk the read-ahead has loaded is there to lend from.
    let (root, data) = archive_with_clip(dir.path(), 3 << 20, true);
    let fs = FsCore::new(Archive::open(&root).unwrap(), FsOptions { cache_bytes: 64 << 20, readahead_workers: 2, ..Default::default() });
    let mut ino = ROOT_INO;
    for part in ["main", "card", "clip.bin"] {
        ino = fs.lookup(ino, part).unwrap().ino;
    }
    let fh = fs.open(ino, false).unwrap();
    // The first read loads (and verifies) the chunk; the next is lent from it.
    let first = fs.read_buf(fh, 0, 64 << 10).unwrap();
    assert_eq!(&first[..], &data[..64 << 10]);
    let next = fs.read_buf(fh, 64 << 10, 64 << 10).unwrap();
    assert_eq!(&next[..], &data[64 << 10..128 << 10]);
    assert!(matches!(next, ReadBuf::Chunk { .. }), "the mount copied a cached chunk's bytes into a fresh buffer");
    // Every byte still reads back right, through the same loop.
    let mut got = Vec::new();
    while got.len() < data.len() {
        let b = fs.read(fh, got.len() as u64, 1 << 20).unwrap();
        assert!(!b.is_empty());
        got.extend_from_slice(&b);
    }
    assert_eq!(got, data);
}
