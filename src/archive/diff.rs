//! File-level differences between two trees, and the history of one path.
//!
//! Trees are Merkle trees: a folder's entry carries its tree's hash, so two
//! folders with equal hashes hold equal contents and the diff never opens them.
//! Only subtrees whose hashes differ are read, which keeps a diff of two
//! branches of a 10 TB archive that differ in ten files at a few dozen index
//! probes. A file that disappears at one path while the same content (BLAKE3)
//! appears at another is reported as a rename, not as a removal plus an addition.

use super::catalog::{Catalog, CommitRow};
use super::error::{ArchiveError, Result};
use super::objects::{EntryKind, Hash, Owner, TreeEntry};
use super::repo::Archive;
use std::collections::HashMap;

/// Where the diff reads trees from: the catalog, or (in tests) a wrapper that
/// counts which trees were opened.
pub trait TreeSource {
    fn entries(&self, tree: &Hash) -> Result<Vec<TreeEntry>>;
    fn lookup(&self, tree: &Hash, name: &str) -> Result<Option<TreeEntry>>;
    /// The entries of folders `a` and `b` that differ (an entry equal in both
    /// can produce no change), each sorted by name.
    fn differing(&self, a: &Hash, b: &Hash) -> Result<(Vec<TreeEntry>, Vec<TreeEntry>)> {
        let (mut xs, mut ys) = (self.entries(a)?, self.entries(b)?);
        let in_b: HashMap<&str, &TreeEntry> = ys.iter().map(|e| (e.name.as_str(), e)).collect();
        let shared: std::collections::HashSet<String> =
            xs.iter().filter(|e| in_b.get(e.name.as_str()) == Some(e)).map(|e| e.name.clone()).collect();
        drop(in_b);
        xs.retain(|e| !shared.contains(&e.name));
        ys.retain(|e| !shared.contains(&e.name));
        Ok((xs, ys))
    }
}

impl TreeSource for Catalog {
    fn entries(&self, tree: &Hash) -> Result<Vec<TreeEntry>> {
        self.tree_entries(tree)
    }
    fn lookup(&self, tree: &Hash, name: &str) -> Result<Option<TreeEntry>> {
        self.tree_lookup(tree, name)
    }
    fn differing(&self, a: &Hash, b: &Hash) -> Result<(Vec<TreeEntry>, Vec<TreeEntry>)> {
        self.tree_entries_differing(a, b)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Added,
    Removed,
    Modified,
    Renamed,
}

impl Status {
    pub fn letter(self) -> char {
        match self {
            Status::Added => 'A',
            Status::Removed => 'D',
            Status::Modified => 'M',
            Status::Renamed => 'R',
        }
    }
}

/// One changed file. `path` is where it is in B (for a removal: where it was in A).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub status: Status,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// Size in B (None for a removal).
    pub size: Option<u64>,
    /// Size in A (None for an addition).
    pub old_size: Option<u64>,
    pub hash: Option<Hash>,
    pub old_hash: Option<Hash>,
    /// Set when the owner or group changed (a `chown` alone is a change too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerChange>,
    /// What the entry is, when it is not a plain file (a symlink, FIFO, socket
    /// or device): left out for files so their JSON is as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<EntryKind>,
    /// A symlink whose target changed (`symlink target a -> b`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetChange>,
    /// The user extended attributes differ (set, changed or removed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub xattrs: bool,
}

/// A symlink's target in A and in B (as stored, never resolved).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetChange {
    pub from: String,
    pub to: String,
}

impl std::fmt::Display for TargetChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "symlink target {} -> {}", self.from, self.to)
    }
}

/// The `kind` a change reports: None for a file (the common case).
fn special_kind(e: &TreeEntry) -> Option<EntryKind> {
    e.kind.is_special().then_some(e.kind)
}

/// An owner change from A to B (None: not recorded, an entry archived before
/// owners were kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OwnerChange {
    pub from: Option<Owner>,
    pub to: Option<Owner>,
}

