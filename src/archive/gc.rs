//! `reelfs gc`: free the chunks and objects nothing reaches.
//!
//! Reachable: every branch head and every commit reachable from it (both
//! parents), their trees and files; every blob in `proxies`; and the staging
//! overlay (blobs and trees named in `staging`, chunks in `staged_extents`).
//! History is kept: gc never drops a commit that a branch reaches.
//!
//! Mark-and-sweep under the writer lock, in steps a crash cannot turn into data
//! loss:
//!   1. one catalog transaction marks what is reachable and deletes the rows of
//!      everything else (the bytes stay in the packs; a crash before the commit
//!      changes nothing, after it the dead bytes are merely unindexed);
//!   2. packs with no live record lose their catalog row in that transaction
//!      and their file after it (a crash in between leaves an unknown pack, which
//!      the next gc removes; `check` reports it);
//!   3. packs that are mostly garbage are compacted: their live records are
//!      copied, verified, into new packs that are sealed and fsynced; then one
//!      transaction points the catalog rows at the new packs and drops the old
//!      packs' rows; only then are the old files deleted.
//!
//! Pack numbers are never reused (a high-water mark in `meta`), so a reader
//! holding an old pack open by number never sees other bytes under it; a reader
//! that resolved a chunk's location before the move and opens the pack after it
//! finds the file gone and looks the chunk up again (`ChunkStore::relocate`).

use super::error::{ArchiveError, IoContext, Result};
use super::objects::{Hash, RecordKind};
use super::pack::{self, RecordLoc, RECORD_HEADER_LEN};
use super::pack_writer::PackWriter;
use super::repo::Archive;
use std::collections::{HashSet, VecDeque};

#[derive(Debug, Clone)]
pub struct GcOptions {
    pub dry_run: bool,
    /// Compact a pack when its live records (with their share of the pack's
    /// index) are below this fraction of its size: "mostly garbage".
    pub compact_below: f64,
    /// Bytes of packs deleted or rewritten so far, and the pack at hand.
    pub progress: super::progress::ProgressHandle,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions { dry_run: false, compact_below: 0.5, progress: Default::default() }
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// Reachable content that stays.
    pub live_chunks: u64,
    pub live_chunk_bytes: u64,
    /// Chunks nothing reaches, and their stored bytes.
    pub chunks_freed: u64,
    pub chunk_bytes_freed: u64,
    pub blobs_freed: u64,
    pub trees_freed: u64,
    pub commits_freed: u64,
    /// Pack files deleted outright (nothing live in them).
    pub packs_deleted: u64,
    /// Mostly-garbage packs whose live records were copied to new packs.
    pub packs_compacted: u64,
    pub packs_written: u64,
    /// Live records copied by compaction, and their bytes.
    pub records_moved: u64,
    pub bytes_moved: u64,
    /// Disk space released: removed pack files minus the new packs.
    pub bytes_freed: u64,
    /// Dead bytes left inside packs that are mostly live (freed by a later gc
    /// once those packs become mostly garbage).
    pub garbage_bytes_left: u64,
    pub problems: Vec<String>,
}

