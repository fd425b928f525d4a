//! Hard links in a branch: several names of one file.
//!
//! The archive already keeps a hard link as tar and restic do: every name is a
//! tree entry of its own, carrying the same content and the same
//! `extra.link_group` (ingest sets it from the source's inode, restore makes
//! one file with several names of it). A branch keeps them the same way: each
//! name is a staging row, and every change to one name (write, truncate,
//! chmod, chown, utimens, xattrs) is staged on all of them, so the rows stay
//! identical and a commit stores the group as ingest would have. In the mount
//! the group is one inode (`Inodes::child_linked`), so a write through one
//! name is seen through the others at once, and `nlink` counts the names.

use super::{join, Branches, Entry, WriteHost};
use crate::archive::objects::{self, Hash};
use crate::archive::staging::Staged;
use crate::fs::attr::Attr;
use crate::fs::error::{FsError, FsResult};
use crate::fs::inodes::NodeKind;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Hard-link groups found in a committed tree: group -> paths relative to the tree.
pub type TreeGroups = HashMap<u64, Vec<String>>;

/// Committed trees walked for link groups are remembered by tree id (a tree
/// never changes); this many, then the memory starts over.
const CACHED_TREES: usize = 64;

/// The staged row that makes a branch entry what it is.
fn staged_of(e: &Entry) -> Staged {
    match e {
        Entry::File { content, size, mode, mtime_ns, owner, extra } => {
            Staged::File { size: *size, mode: *mode, mtime_ns: *mtime_ns, content: content.clone(), owner: *owner, extra: extra.clone() }
        }
        Entry::Dir { tree, mode, mtime_ns, owner, extra } => {
            Staged::Dir { mode: *mode, mtime_ns: *mtime_ns, tree: *tree, owner: *owner, extra: extra.clone() }
        }
        Entry::Special { kind, extra, mode, mtime_ns, owner } => {
            Staged::Special { kind: *kind, extra: extra.clone(), mode: *mode, mtime_ns: *mtime_ns, owner: *owner }
        }
    }
}

/// The hard-link group of a staged row or entry (files and special entries only).
fn group_of_staged(s: &Staged) -> Option<u64> {
    match s {
        Staged::File { extra, .. } | Staged::Special { extra, .. } => extra.link_group,
        _ => None,
    }
}

pub(super) fn group_of(e: &Entry) -> Option<u64> {
    match e {
        Entry::File { extra, .. } | Entry::Special { extra, .. } => extra.link_group,
        Entry::Dir { .. } => None,
    }
}

/// A new group number: 53 bits (exact in JSON readers that use doubles, as
/// ingest's), from the branch, path and time, so two links made at once in
/// different places do not meet.
fn new_group(branch: &str, path: &str) -> u64 {
    let h = blake3::hash(format!("link\0{branch}\0{path}\0{}", objects::now_ns()).as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or([0; 8])) & ((1 << 53) - 1)
}

