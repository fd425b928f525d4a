//! The `PackStore` seam: a real archive (real SQLite catalog, real ingest,
//! restore, check and gc) whose packs live in a `MemPackStore`, with faults
//! injected there — a seal that fails, a pack whose reads end early, a pack
//! that is gone — and what a user sees of each.

use reelfs::archive::check;
use reelfs::archive::config::Config;
use reelfs::archive::gc::{gc, GcOptions};
use reelfs::archive::ingest::{self, IngestOptions};
use reelfs::archive::pack_store::PackStore;
use reelfs::archive::pack_store_mem::MemPackStore;
use reelfs::archive::read::{BlobReader, ChunkStore};
use reelfs::archive::restore::{self, RestoreOptions};
use reelfs::archive::{Archive, ArchiveError};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

mod common;
use common::{noise, write};

/// An archive at `dir/archive` whose packs are in `mem`: small chunks, and
/// 1 MiB packs so a few MB of data make several packs.
fn mem_archive(dir: &Path, mem: &MemPackStore) -> PathBuf {
    let root = dir.join("archive");
    drop(Archive::init_with_store(&root, Arc::new(mem.clone())).unwrap());
    let toml = root.join("reelfs.toml");
    let mut cfg = Config::load(&toml).unwrap();
    cfg.chunker.min_size = 64 << 10;
    cfg.chunker.avg_size = 256 << 10;
    cfg.chunker.max_size = 1 << 20;
    cfg.chunker.seed = 0x5eed0f7e57;
    cfg.packs.target_size = 1 << 20;
    std::fs::write(&toml, cfg.to_toml().unwrap()).unwrap();
    root
}

fn writer(root: &Path, mem: &MemPackStore) -> Archive {
    Archive::open_writer_with_store(root, Arc::new(mem.clone())).unwrap()
}

fn opts() -> IngestOptions {
    IngestOptions {
        branch: "main".into(),
        dest: String::new(),
        message: None,
        progress: Default::default(),
        prober: None,
        interrupt: Arc::new(AtomicBool::new(false)),
    }
}

fn card(dir: &Path) -> PathBuf {
    let card = dir.join("card");
    write(&card.join("A001C001.mov"), &noise(1, 3 << 20), 0o644, 1_600_000_000);
    write(&card.join("A001C002.mov"), &noise(2, 200_000), 0o644, 1_600_000_001);
    card
}

fn read_all(a: &Archive, spec: &str) -> Result<Vec<u8>, ArchiveError> {
    let r = a.resolve(spec)?;
    let mut out = Vec::new();
    restore::cat(a, &r.entry.hash, &mut out)?;
    Ok(out)
}

fn restore_to(a: &Archive, spec: &str, dest: &Path) -> Result<restore::RestoreReport, ArchiveError> {
    let stop = AtomicBool::new(false);
    restore::restore(a, &[spec.to_string()], dest, &RestoreOptions { progress: Default::default(), interrupt: &stop })
}

/// The pack holding the first chunk of `spec`.
fn pack_of(a: &Archive, spec: &str) -> String {
    let r = a.resolve(spec).unwrap();
    let reader = a.blob_reader(&r.entry.hash).unwrap();
    let id = reader.extents()[0].loc.pack;
    a.catalog.pack_names().unwrap().into_iter().find(|p| p.0 == id).unwrap().1
}

