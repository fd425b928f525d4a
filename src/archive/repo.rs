//! `Archive`: an opened archive directory — config, catalog, chunk store — and
//! the name-level operations on it (branches, path resolution, listing).

use super::catalog::{Catalog, CommitRow};
use super::config::Config;
use super::error::{ArchiveError, IoContext, Result};
use super::lock::WriterLock;
use super::objects::{self, BlobRecord, Commit, EntryKind, Hash, RecordKind, RefRecord, Tree, TreeEntry};
use super::pack_store::{self, PackStore};
use super::pack_writer::PackWriter;
use super::perms;
use super::read::{BlobReader, ChunkStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const DEFAULT_BRANCH: &str = "main";

pub struct Archive {
    root: PathBuf,
    pub config: Config,
    pub catalog: Catalog,
    store: Arc<ChunkStore>,
    /// Where the packs live; every pack read and write goes through it.
    packs: Arc<dyn PackStore>,
    pub(crate) lock: Option<WriterLock>,
}

/// Opens read-only handles on one archive: each has its own read-only catalog
/// connection and shares the config and chunk store (open packs, cached chunks)
/// of the archive it came from. For servers reading many things at once
/// (archive/read_pool.rs).
#[derive(Clone)]
pub struct ViewSource {
    root: PathBuf,
    config: Config,
    db: PathBuf,
    store: Arc<ChunkStore>,
    packs: Arc<dyn PackStore>,
}

impl ViewSource {
    pub fn open(&self) -> Result<Archive> {
        let catalog = Catalog::open_read_only(&self.db)?;
        Ok(Archive {
            root: self.root.clone(),
            config: self.config.clone(),
            catalog,
            store: self.store.clone(),
            packs: self.packs.clone(),
            lock: None,
        })
    }
}

/// What a `BRANCH[@COMMIT]/PATH` names.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub branch: String,
    pub commit: Option<Hash>,
    /// Path inside the branch, without leading '/'; empty for the branch root.
    pub path: String,
    pub entry: TreeEntry,
}

impl Archive {
    /// Create a new archive at `path` (which must not exist or be empty),
    /// private to the user who runs it.
    pub fn init(path: &Path) -> Result<Archive> {
        Archive::init_shared(path, None)
    }

    /// Create a new archive at `path`; with `group`, readable by that group's
    /// members (see `perms` for the modes and why).
    pub fn init_shared(path: &Path, group: Option<&str>) -> Result<Archive> {
        Archive::init_in(path, group, pack_store::local_store(path), None)
    }

    /// Create a new archive whose packs live in the object store `store`
    /// names (checked reachable and empty before anything is created); the
    /// catalog, config and caches stay in `path`.
    pub fn init_remote(path: &Path, group: Option<&str>, store: super::store::StoreConfig) -> Result<Archive> {
        if path.exists() && std::fs::read_dir(path).at(path)?.next().is_some() {
            return Err(ArchiveError::AlreadyExists { path: path.into() });
        }
        let packs = super::store::for_new_archive(path, &store)?;
        Archive::init_in(path, group, packs, Some(store))
    }

    /// Create a new archive whose packs live in `packs` (the catalog, config
    /// and caches stay in `path`): tests run on a `MemPackStore` this way.
    pub fn init_with_store(path: &Path, packs: Arc<dyn PackStore>) -> Result<Archive> {
        Archive::init_in(path, None, packs, None)
    }