impl<H: WriteHost> Branches<'_, H> {
    /// `link(2)`: `newname` in folder `newparent` becomes one more name of the
    /// file `ino`. Only within one branch (EXDEV across branches or from
    /// archived content, EROFS into a read-only place), never of a folder (EPERM).
    pub fn link(&self, ino: u64, newparent: u64, newname: &str) -> FsResult<Attr> {
        let n = self.node(ino)?;
        let src = match &n.kind {
            NodeKind::BFile { branch, path } | NodeKind::BSpecial { branch, path } => Some((branch.clone(), path.clone())),
            NodeKind::BDir { .. } | NodeKind::Branch { .. } | NodeKind::Dir { .. } | NodeKind::Commit { .. } | NodeKind::Root => {
                return Err(FsError::NotPermitted)
            }
            _ => None,
        };
        let (p, nbranch, ndir) = self.writable_dir(newparent)?;
        // Archived content (a commit, a slice, a proxy) is another filesystem as
        // far as a link goes: `cp` falls back to copying, as across mounts.
        let Some((branch, path)) = src else { return Err(FsError::CrossDevice) };
        if branch != nbranch {
            return Err(FsError::CrossDevice);
        }
        super::check_name(newname)?;
        let to = join(&ndir, newname);
        if self.branch_entry(&branch, &to)?.is_some() {
            return Err(FsError::Exists);
        }
        // Buffered bytes first: the new name must have the file's whole content.
        let ws = self.write_state(ino);
        let mut guard = match &ws {
            Some(ws) => Some(ws.lock().map_err(|_| FsError::Io("poisoned".into()))?),
            None => None,
        };
        if let Some(w) = guard.as_deref_mut() {
            self.persist(w, false)?;
        }
        let mut e = self.branch_entry(&branch, &path)?.ok_or(FsError::NotFound)?;
        let had = group_of(&e);
        let g = had.unwrap_or_else(|| new_group(&branch, &path));
        match &mut e {
            Entry::File { extra, .. } | Entry::Special { extra, .. } => {
                extra.link_group = Some(g);
                // One more name: the file's ctime moves (link(2)).
                extra.ctime_ns = Some(objects::now_ns());
            }
            Entry::Dir { .. } => return Err(FsError::NotPermitted),
        }
        if let Some(w) = guard.as_deref_mut() {
            if let Entry::File { extra, .. } = &e {
                w.extra = extra.clone();
            }
        }
        let row = staged_of(&e);
        // One write transaction: readers see both names or neither.
        self.with_writer(|a| {
            a.catalog.write(|c| {
                let staging = crate::archive::staging::Staging::new(c);
                staging.stage(&branch, &path, &row)?;
                staging.stage(&branch, &to, &row)
            })
        })?;
        drop(guard);
        // Names the file had before: the same ctime.
        if had.is_some() {
            self.sync_link_group(&branch, &path)?;
        }
        if had.is_none() {
            self.inodes.join_link_group(ino, (&branch, g));
        }
        self.touch_dir(&branch, &ndir)?;
        let linked = self.entry_node(&p, newname, &branch, &to, &e);
        self.branch_attr(&linked)
    }

    /// The names the hard-link group `g` of `branch` has now, sorted. Found in
    /// the committed trees the branch shows (its head, and folders renamed in
    /// the overlay) and in the overlay's rows, each checked against what the
    /// branch resolves it to.
    pub(super) fn link_names(&self, branch: &str, g: u64) -> FsResult<Vec<String>> {
        let mut candidates: BTreeSet<String> = BTreeSet::new();
        if let Some(Entry::Dir { tree: Some(root), .. }) = self.branch_entry(branch, "")? {
            for p in self.tree_groups(root)?.get(&g).into_iter().flatten() {
                candidates.insert(p.clone());
            }
        }
        for (path, s) in self.with_archive(|a| a.staging().rows(branch))? {
            match &s {
                Staged::Dir { tree: Some(t), .. } => {
                    for p in self.tree_groups(*t)?.get(&g).into_iter().flatten() {
                        candidates.insert(join(&path, p));
                    }
                }
                s if group_of_staged(s) == Some(g) => {
                    candidates.insert(path);
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        for c in candidates {
            if self.branch_entry(branch, &c)?.as_ref().and_then(group_of) == Some(g) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// How many names the entry at `path` has (1 unless it is in a link group).
    pub(super) fn nlink_of(&self, branch: &str, group: Option<u64>) -> FsResult<u32> {
        match group {
            Some(g) => Ok((self.link_names(branch, g)?.len() as u32).max(1)),
            None => Ok(1),
        }
    }

    /// Every hard-link group in committed tree `root`, by group (walked once per tree).
    fn tree_groups(&self, root: Hash) -> FsResult<Arc<TreeGroups>> {
        if let Some(g) = self.link_trees.lock().ok().and_then(|m| m.get(&root).cloned()) {
            return Ok(g);
        }
        let mut groups = TreeGroups::new();
        let mut todo = vec![(root, String::new())];
        while let Some((t, dir)) = todo.pop() {
            for e in self.with_archive(|a| a.list_dir(&t))? {
                let path = join(&dir, &e.name);
                if e.kind == crate::archive::EntryKind::Dir {
                    todo.push((e.hash, path));
                } else if let Some(g) = e.extra.link_group {
                    groups.entry(g).or_default().push(path);
                }
            }
        }
        let groups = Arc::new(groups);
        if let Ok(mut m) = self.link_trees.lock() {
            if m.len() >= CACHED_TREES {
                m.clear();
            }
            m.insert(root, groups.clone());
        }
        Ok(groups)
    }

    /// After a change staged at `path` (one name of a group), stage the same
    /// row at every other name of its group, so all names stay one file.
    pub(super) fn sync_link_group(&self, branch: &str, path: &str) -> FsResult<()> {
        let Some(row) = self.with_writer(|a| a.staging().get(branch, path))? else { return Ok(()) };
        let Some(g) = group_of_staged(&row) else { return Ok(()) };
        let others: Vec<String> = self.link_names(branch, g)?.into_iter().filter(|p| p != path).collect();
        if others.is_empty() {
            return Ok(());
        }
        self.with_writer(|a| {
            a.catalog.write(|c| {
                let staging = crate::archive::staging::Staging::new(c);
                for o in &others {
                    staging.stage(branch, o, &row)?;
                }
                Ok(())
            })
        })
    }

    /// Name `path` (of link group `group`) is about to go from the branch: if
    /// the file has other names, its inode and open handles live on under one
    /// of them (returned); otherwise (None) the caller orphans it as any
    /// removed file.
    pub(super) fn link_name_gone(&self, branch: &str, path: &str, group: Option<u64>) -> FsResult<Option<String>> {
        let Some(g) = group else { return Ok(None) };
        let Some(next) = self.link_names(branch, g)?.into_iter().find(|p| p != path) else { return Ok(None) };
        if let Ok(m) = self.writes.lock() {
            for ws in m.values() {
                if let Ok(mut w) = ws.lock() {
                    if w.branch == branch && w.path == path {
                        w.path = next.clone();
                    }
                }
            }
        }
        self.inodes.repoint_branch_path(branch, path, &next);
        Ok(Some(next))
    }

    /// A name of the file at `path` was added or removed: its ctime moves, on
    /// every name it still has.
    pub(super) fn link_count_changed(&self, branch: &str, path: &str) -> FsResult<()> {
        let Some(mut e) = self.branch_entry(branch, path)? else { return Ok(()) };
        match &mut e {
            Entry::File { extra, .. } | Entry::Special { extra, .. } => extra.ctime_ns = Some(objects::now_ns()),
            Entry::Dir { .. } => return Ok(()),
        }
        let row = staged_of(&e);
        self.with_writer(|a| a.staging().stage(branch, path, &row))?;
        self.sync_link_group(branch, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::objects::EntryExtra;
    use crate::archive::staging::Content;

    #[test]
    fn a_staged_row_keeps_everything_the_entry_is() {
        let e = Entry::File {
            content: Content::Extents(7),
            size: 3,
            mode: 0o640,
            mtime_ns: 5,
            owner: None,
            extra: EntryExtra { link_group: Some(9), ..Default::default() },
        };
        let s = staged_of(&e);
        assert_eq!(group_of_staged(&s), Some(9));
        assert!(matches!(s, Staged::File { size: 3, mode: 0o640, mtime_ns: 5, content: Content::Extents(7), .. }));
        assert_eq!(group_of(&e), Some(9));
    }
}
