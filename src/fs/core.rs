//! The filesystem core: lookups, attributes, directory listings, reads and
//! extended attributes over the archive, in terms of inode numbers and bytes.
//! Nothing here knows about FUSE, so it is tested without mounting.

pub use super::attr::{Attr, NodeType};
pub use super::error::{FsError, FsResult, NAME_MAX};
use super::followers::FollowCell;
use super::inodes::{Inodes, Node, NodeKind, ROOT_INO};
use super::owners::Caller;
use super::readahead::{Prefetcher, ReadAheadConfig};
use super::write::{BranchWrites, Branches, Falloc, ReadOpen, WriteHost, WriteState};
use crate::archive::objects::{DeviceNumber, EntryExtra};
use crate::archive::read::{Prefetched, ReadBuf};
use crate::archive::read_pool::ReadPool;
use crate::archive::readahead::STREAM_MIN_RUN;
use crate::archive::{Archive, BlobReader, EntryKind, Hash};
use crate::media::slice::SlicePlan;
use crate::timecode::SliceSpec;
use crate::view::{self, Target, ViewError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One open file: what it names and how its bytes are served.
pub struct OpenFile {
    pub node: Node,
    pub content: OpenContent,
}

/// How an open file's bytes are served: each kind of open file has exactly
/// the state it needs.
pub enum OpenContent {
    /// Archived bytes (a committed file, a proxy, a branch file no handle is
    /// writing): read through the read layer's one read loop (`Prefetched`,
    /// shared with serve and python), with sequential read-ahead.
    /// A branch file's reader follows a writer that opens later (`follow`).
    Archived { file: Prefetched, seq: Mutex<SeqState>, follow: Option<Arc<FollowCell>> },
    /// A virtual slice: its planned layout, read from its source's bytes.
    Slice { plan: Arc<SlicePlan>, source: Arc<BlobReader> },
    /// A branch file opened for writing, or opened while another handle writes
    /// it: reads and writes go through the inode's shared write state.
    Writable(Arc<Mutex<WriteState>>),
}

impl OpenContent {
    fn archived(prefetch: &Arc<Prefetcher>, reader: Arc<BlobReader>, follow: Option<Arc<FollowCell>>) -> OpenContent {
        let file = Prefetched { prefetch: prefetch.clone(), reader };
        OpenContent::Archived { file, seq: Mutex::new(SeqState::default()), follow }
    }
}

/// An open file's sequential detector (the read layer's, shared with every reader).
type SeqState = super::readahead::Sequential;

pub struct FsOptions {
    pub cache_bytes: usize,
    pub readahead_workers: usize,
    /// Refuse every change with EROFS.
    pub read_only: bool,
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions { cache_bytes: 1 << 30, readahead_workers: 4, read_only: true }
    }
}

pub struct FsCore {
    /// Metadata reads: read-only catalog connections, one per concurrent
    /// request, so a slow query holds up only its own request.
    readers: ReadPool,
    /// The one writer of staging rows and staged bytes (SQLite has one writer
    /// at a time anyway; this keeps the mount's own writes in order).
    writer: Arc<Mutex<Archive>>,
    pub(crate) inodes: Inodes,
    handles: Mutex<HashMap<u64, Arc<OpenFile>>>,
    next_fh: AtomicU64,
    prefetch: Arc<Prefetcher>,
    /// Branch heads, re-read at most once a second so commits made by other
    /// processes (an ingest) appear without a remount.
    heads: Mutex<(Instant, HashMap<String, Option<Hash>>)>,
    mount_time_ns: i64,
    /// Slice plans, by inode, with the source they read from: a bounded LRU
    /// (a plan is re-made from the node when it was evicted).
    slices: Mutex<hashlink::LruCache<u64, SliceEntry>>,
    /// The write path (fs/write.rs): branch files being written, access times.
    branch_writes: BranchWrites,
}

/// A slice's plan, the reader of its source, and the source's path (for xattrs).
type SliceEntry = (Arc<SlicePlan>, Arc<BlobReader>, String);

/// Slice plans kept. A plan holds a rebuilt `moov` (sample tables: up to a few
/// MB for an hour-long clip) and is cheap to make again (milliseconds, no
/// essence read), so a small cache covers an NLE opening an EDL's worth of
/// slices while any number of distinct names looked up (`stat` in a loop, with
/// `--allow-other` by any local user) costs at most this many plans of memory.
pub const SLICE_PLAN_CACHE: usize = 64;

#[path = "history.rs"]
pub mod history;
#[path = "proxy_ns.rs"]
mod proxy_ns;

const HEADS_TTL: Duration = Duration::from_secs(1);

/// Bounds of the metadata read pool: two so that one slow query never stalls
/// the next request even on one thread, eight because each connection keeps
/// its own page cache and more would rarely run at once.
const MIN_READERS: usize = 2;
const MAX_READERS: usize = 8;

impl FsCore {
    pub fn new(archive: Archive, opts: FsOptions) -> FsCore {
        let store = archive.store().clone();
        // Requests run on up to `readahead_workers` threads (the mount's --threads);
        // more connections than that would never be used at once.
        let readers = ReadPool::new(&archive, opts.readahead_workers.clamp(MIN_READERS, MAX_READERS));
        let config = archive.config.clone();
        let writer = Arc::new(Mutex::new(archive));
        let mut branch_writes = BranchWrites::new(opts.read_only);
        if !opts.read_only {
            // Without the thread (it could not start) `write` stores full
            // buffers itself, as before the flusher existed.
            match super::flusher::Flusher::start(writer.clone(), config) {
                Ok(f) => branch_writes = branch_writes.with_flusher(f),
                Err(e) => log::warn!("cannot start the write flusher; writes are stored on the request thread: {e}"),
            }
        }
        FsCore {
            readers,
            writer,
            inodes: Inodes::new(),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            prefetch: Prefetcher::new(store, ReadAheadConfig::for_cache(opts.cache_bytes, opts.readahead_workers)),
            heads: Mutex::new((Instant::now() - HEADS_TTL * 2, HashMap::new())),
            mount_time_ns: crate::archive::objects::now_ns(),
            slices: Mutex::new(hashlink::LruCache::new(SLICE_PLAN_CACHE)),
            branch_writes,
        }
    }

