//! Branch folders as a writable view: the head commit's tree with the branch's
//! staging overlay laid over it, and the operations that change it.
//!
//! Inside a branch, nodes are named by path (`BDir`/`BFile`), not by content,
//! because a file being written must keep its inode while its content changes.
//! Writes are buffered per inode and become staged chunks (through
//! `Archive::stage_write`) at fsync, close, truncate, or every 64 MiB; every
//! 64 MiB is handed to the background flusher (fs/flusher.rs) when the mount
//! has one. Other readers of the branch see buffered bytes at once.

use super::attr::{Attr, NodeType};
use super::error::{FsError, FsResult, NAME_MAX};
use super::flusher::{Flusher, Settled};
use super::followers::{FollowCell, Followers};
use super::inodes::{Inodes, Node, NodeKind, ROOT_INO};
use super::owners::{self, Caller};
use crate::archive::chunk_buffers::ChunkBuffers;
use crate::archive::objects::{EntryExtra, Extent, Owner, TreeEntry};
use crate::archive::staging::{splice, Content, Staged, MAX_FILE_SIZE};
use crate::archive::{objects, BlobReader, EntryKind, Hash};
use crate::view::{self, Target};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Flush a file's buffered writes once they reach this size.
const FLUSH_BYTES: u64 = 64 << 20;

/// A sequential writer's run when it is handed to the flusher: the segment
/// and the write that crossed its size (the kernel's writes are at most 1 MiB).
pub const SEGMENT_CAPACITY: usize = FLUSH_BYTES as usize + (4 << 20);

/// A run reaching this size moves to a whole-segment buffer: smaller runs
/// (a header rewrite, a random writer's pieces) keep small allocations.
const SEGMENT_BUFFER_FROM: usize = 1 << 20;

/// Whole-segment buffers the flusher has stored, kept for the next runs.
/// Each run used to be a fresh allocation grown by doubling: its memory came
/// from new mappings, so the kernel faulted in and zeroed every page the FUSE
/// threads then copied into (page faults, zeroing and memcg charging were
/// ~30% of the mount's CPU during a 4 GiB `cp`), and every doubling copied
/// the run so far. Two are kept: with one being filled, one being prepared and
/// one being stored, each comes back as the next is needed. Emptied when the
/// mount's last write handle closes, so an idle mount holds none.
pub static SEGMENT_BUFFERS: ChunkBuffers = ChunkBuffers::new(2 * SEGMENT_CAPACITY);

/// What `fallocate` may be asked to do in a branch (the adapter maps the
/// kernel's mode bits; any other combination is refused before this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Falloc {
    /// Mode 0: the file becomes at least offset + length long; new bytes read as zeros.
    Extend,
    /// KEEP_SIZE alone: reserve space. Nothing is reserved ahead in a content
    /// store, so this changes nothing.
    KeepSize,
    /// PUNCH_HOLE | KEEP_SIZE: the range reads as zeros and stores nothing.
    PunchHole,
}

/// The extents of `ext` covering [from, from + len), moved to start at `to`:
/// the same chunks, so a copy stores no new bytes.
fn extents_moved(ext: &[Extent], from: u64, len: u64, to: u64) -> Vec<Extent> {
    let end = from + len;
    ext.iter()
        .filter(|e| e.file_offset < end && e.end() > from)
        .map(|e| {
            let s = e.file_offset.max(from);
            let t = e.end().min(end);
            let chunk_offset = if e.is_zero_run() { 0 } else { e.chunk_offset + (s - e.file_offset) };
            Extent { file_offset: s - from + to, length: t - s, chunk: e.chunk, chunk_offset }
        })
        .collect()
}

/// What a path in a branch currently is.
#[derive(Debug, Clone)]
pub enum Entry {
    File {
        content: Content,
        size: u64,
        mode: u32,
        mtime_ns: i64,
        owner: Option<Owner>,
        /// User xattrs and hard-link group, carried through every change.
        extra: EntryExtra,
    },
    /// A folder and the committed tree behind it (None: created since the last commit).
    Dir { tree: Option<Hash>, mode: u32, mtime_ns: i64, owner: Option<Owner>, extra: EntryExtra },
    /// A symlink, FIFO, socket or device node (committed or made in the branch).
    Special { kind: EntryKind, extra: EntryExtra, mode: u32, mtime_ns: i64, owner: Option<Owner> },
}

impl Entry {
    /// The entry of a committed tree entry.
    fn of_tree_entry(e: TreeEntry) -> Entry {
        match e.kind {
            EntryKind::Dir => Entry::Dir { tree: Some(e.hash), mode: e.mode, mtime_ns: e.mtime_ns, owner: e.owner, extra: e.extra },
            EntryKind::File => Entry::File {
                content: Content::Blob(e.hash),
                size: e.size,
                mode: e.mode,
                mtime_ns: e.mtime_ns,
                owner: e.owner,
                extra: e.extra,
            },
            kind => Entry::Special { kind, extra: e.extra, mode: e.mode, mtime_ns: e.mtime_ns, owner: e.owner },
        }
    }
}

impl Entry {
    /// A file or folder the view layer's branch resolver found (None for
    /// anything else: no branch entry).
    fn of_target(t: Target) -> Option<Entry> {
        Some(match t {
            Target::Dir { tree, mode, mtime_ns, owner, extra, .. } => Entry::Dir { tree, mode, mtime_ns, owner, extra },
            Target::File { entry: e, .. } => Entry::of_tree_entry(e),
            Target::Staged { content, size, mode, mtime_ns, owner, extra, .. } => {
                Entry::File { content, size, mode, mtime_ns, owner, extra }
            }
            _ => return None,
        })
    }
}

/// Write state of one file inode, shared by all its open handles.
pub struct WriteState {
    pub branch: String,
    pub path: String,
    pub base: Arc<BlobReader>,
    pub base_extents: Vec<Extent>,
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: i64,
    pub owner: Option<Owner>,
    /// User xattrs and link group as the file had them when opened (the
    /// staged row's, if newer, wins in `stage_write`).
    pub extra: EntryExtra,
    /// Buffered writes, non-overlapping, by offset.
    pub dirty: BTreeMap<u64, Vec<u8>>,
    pub dirty_bytes: u64,
    /// Buffers handed to the flusher, oldest first, until staged; readers see
    /// them under `dirty` and over `base`.
    pub inflight: VecDeque<Segment>,
    /// Bumped as each in-flight buffer is settled (fsync waits on it).
    pub settled: Arc<Settled>,
    pub handles: usize,
    /// Set when the file was unlinked or replaced while open: its handles keep
    /// reading what they had, and nothing more is staged for it.
    pub orphaned: bool,
    /// The flusher staged this file under its own name only: its other hard
    /// links are brought in step at the next persist (fsync, close).
    pub links_due: bool,
    /// Times were set (the kernel's writeback of mtime/ctime, see `setattr`)
    /// and are stored with the next persist even if no bytes are buffered.
    pub times_due: bool,
}

/// How a read-only open of a branch file reads (`Branches::open_read`).
pub enum ReadOpen {
    /// Through the write state of the handles writing it.
    Writing(Arc<Mutex<WriteState>>),
    /// The archived content, until a writer's state shows up in the cell.
    Following(Arc<FollowCell>),
}

/// A buffer handed to the flusher: written runs by file offset.
pub type Segment = Arc<BTreeMap<u64, Vec<u8>>>;

/// Lay a write over a buffer of non-overlapping runs, merging with
/// overlapping or adjacent runs; `bytes` counts the buffer. Appending to a run
/// extends it in place, so a sequential writer costs one copy per byte.
fn lay(dirty: &mut BTreeMap<u64, Vec<u8>>, bytes: &mut u64, off: u64, data: &[u8]) {
    let end = off + data.len() as u64;
    // The run that starts at or before `off` and reaches it, if any.
    let host = dirty.range(..=off).next_back().filter(|(o, d)| **o + d.len() as u64 >= off).map(|(o, _)| *o);
    let (start, mut buf) = match host.and_then(|o| dirty.remove(&o).map(|d| (o, d))) {
        Some((o, d)) => {
            *bytes -= d.len() as u64;
            (o, d)
        }
        None => (off, Vec::new()),
    };
    let rel = (off - start) as usize;
    if rel == buf.len() {
        // A sequential writer's case: one copy, no zero-fill of the new tail
        // first; a run growing long moves once to a whole-segment buffer,
        // recycled with its pages resident (`SEGMENT_BUFFERS`).
        let need = buf.len() + data.len();
        if buf.capacity() < need && need >= SEGMENT_BUFFER_FROM {
            let mut whole = SEGMENT_BUFFERS.take(SEGMENT_CAPACITY.max(need));
            whole.clear();
            whole.extend_from_slice(&buf);
            buf = whole;
        }
        buf.extend_from_slice(data);
    } else {
        if buf.len() < rel + data.len() {
            buf.resize(rel + data.len(), 0);
        }
        buf[rel..rel + data.len()].copy_from_slice(data);
    }
    // Absorb later runs that the write reaches or overlaps.
    let later: Vec<u64> = dirty.range(off..=end).map(|(o, _)| *o).collect();
    for o in later {
        if let Some(d) = dirty.remove(&o) {
            *bytes -= d.len() as u64;
            let d_end = o + d.len() as u64;
            if d_end > end {
                let keep_from = (end - o) as usize;
                buf.extend_from_slice(&d[keep_from..]);
            }
        }
    }
    *bytes += buf.len() as u64;
    dirty.insert(start, buf);
}

pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl WriteState {
    /// Lay a write over the buffer, merging with overlapping or adjacent runs.
    /// Appending to a run extends it in place, so a sequential writer costs one
    /// copy per byte, not one per flush.
    fn put(&mut self, off: u64, data: &[u8]) {
        // A zero-length write changes nothing, as pwrite on a plain file; merged,
        // it left an empty run in the buffer and, past the end, grew the file.
        if data.is_empty() {
            return;
        }
        lay(&mut self.dirty, &mut self.dirty_bytes, off, data);
        self.size = self.size.max(off + data.len() as u64);
        self.mtime_ns = objects::now_ns();
    }

    /// Hand the buffer to the flusher: it becomes the newest in-flight buffer
    /// (returned, for the flusher to name the segment it stores).
    fn start_segment(&mut self) -> Segment {
        let runs = Arc::new(std::mem::take(&mut self.dirty));
        self.dirty_bytes = 0;
        self.inflight.push_back(runs.clone());
        runs
    }

    /// Take every in-flight buffer back into `dirty` (older under newer), so
    /// a synchronous persist stores them itself; the flusher then finds its
    /// buffer gone and drops its result.
    pub fn absorb_inflight(&mut self) {
        if self.inflight.is_empty() {
            return;
        }
        let mut runs = BTreeMap::new();
        let mut bytes = 0u64;
        for seg in self.inflight.drain(..) {
            for (o, d) in seg.iter() {
                lay(&mut runs, &mut bytes, *o, d);
            }
        }
        for (o, d) in std::mem::take(&mut self.dirty) {
            lay(&mut runs, &mut bytes, o, &d);
        }
        self.dirty = runs;
        self.dirty_bytes = bytes;
        self.settled.bump();
    }

    /// Read through the buffer over the persisted content.
    fn read(&self, off: u64, len: u64) -> FsResult<Vec<u8>> {
        if off >= self.size {
            return Ok(Vec::new());
        }
        let len = len.min(self.size - off);
        let mut out = vec![0u8; len as usize];
        if off < self.base.size {
            let n = ((self.base.size - off).min(len)) as usize;
            let mut done = 0;
            while done < n {
                let r = self.base.read_at(off + done as u64, &mut out[done..n]).map_err(FsError::from)?;
                if r == 0 {
                    break;
                }
                done += r;
            }
        }
        let newest_last = self.inflight.iter().map(|s| &**s).chain(std::iter::once(&self.dirty));
        for (o, d) in newest_last.flat_map(|runs| runs.range(..off + len)) {
            let (a, b) = (*o, *o + d.len() as u64);
            if b <= off {
                continue;
            }
            let s = a.max(off);
            let e = b.min(off + len);
            out[(s - off) as usize..(e - off) as usize].copy_from_slice(&d[(s - a) as usize..(e - a) as usize]);
        }
        Ok(out)
    }
}

/// What the write path needs from the filesystem it is part of: nodes, the
/// archive (read pool and the one writer), and a few answers only the core
/// can give. The core implements it and calls down into `Branches`; this
/// module never names the core, so the dependency runs one way.
pub trait WriteHost: view::Access {
    fn node(&self, ino: u64) -> FsResult<Node>;
    fn inodes(&self) -> &Inodes;
    /// Read metadata, in one read transaction.
    fn with_archive<T>(&self, f: impl FnOnce(&crate::archive::Archive) -> crate::archive::Result<T>) -> FsResult<T>;
    /// Change the staging overlay (or store staged bytes) through the one writer.
    fn with_writer<T>(&self, f: impl FnOnce(&crate::archive::Archive) -> crate::archive::Result<T>) -> FsResult<T>;
    /// Attributes as the core answers `getattr` (a branch root's follow its head).
    fn getattr(&self, ino: u64) -> FsResult<Attr>;
    fn lookup(&self, parent: u64, name: &str) -> FsResult<Attr>;
    /// Forget cached branch heads (a branch was created or removed).
    fn invalidate_heads(&self);
    /// A branch root's mtime: its head commit's time.
    fn branch_root_mtime(&self, branch: &str) -> FsResult<i64>;
}

/// The write path's own state, owned by the core for the life of the mount.
pub struct BranchWrites {
    /// Write state of branch files being written, by inode.
    writes: Mutex<HashMap<u64, Arc<Mutex<WriteState>>>>,
    /// Readers opened while no handle wrote their file (fs/followers.rs).
    followers: Followers,
    read_only: bool,
    /// Access times set by `utimensat`, by (branch, path). The tree format has
    /// no atime, so they live as long as the mount (see README "Writes").
    atimes: Mutex<HashMap<(String, String), i64>>,
    /// Hard-link groups of committed trees, by tree id (see `write_links.rs`).
    link_trees: Mutex<HashMap<Hash, Arc<links::TreeGroups>>>,
    /// Stores full buffers off the request thread (None: `write` stores them).
    flusher: Option<Flusher>,
}

impl BranchWrites {
    pub fn new(read_only: bool) -> BranchWrites {
        BranchWrites {
            writes: Mutex::new(HashMap::new()),
            followers: Followers::default(),
            read_only,
            atimes: Mutex::new(HashMap::new()),
            link_trees: Mutex::new(HashMap::new()),
            flusher: None,
        }
    }

    /// Inodes with open following readers (tests check none is left over).
    #[cfg(test)]
    pub fn followers_open(&self) -> usize {
        self.followers.inodes()
    }

    /// Store full buffers on `flusher`'s thread.
    pub fn with_flusher(mut self, flusher: Flusher) -> BranchWrites {
        self.flusher = Some(flusher);
        self
    }

    /// Branch operations on behalf of `host`, over this state.
    pub fn on<'a, H: WriteHost>(&'a self, host: &'a H) -> Branches<'a, H> {
        Branches {
            host,
            inodes: host.inodes(),
            writes: &self.writes,
            followers: &self.followers,
            read_only: self.read_only,
            atimes: &self.atimes,
            link_trees: &self.link_trees,
            flusher: self.flusher.as_ref(),
        }
    }
}

/// Branch folders and files, for one call: the host's nodes and archive with
/// the write path's state.
pub struct Branches<'a, H: WriteHost> {
    host: &'a H,
    inodes: &'a Inodes,
    writes: &'a Mutex<HashMap<u64, Arc<Mutex<WriteState>>>>,
    followers: &'a Followers,
    read_only: bool,
    atimes: &'a Mutex<HashMap<(String, String), i64>>,
    link_trees: &'a Mutex<HashMap<Hash, Arc<links::TreeGroups>>>,
    flusher: Option<&'a Flusher>,
}