    fn init_in(path: &Path, group: Option<&str>, packs: Arc<dyn PackStore>, store: Option<super::store::StoreConfig>) -> Result<Archive> {
        if path.exists() {
            let mut rd = std::fs::read_dir(path).at(path)?;
            if rd.next().is_some() {
                return Err(ArchiveError::AlreadyExists { path: path.into() });
            }
        }
        // An unknown group is refused before anything is created.
        let gid = group.map(perms::group_id).transpose()?;
        // Folders above the archive are the user's, made as `mkdir -p` would.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).at(parent)?;
        }
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(ArchiveError::Io { path: path.into(), source: e }),
        }
        // The root's mode is the archive's policy: private first, then shared if asked.
        perms::Policy::from_dir_mode(perms::PRIVATE_DIR).apply_dir(path)?;
        if let (Some(g), Some(gid)) = (group, gid) {
            perms::share_with_group(path, g, gid)?;
        }
        let policy = perms::Policy::inherited(path)?;
        policy.create_dir_all(&path.join("packs"))?;
        policy.create_dir_all(&path.join("cache"))?;
        let mut cfg = Config { store, ..Config::default() };
        // A per-archive gear seed: chunk boundaries then reveal nothing about content
        // shared with other archives. Derived from time and pid: it needs to differ,
        // not to be secret-grade.
        let seed_src = format!("{}:{}:{}", objects::now_ns(), std::process::id(), path.display());
        let seed_bytes = blake3::hash(seed_src.as_bytes());
        // TOML integers are signed 64-bit: keep the seed within 63 bits.
        cfg.chunker.seed = u64::from_le_bytes(seed_bytes.as_bytes()[..8].try_into().unwrap_or_default()) >> 1;
        let cat = Catalog::open(&path.join("catalog.db"), true)?;
        cat.set_format_version(cfg.format_version)?;
        drop(cat);
        drop(policy.create_new_file(&path.join("lock"))?);
        // reelfs.toml last: its presence is what makes the directory an archive.
        let tmp = path.join("reelfs.toml.tmp");
        let text = cfg.to_toml().map_err(|msg| ArchiveError::Config { path: tmp.clone(), msg })?;
        std::io::Write::write_all(&mut policy.create_new_file(&tmp)?, text.as_bytes()).at(&tmp)?;
        std::fs::rename(&tmp, path.join("reelfs.toml")).at(path)?;
        pack_store::fsync_dir(path)?;
        let mut a = Archive::open_writer_with_store(path, packs)?;
        a.create_branch(DEFAULT_BRANCH, None)?;
        Ok(a)
    }

    /// Open for reading. Many readers may run alongside one writer.
    pub fn open(path: &Path) -> Result<Archive> {
        Archive::open_with_store(path, super::store::for_archive(path)?)
    }

    /// Open for reading, with the packs in `packs`.
    pub fn open_with_store(path: &Path, packs: Arc<dyn PackStore>) -> Result<Archive> {
        let cfg_path = path.join("reelfs.toml");
        if !cfg_path.is_file() {
            return Err(ArchiveError::NotAnArchive { path: path.into() });
        }
        let config = Config::load(&cfg_path)?;
        let db = path.join("catalog.db");
        if !db.is_file() {
            // Do not create an empty one: that would show an archive with no branches.
            return Err(ArchiveError::Inconsistent(format!("{} is missing", db.display())));
        }
        let catalog = Catalog::open(&db, true)?;
        catalog.ensure_staging_schema()?;
        // Pack names are looked up as packs are first read (ChunkStore::pack_name).
        let store = Arc::new(ChunkStore::new(packs.clone(), db, 64 << 20));
        Ok(Archive { root: path.into(), config, catalog, store, packs, lock: None })
    }

    /// What opens more read-only handles on this archive (see `ViewSource`).
    pub fn view_source(&self) -> ViewSource {
        ViewSource {
            root: self.root.clone(),
            config: self.config.clone(),
            db: self.catalog.path.clone(),
            store: self.store.clone(),
            packs: self.packs.clone(),
        }
    }

    /// Open for writing: takes the writer lock, then removes packs that no
    /// committed catalog row references (left by an interrupted writer).
    pub fn open_writer(path: &Path) -> Result<Archive> {
        Archive::open_writer_with_store(path, super::store::for_archive(path)?)
    }

    /// Open for writing, with the packs in `packs`.
    pub fn open_writer_with_store(path: &Path, packs: Arc<dyn PackStore>) -> Result<Archive> {
        let mut a = Archive::open_with_store(path, packs)?;
        let mut lock = WriterLock::acquire(path)?;
        // The bucket's lease before anything is removed from it: another
        // host's writer's packs look uncommitted from here.
        if let Some(lease) = a.packs.writer_lease()? {
            lock.hold(lease);
        }
        a.lock = Some(lock);
        a.remove_uncommitted_packs()?;
        Ok(a)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Where this archive's packs live.
    pub fn pack_store(&self) -> &Arc<dyn PackStore> {
        &self.packs
    }
    /// A writer of new packs, numbered after the highest the catalog knows.
    pub fn pack_writer(&self) -> Result<PackWriter> {
        Ok(PackWriter::new(self.packs.clone(), self.catalog.max_pack_id()? + 1, self.config.packs.target_size))
    }
    pub fn store(&self) -> &Arc<ChunkStore> {
        &self.store
    }

    /// Packs in the store that the catalog does not know: the tail of an
    /// ingest that was killed or failed before its catalog commit, or a pack
    /// `gc` dropped from the catalog and was stopped before deleting. Lists
    /// the whole store (`check`, `gc`). Safe to delete only under the writer lock.
    pub fn uncommitted_packs(&self) -> Result<Vec<String>> {
        let known: std::collections::HashSet<String> = self.catalog.pack_names()?.into_iter().map(|(_, n, _)| n).collect();
        Ok(self.packs.list()?.into_iter().filter(|n| !known.contains(n)).collect())
    }

    /// Packs numbered above the highest the catalog knows: what a killed
    /// writer left. A writer numbers its packs upward from there and creates
    /// each under its name when it begins it, so they follow one another;
    /// the probe stops after `UNCOMMITTED_TAIL_GAP` numbers in a row are
    /// absent. Every writer's open pays this instead of listing the store
    /// and the packs table (6,000 of each at 100 TB: 3x the time of a
    /// `branch` at 1 TB); `gc` still sweeps the whole store.
    fn uncommitted_tail(&self) -> Result<Vec<String>> {
        const UNCOMMITTED_TAIL_GAP: u32 = 16;
        let mut tail = Vec::new();
        let mut id = self.catalog.max_pack_id()? + 1;
        let mut absent = 0;
        while absent < UNCOMMITTED_TAIL_GAP {
            let name = super::pack::pack_rel_path(id);
            if self.packs.size(&name)?.is_some() {
                tail.push(name);
                absent = 0;
            } else {
                absent += 1;
            }
            id += 1;
        }
        Ok(tail)
    }

    /// At a writer's open: abort unfinished uploads and remove the packs a
    /// killed writer numbered past the catalog.
    fn remove_uncommitted_packs(&self) -> Result<()> {
        for name in self.packs.abort_interrupted()? {
            log::info!("aborted the unfinished upload of {} (left by an interrupted write)", self.packs.locate(&name));
        }
        self.remove_unknown(self.uncommitted_tail()?)
    }

    /// Remove every pack the catalog does not know (`gc`, under the writer lock).
    pub(crate) fn remove_every_uncommitted_pack(&self) -> Result<()> {
        self.remove_unknown(self.uncommitted_packs()?)
    }

    fn remove_unknown(&self, unknown: Vec<String>) -> Result<()> {
        let mine = self.packs.may_remove_uncommitted(&unknown);
        for name in unknown.iter().filter(|n| !mine.contains(n)) {
            log::warn!(
                "{} is not in this archive's catalog and was not written from this folder (another host's?): left alone",
                self.packs.locate(name)
            );
        }
        for name in mine {
            log::info!("removing uncommitted pack {} (left by an interrupted write)", self.packs.locate(&name));
            self.packs.delete(&name)?;
        }
        Ok(())
    }

    // ---- branches ----

    pub fn branches(&self) -> Result<Vec<(String, Option<Hash>)>> {
        self.catalog.branches()
    }

    /// Create a branch pointing at `from`'s head (or nothing). One ref record and
    /// one catalog row, whatever the archive holds.
    pub fn create_branch(&mut self, name: &str, from: Option<&str>) -> Result<()> {
        if !objects::valid_branch_name(name) {
            return Err(ArchiveError::BadBranchName(name.into()));
        }
        if self.catalog.branch_head(name)?.is_some() {
            return Err(ArchiveError::BranchExists(name.into()));
        }
        let head = match from {
            Some(spec) => self.resolve_ref(spec)?.1,
            None => None,
        };
        self.write_refs(&[(name.to_string(), head)], Vec::new())
    }

    /// Write ref records to a fresh pack, seal it, then move the branch rows.
    fn write_refs(&mut self, refs: &[(String, Option<Hash>)], objs: Vec<NewObject>) -> Result<()> {
        self.write_objects(&objs, refs).map(|_| ())
    }

    /// The one way small metadata writes reach the archive (branch creation and
    /// deletion, merge commits, synthetic archives): append `objects` (blob
    /// records, trees, commits) and then one ref record per branch move to a new
    /// pack, seal it (fsync file and folder), and only then, in one catalog
    /// transaction, index the pack, its records, the objects' rows and the new
    /// branch heads. A crash before the commit leaves an unreferenced pack that the
    /// next writer removes; after it, everything is durable. Objects already in the
    /// catalog are skipped. Returns the ids of `objects`, in order.
    pub fn write_objects(&mut self, objs: &[NewObject], refs: &[(String, Option<Hash>)]) -> Result<Vec<Hash>> {
        self.require_writer()?;
        let mut w = self.pack_writer()?;
        let res = self.write_objects_to(&mut w, objs, refs);
        if res.is_err() {
            self.catalog.rollback();
            w.abort();
        }
        res
    }

    fn write_objects_to(&self, w: &mut PackWriter, objs: &[NewObject], refs: &[(String, Option<Hash>)]) -> Result<Vec<Hash>> {
        let mut ids = Vec::with_capacity(objs.len());
        let mut fresh = Vec::new();
        for o in objs {
            let (kind, raw) = o.encode();
            let oid = Hash::of(&raw);
            ids.push(oid);
            if !o.present(&self.catalog, &oid)? {
                w.append_object(kind, &raw)?;
                fresh.push((o, oid));
            }
        }
        let first_seq = self.catalog.next_ref_seq()?;
        let mut rows = Vec::new();
        for ((branch, head), seq) in refs.iter().zip(first_seq..) {
            let r = RefRecord { branch: branch.clone(), head: *head, seq, time_ns: objects::now_ns() };
            let raw = serde_json::to_vec(&r).unwrap_or_default();
            w.append_object(RecordKind::Ref, &raw)?;
            rows.push((r, seq));
        }
        // The rule of the archive: the packs are durable before the catalog commit.
        let sealed = w.finish()?;
        self.catalog.begin()?;
        for p in sealed {
            self.catalog.insert_pack(p.id, &p.name, p.size, p.records.len())?;
            for l in &p.records {
                self.catalog.insert_record(p.id, l)?;
            }
        }
        for (o, oid) in &fresh {
            o.index(&self.catalog, oid)?;
        }
        for (r, seq) in &rows {
            self.catalog.set_branch(&r.branch, r.head.as_ref(), *seq, r.time_ns)?;
        }
        self.catalog.commit()?;
        self.store.register_packs(sealed.iter().map(|p| (p.id, p.name.clone())));
        Ok(ids)
    }

    pub fn delete_branch(&mut self, name: &str) -> Result<()> {
        if self.catalog.branch_head(name)?.is_none() {
            return Err(ArchiveError::NoSuchBranch(name.into()));
        }
        self.write_refs(&[(name.to_string(), None)], Vec::new())?;
        self.catalog.delete_branch(name)
    }

    pub fn require_writer(&self) -> Result<()> {
        if self.lock.is_none() {
            return Err(ArchiveError::Invalid("internal: write without the writer lock".into()));
        }
        Ok(())
    }

    /// `main` or `main@<commit-prefix>` -> (branch, commit).
    pub fn resolve_ref(&self, spec: &str) -> Result<(String, Option<Hash>)> {
        let (branch, at) = match spec.split_once('@') {
            Some((b, c)) => (b, Some(c)),
            None => (spec, None),
        };
        let head = self.catalog.branch_head(branch)?.ok_or_else(|| ArchiveError::NoSuchBranch(branch.into()))?;
        let Some(prefix) = at else { return Ok((branch.into(), head)) };
        let prefix = prefix.to_ascii_lowercase();
        if prefix.len() < 4 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ArchiveError::Invalid(format!(
                "'{prefix}' is not a commit id (give at least 4 hex digits, as `reelfs log` prints)"
            )));
        }
        let found = self.catalog.commits_with_prefix(&prefix)?;
        match found.len() {
            0 => Err(ArchiveError::Invalid(format!("no commit starts with '{prefix}'; see `reelfs log ARCHIVE {branch}`"))),
            1 => Ok((branch.into(), Some(found[0]))),
            n => Err(ArchiveError::Invalid(format!("'{prefix}' matches {n} commits; give more digits"))),
        }
    }

    pub fn commit(&self, hash: &Hash) -> Result<CommitRow> {
        match self.catalog.commit_row(hash)? {
            Some(c) => Ok(c),
            None => Err(self.catalog.missing("commit", hash)?),
        }
    }

    pub fn root_tree(&self, commit: Option<&Hash>) -> Result<Option<Hash>> {
        match commit {
            Some(c) => Ok(Some(self.commit(c)?.tree)),
            None => Ok(None),
        }
    }

    /// Resolve `BRANCH[@COMMIT][/PATH]`.
    pub fn resolve(&self, spec: &str) -> Result<Resolved> {
        let spec = spec.trim_matches('/');
        let (refspec, path) = match spec.split_once('/') {
            Some((r, p)) => (r, p.trim_matches('/')),
            None => (spec, ""),
        };
        let (branch, commit) = self.resolve_ref(refspec)?;
        let root = self.root_tree(commit.as_ref())?;
        let mut entry = TreeEntry {
            name: branch.clone(),
            kind: EntryKind::Dir,
            hash: root.unwrap_or(Hash(*blake3::hash(b"{\"entries\":[]}").as_bytes())),
            size: 0,
            mode: 0o755,
            mtime_ns: 0,
            owner: None,
            extra: Default::default(),
        };
        if let Some(c) = commit {
            entry.mtime_ns = self.commit(&c)?.time_ns;
        }
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            if entry.kind != EntryKind::Dir || root.is_none() {
                return Err(ArchiveError::NotFound(format!("{refspec}/{path}")));
            }
            entry = match self.catalog.tree_child(&entry.hash, part)? {
                Some(e) => e,
                None => return Err(ArchiveError::NotFound(format!("{refspec}/{path}"))),
            };
        }
        Ok(Resolved { branch, commit, path: path.to_string(), entry })
    }

    pub fn list_dir(&self, tree: &Hash) -> Result<Vec<TreeEntry>> {
        self.catalog.tree_entries(tree)
    }

    pub fn blob_reader(&self, hash: &Hash) -> Result<BlobReader> {
        self.open_blob(hash, false)
    }

    /// A reader that reads the file's extents from the catalog a page at a
    /// time, starting with a few rows at offset 0 (`BlobReader::paged`,
    /// `read::FIRST_PAGE`): what a server's first byte waits for is those
    /// rows, not the whole list.
    pub fn blob_reader_paged(&self, hash: &Hash) -> Result<BlobReader> {
        self.open_blob(hash, true)
    }

    /// A paged reader for a file whose size the caller has (a mount's open:
    /// its tree entry holds it), opened with one extent row: an open(2) reads
    /// no bytes, so it costs the path lookup and this one row (and its
    /// chunk's), not the `blobs` row and a first piece's worth of extents.
    /// The first read pages in what it needs (`BlobReader::paged`).
    /// With no spare snapshot connection (`ChunkStore::spare_snapshot_first_page`)
    /// it is an eager reader, as `blob_reader`.
    pub fn blob_reader_opened(&self, hash: &Hash, size: u64) -> Result<BlobReader> {
        let Some(first) = self.store.spare_snapshot_first_page(hash, 1) else { return self.open_blob(hash, false) };
        let (snapshot, first) = first?;
        if first.is_empty() {
            self.store.give_back_snapshot(snapshot);
            // An empty file (no extents), or one deleted (gc) since its entry
            // was read: `open_blob` tells the two apart.
            return self.open_blob(hash, true);
        }
        Ok(BlobReader::paged(*hash, size, first, 1, snapshot, self.store.clone()))
    }

    fn open_blob(&self, hash: &Hash, paged: bool) -> Result<BlobReader> {
        let size = match self.catalog.blob_size(hash)? {
            Some(s) => s,
            None => return Err(self.catalog.missing("blob", hash)?),
        };
        if paged {
            // The first page, read in a snapshot the reader keeps if the file
            // is long (so a gc while it is read takes nothing from under it).
            let (snapshot, first) = self.store.snapshot_first_page(hash, super::read::FIRST_PAGE)?;
            if first.len() >= super::read::FIRST_PAGE {
                return Ok(BlobReader::paged(*hash, size, first, super::read::FIRST_PAGE, snapshot, self.store.clone()));
            }
            self.store.give_back_snapshot(snapshot);
            if first.is_empty() && size > 0 {
                // Deleted (gc) since its size was read.
                return Err(self.catalog.missing("blob", hash)?);
            }
            return Ok(BlobReader::new(*hash, size, first, self.store.clone()));
        }
        let extents = match ChunkStore::resolve(&self.catalog, hash) {
            Ok(e) => e,
            // Released to tape on purpose, or lost with a pack: say so, not
            // that the catalog is inconsistent.
            Err(ArchiveError::Inconsistent(why)) => return Err(super::read::explain_unresolved(&self.catalog, hash, why)?),
            Err(e) => return Err(e),
        };
        Ok(BlobReader::new(*hash, size, extents, self.store.clone()))
    }

    /// History of a branch, newest first, following first parents.
    pub fn log(&self, head: Option<Hash>, limit: usize) -> Result<Vec<CommitRow>> {
        let mut out = Vec::new();
        let mut cur = head;
        while let Some(h) = cur {
            if out.len() >= limit {
                break;
            }
            let c = self.commit(&h)?;
            cur = c.parents.first().copied();
            out.push(c);
        }
        Ok(out)
    }

    /// Media facts for a content hash: (facts JSON, probe error).
    pub fn media(&self, blob: &Hash) -> Result<Option<(Option<serde_json::Value>, Option<String>)>> {
        Ok(self.catalog.media(blob)?.map(|(f, e)| (f.and_then(|s| serde_json::from_str(&s).ok()), e)))
    }
}