    /// Before the mount is ready: open the catalog connections and start the
    /// threads a first lookup, open and read would otherwise wait for (each
    /// connection's open reads the schema's cold pages), as a server does
    /// before it listens (`serve::warm`). A failure here is reported by the
    /// request that meets it.
    pub fn warm(&self) {
        if let Err(e) = self.heads() {
            log::warn!("could not read the catalog at mount: {e:?}");
        }
        // The upper pages of the path, extent and chunk indexes
        // (catalog/resident.rs): a cold lookup then reads one leaf per path
        // component, and an open two pages each of extents and chunks, at
        // any archive size.
        if let Err(e) = self.with_archive(|a| a.catalog.read_lookup_indexes_ahead()) {
            log::debug!("could not read the path index ahead: {e:?}");
        }
        self.prefetch.store().open_lookups();
    }

    /// Branch folders and files: the write path over this core.
    fn branches(&self) -> Branches<'_, FsCore> {
        self.branch_writes.on(self)
    }

    pub(crate) fn heads_snapshot(&self) -> FsResult<HashMap<String, Option<Hash>>> {
        self.heads()
    }

    /// Forget cached branch heads (after this mount created or removed a branch).
    pub(crate) fn invalidate_heads(&self) {
        if let Ok(mut h) = self.heads.lock() {
            h.0 = Instant::now() - HEADS_TTL * 2;
        }
    }

    pub(crate) fn getattr_branch_root_mtime(&self, branch: &str) -> FsResult<i64> {
        let head = self.heads()?.get(branch).cloned().ok_or(FsError::NotFound)?;
        Ok(match head {
            Some(c) => self.with_archive(|a| a.commit(&c))?.time_ns,
            None => self.mount_time_ns,
        })
    }

    /// Read metadata through the pool, in one read transaction.
    pub(crate) fn with_archive<T>(&self, f: impl FnOnce(&Archive) -> crate::archive::Result<T>) -> FsResult<T> {
        self.readers.with(f).map_err(FsError::from)
    }

    /// Change the staging overlay (or store staged bytes) through the one writer.
    pub(crate) fn with_writer<T>(&self, f: impl FnOnce(&Archive) -> crate::archive::Result<T>) -> FsResult<T> {
        let a = self.writer.lock().map_err(|_| FsError::Io("archive lock poisoned".into()))?;
        f(&a).map_err(FsError::from)
    }

    fn heads(&self) -> FsResult<HashMap<String, Option<Hash>>> {
        let mut h = self.heads.lock().map_err(|_| FsError::Io("poisoned".into()))?;
        if h.0.elapsed() >= HEADS_TTL {
            let branches = self.with_archive(|a| a.branches())?;
            h.1 = branches.into_iter().collect();
            h.0 = Instant::now();
            // New packs are named on first read (`ChunkStore::pack_name`); only
            // the packs this mount has touched are checked here, so packs `gc`
            // removed are closed and their space freed. Not the whole packs
            // table: at 100 TB it is 50 cold pages read every second.
            let store = self.prefetch.store();
            let known = store.known_packs();
            let live = self.with_archive(|a| a.catalog.existing_packs(&known))?;
            let gone: Vec<i64> = known.into_iter().filter(|id| !live.contains(id)).collect();
            store.forget_packs(&gone);
        }
        Ok(h.1.clone())
    }

    pub(crate) fn node(&self, ino: u64) -> FsResult<Node> {
        self.inodes.get(ino).ok_or(FsError::NotFound)
    }

    /// The tree a directory node lists (None: an empty branch).
    fn dir_tree(&self, node: &Node) -> FsResult<Option<Hash>> {
        match &node.kind {
            NodeKind::Dir { tree } | NodeKind::Commit { tree, .. } => Ok(Some(*tree)),
            NodeKind::History | NodeKind::HistoryBranch { .. } => Err(FsError::Io("internal: .history has no tree".into())),
            NodeKind::Branch { name } => {
                let head = self.heads()?.get(name).cloned().ok_or(FsError::NotFound)?;
                match head {
                    Some(c) => Ok(Some(self.with_archive(|a| a.commit(&c))?.tree)),
                    None => Ok(None),
                }
            }
            NodeKind::BDir { .. } => self.branches().branch_dir_tree(node),
            NodeKind::BFile { .. } | NodeKind::BSpecial { .. } | NodeKind::Special { .. } => Err(FsError::NotDir),
            NodeKind::Root => Err(FsError::Io("internal: root has no tree".into())),
            NodeKind::File { .. } | NodeKind::Slice { .. } | NodeKind::Proxy { .. } | NodeKind::ProxyDir { .. } => Err(FsError::NotDir),
        }
    }

    pub fn attr_of(&self, n: &Node) -> Attr {
        Attr::of_node(n)
    }

    pub fn getattr(&self, ino: u64) -> FsResult<Attr> {
        let n = self.node(ino)?;
        if matches!(n.kind, NodeKind::BDir { .. } | NodeKind::BFile { .. } | NodeKind::BSpecial { .. }) {
            return self.branches().branch_attr(&n);
        }
        if let NodeKind::Branch { name } = &n.kind {
            // A branch root's mtime is its head commit's time.
            let head = self.heads()?.get(name).cloned().ok_or(FsError::NotFound)?;
            let mtime = match head {
                Some(c) => self.with_archive(|a| a.commit(&c))?.time_ns,
                None => self.mount_time_ns,
            };
            let mut a = self.attr_of(&n);
            a.mtime_ns = mtime;
            a.ctime_ns = mtime;
            return Ok(a);
        }
        if n.ino == ROOT_INO {
            let mut a = self.attr_of(&n);
            a.mtime_ns = self.mount_time_ns;
            a.ctime_ns = self.mount_time_ns;
            return Ok(a);
        }
        Ok(self.attr_of(&n))
    }

    pub fn lookup(&self, parent: u64, name: &str) -> FsResult<Attr> {
        let p = self.node(parent)?;
        // Checked before anything else, as a kernel filesystem would: no name
        // this long can exist, in any kind of folder.
        if name.len() > NAME_MAX {
            return Err(FsError::NameTooLong);
        }
        if name == "." {
            return self.getattr(parent);
        }
        if name == ".." {
            return self.getattr(p.parent);
        }
        // Branch folders are named by path (fs/write.rs keeps their inodes
        // while they are written); what is in them, `.proxy` and slices beside
        // their files resolve through the view layer as everywhere else.
        let parent_target = match &p.kind {
            NodeKind::Root => Target::Root,
            NodeKind::History => Target::History,
            NodeKind::HistoryBranch { branch } => Target::HistoryBranch { branch: branch.clone() },
            NodeKind::Commit { commit, tree } => Target::Commit { commit: *commit, tree: *tree, time_ns: p.mtime_ns },
            NodeKind::Dir { tree } => {
                Target::Dir { tree: Some(*tree), mode: p.mode, mtime_ns: p.mtime_ns, owner: p.owner, live: None, extra: Default::default() }
            }
            NodeKind::ProxyDir { tree, profile } => Target::ProxyDir { tree: *tree, profile: profile.clone() },
            NodeKind::File { .. }
            | NodeKind::Slice { .. }
            | NodeKind::Proxy { .. }
            | NodeKind::BFile { .. }
            | NodeKind::Special { .. }
            | NodeKind::BSpecial { .. } => return Err(FsError::NotDir),
            NodeKind::Branch { .. } | NodeKind::BDir { .. } => self.branches().folder_target(&p)?,
        };
        let t = view::lookup(self, &parent_target, &p.path, name).map_err(|e| view_err(&p, name, e))?;
        self.target_node(&p, name, t)
    }

    /// The inode of what the resolver found (inode numbers are the mount's
    /// business, not the resolver's), with its attributes.
    fn target_node(&self, p: &Node, name: &str, t: Target) -> FsResult<Attr> {
        if let Some(a) = self.branches().live_node(p, name, &t)? {
            return Ok(a);
        }
        let n = match t {
            Target::Branch { name: b, .. } => {
                let n = self.inodes.child(p, name, NodeKind::Branch { name: b }, 0, 0o755, self.mount_time_ns);
                return self.getattr(n.ino);
            }
            Target::History => self.inodes.child(p, name, NodeKind::History, 4096, 0o555, self.mount_time_ns),
            Target::HistoryBranch { branch } => {
                self.inodes.child(p, name, NodeKind::HistoryBranch { branch }, 4096, 0o555, self.mount_time_ns)
            }
            Target::Commit { commit, tree, time_ns } => self.inodes.child(p, name, NodeKind::Commit { commit, tree }, 4096, 0o555, time_ns),
            Target::Dir { tree: Some(tree), mode, mtime_ns, owner, .. } => {
                self.inodes.child_owned(p, name, NodeKind::Dir { tree }, 4096, mode, mtime_ns, owner)
            }
            Target::File { entry, .. } if entry.kind.is_special() => {
                let kind = NodeKind::Special { kind: entry.kind, extra: entry.extra.clone(), hash: entry.hash };
                self.inodes.child_owned(p, name, kind, entry.size, entry.mode, entry.mtime_ns, entry.owner)
            }
            Target::File { entry, .. } => {
                self.inodes.child_owned(p, name, NodeKind::File { blob: entry.hash }, entry.size, entry.mode, entry.mtime_ns, entry.owner)
            }
            Target::Slice(s) => {
                let n = self.inodes.child_owned(
                    p,
                    name,
                    NodeKind::Slice { blob: s.source.hash },
                    s.plan.size,
                    s.source.mode,
                    s.source.mtime_ns,
                    s.source.owner,
                );
                if let Ok(mut m) = self.slices.lock() {
                    m.insert(n.ino, (s.plan.clone(), s.reader.clone(), s.source_path.clone()));
                }
                n
            }
            Target::ProxyDir { tree, profile } => self.inodes.child(p, name, NodeKind::ProxyDir { tree, profile }, 4096, 0o555, p.mtime_ns),
            Target::Proxy(x) => self.inodes.child(
                p,
                name,
                NodeKind::Proxy { blob: x.rec.blob, source: x.source.hash, source_name: x.source.name.clone() },
                x.size,
                0o444,
                x.source.mtime_ns,
            ),
            // Not shown by the mount (an image sequence is its frames), or
            // only below a branch folder (answered by fs/write.rs).
            Target::Sequence(_) | Target::Staged { .. } | Target::Dir { tree: None, .. } | Target::Root => return Err(FsError::NotFound),
        };
        Ok(self.attr_of(&n))
    }

    /// The plan of a slice node: from the cache, or made again from the node
    /// (its name and source content) when the cache let it go.
    fn slice_plan(&self, n: &Node) -> FsResult<SliceEntry> {
        let NodeKind::Slice { blob } = &n.kind else { return Err(FsError::NotFound) };
        if let Some(e) = self.slices.lock().map_err(|_| FsError::BadHandle)?.get(&n.ino).cloned() {
            return Ok(e);
        }
        let Some(Ok(spec)) = SliceSpec::parse_name(&n.name) else { return Err(FsError::NotFound) };
        let dir = n.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let path = if dir.is_empty() { spec.base_name.clone() } else { format!("{dir}/{}", spec.base_name) };
        let (plan, reader) = view::slice::plan(self, &path, &spec, blob).map_err(|e| {
            log::info!("{path}: slice {}: {e}", n.name);
            FsError::NotFound
        })?;
        let entry = (plan, reader, path);
        if let Ok(mut m) = self.slices.lock() {
            m.insert(n.ino, entry.clone());
        }
        Ok(entry)
    }

    /// Slice plans held in memory now (bounded by `SLICE_PLAN_CACHE`).
    pub fn slice_plans_cached(&self) -> usize {
        self.slices.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// A lookup whose answer goes to the kernel: the inode gets one more
    /// reference, given back by `forget`. If the node was forgotten between
    /// finding it and counting the reference, it is looked up again.
    pub fn lookup_ref(&self, parent: u64, name: &str) -> FsResult<Attr> {
        for _ in 0..8 {
            let a = self.lookup(parent, name)?;
            if self.inodes.remember(a.ino) {
                return Ok(self.with_nlink(a));
            }
        }
        Err(FsError::Io(format!("inode of {name} kept being forgotten during lookup")))
    }

    /// The kernel was handed `ino` by a create or mkdir reply.
    pub fn remember(&self, ino: u64) -> bool {
        self.inodes.remember(ino)
    }

    /// FUSE forget: the kernel gives back `nlookup` references to `ino`. The
    /// last one drops the node and anything cached for it.
    pub fn forget(&self, ino: u64, nlookup: u64) {
        if let Some(n) = self.inodes.forget(ino, nlookup) {
            if matches!(n.kind, NodeKind::Slice { .. }) {
                if let Ok(mut m) = self.slices.lock() {
                    m.remove(&ino);
                }
            }
        }
    }

    /// POSIX link count of a directory: its name, its `.`, and the `..` of
    /// each subdirectory (`find` and `ls` rely on it). Counted from the same
    /// listing readdir gives, so `.proxy` and staged folders count too. Only
    /// for attributes handed to the kernel: readdir does not call it, so
    /// listing the root does not list every branch. When the folder cannot
    /// be listed the count is 1, the Linux convention for "unknown".
    pub fn with_nlink(&self, mut a: Attr) -> Attr {
        if a.kind == NodeType::Dir {
            a.nlink = match self.readdir(a.ino) {
                Ok(entries) => {
                    let subdirs = entries.iter().filter(|(_, c)| c.kind == NodeType::Dir).count();
                    u32::try_from(subdirs).map_or(u32::MAX, |n| n.saturating_add(2))
                }
                Err(_) => 1,
            };
        }
        a
    }

    /// `getattr` as the kernel sees it: with the directory link count.
    pub fn stat(&self, ino: u64) -> FsResult<Attr> {
        self.getattr(ino).map(|a| self.with_nlink(a))
    }

    /// The branch folders, as the mount root lists them.
    fn root_entries(&self, root: &Node) -> FsResult<Vec<(String, Attr)>> {
        let mut names: Vec<String> = self.heads()?.into_keys().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let n = self.inodes.child(root, &name, NodeKind::Branch { name: name.clone() }, 0, 0o755, self.mount_time_ns);
            out.push((name, self.getattr(n.ino)?));
        }
        Ok(out)
    }

    /// Directory entries (without `.` and `..`), with inode numbers.
    pub fn readdir(&self, ino: u64) -> FsResult<Vec<(String, Attr)>> {
        let p = self.node(ino)?;
        if let Some(v) = self.version_readdir(&p)? {
            return Ok(v);
        }
        if p.kind == NodeKind::Root {
            // Branch heads are cached for a second: a branch deleted since (and
            // its head commit collected by gc) fails getattr. Ask again with
            // fresh heads before calling that an error.
            return match self.root_entries(&p) {
                Ok(v) => Ok(v),
                Err(_) => {
                    self.invalidate_heads();
                    self.root_entries(&p)
                }
            };
        }
        if let Some(v) = self.proxy_readdir(&p)? {
            return Ok(v);
        }
        if let Some(mut v) = self.branches().branch_readdir(&p)? {
            if let Some(tree) = self.dir_tree(&p)? {
                self.proxy_dir_entry(&p, &tree, &mut v)?;
            }
            return Ok(v);
        }
        let Some(tree) = self.dir_tree(&p)? else { return Ok(Vec::new()) };
        let entries = self.with_archive(|a| a.list_dir(&tree))?;
        let mut out: Vec<(String, Attr)> = entries
            .into_iter()
            .map(|e| {
                let (kind, size) = match e.kind {
                    EntryKind::Dir => (NodeKind::Dir { tree: e.hash }, 4096),
                    EntryKind::File => (NodeKind::File { blob: e.hash }, e.size),
                    kind => (NodeKind::Special { kind, extra: e.extra.clone(), hash: e.hash }, e.size),
                };
                let n = self.inodes.child_owned(&p, &e.name, kind, size, e.mode, e.mtime_ns, e.owner);
                (e.name, self.attr_of(&n))
            })
            .collect();
        self.proxy_dir_entry(&p, &tree, &mut out)?;
        Ok(out)
    }

    pub fn open(&self, ino: u64, write: bool) -> FsResult<u64> {
        self.open_with(ino, write, false)
    }

    /// Open; `truncate` is O_TRUNC.
    pub fn open_with(&self, ino: u64, write: bool, truncate: bool) -> FsResult<u64> {
        let n = self.node(ino)?;
        if let NodeKind::BFile { .. } = &n.kind {
            let content = if write || truncate {
                OpenContent::Writable(self.branches().open_for_write(&n, truncate)?)
            } else {
                match self.branches().open_read(ino)? {
                    ReadOpen::Writing(ws) => OpenContent::Writable(ws),
                    ReadOpen::Following(cell) => {
                        let reader = self.branches().branch_reader(&n).inspect_err(|e| {
                            log::error!("{}: cannot read: {e}", n.path);
                            self.branches().leave_read(ino);
                        })?;
                        OpenContent::archived(&self.prefetch, reader, Some(cell))
                    }
                }
            };
            let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
            let of = OpenFile { node: n, content };
            self.handles.lock().map_err(|_| FsError::BadHandle)?.insert(fh, Arc::new(of));
            return Ok(fh);
        }
        if write {
            return Err(match n.kind {
                NodeKind::File { .. } | NodeKind::Slice { .. } | NodeKind::Proxy { .. } => FsError::ReadOnly,
                _ => FsError::IsDir,
            });
        }
        let content = match &n.kind {
            NodeKind::File { blob } | NodeKind::Proxy { blob, .. } => {
                // Logged here so a mount's log names the cause of an EIO (content
                // released to tape names its cartridges). Paged, as a branch
                // file's (`Branches::branch_reader`); a proxy's size is its node's
                // only once rendered, so it is read from the catalog.
                let reader = match &n.kind {
                    NodeKind::File { .. } => self.with_archive(|a| a.blob_reader_opened(blob, n.size)),
                    _ => self.with_archive(|a| a.blob_reader_paged(blob)),
                }
                .inspect_err(|e| log::error!("{}: cannot read: {e}", n.path))?;
                OpenContent::archived(&self.prefetch, Arc::new(reader), None)
            }
            NodeKind::Slice { .. } => {
                let (plan, source, _) = self.slice_plan(&n)?;
                // The open file pins a remuxed slice's cache file against eviction
                // (remade here, outside the lock, if it was evicted since lookup).
                OpenContent::Slice { plan: Arc::new(plan.for_reading().map_err(|e| FsError::Io(e.to_string()))?), source }
            }
            _ => return Err(FsError::IsDir),
        };
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let of = OpenFile { node: n, content };
        self.handles.lock().map_err(|_| FsError::BadHandle)?.insert(fh, Arc::new(of));
        Ok(fh)
    }

    pub fn release(&self, fh: u64) -> FsResult<()> {
        let of = self.handles.lock().ok().and_then(|mut h| h.remove(&fh));
        match of.as_deref() {
            Some(OpenFile { node, content: OpenContent::Writable(ws) }) => return self.branches().release_ws(node.ino, ws),
            Some(OpenFile { node, content: OpenContent::Archived { follow: Some(_), .. } }) => self.branches().leave_read(node.ino),
            _ => {}
        }
        if log::log_enabled!(log::Level::Debug) {
            let (reused, allocated) = crate::archive::chunk_buffers::stats();
            log::debug!("chunk loads so far: {reused} into recycled buffers, {allocated} into new ones");
        }
        Ok(())
    }

    /// Create a file in a branch folder and open it for writing.
    pub fn create_open(&self, parent: u64, name: &str, mode: u32) -> FsResult<(Attr, u64)> {
        self.create_open_as(parent, name, mode, None)
    }

    /// `create_open` on behalf of `caller`, who then owns the file (None: owner not recorded).
    pub fn create_open_as(&self, parent: u64, name: &str, mode: u32, caller: Option<&Caller>) -> FsResult<(Attr, u64)> {
        let (attr, ws) = self.branches().create_as(parent, name, mode, caller)?;
        let n = self.node(attr.ino)?;
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let of = OpenFile { node: n, content: OpenContent::Writable(ws) };
        self.handles.lock().map_err(|_| FsError::BadHandle)?.insert(fh, Arc::new(of));
        Ok((attr, fh))
    }

    pub fn write_fh(&self, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        let of = self.handle(fh)?;
        match &of.content {
            OpenContent::Writable(ws) => self.branches().write(ws, offset, data),
            OpenContent::Archived { .. } | OpenContent::Slice { .. } => Err(FsError::ReadOnly),
        }
    }

    /// fsync/flush of a handle: buffered writes become durable staged data.
    pub fn fsync_fh(&self, fh: u64) -> FsResult<()> {
        let of = self.handle(fh)?;
        match &of.content {
            OpenContent::Writable(ws) => self.branches().flush_ws(ws),
            OpenContent::Archived { .. } | OpenContent::Slice { .. } => Ok(()),
        }
    }

    fn handle(&self, fh: u64) -> FsResult<Arc<OpenFile>> {
        self.handles.lock().map_err(|_| FsError::BadHandle)?.get(&fh).cloned().ok_or(FsError::BadHandle)
    }

    /// Read up to `size` bytes at `offset`. A damaged chunk fails this read with
    /// an I/O error (and a log line naming the file); other ranges still read.
    pub fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        self.read_buf(fh, offset, size).map(ReadBuf::into_vec)
    }

    /// `read` for the FUSE reply: a range inside one chunk the read-ahead holds
    /// is lent from that chunk's memory, so a sequential reader costs no
    /// allocation and no copy per request (the kernel copies it once, from here).
    pub fn read_buf(&self, fh: u64, offset: u64, size: u32) -> FsResult<ReadBuf> {
        let of = self.handle(fh)?;
        let (file, seq) = match &of.content {
            OpenContent::Writable(ws) => return self.branches().read_ws(ws, offset, size as u64).map(ReadBuf::Owned),
            OpenContent::Slice { plan, source } => return Self::read_slice(&of.node, plan, source, offset, size).map(ReadBuf::Owned),
            OpenContent::Archived { file, seq, follow } => {
                if let Some(ws) = follow.as_ref().and_then(|cell| cell.current()) {
                    return self.branches().read_ws(&ws, offset, size as u64).map(ReadBuf::Owned);
                }
                (file, seq)
            }
        };
        let r = &file.reader;
        if offset >= r.size {
            return Ok(ReadBuf::Owned(Vec::new()));
        }
        let len = (size as u64).min(r.size - offset);
        self.plan_readahead(r, seq, offset, len);
        file.read_buf(offset, len).map_err(|msg| {
            log::error!("{}: read at {offset} failed: {msg}", of.node.path);
            FsError::Io(msg)
        })
    }

    /// Read from a virtual slice's planned layout.
    fn read_slice(node: &Node, plan: &SlicePlan, source: &Arc<BlobReader>, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        if offset >= plan.size {
            return Ok(Vec::new());
        }
        let mut out = vec![0u8; (size as u64).min(plan.size - offset) as usize];
        let mut done = 0;
        while done < out.len() {
            let n = plan.read_at(source, offset + done as u64, &mut out[done..]).map_err(|e| {
                log::error!("{}: slice read at {} failed: {e}", node.path, offset + done as u64);
                FsError::Io(e.to_string())
            })?;
            if n == 0 {
                break;
            }
            done += n;
        }
        out.truncate(done);
        Ok(out)
    }

    /// Sequential detection and read-ahead (archive/readahead.rs): a read
    /// near where the last ended grows the window; a jump resets it.
    fn plan_readahead(&self, reader: &BlobReader, seq: &Mutex<SeqState>, offset: u64, len: u64) {
        let Ok(mut s) = seq.lock() else { return };
        let ahead = s.on_read(offset, len, reader.size, self.prefetch.max_window);
        if let Some((from, upto)) = s.behind() {
            // Only chunks that surely end before `upto` (an extent ends at most
            // its chunk's length after it starts).
            let passed: Vec<_> = reader
                .chunk_offsets_in(from, upto - from)
                .into_iter()
                .filter(|(off, _, loc)| off + loc.raw_len as u64 <= upto)
                .map(|(_, h, _)| h)
                .collect();
            self.prefetch.release(&passed);
            s.released_to = upto;
        }
        // One random read the kernel split into requests that follow each
        // other is not a stream: loading whole chunks ahead of it read as many
        // bytes again as the reads asked for (strace), and the reads after it
        // waited behind those loads (the random-read p99).
        if s.run() <= STREAM_MIN_RUN {
            return;
        }
        let Some((from, to)) = ahead else { return };
        let chunks = reader.chunk_offsets_in(from, to - from);
        // A chunk that starts before `from` is the one the reader is in the
        // middle of, reading it range by range itself: a stream becomes one
        // only after STREAM_MIN_RUN, and a reader can outrun a window the
        // prefetcher did not take. Loading it whole read the part already
        // read a second time (strace: up to a chunk, 16 MiB, per stream).
        let skip = chunks.first().is_some_and(|(off, _, _)| *off < from) as usize;
        let chunks = &chunks[skip..];
        // Only what the prefetcher accepted counts as requested; the rest is
        // asked for again on the next read (back-pressure, not loss).
        let accepted = self.prefetch.prefetch(chunks);
        s.accepted(match chunks.get(accepted) {
            Some((off, _, _)) => (*off).max(from),
            None => to,
        });
    }

    /// The mount's derived `user.reelfs.*` names, then a branch entry's own user xattrs.
    pub fn listxattr(&self, ino: u64) -> FsResult<Vec<String>> {
        let mut names: Vec<String> = self.xattrs(ino)?.into_iter().map(|(k, _)| k).collect();
        if let Some(own) = self.branches().user_xattrs(&self.node(ino)?)? {
            names.extend(own.into_keys());
        }
        Ok(names)
    }

    pub fn getxattr(&self, ino: u64, name: &str) -> FsResult<Vec<u8>> {
        // Only `user.*` names are ever kept (objects::keeps_xattr) or derived.
        // The kernel asks for `security.capability` before every write(2) to
        // a mount without writeback caching; answering that from the catalog
        // cost a read transaction per 1 MiB written.
        if !name.starts_with("user.") {
            self.node(ino)?;
            return Err(FsError::NoAttr);
        }
        if !is_derived_xattr(name) {
            // A user's value is bytes (a Finder info block is binary).
            return match self.branches().user_xattrs(&self.node(ino)?)? {
                Some(mut own) => own.remove(name).map(|v| v.0).ok_or(FsError::NoAttr),
                None => Err(FsError::NoAttr),
            };
        }
        self.xattrs(ino)?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v.into_bytes()).ok_or(FsError::NoAttr)
    }

    /// setxattr on a branch file or folder (user namespace only; see fs/write_xattrs.rs).
    /// A derived `user.reelfs.*` may be "set" to the value it already has (a
    /// copy from another reelfs mount does that), never to another (EPERM).
    pub fn setxattr(&self, ino: u64, name: &str, value: &[u8], flags: i32) -> FsResult<()> {
        if is_derived_xattr(name) {
            self.require_mutable(ino)?;
            return match self.getxattr(ino, name) {
                Ok(v) if v == value && flags & 1 == 0 => Ok(()),
                _ => Err(FsError::NotPermitted),
            };
        }
        self.branches().set_xattr(ino, name, value, flags)
    }

    /// removexattr on a branch file or folder. Removing a derived
    /// `user.reelfs.*` is accepted and changes nothing: it is recomputed from
    /// the content, and `rsync -X` removes every name its source lacks, so
    /// refusing would fail every `rsync -aX` into a branch (exit 23).
    pub fn removexattr(&self, ino: u64, name: &str) -> FsResult<()> {
        if is_derived_xattr(name) {
            return self.require_mutable(ino);
        }
        self.branches().remove_xattr(ino, name)
    }

    fn require_mutable(&self, ino: u64) -> FsResult<()> {
        self.node(ino)?;
        if self.is_mutable(ino) {
            Ok(())
        } else {
            Err(FsError::ReadOnly)
        }
    }

    /// Probed media facts of a content hash as `user.reelfs.*` attributes.
    pub(crate) fn media_xattrs(&self, blob: &Hash) -> FsResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        if let Some((facts, err)) = self.with_archive(|a| crate::media::facts::stored(a, blob))? {
            if let Some(e) = err {
                out.push(("user.reelfs.damaged".into(), e));
            }
            if let Some(f) = facts {
                out.extend(f.xattrs().into_iter().map(|(k, v)| (format!("user.reelfs.{k}"), v)));
            }
        }
        Ok(out)
    }

    /// Where the timecode comes from, on top of the probed attributes:
    /// `user.reelfs.timecode` stays a bare label a tool can parse (00:00:00:00 for a clip
    /// without one, the user's for one set with `reelfs tc set`), `timecode_source` says
    /// `file`, `user` or `assumed`, and `timecode_note` says it in words.
    fn timecode_xattrs(&self, out: &mut Vec<(String, String)>, path: &str, blob: &Hash) -> FsResult<()> {
        let Some((Some(facts), _)) = self.with_archive(|a| crate::media::facts::stored(a, blob))? else { return Ok(()) };
        let f = self.with_archive(|a| {
            Ok(match a.resolve(path) {
                Ok(r) => crate::media::facts::in_force(a, r.commit.as_ref(), &r.path, blob, &facts),
                Err(_) => facts.with_user_fact(None),
            })
        })?;
        let Some(note) = f.describe_timecode() else { return Ok(()) };
        let mut set = |key: &str, value: String| {
            let key = format!("user.reelfs.{key}");
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => out.push((key, value)),
            }
        };
        set("timecode", f.timecode.clone().unwrap_or_else(|| "00:00:00:00".to_string()));
        set("timecode_source", f.timecode_source.clone().unwrap_or_else(|| "file".to_string()));
        set("timecode_note", note);
        if f.timecode_set_by_user() {
            if let Some(r) = &f.reel {
                set("reel", r.clone());
            }
            set("drop_frame", f.drop_frame.to_string());
        }
        Ok(())
    }

    /// `user.reelfs.*`: what a tool may want without decoding the file.
    fn xattrs(&self, ino: u64) -> FsResult<Vec<(String, String)>> {
        let n = self.node(ino)?;
        let mut out = Vec::new();
        match &n.kind {
            NodeKind::File { blob } => {
                out.push(("user.reelfs.hash".into(), self.hash_label(blob)?));
                out.push(("user.reelfs.location".into(), self.location_label(blob)?));
                out.extend(self.media_xattrs(blob)?);
                self.timecode_xattrs(&mut out, &n.path, blob)?;
            }
            NodeKind::Branch { name } => {
                out.push(("user.reelfs.branch".into(), name.clone()));
                if let Some(Some(h)) = self.heads()?.get(name) {
                    out.push(("user.reelfs.commit".into(), h.to_hex()));
                }
            }
            NodeKind::Slice { .. } => {
                if let Ok((plan, _, src)) = self.slice_plan(&n) {
                    out.push(("user.reelfs.source".into(), src));
                    out.push(("user.reelfs.timecode".into(), plan.start_tc.clone()));
                    out.push(("user.reelfs.in".into(), plan.in_tc.clone()));
                    out.push(("user.reelfs.out".into(), plan.out_tc.clone()));
                    out.push(("user.reelfs.rate".into(), plan.rate.clone()));
                    out.push(("user.reelfs.duration_frames".into(), (plan.end_frame - plan.first_frame).to_string()));
                    out.push(("user.reelfs.handles".into(), format!("{},{}", plan.handles_before, plan.handles_after)));
                }
            }
            NodeKind::Dir { tree } => out.push(("user.reelfs.tree".into(), tree.to_hex())),
            NodeKind::BDir { branch, .. } | NodeKind::BSpecial { branch, .. } => out.push(("user.reelfs.branch".into(), branch.clone())),
            // A link, FIFO or device has no content to describe.
            NodeKind::Special { .. } => {}
            NodeKind::BFile { branch, path } => {
                out.push(("user.reelfs.branch".into(), branch.clone()));
                if let Some(super::write::Entry::File { content, .. }) = self.branches().branch_entry(branch, path)? {
                    match content {
                        crate::archive::staging::Content::Blob(blob) => {
                            out.push(("user.reelfs.hash".into(), self.hash_label(&blob)?));
                            out.push(("user.reelfs.location".into(), self.location_label(&blob)?));
                            out.extend(self.media_xattrs(&blob)?);
                            self.timecode_xattrs(&mut out, &n.path, &blob)?;
                        }
                        crate::archive::staging::Content::Extents(_) => out.push(("user.reelfs.staged".into(), "true".into())),
                    }
                }
            }
            // How many inodes the daemon holds for the kernel: `df -i` now shows the
            // archive disk's (fs/statfs.rs), and an operator checking that a long
            // `find` did not grow the daemon for good still needs this number.
            NodeKind::Root => out.push(("user.reelfs.inodes".into(), self.inode_count().to_string())),
            NodeKind::Commit { .. } | NodeKind::History | NodeKind::HistoryBranch { .. } => out.extend(self.version_xattrs(&n)),
            NodeKind::Proxy { .. } | NodeKind::ProxyDir { .. } => out.extend(self.proxy_xattrs(&n)?),
        }
        Ok(out)
    }

    /// `blake3:HEX`, or `reelfs-layout:HEX` for a file with huge holes
    /// (see archive/content_hash.rs): a tool checking with b3sum must not be
    /// told a layout id is a BLAKE3.
    /// `disk`, or `tape:A00001L8,B00001L8` for content `reelfs tape release`
    /// freed (reading it then fails with EIO, the error naming the cartridges).
    fn location_label(&self, blob: &Hash) -> FsResult<String> {
        let released = self.with_archive(|a| a.catalog.released(blob))?;
        Ok(released.map_or_else(|| "disk".into(), |b| format!("tape:{b}")))
    }

    fn hash_label(&self, blob: &Hash) -> FsResult<String> {
        let plain = self.with_archive(|a| crate::archive::content_hash::is_plain_blake3(&a.catalog, blob))?;
        Ok(crate::archive::content_hash::label(blob, plain))
    }

    /// Space of the disk holding the archive (`df` on the mount shows it).
    pub fn statfs(&self) -> FsResult<super::statfs::Space> {
        let root = self.with_archive(|a| Ok(a.root().to_path_buf()))?;
        super::statfs::of_dir(&root)
    }

    pub fn inode_count(&self) -> usize {
        self.inodes.len()
    }

    // What changes a branch: fs/write.rs does it, the core hands it its nodes.

    /// True for nodes whose content may change (branch files and folders of a
    /// writable mount): everything else is archived content or derived from it.
    pub fn is_mutable(&self, ino: u64) -> bool {
        self.branches().is_mutable(ino)
    }

    pub fn mkdir(&self, parent: u64, name: &str, mode: u32) -> FsResult<Attr> {
        self.mkdir_as(parent, name, mode, None)
    }

    /// Make a folder owned by `caller` (None: owner not recorded); in the
    /// mount root, a new branch.
    pub fn mkdir_as(&self, parent: u64, name: &str, mode: u32, caller: Option<&Caller>) -> FsResult<Attr> {
        self.branches().mkdir_as(parent, name, mode, caller)
    }

    pub fn unlink(&self, parent: u64, name: &str) -> FsResult<()> {
        self.branches().unlink(parent, name)
    }

    /// A symlink's target as stored (EINVAL for anything that is not a link).
    pub fn readlink(&self, ino: u64) -> FsResult<String> {
        let n = self.node(ino)?;
        match &n.kind {
            NodeKind::Special { kind: EntryKind::Symlink, extra, .. } => extra.target.clone().ok_or(FsError::Invalid),
            NodeKind::BSpecial { .. } => self.branches().branch_readlink(&n),
            _ => Err(FsError::Invalid),
        }
    }

    /// `symlink(2)` in a branch folder: the target is stored as given, never resolved.
    pub fn symlink_as(&self, parent: u64, name: &str, target: &str, caller: Option<&Caller>) -> FsResult<Attr> {
        if target.is_empty() {
            return Err(FsError::NotFound); // POSIX: an empty target is ENOENT
        }
        if target.len() > 4095 {
            return Err(FsError::NameTooLong);
        }
        let extra = EntryExtra { target: Some(target.to_string()), ..Default::default() };
        self.branches().make_special(parent, name, EntryKind::Symlink, extra, 0o777, caller)
    }

    /// `mknod(2)` of a FIFO, socket or device node in a branch folder.
    pub fn mknod_as(
        &self,
        parent: u64,
        name: &str,
        kind: EntryKind,
        rdev: DeviceNumber,
        mode: u32,
        caller: Option<&Caller>,
    ) -> FsResult<Attr> {
        let rdev = matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice).then_some(rdev);
        self.branches().make_special(parent, name, kind, EntryExtra { rdev, ..Default::default() }, mode, caller)
    }

    /// Remove a folder; in the mount root, a branch with nothing staged.
    pub fn rmdir(&self, parent: u64, name: &str) -> FsResult<()> {
        self.branches().rmdir(parent, name)
    }

    pub fn rename(&self, parent: u64, name: &str, newparent: u64, newname: &str) -> FsResult<()> {
        self.branches().rename(parent, name, newparent, newname)
    }

    /// `link(2)` in a branch: one more name of a file (see `write_links.rs`).
    pub fn link(&self, ino: u64, newparent: u64, newname: &str) -> FsResult<Attr> {
        self.branches().link(ino, newparent, newname)
    }

    /// chmod / truncate / utimens.
    pub fn setattr(&self, ino: u64, mode: Option<u32>, size: Option<u64>, mtime_ns: Option<i64>) -> FsResult<Attr> {
        self.branches().setattr(ino, mode, size, mtime_ns)
    }

    /// `setattr` with the kernel's change time (see `Branches::setattr_at`).
    pub fn setattr_at(
        &self,
        ino: u64,
        mode: Option<u32>,
        size: Option<u64>,
        mtime_ns: Option<i64>,
        ctime_ns: Option<i64>,
    ) -> FsResult<Attr> {
        self.branches().setattr_at(ino, mode, size, mtime_ns, ctime_ns)
    }

    /// `chown` with the kernel's change time (see `Branches::chown_at`).
    pub fn chown_at(&self, ino: u64, uid: Option<u32>, gid: Option<u32>, caller: &Caller, ctime_ns: Option<i64>) -> FsResult<Attr> {
        self.branches().chown_at(ino, uid, gid, caller, ctime_ns)
    }

    /// chown/chgrp by `caller` (see `Branches::chown`).
    pub fn chown(&self, ino: u64, uid: Option<u32>, gid: Option<u32>, caller: &Caller) -> FsResult<Attr> {
        self.branches().chown(ino, uid, gid, caller)
    }

    pub fn set_atime(&self, ino: u64, atime_ns: i64) -> FsResult<()> {
        self.branches().set_atime(ino, atime_ns)
    }

    /// The access time set for a node, if one was.
    pub fn atime_ns(&self, ino: u64) -> Option<i64> {
        self.branches().atime_ns(ino)
    }

    pub fn fallocate(&self, ino: u64, offset: u64, length: u64, mode: Falloc) -> FsResult<()> {
        self.branches().fallocate(ino, offset, length, mode)
    }

    /// copy_file_range into a branch file (shares the source's chunks).
    pub fn copy_range(&self, ino_in: u64, off_in: u64, ino_out: u64, off_out: u64, len: u64) -> FsResult<u64> {
        self.branches().copy_range(ino_in, off_in, ino_out, off_out, len)
    }
}

