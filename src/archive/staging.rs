//! The staging overlay: uncommitted changes made through a writable mount.
//!
//! A branch's visible tree is its head commit's tree with the staging rows of
//! that branch laid over it. Written bytes become chunks in packs at once (so
//! they are durable at fsync/close), and a changed file's content is a staged
//! extent list that reuses every untouched chunk of the old content: a 4 KB
//! write into a 100 GB file stores one small chunk, not a copy.
//! `reelfs commit` turns the overlay into a commit; until then nothing of it
//! is in any tree, and other branches never see it.

use super::catalog::Catalog;
pub use super::catalog::{Content, Staged, STAGING_SCHEMA};
use super::error::{ArchiveError, Result};
use super::objects::{self, BlobRecord, EntryExtra, EntryKind, Extent, Hash, Owner, RecordKind, RefRecord, Tree, TreeEntry};
use super::pack_writer::PackWriter;
use super::read::{BlobReader, ChunkStore, ResolvedExtent};
use super::repo::{make_commit, Archive};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The staging overlay of an archive's branches: what each branch's visible
/// tree changes relative to its head commit. It needs only a catalog
/// connection, so the mount reads it through any connection of its read pool
/// (as mountpoint-s3's filesystem reads its `Metablock`) and writes it through
/// its one writer. Storing bytes (`Archive::stage_write`) and turning the
/// overlay into a commit (`Archive::commit_staging`) also need the packs, so
/// they stay with the archive below; the overlay knows nothing of `Archive`.
#[derive(Clone, Copy)]
pub struct Staging<'a> {
    cat: &'a Catalog,
}

impl<'a> Staging<'a> {
    pub fn new(cat: &'a Catalog) -> Staging<'a> {
        Staging { cat }
    }

    /// The staged change of one path, if any.
    pub fn get(&self, branch: &str, path: &str) -> Result<Option<Staged>> {
        self.cat.staged_row(branch, path)
    }

    /// Staged rows directly inside folder `dir` ("" for the branch root).
    pub fn children(&self, branch: &str, dir: &str) -> Result<Vec<(String, Staged)>> {
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        let mut out = Vec::new();
        for (p, s) in self.cat.staged_rows_under(branch, &prefix)? {
            let rest = &p[prefix.len()..];
            if !rest.is_empty() && !rest.contains('/') {
                out.push((rest.to_string(), s));
            }
        }
        Ok(out)
    }

    /// Whether the branch has any uncommitted change.
    pub fn has_changes(&self, branch: &str) -> Result<bool> {
        self.cat.has_staged_rows(branch)
    }

    /// Every staged row of a branch, sorted by path (for `status` and commit).
    pub fn rows(&self, branch: &str) -> Result<Vec<(String, Staged)>> {
        self.cat.staged_rows(branch)
    }

    /// Record one staged change (a row write; durable when it returns).
    pub fn stage(&self, branch: &str, path: &str, s: &Staged) -> Result<()> {
        self.cat.set_staged_row(branch, path, s)
    }

    /// Remove staged rows at and below `path` (used when a folder is deleted or
    /// renamed away: its staged children go with it).
    pub fn unstage_below(&self, branch: &str, path: &str) -> Result<()> {
        self.cat.delete_staged_below(branch, path)
    }

    pub fn extents(&self, id: i64) -> Result<Vec<Extent>> {
        self.cat.staged_extents(id)
    }

    /// The extents of a file's content, wherever it lives.
    pub fn content_extents(&self, c: &Content) -> Result<Vec<Extent>> {
        match c {
            Content::Blob(b) => self.cat.extents(b),
            Content::Extents(id) => self.extents(*id),
        }
    }

    /// Drop every uncommitted change of a branch; how many rows there were.
    pub fn discard(&self, branch: &str) -> Result<u64> {
        self.cat.delete_staged_rows(branch)
    }
}

/// A reader over any extent list (staged or committed), resolved through
/// `cat` and read from `store`. `id` names it in messages.
pub fn extents_reader(cat: &Catalog, store: &Arc<ChunkStore>, id: Hash, size: u64, extents: &[Extent]) -> Result<BlobReader> {
    let mut out = Vec::with_capacity(extents.len());
    for e in extents {
        if e.is_zero_run() {
            out.push(ResolvedExtent { extent: *e, loc: super::read::ZERO_RUN_LOC });
            continue;
        }
        let loc = cat
            .chunk_loc(&e.chunk)?
            .ok_or_else(|| ArchiveError::Inconsistent(format!("chunk {} is not in the catalog", e.chunk.short())))?;
        out.push(ResolvedExtent { extent: *e, loc });
    }
    Ok(BlobReader::new(id, size, out, store.clone()))
}

/// The overlay operations that store bytes in packs or make commits.
impl Archive {
    /// This archive's staging overlay, over its catalog connection.
    pub fn staging(&self) -> Staging<'_> {
        Staging::new(&self.catalog)
    }

