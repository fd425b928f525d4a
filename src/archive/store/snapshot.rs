//! Catalog snapshots in the bucket: what lets another host attach to an
//! archive from the bucket alone and replicas follow the writer.
//!
//! Why snapshots rather than rebuilding the catalog from the packs on each
//! host: the packs are self-describing (`check --rebuild-catalog` rebuilds
//! from them), but a rebuild reads every pack's trailer, which for a 100 TB
//! archive is thousands of ranged GETs and a long rebuild on every edit bay,
//! and facts that are not in packs (probed media facts, tape locations)
//! would be re-derived or lost. A compressed copy of the writer's committed
//! catalog is one GET, and the packs stay the source of truth behind it.
//!
//! Layout below the archive's prefix:
//! - `catalog/snapshot-<seq>.db.zst`: a zstd-compressed SQLite file made with
//!   `VACUUM INTO` (one consistent committed state), without this host's
//!   staging overlay (uncommitted mount writes whose bytes only it has).
//! - `catalog/HEAD`: JSON naming the newest snapshot, its size and BLAKE3,
//!   and the writer's reelfs.toml (chunker seed, compression: what a host
//!   needs to write to the archive later). Written only after the snapshot
//!   object is complete, and replaced with If-Match on the ETag read, so a
//!   reader never sees a HEAD naming a missing or half-written snapshot.
//!
//! Only the holder of the writer lease publishes (when its writer closes),
//! so sequence numbers are one writer's at a time. The few newest snapshots
//! are kept, so a reader that read HEAD just before it moved still finds
//! the one it named.

use super::object::Inner;
use crate::archive::error::{ArchiveError, Result};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion, WriteMultipart};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Snapshots kept in the bucket besides the newest: readers that read HEAD
/// a moment before it moved still find theirs.
const KEEP_OLDER: u64 = 2;

/// `catalog/HEAD` in the bucket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    /// Object name below the prefix, `catalog/snapshot-<seq>.db.zst`.
    pub object: String,
    /// Compressed bytes and their BLAKE3 (hex).
    pub size: u64,
    pub blake3: String,
    /// The writer's reelfs.toml.
    pub config: String,
    pub host: String,
    /// Unix seconds.
    pub published: u64,
}

/// This folder's position, `ARCHIVE/snapshot.json`: the snapshot its
/// catalog is (or was published as), and the fingerprint of the catalog
/// then, so an unchanged catalog is not published again.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Local {
    pub seq: u64,
    pub fingerprint: String,
}

pub fn local_path(root: &Path) -> PathBuf {
    root.join("snapshot.json")
}