#[test]
fn an_archive_runs_on_an_in_memory_store() {
    let dir = tempfile::tempdir().unwrap();
    let mem = MemPackStore::new();
    let root = mem_archive(dir.path(), &mem);
    let card = card(dir.path());
    let mut a = writer(&root, &mem);
    ingest::ingest(&mut a, std::slice::from_ref(&card), &opts()).unwrap();
    assert!(mem.list().unwrap().len() >= 3, "3 MiB in 1 MiB packs: {:?}", mem.list().unwrap());
    // Nothing of the packs went to disk: the store is the only place they are.
    assert_eq!(std::fs::read_dir(root.join("packs")).unwrap().count(), 0);
    for name in ["A001C001.mov", "A001C002.mov"] {
        assert_eq!(read_all(&a, &format!("main/card/{name}")).unwrap(), std::fs::read(card.join(name)).unwrap());
    }
    let out = dir.path().join("out");
    restore_to(&a, "main/card", &out).unwrap();
    assert_eq!(std::fs::read(out.join("A001C001.mov")).unwrap(), std::fs::read(card.join("A001C001.mov")).unwrap());
    let c = check::check(&a, true, &Default::default()).unwrap();
    assert!(c.ok(), "{:?}", c.problems);

    // gc through the store: a branch's content freed, its packs deleted or
    // compacted, and a reader that resolved locations before still reads.
    a.create_branch("scratch", Some("main")).unwrap();
    let extra = dir.path().join("extra");
    write(&extra.join("X.mov"), &noise(9, 2 << 20), 0o644, 1_600_000_009);
    let o = IngestOptions { branch: "scratch".into(), ..opts() };
    ingest::ingest(&mut a, &[extra], &o).unwrap();
    let keep = a.blob_reader(&a.resolve("main/card/A001C001.mov").unwrap().entry.hash).unwrap();
    let stored = |m: &MemPackStore| -> u64 { m.list().unwrap().iter().map(|n| m.size(n).unwrap().unwrap()).sum() };
    let before = stored(&mem);
    a.delete_branch("scratch").unwrap();
    let r = gc(&mut a, &GcOptions::default()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(r.packs_deleted + r.packs_compacted >= 2, "{r:?}");
    assert!(stored(&mem) + (3 << 19) < before, "gc freed the 2 MiB nothing reaches: {} -> {}", before, stored(&mem));
    let mut buf = vec![0u8; keep.size as usize];
    assert_eq!(keep.read_at(0, &mut buf).unwrap(), buf.len());
    assert_eq!(buf, std::fs::read(card.join("A001C001.mov")).unwrap());
    let c = check::check(&a, true, &Default::default()).unwrap();
    assert!(c.ok(), "{:?}", c.problems);
    // The catalog rebuilt from the store alone gives the same archive.
    drop(a);
    check::rebuild_catalog_with_store(&root, Arc::new(mem.clone())).unwrap();
    let a = writer(&root, &mem);
    assert_eq!(read_all(&a, "main/card/A001C002.mov").unwrap(), std::fs::read(card.join("A001C002.mov")).unwrap());
}

#[test]
fn ingest_whose_pack_fails_to_seal_leaves_nothing_referenced() {
    let dir = tempfile::tempdir().unwrap();
    let mem = MemPackStore::new();
    let root = mem_archive(dir.path(), &mem);
    let card = card(dir.path());
    let mut a = writer(&root, &mem);
    let packs_before = mem.list().unwrap();
    let head_before = a.catalog.branch_head("main").unwrap();
    // The first pack of the ingest seals; a later one fails, as a full disk
    // at fsync or an object store refusing to complete an upload would.
    mem.fail_seals_after(1);
    let err = ingest::ingest(&mut a, std::slice::from_ref(&card), &opts()).unwrap_err();
    assert!(err.to_string().contains("could not be sealed"), "{err}");
    // Nothing referenced, nothing left behind: the pack that did seal is gone too.
    assert_eq!(mem.list().unwrap(), packs_before);
    assert_eq!(a.catalog.branch_head("main").unwrap(), head_before);
    assert!(a.resolve("main/card").is_err());
    let c = check::check(&a, true, &Default::default()).unwrap();
    assert!(c.ok() && c.uncommitted_packs.is_empty(), "{:?} {:?}", c.problems, c.uncommitted_packs);
    assert_eq!(check::stats(&a).unwrap().chunks, 0);
    // Branch creation (one small pack) fails the same way and changes nothing.
    mem.fail_seals_after(0);
    assert!(a.create_branch("grade", Some("main")).is_err());
    assert!(a.catalog.branch_head("grade").unwrap().is_none());
    assert_eq!(mem.list().unwrap(), packs_before);
    // Once the store is healthy the same ingest goes in whole.
    mem.heal_seals();
    ingest::ingest(&mut a, std::slice::from_ref(&card), &opts()).unwrap();
    assert_eq!(read_all(&a, "main/card/A001C001.mov").unwrap(), std::fs::read(card.join("A001C001.mov")).unwrap());
}

#[test]
fn a_short_read_is_a_clear_error_on_read_restore_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let mem = MemPackStore::new();
    let root = mem_archive(dir.path(), &mem);
    let card = card(dir.path());
    let mut a = writer(&root, &mem);
    ingest::ingest(&mut a, std::slice::from_ref(&card), &opts()).unwrap();
    let victim = pack_of(&a, "main/card/A001C001.mov");
    let size = mem.size(&victim).unwrap().unwrap();
    drop(a);
    mem.cut_reads(&victim, size / 2);
    let a = writer(&root, &mem);

    let err = read_all(&a, "main/card/A001C001.mov").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(&err, ArchiveError::Io { source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof), "{msg}");
    assert!(msg.contains(&format!("mem:{victim}")) && msg.contains("ended early"), "{msg}");

    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let failed = match restore_to(&a, "main/card/A001C001.mov", &out) {
        Ok(rep) => rep.failed.into_iter().map(|(_, why)| why).collect::<Vec<_>>().join("; "),
        Err(e) => e.to_string(),
    };
    assert!(failed.contains("ended early"), "restore must say what failed: {failed:?}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "no partial file under the real name");

    let c = check::check(&a, true, &Default::default()).unwrap();
    assert!(!c.ok());
    assert!(c.problems.iter().any(|p| p.contains(&format!("mem:{victim}"))), "{:?}", c.problems);
    assert!(c.damaged_files.iter().any(|f| f.contains("A001C001.mov")), "{:?}", c.damaged_files);
    // The other file reads whole.
    assert_eq!(read_all(&a, "main/card/A001C002.mov").unwrap(), std::fs::read(card.join("A001C002.mov")).unwrap());
}

#[test]
fn reads_answered_in_small_pieces_still_return_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mem = MemPackStore::new();
    let root = mem_archive(dir.path(), &mem);
    let card = card(dir.path());
    let mut a = writer(&root, &mem);
    ingest::ingest(&mut a, std::slice::from_ref(&card), &opts()).unwrap();
    drop(a);
    // A network store answers a ranged read in pieces: trailer, records and
    // the plain-pread path of verified raw chunks must all read on.
    mem.limit_reads(4093);
    let a = writer(&root, &mem);
    for _ in 0..2 {
        assert_eq!(read_all(&a, "main/card/A001C001.mov").unwrap(), std::fs::read(card.join("A001C001.mov")).unwrap());
    }
    // With no decoded-chunk cache, a chunk verified once is served by plain
    // ranged reads of the pack (what the mount does): those read on too.
    let hash = a.resolve("main/card/A001C001.mov").unwrap().entry.hash;
    let store = Arc::new(ChunkStore::new(Arc::new(mem.clone()), root.join("catalog.db"), 0));
    let reader = BlobReader::new(hash, 3 << 20, ChunkStore::resolve(&a.catalog, &hash).unwrap(), store);
    let want = std::fs::read(card.join("A001C001.mov")).unwrap();
    for _ in 0..2 {
        let mut buf = vec![0u8; want.len()];
        let mut off = 0;
        while off < buf.len() {
            off += reader.read_at(off as u64, &mut buf[off..]).unwrap();
        }
        assert!(buf == want);
    }
    let c = check::check(&a, true, &Default::default()).unwrap();
    assert!(c.ok(), "{:?}", c.problems);
}