    /// Every staged row of a branch, sorted by path (`reelfs status`).
    pub fn staging_rows(&self, branch: &str) -> Result<Vec<(String, Staged)>> {
        self.staging().rows(branch)
    }

    /// A reader over any extent list (staged or committed). `id` names it in messages.
    pub fn extents_reader(&self, id: Hash, size: u64, extents: &[Extent]) -> Result<BlobReader> {
        extents_reader(&self.catalog, self.store(), id, size, extents)
    }

    /// Store new bytes and a new extent list for a file. `base` is the file's
    /// current extents; `writes` are (offset, bytes) to lay over it; the file
    /// becomes `new_size` long (truncating or zero-extending). Only the written
    /// bytes become new chunks; every untouched byte keeps pointing at its old
    /// chunk. Takes the writer lock for the duration (waits up to 60 s for an
    /// ingest to finish). `owner` is the file's owner (None: not recorded).
    /// `extra` (user xattrs, link group) is used when the path has no staged
    /// file row yet; otherwise that row's is kept, since a `setxattr` made
    /// while the file was open for writing is newer than the writer's copy.
    /// Returns the staged extent list id.
    #[allow(clippy::too_many_arguments)]
    pub fn stage_write(
        &self,
        branch: &str,
        path: &str,
        base: &[Extent],
        writes: &[(u64, &[u8])],
        new_size: u64,
        mode: u32,
        mtime_ns: i64,
        owner: Option<Owner>,
        extra: &EntryExtra,
    ) -> Result<i64> {
        if new_size > MAX_FILE_SIZE {
            return Err(ArchiveError::Invalid(format!("{branch}/{path}: a file may not be longer than {MAX_FILE_SIZE} bytes")));
        }
        if writes.iter().any(|(o, d)| o.checked_add(d.len() as u64).is_none_or(|end| end > MAX_FILE_SIZE)) {
            return Err(ArchiveError::Invalid(format!("{branch}/{path}: a file may not be longer than {MAX_FILE_SIZE} bytes")));
        }
        let prepared = super::written::prepare_written(&self.config, writes)?;
        self.store_written(&prepared, writes)?;
        self.stage_pieces(branch, path, base, &prepared.pieces, new_size, mode, mtime_ns, owner, extra)
    }