pub fn gc(archive: &mut Archive, opts: &GcOptions) -> Result<GcReport> {
    archive.require_writer()?;
    // A writer's open removes only the packs numbered past the catalog; an
    // unknown pack below that (a gc stopped between its commit and step 2)
    // is removed here.
    if !opts.dry_run {
        archive.remove_every_uncommitted_pack()?;
    }
    let mut rep = GcReport { dry_run: opts.dry_run, ..Default::default() };
    let cat = &archive.catalog;
    cat.begin()?;
    let marked = (|| -> Result<Vec<(i64, String, u64, bool)>> {
        // ---- mark: commits (both parents) from every branch head ----
        let mut seen: HashSet<Hash> = HashSet::new();
        let mut q: VecDeque<Hash> = archive.branches()?.into_iter().filter_map(|(_, h)| h).collect();
        while let Some(c) = q.pop_front() {
            if !seen.insert(c) {
                continue;
            }
            match cat.commit_row(&c)? {
                Some(row) => q.extend(row.parents),
                None => rep.problems.push(format!("commit {} is reachable but not in the catalog", c.short())),
            }
        }
        // ---- then trees, blobs (files, proxies, staged files) and chunks, in the catalog ----
        cat.gc_mark(&seen)?;
        // ---- sweep the catalog ----
        let n = cat.gc_counts()?;
        rep.live_chunks = n.live_chunks;
        rep.live_chunk_bytes = n.live_chunk_bytes;
        rep.chunks_freed = n.chunks_freed;
        rep.chunk_bytes_freed = n.chunk_bytes_freed;
        rep.blobs_freed = n.blobs_freed;
        rep.trees_freed = n.trees_freed;
        rep.commits_freed = n.commits_freed;
        cat.gc_sweep()?;
        // ---- plan the packs: (id, name, size, compact?) of packs to act on ----
        let mut plan = Vec::new();
        for u in cat.pack_usage(RECORD_HEADER_LEN)? {
            let (id, name, size, live, count) = (u.id, u.name, u.size, u.live_bytes, u.records);
            // Header, trailer and footer are overhead, not garbage.
            let overhead = pack::HEADER_LEN + pack::FOOTER_LEN + count * pack::TRAILER_ENTRY_LEN as u64;
            let garbage = size.saturating_sub(live + overhead);
            if count == 0 {
                plan.push((id, name, size, false));
            } else if garbage as f64 > size as f64 * (1.0 - opts.compact_below) {
                plan.push((id, name, size, true));
            } else {
                rep.garbage_bytes_left += garbage;
            }
        }
        if !opts.dry_run {
            for (id, _, _, compact) in &plan {
                if !compact {
                    cat.delete_pack_row(*id)?;
                    cat.set_pack_high_water(*id)?;
                }
            }
        }
        Ok(plan)
    })();
    let plan = match marked {
        Ok(p) if !opts.dry_run => {
            cat.commit()?;
            p
        }
        Ok(p) => {
            cat.rollback();
            for (_, _, size, compact) in &p {
                if *compact {
                    rep.packs_compacted += 1;
                } else {
                    rep.packs_deleted += 1;
                    rep.bytes_freed += size;
                }
            }
            return Ok(rep);
        }
        Err(e) => {
            cat.rollback();
            return Err(e);
        }
    };
    let _ = cat.gc_drop_marks();
    let store = archive.pack_store();
    let pb = &opts.progress;
    pb.begin("gc", super::progress::Unit::Bytes, plan.iter().map(|p| p.2).sum());
    // ---- step 2: packs with nothing live: their rows are gone, delete them ----
    for (_, name, size, compact) in &plan {
        if !compact {
            pb.message(name);
            pb.advance(*size);
            let present = matches!(store.size(name), Ok(Some(_)));
            match store.delete(name) {
                Ok(()) => {
                    rep.packs_deleted += 1;
                    if present {
                        rep.bytes_freed += size;
                    }
                }
                Err(e) => rep.problems.push(e.to_string()),
            }
        }
    }
    // ---- step 3: compact mostly-garbage packs ----
    let to_compact: Vec<(i64, String, u64)> = plan.into_iter().filter(|p| p.3).map(|(i, n, s, _)| (i, n, s)).collect();
    let compacted = if to_compact.is_empty() { Ok(()) } else { compact(archive, &to_compact, &mut rep, pb) };
    pb.finish();
    compacted?;
    Ok(rep)
}

/// One live record of a pack being compacted.
struct Live {
    loc: RecordLoc,
    is_chunk: bool,
}