impl OwnerChange {
    /// The change between two entries, if their owners differ.
    pub fn between(a: &TreeEntry, b: &TreeEntry) -> Option<OwnerChange> {
        (a.owner != b.owner).then_some(OwnerChange { from: a.owner, to: b.owner })
    }
}

impl std::fmt::Display for OwnerChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |o: Option<Owner>| o.map(|o| o.to_string()).unwrap_or_else(|| "unrecorded".into());
        write!(f, "owner {} -> {}", show(self.from), show(self.to))
    }
}

impl Change {
    /// `  owner A -> B` when the owner changed, else nothing (for one-line listings).
    pub fn owner_note(&self) -> String {
        self.owner.map(|o| format!("  {o}")).unwrap_or_default()
    }

    /// A file or folder whose content is unchanged and whose owner or user
    /// extended attributes changed (both live beside the hash, not in it).
    fn metadata_only(path: &str, x: &TreeEntry, y: &TreeEntry) -> Option<Change> {
        let owner = OwnerChange::between(x, y);
        (owner.is_some() || x.extra.xattrs != y.extra.xattrs).then(|| Change::modified(path, x, y, owner))
    }

    /// `x` became `y` at `path` (content, owner or both; for a symlink, its target).
    fn modified(path: &str, x: &TreeEntry, y: &TreeEntry, owner: Option<OwnerChange>) -> Change {
        let target = match (&x.extra.target, &y.extra.target) {
            (Some(a), Some(b)) if a != b => Some(TargetChange { from: a.clone(), to: b.clone() }),
            _ => None,
        };
        Change {
            status: Status::Modified,
            path: path.to_string(),
            old_path: None,
            size: Some(y.size),
            old_size: Some(x.size),
            hash: Some(y.hash),
            old_hash: Some(x.hash),
            owner,
            kind: special_kind(y),
            target,
            xattrs: x.extra.xattrs != y.extra.xattrs,
        }
    }

    /// `y` appeared at `path`.
    fn added(path: &str, y: &TreeEntry) -> Change {
        Change {
            status: Status::Added,
            path: path.to_string(),
            old_path: None,
            size: Some(y.size),
            old_size: None,
            hash: Some(y.hash),
            old_hash: None,
            owner: None,
            kind: special_kind(y),
            target: None,
            xattrs: false,
        }
    }

    /// `x` went from `path`.
    fn removed(path: &str, x: &TreeEntry) -> Change {
        Change {
            status: Status::Removed,
            path: path.to_string(),
            old_path: None,
            size: None,
            old_size: Some(x.size),
            hash: None,
            old_hash: Some(x.hash),
            owner: None,
            kind: special_kind(x),
            target: None,
            xattrs: false,
        }
    }