    /// Lay extents of chunks already stored (`store_written`) over a file's
    /// `base` extents and stage the result: the file becomes `new_size` long.
    /// Every chunk named must still be in the catalog (a `gc` run between the
    /// two steps would have swept chunks nothing referred to yet); if one is
    /// not, nothing is staged and the caller stores the bytes again.
    /// Returns the staged extent list id.
    #[allow(clippy::too_many_arguments)]
    pub fn stage_pieces(
        &self,
        branch: &str,
        path: &str,
        base: &[Extent],
        pieces: &[Extent],
        new_size: u64,
        mode: u32,
        mtime_ns: i64,
        owner: Option<Owner>,
        extra: &EntryExtra,
    ) -> Result<i64> {
        if new_size > MAX_FILE_SIZE {
            return Err(ArchiveError::Invalid(format!("{branch}/{path}: a file may not be longer than {MAX_FILE_SIZE} bytes")));
        }
        let _lock = super::lock::WriterLock::acquire_wait(self.root(), std::time::Duration::from_secs(60))?;
        let cat = &self.catalog;
        // Holes (extending a file, writing past its end) are zero runs: one
        // extent each, whatever their length, and no chunk.
        let filled = fill_holes(splice(base, pieces, new_size), new_size);
        cat.begin()?;
        let res = (|| {
            for p in pieces {
                if !cat.has_chunk(&p.chunk)? {
                    return Err(ArchiveError::Inconsistent(format!(
                        "{branch}/{path}: written chunk {} left the catalog before it was staged",
                        p.chunk.short()
                    )));
                }
            }
            let ext_id = cat.insert_staged_extents(&filled)?;
            let old = cat.staged_extents_id(branch, path)?;
            // The later ctime wins: a chmod through this writer is as new as
            // the row's own metadata change.
            let extra = match cat.staged_row(branch, path)? {
                Some(Staged::File { extra: row, .. }) => EntryExtra { ctime_ns: row.ctime_ns.max(extra.ctime_ns), ..row },
                _ => extra.clone(),
            };
            self.staging().stage(
                branch,
                path,
                &Staged::File { size: new_size, mode, mtime_ns, content: Content::Extents(ext_id), owner, extra },
            )?;
            // The previous staged extent list of this file is garbage now, unless a
            // rename left another path pointing at it.
            if let Some(old) = old {
                cat.delete_staged_extents_if_unused(old)?;
            }
            Ok(ext_id)
        })();
        match res.and_then(|id| cat.commit().map(|_| id)) {
            Ok(id) => Ok(id),
            Err(e) => {
                cat.rollback();
                Err(e)
            }
        }
    }

    /// Turn a branch's staged changes into a commit. Files written through the
    /// mount get their content hash here (one read of each changed file).
    pub fn commit_staging(&mut self, branch: &str, message: &str) -> Result<Option<Hash>> {
        self.require_writer()?;
        let rows = self.staging_rows(branch)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let head = self.catalog.branch_head(branch)?.ok_or_else(|| ArchiveError::NoSuchBranch(branch.into()))?;
        let base_tree = match head {
            Some(c) => Some(self.commit(&c)?.tree),
            None => None,
        };
        // Resolve file contents first (hashing reads the data; no transaction open).
        let mut changes: Vec<(Vec<String>, Change)> = Vec::new();
        let mut blobs: Vec<BlobRecord> = Vec::new();
        let mut outboards: Vec<(Hash, Vec<super::outboard::Cv>)> = Vec::new();
        for (path, s) in &rows {
            let comps: Vec<String> = path.split('/').map(String::from).collect();
            let ch = match s {
                Staged::Deleted => Change::Delete,
                Staged::Dir { mode, mtime_ns, tree, owner, extra } => {
                    Change::Dir { mode: *mode, mtime_ns: *mtime_ns, tree: *tree, owner: *owner, extra: extra.clone() }
                }
                Staged::Special { kind, extra, mode, mtime_ns, owner } => Change::File(TreeEntry::special(
                    comps.last().cloned().unwrap_or_default(),
                    *kind,
                    extra.clone(),
                    *mode,
                    *mtime_ns,
                    *owner,
                )),
                Staged::File { size, mode, mtime_ns, content, owner, extra } => {
                    let hash = match content {
                        Content::Blob(b) => *b,
                        Content::Extents(id) => {
                            let ext = self.staging().extents(*id)?;
                            let r = self.extents_reader(Hash([0; 32]), *size, &ext)?;
                            let h = if r.zero_run_bytes() <= super::content_hash::EXACT_ZERO_BYTES {
                                // Re-hash only the blocks whose extents differ from
                                // the committed version's (blob_hash.rs).
                                let (h, cvs) = self.hash_against_committed(&r, base_tree, path)?;
                                outboards.push((h, cvs));
                                h
                            } else {
                                // A layout id (huge holes): reads the stored data
                                // only; zero runs cost their length (content_hash.rs).
                                r.content_hash()?
                            };
                            blobs.push(BlobRecord { hash: h, size: *size, extents: ext });
                            h
                        }
                    };
                    Change::File(TreeEntry {
                        name: comps.last().cloned().unwrap_or_default(),
                        kind: EntryKind::File,
                        hash,
                        size: *size,
                        mode: *mode,
                        mtime_ns: *mtime_ns,
                        owner: *owner,
                        extra: extra.clone(),
                    })
                }
            };
            changes.push((comps, ch));
        }
        let _ = &self.lock;
        let cat = &self.catalog;
        let mut w = self.pack_writer()?;
        cat.begin()?;
        let res = (|| -> Result<Hash> {
            for b in &blobs {
                if !cat.has_blob(&b.hash)? {
                    let raw = serde_json::to_vec(b).unwrap_or_default();
                    let (_, loc) = w.append_object(RecordKind::Blob, &raw)?;
                    cat.insert_blob(&b.hash, b.size, &loc.id, &b.extents)?;
                }
            }
            for (h, cvs) in &outboards {
                cat.put_blob_outboard(h, cvs)?;
            }
            let (tree, _) = apply(cat, &mut w, base_tree, &changes)?;
            let tree = match tree {
                Some(t) => t,
                None => {
                    let t = Tree::default();
                    let raw = t.encode();
                    w.append_object(RecordKind::Tree, &raw)?;
                    cat.insert_tree(&Hash::of(&raw), &[])?;
                    Hash::of(&raw)
                }
            };
            let commit = make_commit(tree, head.into_iter().collect(), branch, message);
            let raw = commit.encode();
            let id = Hash::of(&raw);
            w.append_object(RecordKind::Commit, &raw)?;
            cat.insert_commit(&id, &commit)?;
            let seq = cat.next_ref_seq()?;
            let r = RefRecord { branch: branch.into(), head: Some(id), seq, time_ns: commit.time_ns };
            w.append_object(RecordKind::Ref, &serde_json::to_vec(&r).unwrap_or_default())?;
            cat.set_branch(branch, Some(&id), seq, commit.time_ns)?;
            cat.delete_staged_rows(branch)?;
            cat.delete_unused_staged_extents()?;
            Ok(id)
        })();
        // The rule of the archive: the pack is durable before the catalog commit.
        let res = res.and_then(|id| {
            for p in w.finish()? {
                cat.insert_pack(p.id, &p.name, p.size, p.records.len())?;
                for l in &p.records {
                    cat.insert_record(p.id, l)?;
                }
            }
            cat.commit()?;
            Ok(id)
        });
        match res {
            Ok(id) => {
                self.store().register_packs(w.sealed().iter().map(|p| (p.id, p.name.clone())));
                Ok(Some(id))
            }
            Err(e) => {
                cat.rollback();
                w.abort();
                Err(e)
            }
        }
    }