fn live_records(cat: &super::catalog::Catalog, pack: i64) -> Result<Vec<Live>> {
    let mut out = Vec::new();
    for r in cat.records_in_pack(pack)? {
        let kind = RecordKind::from_u8(r.kind as u8)
            .ok_or_else(|| ArchiveError::Inconsistent(format!("unknown record kind {} in pack #{pack}", r.kind)))?;
        out.push(Live {
            loc: RecordLoc { kind, codec: r.codec, raw_len: r.raw_len, stored_len: r.stored_len, offset: r.offset, id: r.id },
            is_chunk: kind == RecordKind::Chunk,
        });
    }
    Ok(out)
}

fn compact(archive: &Archive, packs: &[(i64, String, u64)], rep: &mut GcReport, pb: &super::progress::ProgressHandle) -> Result<()> {
    let cat = &archive.catalog;
    let store = archive.pack_store();
    let mut w = archive.pack_writer()?;
    // (is_chunk, id, old pack, new pack, new offset)
    let mut moves: Vec<(bool, Hash, i64, i64, u64)> = Vec::new();
    let mut old_done: Vec<(i64, String, u64)> = Vec::new();
    let result = (|| -> Result<()> {
        for (pid, name, size) in packs {
            pb.message(name);
            pb.advance(*size);
            let file = match store.open(name) {
                Ok(f) => f,
                Err(e) => {
                    rep.problems.push(format!("{e}; pack kept"));
                    continue;
                }
            };
            let at = store.locate(name);
            let live = live_records(cat, *pid)?;
            // Read and verify every live record first: a damaged one keeps the whole
            // pack as it is (gc never turns damage into loss, nor copies it).
            let mut payloads = Vec::with_capacity(live.len());
            let mut ok = true;
            let mut flushed = 0usize;
            for l in &live {
                let mut stored = vec![0u8; l.loc.stored_len as usize];
                let verified = file
                    .read_exact_at(l.loc.payload_offset(), &mut stored)
                    .at(&at)
                    .and_then(|()| pack::decode_record(stored.clone(), &at, &l.loc));
                if let Err(e) = verified {
                    rep.problems.push(format!("{e}; pack {at} kept as it is"));
                    ok = false;
                    break;
                }
                payloads.push(stored);
                if payloads.iter().map(|p| p.len()).sum::<usize>() > (256 << 20) {
                    // Bound memory: write what is buffered before reading on.
                    let n = payloads.len();
                    flush(&live[flushed..flushed + n], &mut payloads, *pid, &mut w, &mut moves, rep)?;
                    flushed += n;
                }
            }
            if !ok {
                // Drop the moves already buffered for this pack: its rows keep pointing at it.
                moves.retain(|m| m.2 != *pid);
                continue;
            }
            flush(&live[flushed..], &mut payloads, *pid, &mut w, &mut moves, rep)?;
            old_done.push((*pid, name.clone(), *size));
        }
        // Every new pack is sealed and durable: now repoint the catalog at once.
        let sealed = w.finish()?;
        cat.begin()?;
        let r = (|| -> Result<()> {
            for p in sealed {
                cat.insert_pack(p.id, &p.name, p.size, p.records.len())?;
                cat.set_pack_high_water(p.id)?;
            }
            for (is_chunk, id, old, new, off) in &moves {
                cat.move_record(*is_chunk, id, *old, *new, *off)?;
            }
            for (id, _, _) in &old_done {
                let left = cat.records_left_in_pack(*id)?;
                if left > 0 {
                    return Err(ArchiveError::Inconsistent(format!("gc: pack #{id} still has {left} live records after compaction")));
                }
                cat.delete_pack_row(*id)?;
                cat.set_pack_high_water(*id)?;
            }
            Ok(())
        })();
        match r {
            Ok(()) => cat.commit(),
            Err(e) => {
                cat.rollback();
                Err(e)
            }
        }
    })();
    if let Err(e) = result {
        // Nothing committed: the new packs are unreferenced; remove them.
        w.abort();
        return Err(e);
    }
    let sealed = w.sealed();
    archive.store().register_packs(sealed.iter().map(|p| (p.id, p.name.clone())));
    rep.packs_written += sealed.len() as u64;
    let new_bytes: u64 = sealed.iter().map(|p| p.size).sum();
    let mut old_bytes = 0u64;
    // Only now, with the catalog pointing at the copies, remove the old packs.
    for (_, name, size) in &old_done {
        if let Err(e) = store.delete(name) {
            rep.problems.push(e.to_string());
        }
        old_bytes += size;
        rep.packs_compacted += 1;
    }
    rep.bytes_freed += old_bytes.saturating_sub(new_bytes);
    Ok(())
}