    /// What a listing line adds after the sizes: the kind of a special entry,
    /// a symlink's target change, an owner change.
    pub fn notes(&self) -> String {
        let mut s = String::new();
        if let Some(k) = self.kind {
            s.push_str(&format!("  [{}]", k.word()));
        }
        if let Some(t) = &self.target {
            s.push_str(&format!("  {t}"));
        }
        if self.xattrs {
            s.push_str("  xattrs changed");
        }
        s + &self.owner_note()
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DiffSummary {
    pub added: u64,
    pub removed: u64,
    pub modified: u64,
    pub renamed: u64,
    pub bytes_added: u64,
    pub bytes_removed: u64,
}

pub fn summarize(changes: &[Change]) -> DiffSummary {
    let mut s = DiffSummary::default();
    for c in changes {
        match c.status {
            Status::Added => {
                s.added += 1;
                s.bytes_added += c.size.unwrap_or(0);
            }
            Status::Removed => {
                s.removed += 1;
                s.bytes_removed += c.old_size.unwrap_or(0);
            }
            Status::Modified => {
                s.modified += 1;
                let (n, o) = (c.size.unwrap_or(0), c.old_size.unwrap_or(0));
                if n >= o {
                    s.bytes_added += n - o;
                } else {
                    s.bytes_removed += o - n;
                }
            }
            Status::Renamed => s.renamed += 1,
        }
    }
    s
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// The entry at `path` below the tree `root` (None if absent). The empty path
/// names the root itself, as a folder entry.
pub fn entry_at(src: &impl TreeSource, root: Option<Hash>, path: &str) -> Result<Option<TreeEntry>> {
    let Some(root) = root else { return Ok(None) };
    let mut e = TreeEntry {
        name: String::new(),
        kind: EntryKind::Dir,
        hash: root,
        size: 0,
        mode: 0o755,
        mtime_ns: 0,
        owner: None,
        extra: Default::default(),
    };
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if e.kind != EntryKind::Dir {
            return Ok(None);
        }
        match src.lookup(&e.hash, part)? {
            Some(c) => e = c,
            None => return Ok(None),
        }
    }
    Ok(Some(e))
}

/// File-level changes from tree `a` to tree `b` (either may be absent: an empty
/// branch), restricted to `path` ("" for everything). Sorted by path.
pub fn diff_trees(src: &impl TreeSource, a: Option<Hash>, b: Option<Hash>, path: &str) -> Result<Vec<Change>> {
    let path = path.trim_matches('/');
    let ea = entry_at(src, a, path)?;
    let eb = entry_at(src, b, path)?;
    let mut out = Vec::new();
    walk(src, ea.as_ref(), eb.as_ref(), path, &mut out)?;
    Ok(pair_renames(out))
}

fn walk(src: &impl TreeSource, a: Option<&TreeEntry>, b: Option<&TreeEntry>, path: &str, out: &mut Vec<Change>) -> Result<()> {
    match (a, b) {
        (None, None) => {}
        // Equal hash, equal kind: the same content (a folder: the same subtree). Not opened.
        // Its owner is the entry's own, outside the hash, so it is compared here.
        (Some(x), Some(y)) if x.kind == y.kind && x.hash == y.hash => {
            if let Some(c) = Change::metadata_only(path, x, y) {
                out.push(c);
            }
        }
        (Some(x), Some(y)) if x.kind == EntryKind::Dir && y.kind == EntryKind::Dir => {
            if let Some(c) = Change::metadata_only(path, x, y) {
                out.push(c);
            }
            let (xs, ys) = src.differing(&x.hash, &y.hash)?;
            // Both are sorted by name: one merge pass.
            let (mut i, mut j) = (0, 0);
            while i < xs.len() || j < ys.len() {
                let ord = match (xs.get(i), ys.get(j)) {
                    (Some(p), Some(q)) => p.name.as_bytes().cmp(q.name.as_bytes()),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    _ => std::cmp::Ordering::Greater,
                };
                match ord {
                    std::cmp::Ordering::Less => {
                        walk(src, Some(&xs[i]), None, &join(path, &xs[i].name), out)?;
                        i += 1;
                    }
                    std::cmp::Ordering::Greater => {
                        walk(src, None, Some(&ys[j]), &join(path, &ys[j].name), out)?;
                        j += 1;
                    }
                    std::cmp::Ordering::Equal => {
                        walk(src, Some(&xs[i]), Some(&ys[j]), &join(path, &xs[i].name), out)?;
                        i += 1;
                        j += 1;
                    }
                }
            }
        }
        // The same kind of leaf (file, symlink, device...) with other content or target.
        (Some(x), Some(y)) if x.kind == y.kind && x.kind != EntryKind::Dir => {
            out.push(Change::modified(path, x, y, OwnerChange::between(x, y)))
        }
        // A file became a folder, a link or the other way round.
        (Some(x), Some(y)) => {
            walk(src, Some(x), None, path, out)?;
            walk(src, None, Some(y), path, out)?;
        }
        (Some(x), None) => match x.kind {
            EntryKind::Dir => {
                for c in src.entries(&x.hash)? {
                    let p = join(path, &c.name);
                    walk(src, Some(&c), None, &p, out)?;
                }
            }
            _ => out.push(Change::removed(path, x)),
        },
        (None, Some(y)) => match y.kind {
            EntryKind::Dir => {
                for c in src.entries(&y.hash)? {
                    let p = join(path, &c.name);
                    walk(src, None, Some(&c), &p, out)?;
                }
            }
            _ => out.push(Change::added(path, y)),
        },
    }
    Ok(())
}

/// Pair each added file with a removed file of the same content: a rename.
/// Empty files are never paired (every empty file has the same hash). When
/// several candidates share a hash they pair in path order.
fn pair_renames(changes: Vec<Change>) -> Vec<Change> {
    let mut removed: HashMap<Hash, std::collections::VecDeque<usize>> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        if c.status == Status::Removed && c.old_size.unwrap_or(0) > 0 {
            if let Some(h) = c.old_hash {
                removed.entry(h).or_default().push_back(i);
            }
        }
    }
    let mut taken = vec![false; changes.len()];
    let mut out = Vec::with_capacity(changes.len());
    for (i, c) in changes.iter().enumerate() {
        if c.status != Status::Added {
            continue;
        }
        let partner = c.hash.and_then(|h| removed.get_mut(&h)).and_then(|q| q.pop_front());
        if let Some(r) = partner {
            taken[r] = true;
            taken[i] = true;
            let old = &changes[r];
            out.push(Change {
                status: Status::Renamed,
                path: c.path.clone(),
                old_path: Some(old.path.clone()),
                size: c.size,
                old_size: old.old_size,
                hash: c.hash,
                old_hash: old.old_hash,
                owner: None,
                kind: c.kind,
                target: None,
                xattrs: false,
            });
        }
    }
    for (i, c) in changes.into_iter().enumerate() {
        if !taken[i] {
            out.push(c);
        }
    }
    out.sort_by(|x, y| x.path.cmp(&y.path).then((x.status as u8).cmp(&(y.status as u8))));
    out
}

/// Root tree of `BRANCH` or `BRANCH@COMMIT` (None: a branch with no commit yet),
/// with the commit it came from.
pub fn tree_of(archive: &Archive, spec: &str) -> Result<(Option<Hash>, Option<Hash>)> {
    let branch = spec.split('@').next().unwrap_or("");
    if spec.contains('/') || !super::objects::valid_branch_name(branch) {
        return Err(ArchiveError::BadBranchName(spec.to_string()));
    }
    let (_, commit) = archive.resolve_ref(spec)?;
    Ok((archive.root_tree(commit.as_ref())?, commit))
}

/// `reelfs diff A B [PATH]`.
pub fn diff(archive: &Archive, a: &str, b: &str, path: &str) -> Result<Vec<Change>> {
    let (ta, _) = tree_of(archive, a)?;
    let (tb, _) = tree_of(archive, b)?;
    // One read transaction: every folder from the same catalog state (a
    // commit landing meanwhile cannot mix into the listing), and one lock
    // taken for the whole walk instead of one per query.
    archive.catalog.begin_snapshot()?;
    let changes = diff_trees(&archive.catalog, ta, tb, path);
    let _ = archive.catalog.end_snapshot();
    changes
}

/// One commit in the history of a path.
#[derive(Debug, Clone)]
pub struct PathEvent {
    pub commit: CommitRow,
    /// The path's name in this commit.
    pub path: String,
    /// Set when this commit renamed the path: its name in the parent.
    pub renamed_from: Option<String>,
    /// added, removed, modified or renamed.
    pub status: Status,
}

/// Commits (newest first, following first parents, as `log` does) that changed
/// `path`, following it back across renames: when the path appears in a commit
/// and its content was at another path in the parent, the walk continues under
/// the old name. A merge commit counts when the path differs from its first
/// parent (that is, when the merge brought the change in).
pub fn path_history(archive: &Archive, head: Option<Hash>, path: &str, limit: usize) -> Result<Vec<PathEvent>> {
    let cat = &archive.catalog;
    let mut path = path.trim_matches('/').to_string();
    let mut out = Vec::new();
    let mut cur = head;
    while let Some(h) = cur {
        if out.len() >= limit {
            break;
        }
        let c = archive.commit(&h)?;
        let parent = c.parents.first().copied();
        let ptree = archive.root_tree(parent.as_ref())?;
        let here = entry_at(cat, Some(c.tree), &path)?;
        let before = entry_at(cat, ptree, &path)?;
        let same = match (&here, &before) {
            (Some(x), Some(y)) => x.kind == y.kind && x.hash == y.hash && x.owner == y.owner,
            (None, None) => true,
            _ => false,
        };
        if !same {
            let mut ev = PathEvent {
                commit: c.clone(),
                path: path.clone(),
                renamed_from: None,
                status: match (&here, &before) {
                    (Some(_), None) => Status::Added,
                    (None, Some(_)) => Status::Removed,
                    _ => Status::Modified,
                },
            };
            if here.is_some() && before.is_none() {
                if let Some(old) = renamed_from(cat, ptree, c.tree, &path, here.as_ref())? {
                    ev.renamed_from = Some(old.clone());
                    ev.status = Status::Renamed;
                    path = old;
                }
            }
            out.push(ev);
        }
        cur = parent;
    }
    Ok(out)
}

/// `path` exists in `new` but not in `old`: was it moved there from another path?
fn renamed_from(cat: &Catalog, old: Option<Hash>, new: Hash, path: &str, here: Option<&TreeEntry>) -> Result<Option<String>> {
    if old.is_none() {
        return Ok(None);
    }
    let changes = diff_trees(cat, old, Some(new), "")?;
    let is_dir = here.map(|e| e.kind == EntryKind::Dir).unwrap_or(false);
    for ch in changes.iter().filter(|c| c.status == Status::Renamed) {
        let Some(op) = &ch.old_path else { continue };
        if !is_dir && ch.path == path {
            return Ok(Some(op.clone()));
        }
        // A folder moved: its files were renamed with the same relative paths.
        if is_dir {
            if let Some(rel) = ch.path.strip_prefix(&format!("{path}/")) {
                if let Some(base) = op.strip_suffix(&format!("/{rel}")) {
                    return Ok(Some(base.to_string()));
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::objects::Tree;
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashSet;

    /// Trees in memory; records every tree opened.
    #[derive(Default)]
    struct Mem {
        trees: HashMap<Hash, Vec<TreeEntry>>,
        opened: RefCell<Vec<Hash>>,
    }

    impl TreeSource for Mem {
        fn entries(&self, tree: &Hash) -> Result<Vec<TreeEntry>> {
            self.opened.borrow_mut().push(*tree);
            Ok(self.trees.get(tree).cloned().unwrap_or_default())
        }
        fn lookup(&self, tree: &Hash, name: &str) -> Result<Option<TreeEntry>> {
            self.opened.borrow_mut().push(*tree);
            Ok(self.trees.get(tree).and_then(|v| v.iter().find(|e| e.name == name).cloned()))
        }
    }

    fn file(name: &str, content: &str) -> TreeEntry {
        TreeEntry {
            name: name.into(),
            kind: EntryKind::File,
            hash: Hash::of(content.as_bytes()),
            size: content.len() as u64,
            mode: 0o644,
            mtime_ns: 0,
            owner: None,
            extra: Default::default(),
        }
    }

    impl Mem {
        fn dir(&mut self, name: &str, mut entries: Vec<TreeEntry>) -> TreeEntry {
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            let t = Tree { entries: entries.clone() };
            let id = t.id();
            self.trees.insert(id, entries);
            TreeEntry {
                name: name.into(),
                kind: EntryKind::Dir,
                hash: id,
                size: t.total_size(),
                mode: 0o755,
                mtime_ns: 0,
                owner: None,
                extra: Default::default(),
            }
        }
    }

    #[test]
    fn unchanged_subtree_is_never_opened() {
        let mut m = Mem::default();
        let big: Vec<TreeEntry> = (0..100).map(|i| file(&format!("C{i:03}.mov"), &format!("clip {i}"))).collect();
        let shared = m.dir("Day01", big);
        let a_day2 = m.dir("Day02", vec![file("x.wav", "sound v1"), file("old.mov", "moving")]);
        let b_day2 = m.dir("Day02", vec![file("x.wav", "sound v2"), file("new.mov", "moving"), file("y.txt", "added")]);
        let a = m.dir("", vec![shared.clone(), a_day2.clone(), file("gone.txt", "bye")]);
        let b = m.dir("", vec![shared.clone(), b_day2.clone()]);
        let changes = diff_trees(&m, Some(a.hash), Some(b.hash), "").unwrap();
        let opened: HashSet<Hash> = m.opened.borrow().iter().copied().collect();
        assert!(!opened.contains(&shared.hash), "the unchanged Day01 subtree was read");
        assert_eq!(opened, [a.hash, b.hash, a_day2.hash, b_day2.hash].into_iter().collect());
        let got: Vec<(Status, &str, Option<&str>)> = changes.iter().map(|c| (c.status, c.path.as_str(), c.old_path.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                (Status::Renamed, "Day02/new.mov", Some("Day02/old.mov")),
                (Status::Modified, "Day02/x.wav", None),
                (Status::Added, "Day02/y.txt", None),
                (Status::Removed, "gone.txt", None),
            ]
        );
        let s = summarize(&changes);
        assert_eq!((s.added, s.removed, s.modified, s.renamed), (1, 1, 1, 1));
    }

    /// The catalog, counting `tree_entries` queries per tree.
    struct Counting<'a>(&'a Catalog, RefCell<HashMap<Hash, u32>>);

    impl TreeSource for Counting<'_> {
        fn entries(&self, tree: &Hash) -> Result<Vec<TreeEntry>> {
            *self.1.borrow_mut().entry(*tree).or_default() += 1;
            self.0.tree_entries(tree)
        }
        fn lookup(&self, tree: &Hash, name: &str) -> Result<Option<TreeEntry>> {
            *self.1.borrow_mut().entry(*tree).or_default() += 1;
            self.0.tree_lookup(tree, name)
        }
    }

    #[test]
    fn on_a_real_archive_only_differing_subtrees_are_queried() {
        use crate::archive::ingest::{ingest, IngestOptions};
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let mut a = Archive::init(&dir.path().join("arch")).unwrap();
        let src = dir.path().join("src");
        for i in 0..50 {
            let f = src.join(format!("Day01/A{:03}/clip{i}.mov", i % 5));
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(&f, format!("clip {i}")).unwrap();
        }
        std::fs::create_dir_all(src.join("Day02")).unwrap();
        std::fs::write(src.join("Day02/sound.wav"), "v1").unwrap();
        let opts = |b: &str| IngestOptions {
            branch: b.into(),
            dest: String::new(),
            message: None,
            progress: Default::default(),
            prober: None,
            interrupt: Arc::new(AtomicBool::new(false)),
        };
        ingest(&mut a, &[src.join("Day01"), src.join("Day02")], &opts("main")).unwrap();
        a.create_branch("grade", Some("main")).unwrap();
        let src2 = dir.path().join("src2/Day02");
        std::fs::create_dir_all(&src2).unwrap();
        std::fs::write(src2.join("sound.wav"), "v2").unwrap();
        ingest(&mut a, &[src2], &opts("grade")).unwrap();
        let (ta, _) = tree_of(&a, "main").unwrap();
        let (tb, _) = tree_of(&a, "grade").unwrap();
        let day01 = entry_at(&a.catalog, ta, "Day01").unwrap().unwrap().hash;
        let c = Counting(&a.catalog, RefCell::new(HashMap::new()));
        let changes = diff_trees(&c, ta, tb, "").unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].status, changes[0].path.as_str()), (Status::Modified, "Day02/sound.wav"));
        let counts = c.1.borrow();
        assert!(!counts.contains_key(&day01), "Day01 (unchanged, 55 entries below) was queried");
        // Two roots and the two Day02 trees: four queries in all.
        assert_eq!(counts.values().sum::<u32>(), 4, "{counts:?}");
    }