pub fn read_local(root: &Path) -> Local {
    std::fs::read(local_path(root)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

pub fn write_local(root: &Path, l: &Local) -> Result<()> {
    let path = local_path(root);
    let tmp = root.join("snapshot.json.tmp");
    let io = |e| ArchiveError::Io { path: path.clone(), source: e };
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&serde_json::to_vec(l).unwrap_or_default()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// A scratch folder in ARCHIVE/cache for one snapshot's files, removed
/// with whatever is in it when dropped.
pub struct WorkDir(PathBuf);

impl WorkDir {
    pub fn new(root: &Path) -> Result<WorkDir> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = root.join("cache").join(format!(".snapshot-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| ArchiveError::Io { path: p.clone(), source: e })?;
        Ok(WorkDir(p))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn obj(inner: &Inner, rel: &str) -> ObjPath {
    ObjPath::from(if inner.prefix.is_empty() { rel.to_string() } else { format!("{}/{rel}", inner.prefix) })
}

fn io_at(at: String, e: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Io { path: at.into(), source: std::io::Error::other(e.to_string()) }
}

/// The bucket's HEAD and its ETag; `None` when no snapshot was ever published.
pub(super) fn read_head(inner: &Inner) -> Result<Option<(Head, Option<String>)>> {
    let path = obj(inner, "catalog/HEAD");
    let at = format!("{}/catalog/HEAD", inner.url);
    let got = inner.run(async {
        let r = inner.backend.get(&path).await?;
        let tag = r.meta.e_tag.clone();
        r.bytes().await.map(|b| (b.to_vec(), tag))
    });
    match got {
        Ok((bytes, tag)) => {
            let head: Head = serde_json::from_slice(&bytes).map_err(|e| {
                ArchiveError::Inconsistent(format!(
                    "{at} is damaged ({e}); the writer host republishes it when it next writes (any `reelfs branch`/`ingest` there)"
                ))
            })?;
            Ok(Some((head, tag)))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(io_at(at, e)),
    }
}

/// What changes when anything a reader sees is committed: branch heads,
/// packs, and the per-file facts. Cheap (no scan of chunks or extents).
pub fn fingerprint(db: &Path) -> Result<String> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| ArchiveError::Catalog { path: db.into(), source: e })?;
    let mut h = blake3::Hasher::new();
    let queries = [
        "SELECT name || ':' || quote(head) || ':' || seq FROM branches ORDER BY name",
        "SELECT coalesce(max(id),0) || ':' || count(*) || ':' || coalesce(sum(size),0) FROM packs",
        "SELECT count(*) FROM media",
        "SELECT count(*) FROM proxies",
        "SELECT count(*) FROM proxy_damage",
        "SELECT count(*) FROM damaged_chunks",
        "SELECT count(*) FROM lost_objects",
        "SELECT count(*) FROM tc_facts",
        "SELECT count(*) FROM tape_items",
    ];
    for q in queries {
        // A table an older catalog lacks counts as empty.
        let Ok(mut st) = conn.prepare(q) else { continue };
        let rows = st.query_map([], |r| r.get::<_, String>(0).or_else(|_| r.get::<_, i64>(0).map(|v| v.to_string())));
        if let Ok(rows) = rows {
            for r in rows.flatten() {
                h.update(r.as_bytes());
                h.update(b"\n");
            }
        }
        h.update(b"|");
    }
    Ok(h.finalize().to_hex().to_string())
}

/// Publish the committed catalog of the archive at `root` as the next
/// snapshot, unless it is unchanged since this folder's last one. Called
/// by the writer lease's holder before it lets the lease go.
pub(super) fn publish(inner: &Inner, root: &Path, host: &str) -> Result<Option<u64>> {
    let db = root.join("catalog.db");
    let fp = fingerprint(&db)?;
    let local = read_local(root);
    // A damaged HEAD is replaced (under the lease, by the next snapshot) rather
    // than blocking every publish after it.
    let (head, damaged) = match read_head(inner) {
        Ok(h) => (h, false),
        Err(ArchiveError::Inconsistent(why)) => {
            log::warn!("{why}: replacing it");
            (None, true)
        }
        Err(e) => return Err(e),
    };
    let head_seq = head.as_ref().map(|h| h.0.seq).unwrap_or(0);
    if !damaged && local.fingerprint == fp && local.seq == head_seq {
        return Ok(None);
    }
    let seq = head_seq.max(local.seq) + 1;
    let tmp = WorkDir::new(root)?;
    let plain = tmp.path().join("catalog.db");
    {
        let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| ArchiveError::Catalog { path: db.clone(), source: e })?;
        conn.execute("VACUUM INTO ?1", [plain.to_string_lossy()]).map_err(|e| ArchiveError::Catalog { path: db.clone(), source: e })?;
    }
    {
        // This host's uncommitted mount writes: their bytes are only here.
        let conn = rusqlite::Connection::open(&plain).map_err(|e| ArchiveError::Catalog { path: plain.clone(), source: e })?;
        for t in ["staged_extents", "staging"] {
            let _ = conn.execute(&format!("DELETE FROM {t}"), []);
        }
    }
    let packed = tmp.path().join("catalog.db.zst");
    {
        let io = |e| ArchiveError::Io { path: packed.clone(), source: e };
        let mut src = std::fs::File::open(&plain).map_err(io)?;
        let dst = std::fs::File::create(&packed).map_err(io)?;
        zstd::stream::copy_encode(&mut src, dst, 3).map_err(io)?;
    }
    let (size, hash) = hash_file(&packed)?;
    let object = format!("catalog/snapshot-{seq:012}.db.zst");
    upload(inner, &packed, &obj(inner, &object), format!("{}/{object}", inner.url))?;
    let config =
        std::fs::read_to_string(root.join("reelfs.toml")).map_err(|e| ArchiveError::Io { path: root.join("reelfs.toml"), source: e })?;
    let new = Head { seq, object, size, blake3: hash, config, host: host.to_string(), published: super::lease::now() };
    let mode = match &head {
        None if damaged => PutMode::Overwrite,
        None => PutMode::Create,
        Some((_, tag)) => PutMode::Update(UpdateVersion { e_tag: tag.clone(), version: None }),
    };
    let at = format!("{}/catalog/HEAD", inner.url);
    let body = serde_json::to_vec_pretty(&new).unwrap_or_default();
    inner
        .run(inner.backend.put_opts(&obj(inner, "catalog/HEAD"), PutPayload::from(body), PutOptions { mode, ..Default::default() }))
        .map_err(|e| io_at(at, e))?;
    write_local(root, &Local { seq, fingerprint: fp })?;
    // Older snapshots beyond the few kept: a failure only leaves garbage.
    if seq > KEEP_OLDER + 1 {
        let old = obj(inner, &format!("catalog/snapshot-{:012}.db.zst", seq - KEEP_OLDER - 1));
        let _ = inner.run(inner.backend.delete(&old));
    }
    Ok(Some(seq))
}

fn hash_file(path: &Path) -> Result<(u64, String)> {
    let io = |e| ArchiveError::Io { path: path.into(), source: e };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = blake3::Hasher::new();
    let n = std::io::copy(&mut f, &mut h).map_err(io)?;
    Ok((n, h.finalize().to_hex().to_string()))
}

/// A multipart upload from a file, 8 MiB parts, a few in flight: memory
/// stays bounded whatever the catalog's size; aborted if it fails.
fn upload(inner: &Inner, file: &Path, to: &ObjPath, at: String) -> Result<()> {
    let io = |e| ArchiveError::Io { path: file.into(), source: e };
    let mut f = std::fs::File::open(file).map_err(io)?;
    inner.run(async {
        let up = inner.backend.put_multipart(to).await.map_err(|e| io_at(at.clone(), e))?;
        let mut w = WriteMultipart::new_with_chunk_size(up, 8 << 20);
        let mut buf = vec![0u8; 8 << 20];
        loop {
            let n = match std::io::Read::read(&mut f, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(io(e));
                }
            };
            if let Err(e) = w.wait_for_capacity(4).await {
                let _ = w.abort().await;
                return Err(io_at(at.clone(), e));
            }
            w.write(&buf[..n]);
        }
        w.finish().await.map(|_| ()).map_err(|e| io_at(at.clone(), e))
    })
}

/// Download the snapshot `head` names into `dest` (a plain SQLite file),
/// checking size and BLAKE3 of what came and that SQLite reads it whole.
/// On any failure nothing is left at `dest`.
pub(super) fn fetch(inner: &Inner, head: &Head, dest: &Path) -> Result<()> {
    let res = fetch_inner(inner, head, dest);
    if res.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    res
}

fn fetch_inner(inner: &Inner, head: &Head, dest: &Path) -> Result<()> {
    use futures::StreamExt;
    let at = format!("{}/{}", inner.url, head.object);
    if !head.object.starts_with("catalog/snapshot-") || head.object.contains("..") {
        return Err(ArchiveError::Inconsistent(format!(
            "{}/catalog/HEAD names '{}', which is not a catalog snapshot",
            inner.url, head.object
        )));
    }
    let packed = dest.with_extension("zst.part");
    let io = |e| ArchiveError::Io { path: packed.clone(), source: e };
    {
        let mut out = std::fs::File::create(&packed).map_err(io)?;
        let got: Result<()> = inner.run(async {
            let r = match inner.backend.get(&obj(inner, &head.object)).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(ArchiveError::Inconsistent(format!(
                        "{at} is missing (catalog/HEAD names it): the snapshot was removed or never completed; \
                         run any write (`reelfs branch`) on the writer host to publish a new one, then try again"
                    )))
                }
                Err(e) => return Err(io_at(at.clone(), e)),
            };
            let mut s = r.into_stream();
            while let Some(b) = s.next().await {
                let b = b.map_err(|e| io_at(at.clone(), e))?;
                out.write_all(&b).map_err(io)?;
            }
            Ok(())
        });
        if let Err(e) = got {
            let _ = std::fs::remove_file(&packed);
            return Err(e);
        }
    }
    let checked = hash_file(&packed);
    let damaged = |why: String| {
        ArchiveError::Inconsistent(format!(
            "{at} is damaged ({why}); nothing was changed here. Run any write (`reelfs branch`) on the writer host to publish a new snapshot, then try again"
        ))
    };
    match checked {
        Ok((size, hash)) if size == head.size && hash == head.blake3 => {}
        Ok((size, hash)) => {
            let _ = std::fs::remove_file(&packed);
            return Err(damaged(format!(
                "{size} bytes with BLAKE3 {}…, HEAD says {} bytes with {}…",
                &hash[..16],
                head.size,
                head.blake3.get(..16).unwrap_or("")
            )));
        }
        Err(e) => {
            let _ = std::fs::remove_file(&packed);
            return Err(e);
        }
    }
    let decoded = (|| -> std::io::Result<()> {
        let src = std::fs::File::open(&packed)?;
        let mut dst = std::fs::File::create(dest)?;
        zstd::stream::copy_decode(src, &mut dst)?;
        dst.sync_all()
    })();
    let _ = std::fs::remove_file(&packed);
    decoded.map_err(|e| damaged(format!("cannot decompress: {e}")))?;
    let conn = rusqlite::Connection::open_with_flags(dest, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| damaged(format!("not a catalog: {e}")))?;
    let ok: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(|e| damaged(format!("not a catalog: {e}")))?;
    if ok != "ok" {
        return Err(damaged(format!("SQLite says: {ok}")));
    }
    Ok(())
}

/// Replace the catalog at `db` with the snapshot file `snap`, as one SQLite
/// write transaction (the backup API): connections reading `db` (a mount's)
/// see the old catalog or the new one, never a mix.
pub fn apply(snap: &Path, db: &Path) -> Result<()> {
    let src = rusqlite::Connection::open_with_flags(snap, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| ArchiveError::Catalog { path: snap.into(), source: e })?;
    let mut dst = rusqlite::Connection::open(db).map_err(|e| ArchiveError::Catalog { path: db.into(), source: e })?;
    dst.busy_timeout(std::time::Duration::from_secs(30)).map_err(|e| ArchiveError::Catalog { path: db.into(), source: e })?;
    let b = rusqlite::backup::Backup::new(&src, &mut dst).map_err(|e| ArchiveError::Catalog { path: db.into(), source: e })?;
    // All pages in one step: one transaction on the destination. Busy while
    // a reader checkpoints: wait and retry, a bounded number of times.
    for _ in 0..300 {
        match b.step(-1).map_err(|e| ArchiveError::Catalog { path: db.into(), source: e })? {
            rusqlite::backup::StepResult::Done => return Ok(()),
            _ => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
    Err(ArchiveError::Invalid(format!(
        "{}: the catalog stayed busy; the new snapshot was not applied (it will be on the next try)",
        db.display()
    )))
}

/// Bring this folder's catalog up to the bucket's newest snapshot (a writer
/// that is not the last one that wrote), keeping this host's staging overlay
/// (its uncommitted mount writes). Under the writer lease only.
pub(super) fn pull(inner: &Inner, root: &Path, head: &Head) -> Result<()> {
    let tmp = WorkDir::new(root)?;
    let snap = tmp.path().join("catalog.db");
    fetch(inner, head, &snap)?;
    let db = root.join("catalog.db");
    {
        let conn = rusqlite::Connection::open(&snap).map_err(|e| ArchiveError::Catalog { path: snap.clone(), source: e })?;
        let keep = |conn: &rusqlite::Connection| -> rusqlite::Result<()> {
            conn.execute("ATTACH DATABASE ?1 AS cur", [db.to_string_lossy()])?;
            for t in ["staging", "staged_extents"] {
                let exists: i64 =
                    conn.query_row("SELECT count(*) FROM cur.sqlite_master WHERE type = 'table' AND name = ?1", [t], |r| r.get(0))?;
                if exists > 0 {
                    conn.execute(&format!("INSERT OR REPLACE INTO main.{t} SELECT * FROM cur.{t}"), [])?;
                }
            }
            conn.execute("DETACH DATABASE cur", []).map(|_| ())
        };
        keep(&conn).map_err(|e| ArchiveError::Catalog { path: db.clone(), source: e })?;
    }
    apply(&snap, &db)?;
    write_local(root, &Local { seq: head.seq, fingerprint: fingerprint(&db)? })
}

#[cfg(test)]
mod tests {
    use super::super::object::ObjectPackStore;
    use super::super::S3Url;
    use super::*;
    use crate::archive::catalog::Catalog;
    use object_store::memory::InMemory;
    use std::sync::Arc;

    fn archive_folder(dir: &Path) {
        std::fs::create_dir_all(dir.join("cache")).unwrap();
        std::fs::write(dir.join("reelfs.toml"), "format_version = 1\n").unwrap();
        let cat = Catalog::open(&dir.join("catalog.db"), true).unwrap();
        cat.ensure_staging_schema().unwrap();
    }

    fn branch_count(db: &Path) -> i64 {
        let c = rusqlite::Connection::open(db).unwrap();
        c.query_row("SELECT count(*) FROM branches", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_published_snapshot_reaches_another_folder_whole_and_a_damaged_one_never_does() {
        let mem = Arc::new(InMemory::new());
        let url = S3Url::parse("s3://bucket/show").unwrap();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        archive_folder(a.path());
        archive_folder(b.path());
        let sa = ObjectPackStore::new(mem.clone(), &url, a.path(), 1 << 20).unwrap();
        let sb = ObjectPackStore::new(mem.clone(), &url, b.path(), 1 << 20).unwrap();
        let db_a = a.path().join("catalog.db");
        {
            let c = rusqlite::Connection::open(&db_a).unwrap();
            c.execute("INSERT INTO branches (name, head, seq, created_ns) VALUES ('main', NULL, 1, 0)", []).unwrap();
        }
        assert_eq!(publish(sa.inner(), a.path(), "host-a").unwrap(), Some(1));
        // Unchanged: not published again.
        assert_eq!(publish(sa.inner(), a.path(), "host-a").unwrap(), None);

        // Another folder, with a reader open on its catalog (a mount's), takes it.
        let db_b = b.path().join("catalog.db");
        let reader = rusqlite::Connection::open(&db_b).unwrap();
        let (head, _) = read_head(sb.inner()).unwrap().unwrap();
        pull(sb.inner(), b.path(), &head).unwrap();
        assert_eq!(read_local(b.path()).seq, 1);
        let n: i64 = reader.query_row("SELECT count(*) FROM branches", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1, "an open connection sees the new catalog");

        // A damaged snapshot: refused, and the folder's catalog is untouched.
        let key = object_store::path::Path::from(format!("show/{}", head.object));
        sb.inner().run(mem.put(&key, PutPayload::from(vec![7u8; head.size as usize]))).unwrap();
        let dest = b.path().join("cache").join("fetched.db");
        let e = fetch(sb.inner(), &head, &dest).unwrap_err().to_string();
        assert!(e.contains("is damaged"), "{e}");
        assert!(!dest.exists());
        assert_eq!(branch_count(&db_b), 1);
    }
}