/// A metadata object for `Archive::write_objects`.
pub enum NewObject {
    /// A file's extent list (its chunks must already be in the catalog).
    Blob(BlobRecord),
    Tree(Tree),
    Commit(Commit),
    /// A recorded timecode fact (its commit goes in the same write).
    TcFact(objects::TcFactRecord),
}

impl NewObject {
    fn encode(&self) -> (RecordKind, Vec<u8>) {
        match self {
            NewObject::Blob(b) => (RecordKind::Blob, serde_json::to_vec(b).unwrap_or_default()),
            NewObject::Tree(t) => (RecordKind::Tree, t.encode()),
            NewObject::Commit(c) => (RecordKind::Commit, c.encode()),
            NewObject::TcFact(f) => (RecordKind::TcFact, f.encode()),
        }
    }
    fn present(&self, cat: &Catalog, id: &Hash) -> Result<bool> {
        match self {
            NewObject::Blob(b) => cat.has_blob(&b.hash),
            NewObject::Tree(_) => cat.has_tree(id),
            NewObject::Commit(_) => Ok(cat.commit_row(id)?.is_some()),
            NewObject::TcFact(_) => cat.has_object(id),
        }
    }
    fn index(&self, cat: &Catalog, id: &Hash) -> Result<()> {
        match self {
            NewObject::Blob(b) => cat.insert_blob(&b.hash, b.size, id, &b.extents),
            NewObject::Tree(t) => cat.insert_tree(id, &t.entries),
            NewObject::Commit(c) => cat.insert_commit(id, c),
            NewObject::TcFact(f) => cat.set_tc_fact(&f.commit, &f.path, &super::catalog::TcFactRow::from(f)),
        }
    }
}

/// A commit object for `tree` (the caller stores it): used by ingest, commit of
/// the staging overlay, merge, synthetic archives and timecode facts.
pub fn make_commit(tree: Hash, parents: Vec<Hash>, branch: &str, message: &str) -> Commit {
    let author = std::env::var("REELFS_AUTHOR").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "unknown".into());
    Commit { tree, parents, time_ns: objects::now_ns(), author, message: message.into(), branch: branch.into() }
}