impl WriteHost for FsCore {
    fn node(&self, ino: u64) -> FsResult<Node> {
        FsCore::node(self, ino)
    }
    fn inodes(&self) -> &Inodes {
        &self.inodes
    }
    fn with_archive<T>(&self, f: impl FnOnce(&Archive) -> crate::archive::Result<T>) -> FsResult<T> {
        FsCore::with_archive(self, f)
    }
    fn with_writer<T>(&self, f: impl FnOnce(&Archive) -> crate::archive::Result<T>) -> FsResult<T> {
        FsCore::with_writer(self, f)
    }
    fn getattr(&self, ino: u64) -> FsResult<Attr> {
        FsCore::getattr(self, ino)
    }
    fn lookup(&self, parent: u64, name: &str) -> FsResult<Attr> {
        FsCore::lookup(self, parent, name)
    }
    fn invalidate_heads(&self) {
        FsCore::invalidate_heads(self)
    }
    fn branch_root_mtime(&self, branch: &str) -> FsResult<i64> {
        self.getattr_branch_root_mtime(branch)
    }
}

impl view::Access for FsCore {
    fn read<T>(&self, f: impl FnOnce(&Archive) -> crate::archive::Result<T>) -> Result<T, ViewError> {
        match self.with_archive(|a| Ok(f(a))) {
            Ok(r) => r.map_err(ViewError::from),
            Err(e) => Err(ViewError::Access(e.to_string())),
        }
    }
    fn heads(&self) -> Result<HashMap<String, Option<Hash>>, ViewError> {
        FsCore::heads(self).map_err(|e| ViewError::Access(e.to_string()))
    }
}