#[test]
fn a_missing_pack_is_named_on_read_restore_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let mem = MemPackStore::new();
    let root = mem_archive(dir.path(), &mem);
    let card = card(dir.path());
    let mut a = writer(&root, &mem);
    ingest::ingest(&mut a, std::slice::from_ref(&card), &opts()).unwrap();
    let victim = pack_of(&a, "main/card/A001C001.mov");
    drop(a);
    mem.lose(&victim);
    let a = writer(&root, &mem);

    let err = read_all(&a, "main/card/A001C001.mov").unwrap_err();
    assert!(matches!(&err, ArchiveError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound), "{err}");
    assert!(err.to_string().contains(&format!("mem:{victim}")), "{err}");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let failed = match restore_to(&a, "main/card", &out) {
        Ok(rep) => rep.failed.into_iter().map(|(_, why)| why).collect::<Vec<_>>().join("; "),
        Err(e) => e.to_string(),
    };
    assert!(failed.contains(&format!("mem:{victim}")), "restore must name the missing pack: {failed:?}");
    assert!(!out.join("card/A001C001.mov").exists());

    let c = check::check(&a, false, &Default::default()).unwrap();
    assert!(c.problems.iter().any(|p| p == &format!("pack mem:{victim} is missing: no such pack")), "{:?}", c.problems);
    assert!(c.damaged_files.iter().any(|f| f.contains("A001C001.mov")), "{:?}", c.damaged_files);
}