    /// A staged file's hash and outboard, re-hashing only the blocks that
    /// differ from the file committed at the same path (if it has an
    /// outboard; otherwise every block is read).
    fn hash_against_committed(&self, r: &BlobReader, base_tree: Option<Hash>, path: &str) -> Result<(Hash, Vec<super::outboard::Cv>)> {
        let committed = super::diff::entry_at(&self.catalog, base_tree, path)?.filter(|e| e.kind == EntryKind::File);
        let mut base = None;
        if let Some(e) = committed {
            if let Some(cvs) = self.catalog.blob_outboard(&e.hash)? {
                if super::outboard::matches(&e.hash, e.size, &cvs) {
                    base = Some((self.catalog.extents(&e.hash)?, e.size, cvs));
                }
            }
        }
        let base = base.as_ref().map(|(extents, size, cvs)| super::blob_hash::Base { extents, size: *size, cvs });
        let (h, cvs, read) = super::blob_hash::hash_blocks(r, base.as_ref())?;
        log::debug!("{path}: hashed {read} of {} blocks at commit", super::outboard::block_count(r.size));
        Ok((h, cvs))
    }

    pub fn discard_staging(&self, branch: &str) -> Result<u64> {
        self.staging().discard(branch)
    }
}

enum Change {
    Delete,
    File(TreeEntry),
    Dir { mode: u32, mtime_ns: i64, tree: Option<Hash>, owner: Option<Owner>, extra: EntryExtra },
}