/// What the kernel is told when a name does not resolve. Any reason a name
/// cannot be served (bad timecode, out of range, not media, an unknown
/// commit id) is ENOENT; the reason goes to the log, and `reelfs slice`
/// prints it.
fn view_err(parent: &Node, name: &str, e: ViewError) -> FsError {
    if matches!(e, ViewError::Slice(_) | ViewError::Path(_)) {
        log::info!("{}/{name}: {e}", parent.path);
    }
    FsError::from(e)
}

#[cfg(test)]
#[path = "core_pool_tests.rs"]
mod pool_tests;

/// The mount's own attributes, derived from content and history.
fn is_derived_xattr(name: &str) -> bool {
    name.starts_with("user.reelfs.")
}

/// Tests' writable core over a new archive in a temporary folder (kept as long
/// as the returned guard), and the inode of its `main` folder.
#[cfg(test)]
fn writable_test_core() -> (tempfile::TempDir, FsCore, u64) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a");
    drop(Archive::init(&root).unwrap());
    let core = FsCore::new(Archive::open(&root).unwrap(), FsOptions { cache_bytes: 16 << 20, readahead_workers: 2, read_only: false });
    let main = core.lookup(ROOT_INO, "main").unwrap().ino;
    (dir, core, main)
}

#[cfg(test)]
#[path = "flusher_tests.rs"]
mod flusher_tests;

#[cfg(test)]
#[path = "followers_tests.rs"]
mod followers_tests;