#[test]
fn a_file_that_fails_mid_ingest_aborts_its_packs_and_costs_no_space() {
    let dir = tempfile::tempdir().unwrap();
    let mem = MemPackStore::new();
    let root = mem_archive(dir.path(), &mem);
    let card = dir.path().join("card");
    write(&card.join("a_before.mov"), &noise(11, 100_000), 0o644, 1_600_000_000);
    let growing = card.join("b_growing.mov");
    write(&growing, &noise(12, 24 << 20), 0o644, 1_600_000_000);
    write(&card.join("c_after.mov"), &noise(13, 1 << 20), 0o644, 1_600_000_000);
    let stop = Arc::new(AtomicBool::new(false));
    let appender = {
        let (stop, growing) = (stop.clone(), growing.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&growing).unwrap();
            let mut k = 100;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(&noise(k, 64 << 10)).unwrap();
                k += 1;
                std::thread::sleep(std::time::Duration::from_millis(3));
            }
        })
    };
    let mut a = writer(&root, &mem);
    let rep = ingest::ingest(&mut a, std::slice::from_ref(&card), &opts());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    appender.join().unwrap();
    let rep = rep.unwrap();
    assert_eq!(rep.failed.len(), 1, "{:?}", rep.failed);
    assert!(rep.failed[0].1.contains("changed while it was being ingested"), "{:?}", rep.failed);
    let names: Vec<String> = a.list_dir(&a.resolve("main/card").unwrap().entry.hash).unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["a_before.mov", "c_after.mov"]);
    // The growing file's packs were given up, not kept: the one open when the
    // change was seen is aborted, those already sealed (at 1 MiB each) are
    // deleted; which of the two happens depends on where the file's last chunk
    // fell, so count both. What the store holds is about the two other files
    // (1.1 MB) plus pack overhead and metadata.
    let (_, aborted) = mem.uploads();
    assert!(aborted + mem.deletes() >= 1, "the failed file's packs were aborted or deleted");
    let held: u64 = mem.list().unwrap().iter().map(|n| mem.size(n).unwrap().unwrap()).sum();
    assert!(held < (1 << 20) + 100_000 + (256 << 10), "store holds {held} bytes");
    let c = check::check(&a, true, &Default::default()).unwrap();
    assert!(c.ok(), "{:?}", c.problems);
    assert_eq!(read_all(&a, "main/card/c_after.mov").unwrap(), std::fs::read(card.join("c_after.mov")).unwrap());
}

// The store-fault halves of tests/integrity.rs's lost-pack tests: there a pack
// file is deleted from the disk; here the store no longer has it, which is
// what a pack lost by an object store (or a half-copied archive) looks like.

#[test]
fn after_a_rebuild_without_a_pack_the_store_reports_what_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mem = MemPackStore::new();
    let root = mem_archive(dir.path(), &mem);
    let first = card(dir.path());
    let second = dir.path().join("card2");
    write(&second.join("B001C001.mov"), &noise(3, 500_000), 0o644, 1_600_000_002);
    let mut a = writer(&root, &mem);
    ingest::ingest(&mut a, std::slice::from_ref(&first), &opts()).unwrap();
    a.create_branch("grade", Some("main")).unwrap();
    ingest::ingest(&mut a, std::slice::from_ref(&second), &opts()).unwrap();
    let victim = pack_of(&a, "main/card/A001C001.mov");
    drop(a);
    mem.lose(&victim);

    let rebuilt = check::rebuild_catalog_with_store(&root, Arc::new(mem.clone())).unwrap();
    assert!(!rebuilt.lost.is_empty(), "{rebuilt:?}");
    let a = writer(&root, &mem);
    let rep = check::check(&a, true, &Default::default()).unwrap();
    assert!(!rep.ok());
    assert!(rep.lost.iter().any(|l| l.starts_with("main/card/A001C001.mov")), "{:?}", rep.lost);
    assert!(rep.catalog_damage.is_empty(), "{:?}", rep.catalog_damage);
    // What the lost pack did not hold still reads, byte for byte.
    assert_eq!(read_all(&a, "main/card2/B001C001.mov").unwrap(), noise(3, 500_000));
    // A second rebuild changes nothing: the same is lost.
    drop(a);
    let again = check::rebuild_catalog_with_store(&root, Arc::new(mem.clone())).unwrap();
    assert_eq!(again.lost, rebuilt.lost);
}

#[test]
fn the_skip_cache_does_not_vouch_for_chunks_in_a_pack_the_store_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mem = MemPackStore::new();
    let root = mem_archive(dir.path(), &mem);
    let card = card(dir.path());
    let mut a = writer(&root, &mem);
    ingest::ingest(&mut a, std::slice::from_ref(&card), &opts()).unwrap();
    let victim = pack_of(&a, "main/card/A001C001.mov");
    drop(a);
    mem.lose(&victim);

    // The same card again: the file whose chunks are gone is stored again,
    // although its size and mtime say it is unchanged.
    let mut a = writer(&root, &mem);
    let rep = ingest::ingest(&mut a, std::slice::from_ref(&card), &opts()).unwrap();
    assert!(rep.files_unchanged < 2, "{rep:?}");
    assert!(rep.bytes_new_stored > 0, "{rep:?}");
    drop(a);
    let a = writer(&root, &mem);
    let c = check::check(&a, true, &Default::default()).unwrap();
    assert!(c.ok(), "{c:?}");
    assert_eq!(read_all(&a, "main/card/A001C001.mov").unwrap(), noise(1, 3 << 20));
}