/// Apply changes (paths relative to this tree) to `tree`, writing the new trees.
/// Returns the new tree id (None: the folder no longer exists) and its size.
fn apply(cat: &Catalog, w: &mut PackWriter, tree: Option<Hash>, changes: &[(Vec<String>, Change)]) -> Result<(Option<Hash>, u64)> {
    let mut entries: BTreeMap<String, TreeEntry> = BTreeMap::new();
    if let Some(t) = tree {
        for e in cat.tree_entries(&t)? {
            entries.insert(e.name.clone(), e);
        }
    }
    // Group by first component; rows are sorted by path so a folder's own row
    // (rename/mkdir/delete) comes before the rows below it.
    let mut groups: BTreeMap<String, (Option<&Change>, Vec<(Vec<String>, &Change)>)> = BTreeMap::new();
    for (comps, ch) in changes {
        let Some((first, rest)) = comps.split_first() else { continue };
        let g = groups.entry(first.clone()).or_default();
        if rest.is_empty() {
            g.0 = Some(ch);
            g.1.clear();
        } else {
            g.1.push((rest.to_vec(), ch));
        }
    }
    for (name, (own, below)) in groups {
        // A folder's own fields (xattrs too) stay as they were when only
        // something below it changed.
        let mut base_dir: Option<(Option<Hash>, u32, i64, Option<Owner>, EntryExtra)> = match entries.get(&name) {
            Some(e) if e.kind == EntryKind::Dir => Some((Some(e.hash), e.mode, e.mtime_ns, e.owner, e.extra.clone())),
            _ => None,
        };
        match own {
            Some(Change::Delete) => {
                entries.remove(&name);
                base_dir = None;
            }
            Some(Change::File(e)) => {
                entries.insert(name.clone(), TreeEntry { name: name.clone(), ..e.clone() });
                continue;
            }
            Some(Change::Dir { mode, mtime_ns, tree, owner, extra }) => {
                let t = match (tree, &base_dir) {
                    (Some(t), _) => Some(*t),
                    (None, Some((t, ..))) => *t,
                    (None, None) => None,
                };
                base_dir = Some((t, *mode, *mtime_ns, *owner, extra.clone()));
            }
            None => {}
        }
        if below.is_empty() && !matches!(own, Some(Change::Dir { .. })) {
            continue;
        }
        let (t, mode, mtime, owner, extra) = base_dir.unwrap_or((None, 0o755, objects::now_ns(), None, EntryExtra::default()));
        let owned: Vec<(Vec<String>, Change)> = below.into_iter().map(|(p, c)| (p, clone_change(c))).collect();
        let (sub, size) = apply(cat, w, t, &owned)?;
        let sub = match sub {
            Some(s) => s,
            None => {
                let raw = Tree::default().encode();
                let id = Hash::of(&raw);
                if !cat.has_tree(&id)? {
                    w.append_object(RecordKind::Tree, &raw)?;
                    cat.insert_tree(&id, &[])?;
                }
                id
            }
        };
        entries.insert(name.clone(), TreeEntry { name, kind: EntryKind::Dir, hash: sub, size, mode, mtime_ns: mtime, owner, extra });
    }
    let tree = Tree { entries: entries.into_values().collect() };
    let raw = tree.encode();
    let id = Hash::of(&raw);
    if !cat.has_tree(&id)? {
        w.append_object(RecordKind::Tree, &raw)?;
        cat.insert_tree(&id, &tree.entries)?;
    }
    Ok((Some(id), tree.total_size()))
}

fn clone_change(c: &Change) -> Change {
    match c {
        Change::Delete => Change::Delete,
        Change::File(e) => Change::File(e.clone()),
        Change::Dir { mode, mtime_ns, tree, owner, extra } => {
            Change::Dir { mode: *mode, mtime_ns: *mtime_ns, tree: *tree, owner: *owner, extra: extra.clone() }
        }
    }
}