    #[test]
    fn restricted_to_a_path_and_empty_sides() {
        let mut m = Mem::default();
        let d1 = m.dir("Day01", vec![file("a", "1"), file("b", "2")]);
        let d2 = m.dir("Day02", vec![file("c", "3")]);
        let root = m.dir("", vec![d1.clone(), d2.clone()]);
        let all = diff_trees(&m, None, Some(root.hash), "").unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|c| c.status == Status::Added));
        m.opened.borrow_mut().clear();
        let one = diff_trees(&m, Some(root.hash), None, "Day02").unwrap();
        assert_eq!(one.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), vec!["Day02/c"]);
        assert!(!m.opened.borrow().contains(&d1.hash));
        assert!(diff_trees(&m, Some(root.hash), Some(root.hash), "").unwrap().is_empty());
    }

    #[test]
    fn file_to_folder_is_remove_plus_add_and_empty_files_are_not_renames() {
        let mut m = Mem::default();
        let inner = m.dir("x", vec![file("y", "data")]);
        let a = m.dir("", vec![file("x", "data2"), file("e1", "")]);
        let b = m.dir("", vec![inner, file("e2", "")]);
        let ch = diff_trees(&m, Some(a.hash), Some(b.hash), "").unwrap();
        let got: Vec<(Status, &str)> = ch.iter().map(|c| (c.status, c.path.as_str())).collect();
        assert_eq!(got, vec![(Status::Removed, "e1"), (Status::Added, "e2"), (Status::Removed, "x"), (Status::Added, "x/y")]);
    }
}