impl<H: WriteHost> Branches<'_, H> {
    fn node(&self, ino: u64) -> FsResult<Node> {
        self.host.node(ino)
    }

    fn with_archive<T>(&self, f: impl FnOnce(&crate::archive::Archive) -> crate::archive::Result<T>) -> FsResult<T> {
        self.host.with_archive(f)
    }

    fn with_writer<T>(&self, f: impl FnOnce(&crate::archive::Archive) -> crate::archive::Result<T>) -> FsResult<T> {
        self.host.with_writer(f)
    }

    fn getattr(&self, ino: u64) -> FsResult<Attr> {
        self.host.getattr(ino)
    }

    fn attr_of(&self, n: &Node) -> Attr {
        Attr::of_node(n)
    }

    /// True for nodes whose content may change (branch files and folders of a
    /// writable mount): everything else is archived content or derived from it.
    pub fn is_mutable(&self, ino: u64) -> bool {
        !self.read_only
            && self
                .node(ino)
                .map(|n| matches!(n.kind, NodeKind::BDir { .. } | NodeKind::BFile { .. } | NodeKind::Branch { .. }))
                .unwrap_or(false)
    }

    /// Resolve a path in a branch through its staging overlay (the view
    /// layer's resolver, walked in one read transaction).
    pub fn branch_entry(&self, branch: &str, path: &str) -> FsResult<Option<Entry>> {
        Ok(view::branch::entry(self.host, branch, path)?.and_then(Entry::of_target))
    }

    fn branch_ctx(node: &Node) -> Option<(String, String)> {
        match &node.kind {
            NodeKind::Branch { name } => Some((name.clone(), String::new())),
            NodeKind::BDir { branch, path } | NodeKind::BFile { branch, path } | NodeKind::BSpecial { branch, path } => {
                Some((branch.clone(), path.clone()))
            }
            _ => None,
        }
    }

    fn entry_node(&self, parent: &Node, name: &str, branch: &str, path: &str, e: &Entry) -> Node {
        match e {
            Entry::Dir { mode, mtime_ns, owner, .. } => self.inodes.child_owned(
                parent,
                name,
                NodeKind::BDir { branch: branch.into(), path: path.into() },
                4096,
                *mode,
                *mtime_ns,
                *owner,
            ),
            Entry::File { size, mode, mtime_ns, owner, extra, .. } if extra.link_group.is_some() => self.inodes.child_linked(
                parent,
                name,
                NodeKind::BFile { branch: branch.into(), path: path.into() },
                (branch, extra.link_group.unwrap_or_default()),
                *size,
                *mode,
                *mtime_ns,
                *owner,
            ),
            Entry::File { size, mode, mtime_ns, owner, .. } => self.inodes.child_owned(
                parent,
                name,
                NodeKind::BFile { branch: branch.into(), path: path.into() },
                *size,
                *mode,
                *mtime_ns,
                *owner,
            ),
            Entry::Special { extra, mode, mtime_ns, owner, .. } => {
                let size = extra.target.as_ref().map_or(0, |t| t.len() as u64);
                let kind = NodeKind::BSpecial { branch: branch.into(), path: path.into() };
                match extra.link_group {
                    Some(g) => self.inodes.child_linked(parent, name, kind, (branch, g), size, *mode, *mtime_ns, *owner),
                    None => self.inodes.child_owned(parent, name, kind, size, *mode, *mtime_ns, *owner),
                }
            }
        }
    }

    /// The node of what the resolver found inside a branch folder (named by
    /// path, so it keeps its inode while written), with its current
    /// attributes. None: not a file or folder of the branch (a slice, `.proxy`).
    pub fn live_node(&self, parent: &Node, name: &str, t: &Target) -> FsResult<Option<Attr>> {
        let live = match t {
            Target::Dir { live: Some(l), .. } | Target::File { live: Some(l), .. } | Target::Staged { live: l, .. } => l,
            _ => return Ok(None),
        };
        let Some(e) = Entry::of_target(t.clone()) else { return Ok(None) };
        let n = self.entry_node(parent, name, &live.branch, &live.path, &e);
        Ok(Some(self.branch_attr(&n)?))
    }

    /// A branch folder node as the resolver's parent for a lookup in it.
    pub fn folder_target(&self, n: &Node) -> FsResult<Target> {
        let Some((branch, path)) = Self::branch_ctx(n) else { return Err(FsError::NotFound) };
        match view::branch::entry(self.host, &branch, &path)? {
            Some(t @ Target::Dir { .. }) => Ok(t),
            Some(_) => Err(FsError::NotDir),
            None => Err(FsError::NotFound),
        }
    }

    /// Current attributes of a branch node (its content may change under it).
    pub fn branch_attr(&self, n: &Node) -> FsResult<Attr> {
        let Some((branch, path)) = Self::branch_ctx(n) else { return Ok(self.attr_of(n)) };
        if let Some(ws) = self.write_state(n.ino) {
            let w = ws.lock().map_err(|_| FsError::Io("poisoned".into()))?;
            return Ok(Attr {
                ino: n.ino,
                kind: NodeType::File,
                size: w.size,
                mode: w.mode,
                mtime_ns: w.mtime_ns,
                ctime_ns: super::attr::ctime_of(w.mtime_ns, &w.extra),
                nlink: self.nlink_of(&branch, w.extra.link_group)?,
                owner: w.owner,
            });
        }
        match self.branch_entry(&branch, &path)? {
            Some(Entry::File { size, mode, mtime_ns, owner, extra, .. }) => {
                let nlink = self.nlink_of(&branch, extra.link_group)?;
                let ctime_ns = super::attr::ctime_of(mtime_ns, &extra);
                Ok(Attr { ino: n.ino, kind: NodeType::File, size, mode, mtime_ns, ctime_ns, nlink, owner })
            }
            Some(Entry::Dir { mode, mtime_ns, owner, extra, .. }) => {
                let mt = if mtime_ns == 0 { self.host.branch_root_mtime(&branch)? } else { mtime_ns };
                let ctime_ns = super::attr::ctime_of(mt, &extra);
                Ok(Attr { ino: n.ino, kind: NodeType::Dir, size: 4096, mode, mtime_ns: mt, ctime_ns, nlink: 2, owner })
            }
            Some(Entry::Special { kind, extra, mode, mtime_ns, owner }) => {
                let size = extra.target.as_ref().map_or(0, |t| t.len() as u64);
                let nlink = self.nlink_of(&branch, extra.link_group)?;
                let ctime_ns = super::attr::ctime_of(mtime_ns, &extra);
                Ok(Attr { ino: n.ino, kind: NodeType::special(kind, &extra), size, mode, mtime_ns, ctime_ns, nlink, owner })
            }
            // A file removed while a process still has it open: `fstat` of the
            // handle works and shows no names left (nlink 0), as POSIX says.
            None if matches!(n.kind, NodeKind::BFile { .. }) => Ok(Attr { nlink: 0, ..self.attr_of(n) }),
            None => Err(FsError::NotFound),
        }
    }

    /// A symlink's target, for `readlink` (EINVAL for anything else, as POSIX says).
    pub fn branch_readlink(&self, n: &Node) -> FsResult<String> {
        let Some((branch, path)) = Self::branch_ctx(n) else { return Err(FsError::Invalid) };
        match self.branch_entry(&branch, &path)? {
            Some(Entry::Special { kind: EntryKind::Symlink, extra, .. }) => extra.target.ok_or(FsError::Invalid),
            Some(_) => Err(FsError::Invalid),
            None => Err(FsError::NotFound),
        }
    }

    /// Make a symlink, FIFO, socket or device node in a branch folder, owned by
    /// `caller` (device nodes: only root may, as mknod(2) says).
    pub fn make_special(
        &self,
        parent: u64,
        name: &str,
        kind: EntryKind,
        extra: EntryExtra,
        mode: u32,
        caller: Option<&Caller>,
    ) -> FsResult<Attr> {
        let (p, branch, dir) = self.writable_dir(parent)?;
        check_name(name)?;
        if matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice) && caller.is_some_and(|c| c.uid != 0) {
            return Err(FsError::NotPermitted);
        }
        let path = join(&dir, name);
        if self.branch_entry(&branch, &path)?.is_some() {
            return Err(FsError::Exists);
        }
        // A symlink's mode is always 0777 (Linux ignores it); the others keep theirs.
        let mode = if kind == EntryKind::Symlink { 0o777 } else { mode & 0o7777 };
        let (owner, mode) = match self.new_owner(&branch, &dir, caller, mode, false)? {
            (o, _) if kind == EntryKind::Symlink => (o, 0o777),
            other => other,
        };
        let now = objects::now_ns();
        let e = Entry::Special { kind, extra: extra.clone(), mode, mtime_ns: now, owner };
        self.with_writer(|a| a.staging().stage(&branch, &path, &Staged::Special { kind, extra, mode, mtime_ns: now, owner }))?;
        self.touch_dir(&branch, &dir)?;
        let n = self.entry_node(&p, name, &branch, &path, &e);
        self.branch_attr(&n)
    }

    /// Listing of a branch folder: committed entries, then the overlay.
    pub fn branch_readdir(&self, p: &Node) -> FsResult<Option<Vec<(String, Attr)>>> {
        let Some((branch, dir)) = Self::branch_ctx(p) else { return Ok(None) };
        let Some(Entry::Dir { tree, .. }) = self.branch_entry(&branch, &dir)? else { return Err(FsError::NotFound) };
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        if let Some(t) = tree {
            for e in self.with_archive(|a| a.list_dir(&t))? {
                entries.insert(e.name.clone(), Entry::of_tree_entry(e));
            }
        }
        for (name, s) in self.with_archive(|a| a.staging().children(&branch, &dir))? {
            match s {
                Staged::Deleted => {
                    entries.remove(&name);
                }
                Staged::File { size, mode, mtime_ns, content, owner, extra } => {
                    entries.insert(name, Entry::File { content, size, mode, mtime_ns, owner, extra });
                }
                Staged::Special { kind, extra, mode, mtime_ns, owner } => {
                    entries.insert(name, Entry::Special { kind, extra, mode, mtime_ns, owner });
                }
                Staged::Dir { mode, mtime_ns, tree, owner, extra } => {
                    let t = tree.or(match entries.get(&name) {
                        Some(Entry::Dir { tree, .. }) => *tree,
                        _ => None,
                    });
                    entries.insert(name, Entry::Dir { tree: t, mode, mtime_ns, owner, extra });
                }
            }
        }
        let mut out = Vec::with_capacity(entries.len());
        for (name, e) in entries {
            let path = join(&dir, &name);
            let n = self.entry_node(p, &name, &branch, &path, &e);
            if let Entry::Special { kind, extra, .. } = &e {
                // The node is named by path; its type comes from the entry.
                let mut a = self.attr_of(&n);
                a.kind = NodeType::special(*kind, extra);
                a.nlink = 1;
                out.push((name, a));
                continue;
            }
            let attr = match self.write_state(n.ino) {
                Some(_) => self.branch_attr(&n)?,
                None => self.attr_of(&n),
            };
            out.push((name, attr));
        }
        Ok(Some(out))
    }

    /// The committed tree behind a branch folder, for hooks keyed by tree (`.proxy`).
    pub fn branch_dir_tree(&self, n: &Node) -> FsResult<Option<Hash>> {
        let Some((branch, path)) = Self::branch_ctx(n) else { return Ok(None) };
        match self.branch_entry(&branch, &path)? {
            Some(Entry::Dir { tree, .. }) => Ok(tree),
            _ => Ok(None),
        }
    }

    /// A branch file's current persisted content (the staging overlay laid
    /// over the committed tree), size, mode, time, owner and extras.
    #[allow(clippy::type_complexity)]
    fn persisted_file(&self, n: &Node) -> FsResult<(Content, u64, u32, i64, Option<Owner>, EntryExtra)> {
        let Some((branch, path)) = Self::branch_ctx(n) else { return Err(FsError::NotFound) };
        match self.branch_entry(&branch, &path)? {
            Some(Entry::File { content, size, mode, mtime_ns, owner, extra }) => Ok((content, size, mode, mtime_ns, owner, extra)),
            _ => Err(FsError::NotFound),
        }
    }

    /// A reader of a branch file's current persisted content, to read it. A
    /// committed file's reader is paged (`Archive::blob_reader_opened`): an open
    /// reads its first extent, not its whole list and every chunk's
    /// location (25 rows for a 100 MiB file, 262,144 for a 1 TiB one, each a
    /// cold catalog page on a large archive); the rest loads in the background.
    pub fn branch_reader(&self, n: &Node) -> FsResult<Arc<BlobReader>> {
        let (content, size, ..) = self.persisted_file(n)?;
        let reader = self.with_archive(|a| match &content {
            Content::Blob(b) => a.blob_reader_opened(b, size),
            Content::Extents(_) => a.extents_reader(Hash([0; 32]), size, &a.staging().content_extents(&content)?),
        })?;
        Ok(Arc::new(reader))
    }

    /// A branch file's current persisted extents and size (a copy's source).
    fn branch_extents(&self, n: &Node) -> FsResult<(Vec<Extent>, u64)> {
        let (content, size, ..) = self.persisted_file(n)?;
        Ok((self.with_archive(|a| a.staging().content_extents(&content))?, size))
    }

    /// An eager reader of a branch file's content (to write it: the write
    /// state keeps its extents), its extents, the file's owner and its xattrs
    /// and link group.
    #[allow(clippy::type_complexity)]
    fn branch_file(&self, n: &Node) -> FsResult<(Arc<BlobReader>, Vec<Extent>, u64, u32, i64, Option<Owner>, EntryExtra)> {
        let (content, size, mode, mtime_ns, owner, extra) = self.persisted_file(n)?;
        let (reader, ext) = self.with_archive(|a| match &content {
            // The reader's list is the extents: one query, not two.
            Content::Blob(b) => {
                let r = a.blob_reader(b)?;
                let ext = r.try_extents()?.iter().map(|e| e.extent).collect();
                Ok((r, ext))
            }
            Content::Extents(_) => {
                let ext = a.staging().content_extents(&content)?;
                Ok((a.extents_reader(Hash([0; 32]), size, &ext)?, ext))
            }
        })?;
        Ok((Arc::new(reader), ext, size, mode, mtime_ns, owner, extra))
    }

    pub fn write_state(&self, ino: u64) -> Option<Arc<Mutex<WriteState>>> {
        self.writes.lock().ok()?.get(&ino).cloned()
    }

    /// A read-only open of a branch file: the inode's write state if a handle
    /// writes it (counted as one of its handles), else a cell through which
    /// the reader follows any writer that opens later (`leave_read` at close).
    pub fn open_read(&self, ino: u64) -> FsResult<ReadOpen> {
        loop {
            let m = self.writes.lock().map_err(|_| FsError::Io("poisoned".into()))?;
            let Some(ws) = m.get(&ino).cloned() else {
                // Joined with the map held: no writer's open falls in between.
                let cell = self.followers.join(ino).ok_or_else(|| FsError::Io("poisoned".into()))?;
                return Ok(ReadOpen::Following(cell));
            };
            // A release locks the state, then the map: never the other way.
            drop(m);
            let mut w = ws.lock().map_err(|_| FsError::Io("poisoned".into()))?;
            if w.handles > 0 {
                w.handles += 1;
                drop(w);
                return Ok(ReadOpen::Writing(ws));
            }
            // Its last handle closed in between (or its opener has yet to
            // count itself): look again rather than join a state that is gone.
            drop(w);
            std::thread::yield_now();
        }
    }

    /// A reader `open_read` gave a cell closes.
    pub fn leave_read(&self, ino: u64) {
        self.followers.leave(ino);
    }

    /// Open for writing: attach (or create) the inode's write state.
    pub fn open_for_write(&self, n: &Node, truncate: bool) -> FsResult<Arc<Mutex<WriteState>>> {
        if self.read_only {
            return Err(FsError::ReadOnly);
        }
        let Some((branch, path)) = Self::branch_ctx(n) else { return Err(FsError::ReadOnly) };
        let mut m = self.writes.lock().map_err(|_| FsError::Io("poisoned".into()))?;
        let ws = match m.get(&n.ino) {
            Some(ws) => ws.clone(),
            None => {
                let (base, ext, size, mode, mtime_ns, owner, extra) = self.branch_file(n)?;
                let ws = Arc::new(Mutex::new(WriteState {
                    branch,
                    path,
                    base,
                    base_extents: ext,
                    size,
                    mode,
                    mtime_ns,
                    owner,
                    extra,
                    dirty: BTreeMap::new(),
                    dirty_bytes: 0,
                    inflight: VecDeque::new(),
                    settled: Arc::new(Settled::default()),
                    handles: 0,
                    orphaned: false,
                    links_due: false,
                    times_due: false,
                }));
                m.insert(n.ino, ws.clone());
                self.followers.writer_opened(n.ino, &ws);
                ws
            }
        };
        drop(m);
        {
            let mut w = ws.lock().map_err(|_| FsError::Io("poisoned".into()))?;
            w.handles += 1;
            if truncate && w.size != 0 {
                w.absorb_inflight();
                w.dirty.clear();
                w.dirty_bytes = 0;
                w.size = 0;
                self.persist(&mut w, true)?;
            }
        }
        Ok(ws)
    }

    /// Write buffered bytes (and any size/mode change) as staged chunks.
    fn persist(&self, w: &mut WriteState, force: bool) -> FsResult<()> {
        w.absorb_inflight();
        if w.orphaned {
            return Ok(());
        }
        if w.dirty.is_empty() && !force && !w.times_due {
            if std::mem::take(&mut w.links_due) {
                self.sync_link_group(&w.branch, &w.path)?;
            }
            return Ok(());
        }
        let writes: Vec<(u64, &[u8])> = w.dirty.iter().map(|(o, d)| (*o, d.as_slice())).collect();
        let (branch, path, size, mode, mtime, owner) = (w.branch.clone(), w.path.clone(), w.size, w.mode, w.mtime_ns, w.owner);
        let base_ext = w.base_extents.clone();
        let extra = w.extra.clone();
        let id =
            self.with_writer(|a| a.stage_write(&branch, &path, &base_ext, &writes, size, mode, mtime, owner, &extra)).map_err(|e| {
                log::error!("{branch}/{path}: cannot store written data: {e:?}");
                e
            })?;
        if extra.link_group.is_some() {
            self.sync_link_group(&branch, &path)?;
        }
        w.links_due = false;
        w.times_due = false;
        // Through the writer: the extent list was just written on its connection.
        let (ext, reader) = self.with_writer(|a| {
            let ext = a.staging().extents(id)?;
            let r = a.extents_reader(Hash([0; 32]), size, &ext)?;
            Ok((ext, r))
        })?;
        w.base_extents = ext;
        w.base = Arc::new(reader);
        w.dirty.clear();
        w.dirty_bytes = 0;
        Ok(())
    }

    pub fn write(&self, ws: &Arc<Mutex<WriteState>>, off: u64, data: &[u8]) -> FsResult<u32> {
        // The kernel checks offsets against the mount's maximum file size; this
        // is the same rule for callers that are not the kernel.
        if off.checked_add(data.len() as u64).is_none_or(|end| end > MAX_FILE_SIZE) {
            return Err(FsError::TooBig);
        }
        let mut w = ws.lock().map_err(|_| FsError::Io("poisoned".into()))?;
        w.put(off, data);
        if w.dirty_bytes >= FLUSH_BYTES {
            match self.flusher {
                Some(f) if !w.orphaned => {
                    let seg = w.start_segment();
                    // Queue without the file's lock: the flusher needs it to
                    // finish the segment ahead, and a full queue waits for that.
                    drop(w);
                    if !f.submit(ws.clone(), seg) {
                        let mut w = ws.lock().map_err(|_| FsError::Io("poisoned".into()))?;
                        self.persist(&mut w, false)?;
                    }
                }
                _ => self.persist(&mut w, false)?,
            }
        }
        Ok(data.len() as u32)
    }

    /// The file's lock once no buffer of it is in flight: fsync and close
    /// wait here for the flusher rather than storing its buffers a second time.
    fn settled_lock<'w>(&self, ws: &'w Arc<Mutex<WriteState>>) -> FsResult<std::sync::MutexGuard<'w, WriteState>> {
        loop {
            let w = ws.lock().map_err(|_| FsError::Io("poisoned".into()))?;
            if w.inflight.is_empty() {
                return Ok(w);
            }
            let settled = w.settled.clone();
            let seen = settled.generation();
            drop(w);
            settled.wait_past(seen);
        }
    }

    pub fn read_ws(&self, ws: &Arc<Mutex<WriteState>>, off: u64, len: u64) -> FsResult<Vec<u8>> {
        ws.lock().map_err(|_| FsError::Io("poisoned".into()))?.read(off, len)
    }

    /// fsync / flush: make buffered writes durable.
    pub fn flush_ws(&self, ws: &Arc<Mutex<WriteState>>) -> FsResult<()> {
        let mut w = self.settled_lock(ws)?;
        self.persist(&mut w, false)
    }

    /// Close of a write handle: persist, and drop the state with the last handle.
    pub fn release_ws(&self, ino: u64, ws: &Arc<Mutex<WriteState>>) -> FsResult<()> {
        let res = {
            let mut w = self.settled_lock(ws)?;
            let r = self.persist(&mut w, false);
            w.handles = w.handles.saturating_sub(1);
            if w.handles == 0 {
                if let Ok(mut m) = self.writes.lock() {
                    // Only this state: a handle that joined it as it closed
                    // must not take a newer writer's state with it.
                    if m.get(&ino).is_some_and(|cur| Arc::ptr_eq(cur, ws)) {
                        m.remove(&ino);
                    }
                    if m.is_empty() {
                        SEGMENT_BUFFERS.trim();
                    }
                }
            }
            r
        };
        res
    }

    /// A file was unlinked or replaced: detach any write state from its path.
    fn orphan(&self, branch: &str, path: &str) {
        if let Ok(mut m) = self.writes.lock() {
            let inos: Vec<u64> = m
                .iter()
                .filter(|(_, ws)| ws.lock().map(|w| w.branch == branch && w.path == path).unwrap_or(false))
                .map(|(i, _)| *i)
                .collect();
            for i in inos {
                if let Some(ws) = m.remove(&i) {
                    if let Ok(mut w) = ws.lock() {
                        w.orphaned = true;
                    }
                }
            }
        }
    }

    fn writable_dir(&self, parent: u64) -> FsResult<(Node, String, String)> {
        let p = self.node(parent)?;
        if self.read_only {
            return Err(FsError::ReadOnly);
        }
        match Self::branch_ctx(&p) {
            Some((b, d)) if !matches!(p.kind, NodeKind::BFile { .. } | NodeKind::BSpecial { .. }) => Ok((p, b, d)),
            _ => Err(FsError::ReadOnly),
        }
    }

    /// Create a file owned by `caller` (None: owner not recorded).
    pub fn create_as(&self, parent: u64, name: &str, mode: u32, caller: Option<&Caller>) -> FsResult<(Attr, Arc<Mutex<WriteState>>)> {
        let (p, branch, dir) = self.writable_dir(parent)?;
        check_name(name)?;
        let path = join(&dir, name);
        if let Some(Entry::Dir { .. }) = self.branch_entry(&branch, &path)? {
            return Err(FsError::IsDir);
        }
        let (owner, mode) = self.new_owner(&branch, &dir, caller, mode & 0o7777, false)?;
        let now = objects::now_ns();
        self.with_writer(|a| a.stage_write(&branch, &path, &[], &[], 0, mode, now, owner, &EntryExtra::default()))?;
        self.touch_dir(&branch, &dir)?;
        let n = self.inodes.child_owned(&p, name, NodeKind::BFile { branch, path }, 0, mode, now, owner);
        if let Ok(mut m) = self.writes.lock() {
            m.remove(&n.ino);
        }
        let ws = self.open_for_write(&n, false)?;
        Ok((self.branch_attr(&n)?, ws))
    }

    /// Owner and mode of a new entry in folder `dir` of `branch` (see `owners::new_entry`).
    fn new_owner(&self, branch: &str, dir: &str, caller: Option<&Caller>, mode: u32, is_dir: bool) -> FsResult<(Option<Owner>, u32)> {
        let Some(caller) = caller else { return Ok((None, mode)) };
        let (pmode, powner) = match self.branch_entry(branch, dir)? {
            Some(Entry::Dir { mode, owner, .. }) => (mode, owner),
            _ => return Err(FsError::NotFound),
        };
        let (owner, mode) = owners::new_entry(caller, pmode, powner, mode, is_dir);
        Ok((Some(owner), mode))
    }

    /// Make a folder owned by `caller` (None: owner not recorded).
    pub fn mkdir_as(&self, parent: u64, name: &str, mode: u32, caller: Option<&Caller>) -> FsResult<Attr> {
        let p = self.node(parent)?;
        if matches!(p.kind, NodeKind::Root) {
            return self.mkdir_branch(name);
        }
        let (p, branch, dir) = self.writable_dir(parent)?;
        check_name(name)?;
        let path = join(&dir, name);
        if self.branch_entry(&branch, &path)?.is_some() {
            return Err(FsError::Exists);
        }
        let (owner, mode) = self.new_owner(&branch, &dir, caller, mode & 0o7777, true)?;
        let now = objects::now_ns();
        let s = Staged::Dir { mode, mtime_ns: now, tree: None, owner, extra: EntryExtra::default() };
        self.with_writer(|a| a.staging().stage(&branch, &path, &s))?;
        self.touch_dir(&branch, &dir)?;
        let n = self.inodes.child_owned(&p, name, NodeKind::BDir { branch, path }, 4096, mode, now, owner);
        self.branch_attr(&n)
    }

    pub fn unlink(&self, parent: u64, name: &str) -> FsResult<()> {
        let (_, branch, dir) = self.writable_dir(parent)?;
        let path = join(&dir, name);
        match self.branch_entry(&branch, &path)? {
            Some(e @ Entry::File { .. }) => {
                // Another name of the file keeps its inode and open handles.
                let kept = self.link_name_gone(&branch, &path, links::group_of(&e))?;
                if kept.is_none() {
                    self.orphan(&branch, &path);
                }
                self.move_atimes(&branch, &path, None);
                self.with_writer(|a| a.staging().stage(&branch, &path, &Staged::Deleted))?;
                if let Some(other) = kept {
                    self.link_count_changed(&branch, &other)?;
                }
            }
            Some(e @ Entry::Special { .. }) => {
                let kept = self.link_name_gone(&branch, &path, links::group_of(&e))?;
                self.move_atimes(&branch, &path, None);
                self.with_writer(|a| a.staging().stage(&branch, &path, &Staged::Deleted))?;
                if let Some(other) = kept {
                    self.link_count_changed(&branch, &other)?;
                }
            }
            Some(Entry::Dir { .. }) => return Err(FsError::IsDir),
            None => return Err(FsError::NotFound),
        }
        self.touch_dir(&branch, &dir)
    }

    pub fn rmdir(&self, parent: u64, name: &str) -> FsResult<()> {
        let p = self.node(parent)?;
        if matches!(p.kind, NodeKind::Root) {
            return self.rmdir_branch(name);
        }
        let (p, branch, dir) = self.writable_dir(parent)?;
        let path = join(&dir, name);
        match self.branch_entry(&branch, &path)? {
            Some(Entry::Dir { .. }) => {}
            Some(Entry::File { .. } | Entry::Special { .. }) => return Err(FsError::NotDir),
            None => return Err(FsError::NotFound),
        }
        let child = self.inodes.child(&p, name, NodeKind::BDir { branch: branch.clone(), path: path.clone() }, 4096, 0o755, 0);
        if !self.branch_readdir(&child)?.unwrap_or_default().is_empty() {
            return Err(FsError::NotEmpty);
        }
        self.move_atimes(&branch, &path, None);
        // One write transaction: readers see the folder and everything below it go at once.
        self.with_writer(|a| {
            a.catalog.write(|c| {
                let staging = crate::archive::staging::Staging::new(c);
                staging.unstage_below(&branch, &path)?;
                staging.stage(&branch, &path, &Staged::Deleted)
            })
        })?;
        self.touch_dir(&branch, &dir)
    }

    pub fn rename(&self, parent: u64, name: &str, newparent: u64, newname: &str) -> FsResult<()> {
        let (_, branch, dir) = self.writable_dir(parent)?;
        let (np, nbranch, ndir) = self.writable_dir(newparent)?;
        // `.proxy` and `@` slices are derived views that exist beside the
        // branch's files without being entries of it: moving one away or
        // over one is a change to something read-only, not a missing file.
        if is_derived_name(newname) {
            return Err(FsError::ReadOnly);
        }
        if branch != nbranch {
            return Err(FsError::CrossDevice);
        }
        check_name(newname)?;
        let from = join(&dir, name);
        let to = join(&ndir, newname);
        if from == to {
            return Ok(());
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(FsError::Invalid);
        }
        let src = match self.branch_entry(&branch, &from)? {
            Some(e) => e,
            // A name the branch does not hold (an ingested file may be called
            // like a slice, and then it moves like any file).
            None if is_derived_name(name) => return Err(FsError::ReadOnly),
            None => return Err(FsError::NotFound),
        };
        let dst = self.branch_entry(&branch, &to)?;
        // POSIX: two names of one file: rename does nothing and succeeds.
        if links::group_of(&src).is_some() && dst.as_ref().and_then(links::group_of) == links::group_of(&src) {
            return Ok(());
        }
        match (&src, &dst) {
            (Entry::File { .. } | Entry::Special { .. }, Some(Entry::Dir { .. })) => return Err(FsError::IsDir),
            (Entry::Dir { .. }, Some(Entry::File { .. } | Entry::Special { .. })) => return Err(FsError::NotDir),
            // POSIX: a folder replaces only an empty folder. Replacing a full
            // one would drop everything inside it without a single unlink.
            (Entry::Dir { .. }, Some(Entry::Dir { .. })) => {
                let target = self.inodes.child(&np, newname, NodeKind::BDir { branch: branch.clone(), path: to.clone() }, 4096, 0o755, 0);
                if !self.branch_readdir(&target)?.unwrap_or_default().is_empty() {
                    return Err(FsError::NotEmpty);
                }
            }
            _ => {}
        }
        // Flush a file being written so its staged content moves with it.
        for ws in self.writes.lock().map(|m| m.values().cloned().collect::<Vec<_>>()).unwrap_or_default() {
            if let Ok(mut w) = ws.lock() {
                if w.branch == branch && (w.path == from || w.path.starts_with(&format!("{from}/"))) {
                    self.persist(&mut w, false)?;
                    w.path = format!("{to}{}", &w.path[from.len()..]);
                }
            }
        }
        let mut src = self.branch_entry(&branch, &from)?.ok_or(FsError::NotFound)?;
        // A rename changes the entry's ctime (as ext4 and tmpfs do; `make` and
        // backup tools look at it).
        match &mut src {
            Entry::File { extra, .. } | Entry::Dir { extra, .. } | Entry::Special { extra, .. } => extra.ctime_ns = Some(objects::now_ns()),
        }
        // The replaced name: another name of its file keeps its inode and handles.
        let kept = match &dst {
            Some(d @ (Entry::File { .. } | Entry::Special { .. })) => self.link_name_gone(&branch, &to, links::group_of(d))?,
            _ => None,
        };
        if matches!(dst, Some(Entry::File { .. })) && kept.is_none() {
            self.orphan(&branch, &to);
        }
        // One write transaction: readers see the whole move or none of it.
        self.with_writer(|a| {
            a.catalog.write(|c| {
                let staging = crate::archive::staging::Staging::new(c);
                match &src {
                    Entry::File { content, size, mode, mtime_ns, owner, extra } => {
                        let s = Staged::File {
                            size: *size,
                            mode: *mode,
                            mtime_ns: *mtime_ns,
                            content: content.clone(),
                            owner: *owner,
                            extra: extra.clone(),
                        };
                        staging.stage(&branch, &to, &s)?;
                    }
                    Entry::Special { kind, extra, mode, mtime_ns, owner } => {
                        let s = Staged::Special { kind: *kind, extra: extra.clone(), mode: *mode, mtime_ns: *mtime_ns, owner: *owner };
                        staging.stage(&branch, &to, &s)?;
                    }
                    Entry::Dir { tree, mode, mtime_ns, owner, extra } => {
                        staging.unstage_below(&branch, &to)?;
                        // Move staged rows under the folder along with it.
                        let rows = staging.rows(&branch)?;
                        for (p, s) in rows {
                            if let Some(rest) = p.strip_prefix(&format!("{from}/")) {
                                staging.stage(&branch, &join(&to, rest), &s)?;
                            }
                        }
                        let s = Staged::Dir { mode: *mode, mtime_ns: *mtime_ns, tree: *tree, owner: *owner, extra: extra.clone() };
                        staging.stage(&branch, &to, &s)?;
                    }
                }
                staging.unstage_below(&branch, &from)?;
                staging.stage(&branch, &from, &Staged::Deleted)
            })
        })?;
        self.inodes.rename_branch_path(parent, name, &np, newname, &branch, &from, &to);
        if let Some(other) = kept {
            self.link_count_changed(&branch, &other)?;
        }
        // A renamed name of a hard-linked file: the file's ctime moved for all its names.
        self.sync_link_group(&branch, &to)?;
        self.move_atimes(&branch, &to, None);
        self.move_atimes(&branch, &from, Some(&to));
        self.touch_dir(&branch, &dir)?;
        if ndir != dir {
            self.touch_dir(&branch, &ndir)?;
        }
        Ok(())
    }

    /// `utimensat` of the access time: kept for the life of the mount for
    /// branch files and folders; elsewhere (archived, read-only) ignored, as
    /// a `noatime` mount does.
    pub fn set_atime(&self, ino: u64, atime_ns: i64) -> FsResult<()> {
        let n = self.node(ino)?;
        let Some((branch, path)) = Self::branch_ctx(&n) else { return Ok(()) };
        if self.read_only {
            return Err(FsError::ReadOnly);
        }
        self.atimes.lock().map_err(|_| FsError::Io("poisoned".into()))?.insert((branch, path), atime_ns);
        Ok(())
    }

    /// The access time set for a node, if one was.
    pub fn atime_ns(&self, ino: u64) -> Option<i64> {
        let n = self.node(ino).ok()?;
        let (branch, path) = Self::branch_ctx(&n)?;
        self.atimes.lock().ok()?.get(&(branch, path)).copied()
    }

    /// Access times follow a rename (of a file, or of a folder and all below it)
    /// and go with an unlink.
    fn move_atimes(&self, branch: &str, from: &str, to: Option<&str>) {
        let Ok(mut m) = self.atimes.lock() else { return };
        let below = format!("{from}/");
        let keys: Vec<(String, String)> = m.keys().filter(|(b, p)| b == branch && (p == from || p.starts_with(&below))).cloned().collect();
        for k in keys {
            if let Some(t) = m.remove(&k) {
                if let Some(to) = to {
                    m.insert((k.0.clone(), format!("{to}{}", &k.1[from.len()..])), t);
                }
            }
        }
    }

    /// fallocate on a branch file. Holes are zero runs (one extent, no chunk),
    /// so both extending and punching cost a few catalog rows whatever the length.
    pub fn fallocate(&self, ino: u64, offset: u64, length: u64, mode: Falloc) -> FsResult<()> {
        if length == 0 {
            return Err(FsError::Invalid);
        }
        let end = offset.checked_add(length).filter(|e| *e <= MAX_FILE_SIZE).ok_or(FsError::TooBig)?;
        let n = self.node(ino)?;
        match n.kind {
            NodeKind::BFile { .. } => {}
            NodeKind::BDir { .. } | NodeKind::Branch { .. } => return Err(FsError::IsDir),
            _ => return Err(FsError::ReadOnly),
        }
        let ws = self.open_for_write(&n, false)?;
        let res = (|| {
            let mut w = ws.lock().map_err(|_| FsError::Io("poisoned".into()))?;
            // Buffered writes first, so the extents below are the whole truth.
            self.persist(&mut w, false)?;
            match mode {
                Falloc::KeepSize => {}
                Falloc::Extend => {
                    if end > w.size {
                        w.size = end;
                        w.mtime_ns = objects::now_ns();
                        self.persist(&mut w, true)?;
                    }
                }
                Falloc::PunchHole => {
                    if offset < w.size {
                        let len = length.min(w.size - offset);
                        w.base_extents = splice(&w.base_extents, &[Extent::zeros(offset, len)], w.size);
                        w.mtime_ns = objects::now_ns();
                        self.persist(&mut w, true)?;
                    }
                }
            }
            Ok(())
        })();
        self.release_ws(ino, &ws)?;
        res
    }

    /// copy_file_range into a branch file: the destination's new extent list
    /// points at the source's chunks, so a copy of any size stores no bytes.
    /// The source may be any file of the mount with archived content (a
    /// branch file, or an archived file of a read-only view).
    pub fn copy_range(&self, ino_in: u64, off_in: u64, ino_out: u64, off_out: u64, len: u64) -> FsResult<u64> {
        let src = self.node(ino_in)?;
        let dst = self.node(ino_out)?;
        if !matches!(dst.kind, NodeKind::BFile { .. }) {
            return Err(if matches!(dst.kind, NodeKind::BDir { .. } | NodeKind::Branch { .. }) {
                FsError::IsDir
            } else {
                FsError::ReadOnly
            });
        }
        let (src_ext, src_size) = match &src.kind {
            NodeKind::BFile { .. } => match self.write_state(ino_in) {
                Some(ws) => {
                    let mut w = ws.lock().map_err(|_| FsError::Io("poisoned".into()))?;
                    self.persist(&mut w, false)?;
                    (w.base_extents.clone(), w.size)
                }
                None => self.branch_extents(&src)?,
            },
            NodeKind::File { blob } => (self.with_archive(|a| a.catalog.extents(blob))?, src.size),
            NodeKind::BDir { .. } | NodeKind::Branch { .. } | NodeKind::Dir { .. } => return Err(FsError::IsDir),
            // Slices and proxies are not stored as extents of their own.
            _ => return Err(FsError::NotSupported),
        };
        if off_in >= src_size {
            return Ok(0);
        }
        let len = len.min(src_size - off_in);
        let end = off_out.checked_add(len).filter(|e| *e <= MAX_FILE_SIZE).ok_or(FsError::TooBig)?;
        let pieces = extents_moved(&src_ext, off_in, len, off_out);
        let ws = self.open_for_write(&dst, false)?;
        let res = (|| {
            let mut w = ws.lock().map_err(|_| FsError::Io("poisoned".into()))?;
            self.persist(&mut w, false)?;
            let size = w.size.max(end);
            w.base_extents = splice(&w.base_extents, &pieces, size);
            w.size = size;
            w.mtime_ns = objects::now_ns();
            self.persist(&mut w, true)?;
            Ok(len)
        })();
        self.release_ws(ino_out, &ws)?;
        res
    }

    /// chmod / truncate / utimens.
    pub fn setattr(&self, ino: u64, mode: Option<u32>, size: Option<u64>, mtime_ns: Option<i64>) -> FsResult<Attr> {
        self.setattr_at(ino, mode, size, mtime_ns, None)
    }

    /// `setattr` with the change time the kernel gives (None: now). Under
    /// writeback caching the kernel keeps a file's ctime itself and shows its
    /// own, so the one stored must be that one, or a remount shows another.
    pub fn setattr_at(
        &self,
        ino: u64,
        mode: Option<u32>,
        size: Option<u64>,
        mtime_ns: Option<i64>,
        ctime_ns: Option<i64>,
    ) -> FsResult<Attr> {
        let n = self.node(ino)?;
        let Some((branch, path)) = Self::branch_ctx(&n) else {
            return if mode.is_none() && size.is_none() && mtime_ns.is_none() { self.getattr(ino) } else { Err(FsError::ReadOnly) };
        };
        if self.read_only {
            return Err(FsError::ReadOnly);
        }
        if mode.is_none() && size.is_none() && mtime_ns.is_none() && ctime_ns.is_none() {
            return self.getattr(ino);
        }
        let ctime = ctime_ns.unwrap_or_else(objects::now_ns);
        if size.is_some_and(|s| s > MAX_FILE_SIZE) {
            return Err(FsError::TooBig);
        }
        // With writeback caching the kernel owns a written file's mtime and
        // ctime and sends them here each time it writes the inode back: during
        // a long copy on every writeback pass, at close before the flush, and
        // after an unlink or rename of an open file (the ctime moved). On a
        // file being written they are kept with its buffered bytes and stored
        // with them (fsync, close), not stored alone on the request thread.
        let times_only = mode.is_none() && size.is_none();
        if times_only && matches!(n.kind, NodeKind::BFile { .. }) {
            if let Some(ws) = self.write_state(ino) {
                {
                    let mut w = ws.lock().map_err(|_| FsError::Io("poisoned".into()))?;
                    if let Some(t) = mtime_ns {
                        w.mtime_ns = t;
                    }
                    w.extra.ctime_ns = Some(ctime);
                    w.times_due = true;
                }
                return self.branch_attr(&n);
            }
        }
        match self.branch_entry(&branch, &path)? {
            Some(Entry::Dir { tree, mode: m0, mtime_ns: t0, owner, mut extra }) => {
                if size.is_some() {
                    return Err(FsError::IsDir);
                }
                extra.ctime_ns = Some(ctime);
                if path.is_empty() {
                    return self.getattr(ino); // a branch root's attributes follow its head
                }
                let s = Staged::Dir { mode: mode.map(|m| m & 0o7777).unwrap_or(m0), mtime_ns: mtime_ns.unwrap_or(t0), tree, owner, extra };
                self.with_writer(|a| a.staging().stage(&branch, &path, &s))?;
            }
            // Times alone (utimensat, or the kernel writing back the times it
            // keeps after a setxattr, link or rename): the entry is staged
            // with its content as it is, so an archived file stays its blob
            // (hash and all) instead of becoming written extents.
            Some(Entry::File { content, size: s0, mode: m0, mtime_ns: t0, owner, mut extra }) if times_only => {
                extra.ctime_ns = Some(ctime);
                let s = Staged::File { size: s0, mode: m0, mtime_ns: mtime_ns.unwrap_or(t0), content, owner, extra };
                self.with_writer(|a| a.staging().stage(&branch, &path, &s))?;
                self.sync_link_group(&branch, &path)?;
            }
            Some(Entry::File { .. }) => {
                let ws = self.open_for_write(&n, false)?;
                {
                    let mut w = ws.lock().map_err(|_| FsError::Io("poisoned".into()))?;
                    w.extra.ctime_ns = Some(ctime);
                    if let Some(m) = mode {
                        w.mode = m & 0o7777;
                    }
                    if let Some(s) = size {
                        w.absorb_inflight();
                        // Drop buffered bytes past the new end; the persisted part is cut by stage_write.
                        let keep: Vec<(u64, Vec<u8>)> = std::mem::take(&mut w.dirty)
                            .into_iter()
                            .filter(|(o, _)| *o < s)
                            .map(|(o, mut d)| {
                                d.truncate((s - o).min(d.len() as u64) as usize);
                                (o, d)
                            })
                            .collect();
                        w.dirty_bytes = keep.iter().map(|(_, d)| d.len() as u64).sum();
                        w.dirty = keep.into_iter().collect();
                        w.size = s;
                        w.mtime_ns = objects::now_ns();
                    }
                    if let Some(t) = mtime_ns {
                        w.mtime_ns = t;
                    }
                    self.persist(&mut w, true)?;
                }
                self.release_ws(ino, &ws)?;
            }
            Some(Entry::Special { kind, mut extra, mode: m0, mtime_ns: t0, owner }) => {
                if size.is_some() {
                    return Err(FsError::Invalid);
                }
                extra.ctime_ns = Some(ctime);
                // A symlink's mode stays 0777 (lchmod is not a Linux call).
                let mode = if kind == EntryKind::Symlink { m0 } else { mode.map(|m| m & 0o7777).unwrap_or(m0) };
                let s = Staged::Special { kind, extra, mode, mtime_ns: mtime_ns.unwrap_or(t0), owner };
                self.with_writer(|a| a.staging().stage(&branch, &path, &s))?;
                self.sync_link_group(&branch, &path)?;
            }
            // A removed file still open (its name gone, nlink 0) has times the
            // kernel writes back like any other's: they have nowhere to be
            // stored and the handle keeps working, so they are accepted.
            None if times_only && matches!(n.kind, NodeKind::BFile { .. }) => return self.branch_attr(&n),
            None => return Err(FsError::NotFound),
        }
        self.getattr(ino)
    }

    /// chown/chgrp by `caller` (`None` leaves that id as it is), by the POSIX
    /// rules in `owners::chowned`. A file that is not a folder loses setuid and
    /// setgid as on Linux. Staged like a chmod: committed with the next commit,
    /// and a change `reelfs diff` reports.
    pub fn chown(&self, ino: u64, uid: Option<u32>, gid: Option<u32>, caller: &Caller) -> FsResult<Attr> {
        self.chown_at(ino, uid, gid, caller, None)
    }

    /// `chown` with the change time the kernel gives (None: now; see `setattr_at`).
    pub fn chown_at(&self, ino: u64, uid: Option<u32>, gid: Option<u32>, caller: &Caller, ctime_ns: Option<i64>) -> FsResult<Attr> {
        let n = self.node(ino)?;
        let Some((branch, path)) = Self::branch_ctx(&n) else {
            return if uid.is_none() && gid.is_none() { self.getattr(ino) } else { Err(FsError::ReadOnly) };
        };
        if self.read_only {
            return Err(FsError::ReadOnly);
        }
        if uid.is_none() && gid.is_none() {
            return self.getattr(ino);
        }
        match self.branch_entry(&branch, &path)? {
            // A branch root is no tree entry: it has no owner to store.
            Some(Entry::Dir { .. }) if path.is_empty() => return Err(FsError::NotPermitted),
            Some(Entry::Dir { tree, mode, mtime_ns, owner, mut extra }) => {
                let new = owners::chowned(caller, owner.unwrap_or_else(owners::mount_owner), uid, gid)?;
                extra.ctime_ns = Some(ctime_ns.unwrap_or_else(objects::now_ns));
                let s = Staged::Dir { mode: owners::mode_after_chown(mode, true), mtime_ns, tree, owner: Some(new), extra };
                self.with_writer(|a| a.staging().stage(&branch, &path, &s))?;
            }
            Some(Entry::File { .. }) => {
                let ws = self.open_for_write(&n, false)?;
                let res = (|| {
                    let mut w = ws.lock().map_err(|_| FsError::Io("poisoned".into()))?;
                    let new = owners::chowned(caller, w.owner.unwrap_or_else(owners::mount_owner), uid, gid)?;
                    w.owner = Some(new);
                    w.mode = owners::mode_after_chown(w.mode, false);
                    w.extra.ctime_ns = Some(ctime_ns.unwrap_or_else(objects::now_ns));
                    self.persist(&mut w, true)
                })();
                self.release_ws(ino, &ws)?;
                res?;
            }
            Some(Entry::Special { kind, mut extra, mode, mtime_ns, owner }) => {
                let new = owners::chowned(caller, owner.unwrap_or_else(owners::mount_owner), uid, gid)?;
                extra.ctime_ns = Some(ctime_ns.unwrap_or_else(objects::now_ns));
                let mode = if kind == EntryKind::Symlink { mode } else { owners::mode_after_chown(mode, false) };
                let s = Staged::Special { kind, extra, mode, mtime_ns, owner: Some(new) };
                self.with_writer(|a| a.staging().stage(&branch, &path, &s))?;
                self.sync_link_group(&branch, &path)?;
            }
            None => return Err(FsError::NotFound),
        }
        self.getattr(ino)
    }

    fn mkdir_branch(&self, name: &str) -> FsResult<Attr> {
        if self.read_only {
            return Err(FsError::ReadOnly);
        }
        if !objects::valid_branch_name(name) {
            return Err(FsError::Invalid);
        }
        let root = self.with_archive(|a| Ok(a.root().to_path_buf()))?;
        let mut w = crate::archive::Archive::open_writer(&root).map_err(FsError::from)?;
        let from = if w.branches().map_err(FsError::from)?.iter().any(|(n, _)| n == "main") { Some("main") } else { None };
        w.create_branch(name, from).map_err(|e| match e {
            crate::archive::ArchiveError::BranchExists(_) => FsError::Exists,
            e => FsError::from(e),
        })?;
        drop(w);
        self.host.invalidate_heads();
        self.host.lookup(ROOT_INO, name)
    }

    fn rmdir_branch(&self, name: &str) -> FsResult<()> {
        if self.read_only {
            return Err(FsError::ReadOnly);
        }
        let has = self.with_archive(|a| a.staging().has_changes(name))?;
        if has {
            return Err(FsError::NotEmpty);
        }
        let root = self.with_archive(|a| Ok(a.root().to_path_buf()))?;
        let mut w = crate::archive::Archive::open_writer(&root).map_err(FsError::from)?;
        w.delete_branch(name).map_err(|e| match e {
            crate::archive::ArchiveError::NoSuchBranch(_) => FsError::NotFound,
            e => FsError::from(e),
        })?;
        self.host.invalidate_heads();
        Ok(())
    }
}