/// The longest file the staging overlay accepts: what SQLite's signed 64-bit
/// integers (and the kernel's `off_t`) can hold.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// Make a sorted, non-overlapping extent list cover [0, size): every gap
/// becomes a zero run, adjacent zero runs merge into one, so a hole costs one
/// row whatever its length.
pub fn fill_holes(extents: Vec<Extent>, size: u64) -> Vec<Extent> {
    let mut out: Vec<Extent> = Vec::with_capacity(extents.len() + 1);
    let push = |e: Extent, out: &mut Vec<Extent>| {
        if e.length == 0 {
            return;
        }
        if e.is_zero_run() {
            if let Some(last) = out.last_mut().filter(|l| l.is_zero_run() && l.end() == e.file_offset) {
                last.length += e.length;
                return;
            }
            out.push(Extent::zeros(e.file_offset, e.length));
        } else {
            out.push(e);
        }
    };
    let mut pos = 0u64;
    for e in extents {
        if e.file_offset >= size {
            break;
        }
        if pos < e.file_offset {
            push(Extent::zeros(pos, e.file_offset - pos), &mut out);
        }
        pos = e.end().min(size);
        push(Extent { length: pos - e.file_offset, ..e }, &mut out);
    }
    if pos < size {
        push(Extent::zeros(pos, size - pos), &mut out);
    }
    out
}

/// Lay `new` extents over `base` and cut the result at `size`. Both inputs are
/// sorted and non-overlapping within themselves; later pieces win.
pub fn splice(base: &[Extent], new: &[Extent], size: u64) -> Vec<Extent> {
    let mut out: Vec<Extent> = base
        .iter()
        .filter(|e| e.file_offset < size)
        .map(|e| {
            let mut e = *e;
            e.length = e.length.min(size - e.file_offset);
            e
        })
        .collect();
    for n in new {
        let (a, b) = (n.file_offset, n.file_offset + n.length);
        let mut next = Vec::with_capacity(out.len() + 2);
        for e in out {
            let (s, t) = (e.file_offset, e.file_offset + e.length);
            if t <= a || s >= b {
                next.push(e);
                continue;
            }
            if s < a {
                next.push(Extent { length: a - s, ..e });
            }
            if t > b {
                next.push(Extent { file_offset: b, length: t - b, chunk: e.chunk, chunk_offset: e.chunk_offset + (b - s) });
            }
        }
        next.push(*n);
        next.sort_by_key(|e| e.file_offset);
        out = next;
    }
    out.retain(|e| e.file_offset < size && e.length > 0);
    for e in out.iter_mut() {
        e.length = e.length.min(size - e.file_offset);
    }
    out
}