/// Append buffered live records (`live[i]` <-> `payloads[i]`) to the new packs.
fn flush(
    live: &[Live],
    payloads: &mut Vec<Vec<u8>>,
    old_pack: i64,
    w: &mut PackWriter,
    moves: &mut Vec<(bool, Hash, i64, i64, u64)>,
    rep: &mut GcReport,
) -> Result<()> {
    for (l, stored) in live.iter().zip(payloads.drain(..)) {
        let (pack, loc) = w.append(l.loc.kind, l.loc.codec, l.loc.id, l.loc.raw_len as usize, &stored)?;
        moves.push((l.is_chunk, l.loc.id, old_pack, pack, loc.offset));
        rep.records_moved += 1;
        rep.bytes_moved += stored.len() as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::ingest::{ingest, IngestOptions};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use crate::archive::test_support::noise_low as noise;

    use crate::archive::test_support::put;

    #[test]
    fn deleted_branch_content_is_freed_and_the_rest_reads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("arch");
        let mut a = Archive::init(&root).unwrap();
        let keep = noise(3 << 20, 1);
        let drop_me = noise(2 << 20, 2);
        put(&mut a, "main", dir.path(), "keep.bin", &keep);
        a.create_branch("scratch", Some("main")).unwrap();
        put(&mut a, "scratch", dir.path(), "drop.bin", &drop_me);
        // Keep a reader open across gc: it resolved locations before.
        let reader = a.blob_reader(&a.resolve("main/keep.bin").unwrap().entry.hash).unwrap();
        // The archive's random CDC seed may cut 2 MiB into one or two chunks.
        let drop_hash = a.resolve("scratch/drop.bin").unwrap().entry.hash;
        let expect = a.catalog.extents(&drop_hash).unwrap().len() as u64;
        a.delete_branch("scratch").unwrap();
        let dry = gc(&mut a, &GcOptions { dry_run: true, ..Default::default() }).unwrap();
        assert_eq!(dry.chunks_freed, expect);
        let r = gc(&mut a, &GcOptions::default()).unwrap();
        assert_eq!(r.chunks_freed, expect, "{r:?}");
        assert!(r.bytes_freed >= (2 << 20) as u64, "{r:?}");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        // Everything on main still reads, through the old reader and a new one.
        let mut buf = vec![0u8; keep.len()];
        assert_eq!(reader.read_at(0, &mut buf).unwrap(), keep.len());
        assert_eq!(buf, keep);
        let check = crate::archive::check::check(&a, true, &Default::default()).unwrap();
        assert!(check.ok(), "{:?}", check.problems);
        // Nothing more to free.
        let again = gc(&mut a, &GcOptions::default()).unwrap();
        assert_eq!((again.chunks_freed, again.packs_deleted, again.packs_compacted), (0, 0, 0));
    }

    #[test]
    fn a_writer_removes_packs_a_killed_writer_numbered_past_the_catalog_and_gc_removes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("arch");
        let mut a = Archive::init(&root).unwrap();
        let keep = noise(1 << 20, 1);
        put(&mut a, "main", dir.path(), "keep.bin", &keep);
        let max = a.catalog.max_pack_id().unwrap();
        let stray = |id: i64| {
            let p = root.join("packs").join(pack::pack_rel_path(id));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"left by a killed writer").unwrap();
            p
        };
        // A killed ingest's packs past the catalog (one after a gap), and an
        // unknown pack under the high-water mark (a gc stopped before deleting).
        let below = stray(max + 1);
        a.catalog.set_pack_high_water(max + 2).unwrap();
        let tail = [stray(max + 3), stray(max + 5)];
        drop(a);
        let mut a = Archive::open_writer(&root).unwrap();
        assert!(tail.iter().all(|p| !p.exists()), "the writer left a killed writer's packs");
        let check = crate::archive::check::check(&a, false, &Default::default()).unwrap();
        assert_eq!(check.uncommitted_packs.len(), 1, "{:?}", check.uncommitted_packs);
        assert!(below.exists(), "a writer's open only probes past the catalog");
        let r = gc(&mut a, &GcOptions::default()).unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(!below.exists(), "gc left a pack the catalog does not know");
        let check = crate::archive::check::check(&a, true, &Default::default()).unwrap();
        assert!(check.ok() && check.uncommitted_packs.is_empty(), "{:?}", check.problems);
        let reader = a.blob_reader(&a.resolve("main/keep.bin").unwrap().entry.hash).unwrap();
        let mut buf = vec![0u8; keep.len()];
        assert_eq!(reader.read_at(0, &mut buf).unwrap(), keep.len());
        assert_eq!(buf, keep);
    }

    #[test]
    fn compaction_moves_live_chunks_and_old_readers_follow() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("arch");
        let mut a = Archive::init(&root).unwrap();
        // One ingest -> one pack holding a small live file and a big dead one.
        let src = dir.path().join("both");
        std::fs::create_dir_all(&src).unwrap();
        let small = noise(1 << 20, 3);
        std::fs::write(src.join("small.bin"), &small).unwrap();
        std::fs::write(src.join("big.bin"), noise(6 << 20, 4)).unwrap();
        let opts = IngestOptions {
            branch: "tmp".into(),
            dest: String::new(),
            message: None,
            progress: Default::default(),
            prober: None,
            interrupt: Arc::new(AtomicBool::new(false)),
        };
        a.create_branch("tmp", None).unwrap();
        ingest(&mut a, std::slice::from_ref(&src), &opts).unwrap();
        std::fs::remove_file(src.join("big.bin")).unwrap();
        // main gets only the small file (dedup: no new chunk).
        put(&mut a, "main", dir.path(), "small.bin", &small);
        let reader = a.blob_reader(&a.resolve("main/small.bin").unwrap().entry.hash).unwrap();
        let old_pack = reader.extents()[0].loc.pack;
        a.delete_branch("tmp").unwrap();
        let r = gc(&mut a, &GcOptions::default()).unwrap();
        assert_eq!(r.packs_compacted, 1, "{r:?}");
        assert!(r.records_moved >= 1);
        assert!(!root.join("packs").join(pack::pack_rel_path(old_pack)).exists());
        // A fresh store (another process, e.g. a mount) that resolved the location
        // before gc: the old pack is gone, the chunk is found where it moved.
        let store = crate::archive::read::ChunkStore::new(crate::archive::pack_store::local_store(&root), root.join("catalog.db"), 1 << 20);
        let re = &reader.extents()[0];
        let data = store.load_verified(&re.extent.chunk, &re.loc).unwrap();
        assert_eq!(&data[..], &small[..data.len()]);
        let check = crate::archive::check::check(&a, true, &Default::default()).unwrap();
        assert!(check.ok(), "{:?}", check.problems);
        let mut out = Vec::new();
        crate::archive::restore::cat(&a, &a.resolve("main/small.bin").unwrap().entry.hash, &mut out).unwrap();
        assert_eq!(out, small);
        // New packs never reuse a removed pack's number.
        assert!(a.catalog.max_pack_id().unwrap() >= old_pack);
    }
}