#[cfg(test)]
mod owner_tests {
    use super::super::objects::Tree;
    use super::*;

    struct Mem(HashMap<Hash, Vec<TreeEntry>>);

    impl TreeSource for Mem {
        fn entries(&self, tree: &Hash) -> Result<Vec<TreeEntry>> {
            Ok(self.0.get(tree).cloned().unwrap_or_default())
        }
        fn lookup(&self, tree: &Hash, name: &str) -> Result<Option<TreeEntry>> {
            Ok(self.0.get(tree).and_then(|v| v.iter().find(|e| e.name == name).cloned()))
        }
    }

    fn entry(name: &str, kind: EntryKind, hash: Hash, owner: Option<Owner>) -> TreeEntry {
        TreeEntry { name: name.into(), kind, hash, size: 4, mode: 0o644, mtime_ns: 0, owner, extra: Default::default() }
    }

    fn dir(m: &mut Mem, name: &str, entries: Vec<TreeEntry>, owner: Option<Owner>) -> TreeEntry {
        let t = Tree { entries: entries.clone() };
        m.0.insert(t.id(), entries);
        entry(name, EntryKind::Dir, t.id(), owner)
    }

    #[test]
    fn a_chown_alone_is_a_change_of_the_file_or_folder() {
        let (root, user) = (Some(Owner { uid: 0, gid: 0 }), Some(Owner { uid: 1000, gid: 1000 }));
        let mut m = Mem(HashMap::new());
        let clip = Hash::of(b"clip");
        let sub_a = dir(&mut m, "sub", vec![entry("x.wav", EntryKind::File, Hash::of(b"x"), root)], root);
        let sub_b = dir(&mut m, "sub", vec![entry("x.wav", EntryKind::File, Hash::of(b"x"), root)], user);
        let a = dir(&mut m, "", vec![entry("c.mov", EntryKind::File, clip, root), sub_a], None);
        let b = dir(&mut m, "", vec![entry("c.mov", EntryKind::File, clip, user), sub_b], None);
        let changes = diff_trees(&m, Some(a.hash), Some(b.hash), "").unwrap();
        let got: Vec<(&str, Status, Option<OwnerChange>)> = changes.iter().map(|c| (c.path.as_str(), c.status, c.owner)).collect();
        let change = Some(OwnerChange { from: root, to: user });
        assert_eq!(got, vec![("c.mov", Status::Modified, change), ("sub", Status::Modified, change)]);
        assert_eq!(changes[0].hash, changes[0].old_hash);
        assert_eq!(changes[0].owner_note(), "  owner 0:0 -> 1000:1000");
        // Content and owner changed together: one change that says both.
        let b2 = dir(&mut m, "", vec![entry("c.mov", EntryKind::File, Hash::of(b"new"), user)], None);
        let a2 = dir(&mut m, "", vec![entry("c.mov", EntryKind::File, clip, None)], None);
        let c = diff_trees(&m, Some(a2.hash), Some(b2.hash), "").unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].owner, Some(OwnerChange { from: None, to: user }));
        assert_eq!(c[0].owner_note(), "  owner unrecorded -> 1000:1000");
        // Same owners: nothing to report.
        assert!(diff_trees(&m, Some(a.hash), Some(a.hash), "").unwrap().is_empty());
    }

    #[test]
    fn the_catalog_returns_the_same_differing_entries_as_a_full_listing_would() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::init(&dir.path().join("arch")).unwrap();
        let (root, user) = (Some(Owner { uid: 0, gid: 0 }), Some(Owner { uid: 1000, gid: 1000 }));
        let file = |i: u32, owner| entry(&format!("C{i:04}.mov"), EntryKind::File, Hash::of(format!("clip {i}").as_bytes()), owner);
        let xs: Vec<TreeEntry> = (0..300).map(|i| file(i, root)).collect();
        let mut ys = xs.clone();
        ys[7].hash = Hash::of(b"regraded");
        ys[40].owner = user;
        ys[41].mtime_ns = 5;
        ys[90].kind = EntryKind::Fifo;
        ys.remove(120);
        ys.push(file(9999, root));
        ys[0].extra.link_group = Some(3);
        ys.sort_by(|p, q| p.name.cmp(&q.name));
        let (ta, tb) = (Tree { entries: xs.clone() }.id(), Tree { entries: ys.clone() }.id());
        a.catalog.insert_tree(&ta, &xs).unwrap();
        a.catalog.insert_tree(&tb, &ys).unwrap();
        let mut m = Mem(HashMap::new());
        m.0.insert(ta, xs);
        m.0.insert(tb, ys);
        let (got, want) = (a.catalog.differing(&ta, &tb).unwrap(), m.differing(&ta, &tb).unwrap());
        let names = |v: &[TreeEntry]| v.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&got.0), ["C0000.mov", "C0007.mov", "C0040.mov", "C0041.mov", "C0090.mov", "C0120.mov"]);
        assert_eq!(names(&got.1), ["C0000.mov", "C0007.mov", "C0040.mov", "C0041.mov", "C0090.mov", "C9999.mov"]);
        assert_eq!(got, want);
        // And the diff over them is the full diff's.
        assert_eq!(diff_trees(&a.catalog, Some(ta), Some(tb), "").unwrap(), diff_trees(&m, Some(ta), Some(tb), "").unwrap());
        // A folder the catalog lacks is an error, not an empty folder.
        assert!(a.catalog.differing(&ta, &Hash::of(b"no such tree")).is_err());
    }
}