/// Chunk store handle for callers that hold only an Archive reference.
pub fn store_of(a: &Archive) -> Arc<ChunkStore> {
    a.store().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(o: u64, l: u64, c: u8, co: u64) -> Extent {
        Extent { file_offset: o, length: l, chunk: Hash([c; 32]), chunk_offset: co }
    }

    #[test]
    fn splice_keeps_untouched_chunks_and_offsets() {
        let base = vec![ext(0, 100, 1, 0), ext(100, 100, 2, 0)];
        let out = splice(&base, &[ext(50, 10, 9, 0)], 200);
        assert_eq!(out, vec![ext(0, 50, 1, 0), ext(50, 10, 9, 0), ext(60, 40, 1, 60), ext(100, 100, 2, 0)]);
        let out = splice(&base, &[ext(90, 20, 9, 0)], 150);
        assert_eq!(out, vec![ext(0, 90, 1, 0), ext(90, 20, 9, 0), ext(110, 40, 2, 10)]);
    }

    #[test]
    fn fill_holes_makes_each_hole_one_zero_run_and_merges_neighbours() {
        let out = fill_holes(vec![ext(10, 5, 1, 0), Extent::zeros(15, 5), ext(30, 10, 2, 0)], 1 << 62);
        assert_eq!(
            out,
            vec![Extent::zeros(0, 10), ext(10, 5, 1, 0), Extent::zeros(15, 15), ext(30, 10, 2, 0), Extent::zeros(40, (1 << 62) - 40)]
        );
        // A zero run cut by a later write keeps no chunk offset.
        let cut = splice(&[Extent::zeros(0, 100)], &[ext(40, 10, 3, 0)], 100);
        assert_eq!(fill_holes(cut, 100), vec![Extent::zeros(0, 40), ext(40, 10, 3, 0), Extent::zeros(50, 50)]);
        assert_eq!(fill_holes(vec![], 0), vec![]);
    }

    fn staged_file(root: &std::path::Path) -> Archive {
        drop(Archive::init(root).unwrap());
        Archive::open(root).unwrap()
    }

    fn read(r: &BlobReader, off: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0xEEu8; len];
        let n = r.read_at(off, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn truncate_to_the_largest_size_costs_a_few_rows_reads_zeros_and_commits_cheaply() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a");
        let a = staged_file(&root);
        let id = a.stage_write("main", "f.bin", &[], &[(0, b"head")], 4, 0o644, 1, None, &Default::default()).unwrap();
        let base = a.staging().extents(id).unwrap();
        let id = a.stage_write("main", "f.bin", &base, &[], MAX_FILE_SIZE, 0o644, 2, None, &Default::default()).unwrap();
        let base = a.staging().extents(id).unwrap();
        assert_eq!(base.len(), 2, "{base:?}");
        assert!(base[1].is_zero_run());
        let far = 1u64 << 50;
        let id = a.stage_write("main", "f.bin", &base, &[(far, b"far away")], MAX_FILE_SIZE, 0o644, 3, None, &Default::default()).unwrap();
        let ext = a.staging().extents(id).unwrap();
        assert_eq!(ext.len(), 4, "{ext:?}");
        assert_eq!(a.catalog.count("staged_extents").unwrap(), 4);
        let r = a.extents_reader(Hash([0; 32]), MAX_FILE_SIZE, &ext).unwrap();
        assert_eq!(read(&r, 0, 6), b"head\0\0");
        assert_eq!(read(&r, far / 2, 4096), vec![0u8; 4096]);
        assert_eq!(read(&r, far - 2, 12), b"\0\0far away\0\0");
        assert_eq!(read(&r, MAX_FILE_SIZE - 3, 10), vec![0u8; 3]);
        // Only the two written pieces are chunks: a hole stores nothing.
        assert_eq!(a.catalog.count("chunks").unwrap(), 2);
        drop(a);
        let mut w = Archive::open_writer(&root).unwrap();
        w.commit_staging("main", "sparse").unwrap().unwrap();
        let e = w.resolve("main/f.bin").unwrap().entry;
        assert_eq!(e.size, MAX_FILE_SIZE);
        assert_eq!(w.catalog.extents(&e.hash).unwrap().len(), 4);
        let r = w.blob_reader(&e.hash).unwrap();
        assert_eq!(read(&r, far, 8), b"far away");
        assert_eq!(r.content_hash().unwrap(), e.hash);
        let rep = super::super::check::check(&w, true, &Default::default()).unwrap();
        assert!(rep.ok(), "{rep:?}");
    }

    #[test]
    fn a_file_with_a_small_hole_commits_with_the_blake3_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a");
        let a = staged_file(&root);
        let id = a.stage_write("main", "g.bin", &[], &[(0, b"start")], 5, 0o644, 1, None, &Default::default()).unwrap();
        let base = a.staging().extents(id).unwrap();
        let id = a.stage_write("main", "g.bin", &base, &[(3_000_000, b"end")], 3_000_003, 0o644, 2, None, &Default::default()).unwrap();
        assert!(a.staging().extents(id).unwrap().iter().any(|e| e.is_zero_run()));
        drop(a);
        let mut w = Archive::open_writer(&root).unwrap();
        w.commit_staging("main", "hole").unwrap().unwrap();
        let mut bytes = vec![0u8; 3_000_003];
        bytes[..5].copy_from_slice(b"start");
        bytes[3_000_000..].copy_from_slice(b"end");
        let e = w.resolve("main/g.bin").unwrap().entry;
        assert_eq!(e.hash, Hash::of(&bytes));
        assert_eq!(read(&w.blob_reader(&e.hash).unwrap(), 0, 4_000_000), bytes);
    }

    #[test]
    fn sizes_past_the_largest_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = staged_file(&dir.path().join("a"));
        assert!(matches!(
            a.stage_write("main", "h", &[], &[], MAX_FILE_SIZE + 1, 0o644, 1, None, &Default::default()),
            Err(ArchiveError::Invalid(_))
        ));
        assert!(matches!(
            a.stage_write("main", "h", &[], &[(u64::MAX - 1, b"xy")], 0, 0o644, 1, None, &Default::default()),
            Err(ArchiveError::Invalid(_))
        ));
        assert_eq!(a.catalog.count("staged_extents").unwrap(), 0);
    }
}