fn check_name(name: &str) -> FsResult<()> {
    if name.len() > NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(FsError::Invalid);
    }
    // `@` names are slices and `.proxy` is the proxy namespace: refuse to shadow them.
    if name == ".proxy" || crate::timecode::SliceSpec::parse_name(name).is_some() {
        return Err(FsError::Invalid);
    }
    Ok(())
}

/// `.proxy` or a slice name (`clip.mov@IN-OUT`): served by the mount, never stored in a branch.
fn is_derived_name(name: &str) -> bool {
    name == ".proxy" || crate::timecode::SliceSpec::parse_name(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(o: u64, l: u64, c: u8, co: u64) -> Extent {
        Extent { file_offset: o, length: l, chunk: Hash([c; 32]), chunk_offset: co }
    }

    #[test]
    fn extents_moved_cuts_at_both_ends_and_keeps_chunk_offsets() {
        let src = vec![ext(0, 100, 1, 0), Extent::zeros(100, 50), ext(150, 100, 2, 7)];
        // [90, 170) moved to 1000: the tail of chunk 1, the zero run, the head of chunk 2.
        assert_eq!(extents_moved(&src, 90, 80, 1000), vec![ext(1000, 10, 1, 90), Extent::zeros(1010, 50), ext(1060, 20, 2, 7)]);
        // A range inside one extent, and one touching nothing.
        assert_eq!(extents_moved(&src, 160, 5, 0), vec![ext(0, 5, 2, 17)]);
        assert_eq!(extents_moved(&src, 250, 10, 0), vec![]);
    }
}

#[cfg(test)]
#[path = "write_state_tests.rs"]
mod write_state_tests;

#[path = "write_xattrs.rs"]
mod xattrs;

#[path = "write_times.rs"]
mod times;

#[path = "write_links.rs"]
mod links;
