//! `ObjectPackStore` (archive/store/object.rs) against the `PackStore`
//! contract that `MemPackStore` shows (tests/pack_store.rs), over
//! object_store's in-memory backend, so no server is needed: a real archive
//! (SQLite catalog, ingest, restore, check, gc, catalog rebuild) on it;
//! packs visible only once sealed; aborted, dropped and killed uploads leave
//! no parts behind; the local block cache serves reads, survives a restart,
//! and never serves a damaged block.

use object_store::memory::InMemory;
use object_store::multipart::MultipartStore;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload};
use reelfs::archive::check;
use reelfs::archive::config::Config;
use reelfs::archive::gc::{gc, GcOptions};
use reelfs::archive::ingest::{self, IngestOptions};
use reelfs::archive::pack_store::PackStore;
use reelfs::archive::restore::{self, RestoreOptions};
use reelfs::archive::store::object::ObjectPackStore;
use reelfs::archive::store::S3Url;
use reelfs::archive::{Archive, ArchiveError};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

mod common;
use common::{noise, write};

fn url() -> S3Url {
    S3Url::parse("s3://show-x/archive").unwrap()
}

fn store(mem: &Arc<InMemory>, root: &Path) -> Arc<ObjectPackStore> {
    Arc::new(ObjectPackStore::new(mem.clone(), &url(), root, 64 << 20).unwrap())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Pack objects in the backend, by key (the writer's lease object is beside them).
fn objects(mem: &InMemory) -> Vec<String> {
    use futures::TryStreamExt;
    use object_store::ObjectStore;
    let packs = ObjPath::from("archive/packs");
    let mut v: Vec<String> = rt().block_on(mem.list(Some(&packs)).map_ok(|m| m.location.to_string()).try_collect()).unwrap();
    v.sort();
    v
}

/// Bytes the backend holds.
fn stored(mem: &InMemory) -> u64 {
    use futures::TryStreamExt;
    use object_store::ObjectStore;
    let sizes: Vec<u64> = rt().block_on(mem.list(None).map_ok(|m| m.size).try_collect()).unwrap();
    sizes.iter().sum()
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

/// An archive at `dir/archive` with small chunks and 1 MiB packs.
fn archive(dir: &Path, s: Arc<ObjectPackStore>) -> PathBuf {
    let root = dir.join("archive");
    drop(Archive::init_with_store(&root, s).unwrap());
    let toml = root.join("reelfs.toml");
    let mut cfg = Config::load(&toml).unwrap();
    cfg.chunker.min_size = 64 << 10;
    cfg.chunker.avg_size = 256 << 10;
    cfg.chunker.max_size = 1 << 20;
    cfg.packs.target_size = 1 << 20;
    std::fs::write(&toml, cfg.to_toml().unwrap()).unwrap();
    root
}

fn read_all(a: &Archive, spec: &str) -> Result<Vec<u8>, ArchiveError> {
    let r = a.resolve(spec)?;
    let mut out = Vec::new();
    restore::cat(a, &r.entry.hash, &mut out)?;
    Ok(out)
}

#[test]
fn an_archive_runs_on_an_object_store() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Arc::new(InMemory::new());
    let root = dir.path().join("archive");
    let root = {
        let r = archive(dir.path(), store(&mem, &root));
        assert_eq!(r, root);
        r
    };
    let card = dir.path().join("card");
    write(&card.join("A001C001.mov"), &noise(1, 6 << 20), 0o644, 1_600_000_000);
    write(&card.join("A001C002.mov"), &noise(2, 200_000), 0o644, 1_600_000_001);
    let s = store(&mem, &root);
    let mut a = Archive::open_writer_with_store(&root, s.clone()).unwrap();
    ingest::ingest(&mut a, std::slice::from_ref(&card), &opts()).unwrap();
    // The packs are objects below the prefix, nothing of them in packs/.
    let objs = objects(&mem);
    assert!(objs.len() >= 6 && objs.iter().all(|o| o.starts_with("archive/packs/") && o.ends_with(".pack")), "{objs:?}");
    assert_eq!(std::fs::read_dir(root.join("packs")).unwrap().count(), 0);
    assert_eq!(s.list().unwrap().len(), objs.len());
    for name in ["A001C001.mov", "A001C002.mov"] {
        assert_eq!(read_all(&a, &format!("main/card/{name}")).unwrap(), std::fs::read(card.join(name)).unwrap());
    }
    let out = dir.path().join("out");
    let stop = AtomicBool::new(false);
    restore::restore(&a, &["main/card".to_string()], &out, &RestoreOptions { progress: Default::default(), interrupt: &stop }).unwrap();
    assert_eq!(std::fs::read(out.join("A001C001.mov")).unwrap(), std::fs::read(card.join("A001C001.mov")).unwrap());
    let c = check::check(&a, true, &Default::default()).unwrap();
    assert!(c.ok(), "{:?}", c.problems);
    assert!(s.cached_bytes() > 0, "reads went through the local cache");

    // gc deletes packs in the bucket.
    a.create_branch("scratch", Some("main")).unwrap();
    let extra = dir.path().join("extra");
    write(&extra.join("X.mov"), &noise(9, 2 << 20), 0o644, 1_600_000_009);
    ingest::ingest(&mut a, &[extra], &IngestOptions { branch: "scratch".into(), ..opts() }).unwrap();
    let before = stored(&mem);
    a.delete_branch("scratch").unwrap();
    let r = gc(&mut a, &GcOptions::default()).unwrap();
    assert!(r.problems.is_empty() && r.packs_deleted + r.packs_compacted >= 2, "{r:?}");
    assert!(stored(&mem) + (3 << 19) < before, "gc freed the 2 MiB nothing reaches: {} -> {}", before, stored(&mem));
    let c = check::check(&a, true, &Default::default()).unwrap();
    assert!(c.ok(), "{:?}", c.problems);

    // The catalog rebuilt from the bucket alone gives the same archive.
    drop(a);
    check::rebuild_catalog_with_store(&root, store(&mem, &root)).unwrap();
    let a = Archive::open_with_store(&root, store(&mem, &root)).unwrap();
    assert_eq!(read_all(&a, "main/card/A001C001.mov").unwrap(), std::fs::read(card.join("A001C001.mov")).unwrap());
}

#[test]
fn a_pack_is_an_object_only_once_sealed_and_aborts_leave_no_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Arc::new(InMemory::new());
    let s = store(&mem, dir.path());
    let big = noise(3, (9 << 20) + 123); // more than one 8 MiB part, and more than two cache blocks
    let mut u = s.begin("01/00000001.pack").unwrap();
    u.write(&big[..5]).unwrap();
    u.write(&big[5..]).unwrap();
    assert!(objects(&mem).is_empty(), "an unsealed pack is invisible");
    assert!(s.list().unwrap().is_empty());
    assert_eq!(u.seal().unwrap(), big.len() as u64);
    assert_eq!(objects(&mem), ["archive/packs/01/00000001.pack"]);
    assert!(s.begin("01/00000001.pack").is_err(), "a sealed pack is never written again");

    // Reads across block boundaries, in pieces, return every byte.
    let r = s.open("01/00000001.pack").unwrap();
    assert_eq!(r.len(), big.len() as u64);
    for (off, len) in [(0usize, 10usize), ((4 << 20) - 3, 7), ((8 << 20) - 1, (1 << 20) + 124), (100, 9 << 20)] {
        let mut buf = vec![0u8; len];
        r.read_exact_at(off as u64, &mut buf).unwrap();
        assert!(buf == big[off..off + len], "bytes at {off}+{len}");
    }

    // An aborted and a dropped upload leave nothing; so does a killed one, once
    // the next writer aborts what its journal names.
    let mut u = s.begin("02/00000002.pack").unwrap();
    u.write(&big[..(8 << 20) + 1]).unwrap(); // one part already uploaded
    u.abort().unwrap();
    let mut u = s.begin("03/00000003.pack").unwrap();
    u.write(&big).unwrap();
    drop(u);
    let mut u = s.begin("04/00000004.pack").unwrap();
    u.write(&big).unwrap();
    std::mem::forget(u); // a process killed mid-upload runs no destructor
    let open_uploads = |d: &Path| {
        std::fs::read_dir(d.join("uploads"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "upload"))
            .count()
    };
    assert_eq!(open_uploads(dir.path()), 1);
    drop(s);
    let s = store(&mem, dir.path());
    assert_eq!(s.abort_interrupted().unwrap(), ["04/00000004.pack"]);
    assert!(s.abort_interrupted().unwrap().is_empty());
    assert_eq!(objects(&mem), ["archive/packs/01/00000001.pack"]);
    // The aborted upload takes no more parts: its id is gone from the store.
    let path = ObjPath::from("archive/packs/04/00000004.pack");
    let id = rt().block_on(mem.create_multipart(&path)).unwrap();
    rt().block_on(mem.abort_multipart(&path, &id)).unwrap();
    assert!(rt().block_on(mem.put_part(&path, &id, 0, PutPayload::from_static(b"x"))).is_err());

    // A lost pack is NotFound, named by its URL; names leaving the prefix are refused.
    s.delete("01/00000001.pack").unwrap();
    s.delete("01/00000001.pack").unwrap();
    let e = s.open("01/00000001.pack").err().unwrap();
    assert!(matches!(&e, ArchiveError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound), "{e}");
    assert!(e.to_string().contains("s3://show-x/archive/packs/01/00000001.pack"), "{e}");
    for name in ["../secret", "/etc/passwd", "", "01/../../secret", "01//x"] {
        assert!(s.open(name).is_err() && s.begin(name).is_err() && s.delete(name).is_err(), "{name}");
    }
}

#[test]
fn the_block_cache_survives_a_restart_and_never_serves_a_damaged_block() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Arc::new(InMemory::new());
    let s = store(&mem, dir.path());
    let bytes = noise(4, 5 << 20);
    let mut u = s.begin("01/00000001.pack").unwrap();
    u.write(&bytes).unwrap();
    u.seal().unwrap();
    let mut buf = vec![0u8; bytes.len()];
    s.open("01/00000001.pack").unwrap().read_exact_at(0, &mut buf).unwrap();
    assert!(buf == bytes);
    drop(s);

    // A restart: the blocks are on disk. Replace the object behind the cache's
    // back; what is read is what the cache holds (it was never fetched again).
    let s = store(&mem, dir.path());
    assert!(s.cached_bytes() >= bytes.len() as u64);
    let path = ObjPath::from("archive/packs/01/00000001.pack");
    let other = noise(5, bytes.len());
    rt().block_on(mem.put(&path, PutPayload::from(other.clone()))).unwrap();
    let mut buf = vec![0u8; 1000];
    s.open("01/00000001.pack").unwrap().read_exact_at(10, &mut buf).unwrap();
    assert!(buf == bytes[10..1010], "served from the cache");
    drop(s);

    // Flip a bit in the cached block: it is refetched, not served.
    let blk = walkdir::WalkDir::new(dir.path().join("cache/packs"))
        .into_iter()
        .filter_map(|e| e.ok())
        .find(|e| e.path().to_string_lossy().ends_with("00000000.blk"))
        .unwrap()
        .into_path();
    let mut raw = std::fs::read(&blk).unwrap();
    raw[64] ^= 0x10;
    std::fs::write(&blk, raw).unwrap();
    let s = store(&mem, dir.path());
    let mut buf = vec![0u8; 1000];
    s.open("01/00000001.pack").unwrap().read_exact_at(10, &mut buf).unwrap();
    assert!(buf == other[10..1010], "the damaged block was fetched again from the store");
}

#[test]
fn a_second_folder_on_the_bucket_waits_for_the_lease_and_never_removes_packs_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Arc::new(InMemory::new());
    let root_a = archive(&dir.path().join("a"), store(&mem, &dir.path().join("a/archive")));
    // Another host's folder for the same bucket: a copy of the catalog as it was.
    let root_b = dir.path().join("b/archive");
    for e in walkdir::WalkDir::new(&root_a).into_iter().map(|e| e.unwrap()) {
        let to = root_b.join(e.path().strip_prefix(&root_a).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
    let card = dir.path().join("card");
    write(&card.join("A.mov"), &noise(7, 2 << 20), 0o644, 1_600_000_000);

    let mut a = Archive::open_writer_with_store(&root_a, store(&mem, &root_a)).unwrap();
    let e = Archive::open_writer_with_store(&root_b, store(&mem, &root_b)).err().expect("the lease is held");
    assert!(e.to_string().contains("is locked by") && e.to_string().contains("since"), "{e}");
    ingest::ingest(&mut a, std::slice::from_ref(&card), &opts()).unwrap();
    let packs = objects(&mem);
    drop(a); // releases the lease

    // B's catalog knows none of A's new packs; opening it as a writer must not take them for
    // its own interrupted write and delete them.
    let b = Archive::open_writer_with_store(&root_b, store(&mem, &root_b)).unwrap();
    assert_eq!(objects(&mem), packs);
    drop(b);
    let a = Archive::open_with_store(&root_a, store(&mem, &root_a)).unwrap();
    assert_eq!(read_all(&a, "main/card/A.mov").unwrap(), std::fs::read(card.join("A.mov")).unwrap());
}
