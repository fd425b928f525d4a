//! `reelfs merge SRC --into DST`: a three-way merge at file level.
//!
//! The merge base is the lowest common ancestor of the two heads (over both
//! parents of every commit). For each path: changed on one side only -> that
//! side wins; changed the same way on both -> fine; changed differently on both
//! (including modified on one side and deleted on the other, or added twice with
//! different content) -> a conflict. Conflicts are listed by path and nothing is
//! written unless every one is resolved with `--ours PATH` / `--theirs PATH` (a
//! folder path resolves every conflict below it). The merge walks the three trees
//! together and opens only folders whose hashes differ, so unchanged subtrees are
//! reused as they are.
//!
//! The merge commit has two parents (DST head, SRC head) and is written as every
//! small metadata write is (`Archive::write_objects`): new trees, the commit and
//! the ref record in a new pack, sealed and fsynced before the catalog commit.

use super::catalog::Catalog;
use super::diff::{diff_trees, Change, TreeSource};
use super::error::{ArchiveError, Result};
use super::objects::{valid_branch_name, EntryKind, Hash, Tree, TreeEntry};
use super::repo::{make_commit, Archive, NewObject};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

#[derive(Debug, Default, Clone)]
pub struct MergeOptions {
    pub ours: Vec<String>,
    pub theirs: Vec<String>,
    pub message: Option<String>,
    /// Work everything out, write nothing.
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// A merge commit with two parents was written.
    Merged,
    /// DST was an ancestor of SRC: DST now points at SRC's head, no new commit.
    FastForward,
    /// SRC's changes are already in DST: nothing to do.
    UpToDate,
    /// Unresolved conflicts: nothing was written.
    Conflicts,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Conflict {
    pub path: String,
    /// modify/modify, modify/delete, delete/modify, add/add, file/folder.
    pub kind: String,
    /// "ours" or "theirs" when resolved by --ours/--theirs.
    pub resolved: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MergeReport {
    pub src: String,
    pub dst: String,
    pub outcome: Outcome,
    pub base: Option<String>,
    /// The merge commit (or, for a fast-forward, DST's new head).
    pub commit: Option<String>,
    pub parents: Vec<String>,
    pub conflicts: Vec<Conflict>,
    /// What DST gains: the file-level diff from its old head to the result.
    pub changes: Vec<Change>,
    /// --ours/--theirs paths that matched no conflict.
    pub unused_resolutions: Vec<String>,
    pub dry_run: bool,
}

/// Every ancestor of `h`, itself included.
pub fn ancestors(archive: &Archive, h: Hash) -> Result<HashSet<Hash>> {
    let mut seen = HashSet::new();
    let mut q = VecDeque::from([h]);
    while let Some(c) = q.pop_front() {
        if !seen.insert(c) {
            continue;
        }
        for p in archive.commit(&c)?.parents {
            if !seen.contains(&p) {
                q.push_back(p);
            }
        }
    }
    Ok(seen)
}

/// The lowest common ancestor of `a` and `b`: a common ancestor that is not an
/// ancestor of another common ancestor. With criss-cross history there can be
/// several; the newest is taken. None: the histories are unrelated.
pub fn merge_base(archive: &Archive, a: Hash, b: Hash) -> Result<Option<Hash>> {
    let anc_a = ancestors(archive, a)?;
    let mut candidates = Vec::new();
    let mut seen = HashSet::new();
    let mut q = VecDeque::from([b]);
    while let Some(c) = q.pop_front() {
        if !seen.insert(c) {
            continue;
        }
        if anc_a.contains(&c) {
            candidates.push(c);
            continue; // its ancestors are common too, but not lowest
        }
        for p in archive.commit(&c)?.parents {
            q.push_back(p);
        }
    }
    if candidates.len() > 1 {
        let mut below: HashSet<Hash> = HashSet::new();
        for c in &candidates {
            let mut anc = ancestors(archive, *c)?;
            anc.remove(c);
            below.extend(anc);
        }
        candidates.retain(|c| !below.contains(c));
    }
    let mut best: Option<(i64, Hash)> = None;
    for c in candidates {
        let t = archive.commit(&c)?.time_ns;
        if best.map(|(bt, bh)| (t, c) > (bt, bh)).unwrap_or(true) {
            best = Some((t, c));
        }
    }
    Ok(best.map(|(_, h)| h))
}

/// True when DST has uncommitted writes made through the mount.
pub fn has_staged_changes(cat: &Catalog, branch: &str) -> Result<bool> {
    if !cat.has_staging_table()? {
        return Ok(false);
    }
    cat.has_staged_rows(branch)
}

struct Ctx<'a> {
    cat: &'a Catalog,
    /// Resolutions: path -> "ours"/"theirs".
    resolutions: Vec<(String, &'static str)>,
    used: HashSet<String>,
    conflicts: Vec<Conflict>,
    new_trees: Vec<Tree>,
    new_ids: HashSet<Hash>,
}

fn same(a: Option<&TreeEntry>, b: Option<&TreeEntry>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => x.kind == y.kind && x.hash == y.hash && x.mode == y.mode && x.owner == y.owner,
        _ => false,
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

impl Ctx<'_> {
    /// The --ours/--theirs that covers `path` (the longest matching path wins).
    fn resolution(&mut self, path: &str) -> Option<&'static str> {
        let mut best: Option<(usize, &String, &'static str)> = None;
        for (p, side) in &self.resolutions {
            let covers = p.is_empty() || path == p || path.starts_with(&format!("{p}/"));
            if covers && best.map(|(l, _, _)| p.len() > l).unwrap_or(true) {
                best = Some((p.len(), p, side));
            }
        }
        let (_, p, side) = best?;
        self.used.insert(p.clone());
        Some(side)
    }

    fn merge_entry(
        &mut self,
        base: Option<&TreeEntry>,
        ours: Option<&TreeEntry>,
        theirs: Option<&TreeEntry>,
        path: &str,
    ) -> Result<Option<TreeEntry>> {
        if same(ours, theirs) {
            return Ok(ours.cloned());
        }
        if same(base, ours) {
            return Ok(theirs.cloned());
        }
        if same(base, theirs) {
            return Ok(ours.cloned());
        }
        if let (Some(o), Some(t)) = (ours, theirs) {
            if o.kind == EntryKind::Dir && t.kind == EntryKind::Dir {
                let b = base.filter(|b| b.kind == EntryKind::Dir);
                return self.merge_dir(b, o, t, path).map(Some);
            }
        }
        let kind = match (base, ours, theirs) {
            (_, Some(o), Some(t)) if o.kind != t.kind => "file/folder",
            (None, Some(_), Some(_)) => "add/add",
            (Some(_), Some(_), Some(_)) => "modify/modify",
            (Some(_), Some(_), None) => "modify/delete",
            (Some(_), None, Some(_)) => "delete/modify",
            _ => "modify/modify",
        };
        let resolved = self.resolution(path);
        self.conflicts.push(Conflict { path: path.to_string(), kind: kind.into(), resolved: resolved.map(String::from) });
        Ok(match resolved {
            Some("theirs") => theirs.cloned(),
            _ => ours.cloned(),
        })
    }

    fn merge_dir(&mut self, base: Option<&TreeEntry>, ours: &TreeEntry, theirs: &TreeEntry, path: &str) -> Result<TreeEntry> {
        let load = |e: Option<&TreeEntry>| -> Result<HashMap<String, TreeEntry>> {
            Ok(match e {
                Some(e) => self.cat.tree_entries(&e.hash)?.into_iter().map(|c| (c.name.clone(), c)).collect(),
                None => HashMap::new(),
            })
        };
        let b = load(base)?;
        let o = load(Some(ours))?;
        let t = load(Some(theirs))?;
        let names: BTreeSet<&String> = b.keys().chain(o.keys()).chain(t.keys()).collect();
        let mut tree = Tree::default();
        for name in names {
            if let Some(e) = self.merge_entry(b.get(name), o.get(name), t.get(name), &join(path, name))? {
                tree.entries.push(e);
            }
        }
        tree.entries.sort_by(|x, y| x.name.as_bytes().cmp(y.name.as_bytes()));
        let id = tree.id();
        let size = tree.total_size();
        if !self.new_ids.contains(&id) && !self.cat.has_tree(&id)? {
            self.new_ids.insert(id);
            self.new_trees.push(tree);
        }
        // The folder's owner merges like an entry: a side that changed it wins over one that did not.
        let owner = if base.is_some_and(|b| b.owner == ours.owner) { theirs.owner } else { ours.owner };
        Ok(TreeEntry {
            name: ours.name.clone(),
            kind: EntryKind::Dir,
            hash: id,
            size,
            mode: ours.mode,
            mtime_ns: ours.mtime_ns,
            owner,
            extra: Default::default(),
        })
    }
}

/// The catalog plus trees not written yet.
struct Overlay<'a> {
    cat: &'a Catalog,
    trees: HashMap<Hash, Vec<TreeEntry>>,
}

impl TreeSource for Overlay<'_> {
    fn entries(&self, tree: &Hash) -> Result<Vec<TreeEntry>> {
        match self.trees.get(tree) {
            Some(v) => Ok(v.clone()),
            None => self.cat.tree_entries(tree),
        }
    }
    fn lookup(&self, tree: &Hash, name: &str) -> Result<Option<TreeEntry>> {
        match self.trees.get(tree) {
            Some(v) => Ok(v.iter().find(|e| e.name == name).cloned()),
            None => self.cat.tree_lookup(tree, name),
        }
    }
}

fn dir_entry(tree: Hash) -> TreeEntry {
    TreeEntry {
        name: String::new(),
        kind: EntryKind::Dir,
        hash: tree,
        size: 0,
        mode: 0o755,
        mtime_ns: 0,
        owner: None,
        extra: Default::default(),
    }
}

/// Merge `src` (`BRANCH` or `BRANCH@COMMIT`) into the branch `dst`.
pub fn merge(archive: &mut Archive, src: &str, dst: &str, opts: &MergeOptions) -> Result<MergeReport> {
    archive.require_writer()?;
    if dst.contains('@') || dst.contains('/') || !valid_branch_name(dst) {
        return Err(ArchiveError::BadBranchName(dst.to_string()));
    }
    let src_branch = src.split('@').next().unwrap_or("");
    if src.contains('/') || !valid_branch_name(src_branch) {
        return Err(ArchiveError::BadBranchName(src.to_string()));
    }
    let dst_head = archive.catalog.branch_head(dst)?.ok_or_else(|| ArchiveError::NoSuchBranch(dst.into()))?;
    let (_, src_head) = archive.resolve_ref(src)?;
    if has_staged_changes(&archive.catalog, dst)? {
        return Err(ArchiveError::Invalid(format!(
            "branch '{dst}' has staged changes: commit or discard staged changes on {dst} first (`reelfs commit ARCHIVE {dst} -m MSG`)"
        )));
    }
    let mut rep = MergeReport {
        src: src.into(),
        dst: dst.into(),
        outcome: Outcome::UpToDate,
        base: None,
        commit: dst_head.map(|h| h.to_hex()),
        parents: Vec::new(),
        conflicts: Vec::new(),
        changes: Vec::new(),
        unused_resolutions: Vec::new(),
        dry_run: opts.dry_run,
    };
    let Some(src_head) = src_head else { return Ok(rep) }; // nothing to bring in
    let dst_tree = archive.root_tree(dst_head.as_ref())?;
    let src_tree = archive.commit(&src_head)?.tree;
    let fast_forward = |archive: &mut Archive, rep: &mut MergeReport| -> Result<()> {
        rep.outcome = Outcome::FastForward;
        rep.changes = diff_trees(&archive.catalog, dst_tree, Some(src_tree), "")?;
        rep.commit = Some(src_head.to_hex());
        if !opts.dry_run {
            archive.write_objects(&[], &[(dst.to_string(), Some(src_head))])?;
        }
        Ok(())
    };
    let Some(dst_head) = dst_head else {
        // An empty branch takes SRC's history as it is.
        fast_forward(archive, &mut rep)?;
        return Ok(rep);
    };
    if dst_head == src_head {
        return Ok(rep);
    }
    let base = merge_base(archive, dst_head, src_head)?.ok_or_else(|| {
        ArchiveError::Invalid(format!("'{src}' and '{dst}' have no common history (unrelated branches); nothing was merged"))
    })?;
    rep.base = Some(base.to_hex());
    if base == src_head {
        return Ok(rep); // SRC is already in DST's history
    }
    if base == dst_head {
        fast_forward(archive, &mut rep)?;
        return Ok(rep);
    }
    let base_tree = archive.commit(&base)?.tree;
    let mut resolutions = Vec::new();
    for p in &opts.ours {
        resolutions.push((p.trim_matches('/').to_string(), "ours"));
    }
    for p in &opts.theirs {
        resolutions.push((p.trim_matches('/').to_string(), "theirs"));
    }
    let mut ctx = Ctx {
        cat: &archive.catalog,
        resolutions,
        used: HashSet::new(),
        conflicts: Vec::new(),
        new_trees: Vec::new(),
        new_ids: HashSet::new(),
    };
    let ours = dst_tree.map(dir_entry);
    let merged = ctx.merge_entry(Some(&dir_entry(base_tree)), ours.as_ref(), Some(&dir_entry(src_tree)), "")?;
    let merged_tree = merged.map(|e| e.hash).unwrap_or(src_tree);
    let unused: Vec<String> = ctx.resolutions.iter().filter(|(p, _)| !ctx.used.contains(p)).map(|(p, _)| p.clone()).collect();
    let Ctx { conflicts, new_trees, .. } = ctx;
    rep.unused_resolutions = unused;
    rep.conflicts = conflicts;
    if rep.conflicts.iter().any(|c| c.resolved.is_none()) {
        rep.outcome = Outcome::Conflicts;
        return Ok(rep);
    }
    // The new trees are not in the catalog yet: diff through an overlay of them.
    let overlay = Overlay { cat: &archive.catalog, trees: new_trees.iter().map(|t| (t.id(), t.entries.clone())).collect() };
    rep.changes = diff_trees(&overlay, dst_tree, Some(merged_tree), "")?;
    rep.outcome = Outcome::Merged;
    rep.parents = vec![dst_head.to_hex(), src_head.to_hex()];
    let message = opts.message.clone().unwrap_or_else(|| format!("merge {src} into {dst}"));
    let commit = make_commit(merged_tree, vec![dst_head, src_head], dst, &message);
    let commit_id = Hash::of(&commit.encode());
    rep.commit = Some(commit_id.to_hex());
    if !opts.dry_run {
        let mut objs: Vec<NewObject> = new_trees.into_iter().map(NewObject::Tree).collect();
        objs.push(NewObject::Commit(commit));
        archive.write_objects(&objs, &[(dst.to_string(), Some(commit_id))])?;
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::ingest::{ingest, IngestOptions};
    use std::path::Path;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    fn put(archive: &mut Archive, branch: &str, files: &[(&str, &str)], dir: &Path) {
        let src = dir.join(format!("src-{}", crate::archive::objects::now_ns()));
        for (p, content) in files {
            let f = src.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(&f, content).unwrap();
        }
        let entries: Vec<_> = std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()).collect();
        let opts = IngestOptions {
            branch: branch.into(),
            dest: String::new(),
            message: Some(format!("put {}", files.len())),
            progress: Default::default(),
            prober: None,
            interrupt: Arc::new(AtomicBool::new(false)),
        };
        ingest(archive, &entries, &opts).unwrap();
    }

    fn cat(a: &Archive, spec: &str) -> Option<String> {
        let r = a.resolve(spec).ok()?;
        let mut out = Vec::new();
        crate::archive::restore::cat(a, &r.entry.hash, &mut out).ok()?;
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn clean_merge_conflicts_resolution_and_fast_forward() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Archive::init(&dir.path().join("arch")).unwrap();
        put(&mut a, "main", &[("Day01/a.txt", "a1"), ("Day01/b.txt", "b1"), ("Day02/c.txt", "c1")], dir.path());
        a.create_branch("grade", Some("main")).unwrap();
        // Fast-forward: grade moves on, main did not.
        put(&mut a, "grade", &[("Day02/d.txt", "d1")], dir.path());
        let r = merge(&mut a, "grade", "main", &MergeOptions::default()).unwrap();
        assert_eq!(r.outcome, Outcome::FastForward);
        assert_eq!(a.branches().unwrap().iter().find(|b| b.0 == "main").unwrap().1, a.resolve_ref("grade").unwrap().1);
        // Up to date the other way.
        assert_eq!(merge(&mut a, "main", "grade", &MergeOptions::default()).unwrap().outcome, Outcome::UpToDate);
        // Both sides change different files: a clean merge with two parents.
        put(&mut a, "main", &[("Day01/a.txt", "a2")], dir.path());
        put(&mut a, "grade", &[("Day01/b.txt", "b2")], dir.path());
        let r = merge(&mut a, "grade", "main", &MergeOptions::default()).unwrap();
        assert_eq!(r.outcome, Outcome::Merged);
        assert_eq!(r.parents.len(), 2);
        assert_eq!(cat(&a, "main/Day01/a.txt").as_deref(), Some("a2"));
        assert_eq!(cat(&a, "main/Day01/b.txt").as_deref(), Some("b2"));
        let head = a.resolve_ref("main").unwrap().1.unwrap();
        assert_eq!(a.commit(&head).unwrap().parents.len(), 2);
        // The same file changed differently on both: a conflict; nothing written.
        put(&mut a, "main", &[("Day02/c.txt", "c-main")], dir.path());
        put(&mut a, "grade", &[("Day02/c.txt", "c-grade")], dir.path());
        let before = a.resolve_ref("main").unwrap().1;
        let r = merge(&mut a, "grade", "main", &MergeOptions::default()).unwrap();
        assert_eq!(r.outcome, Outcome::Conflicts);
        assert_eq!(r.conflicts.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), vec!["Day02/c.txt"]);
        assert_eq!(a.resolve_ref("main").unwrap().1, before);
        // Resolved with --theirs.
        let opts = MergeOptions { theirs: vec!["Day02/c.txt".into()], ..Default::default() };
        let r = merge(&mut a, "grade", "main", &opts).unwrap();
        assert_eq!(r.outcome, Outcome::Merged);
        assert_eq!(cat(&a, "main/Day02/c.txt").as_deref(), Some("c-grade"));
        // The merge base of the two is now grade's head.
        let g = a.resolve_ref("grade").unwrap().1.unwrap();
        let m = a.resolve_ref("main").unwrap().1.unwrap();
        assert_eq!(merge_base(&a, m, g).unwrap(), Some(g));
    }

    #[test]
    fn unrelated_and_bad_names_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Archive::init(&dir.path().join("arch")).unwrap();
        put(&mut a, "main", &[("x.txt", "x")], dir.path());
        a.create_branch("other", None).unwrap();
        put(&mut a, "other", &[("y.txt", "y")], dir.path());
        let e = merge(&mut a, "other", "main", &MergeOptions::default()).unwrap_err();
        assert!(e.to_string().contains("no common history"), "{e}");
        assert!(matches!(merge(&mut a, "other", "ma/in", &MergeOptions::default()), Err(ArchiveError::BadBranchName(_))));
        assert!(matches!(merge(&mut a, "other", "main@abcd", &MergeOptions::default()), Err(ArchiveError::BadBranchName(_))));
        assert!(merge(&mut a, "other@ffffffff", "main", &MergeOptions::default()).unwrap_err().to_string().contains("no commit"));
    }
}

#[cfg(test)]
mod owner_tests {
    use super::*;
    use crate::archive::ingest::{ingest, IngestOptions};
    use crate::archive::objects::Owner;
    use crate::archive::staging::{Content, Staged};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    fn put(archive: &mut Archive, branch: &str, rel: &str, content: &str, dir: &std::path::Path) {
        let src = dir.join(format!("src-{}", crate::archive::objects::now_ns()));
        let f = src.join(rel);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, content).unwrap();
        let entries: Vec<_> = std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()).collect();
        let opts = IngestOptions {
            branch: branch.into(),
            dest: String::new(),
            message: Some(format!("put {rel}")),
            progress: Default::default(),
            prober: None,
            interrupt: Arc::new(AtomicBool::new(false)),
        };
        ingest(archive, &entries, &opts).unwrap();
    }

    /// Stage a chown of `path` on `branch` (as the mount does) and commit it.
    fn chown(a: &mut Archive, branch: &str, path: &str, owner: Owner) {
        let e = a.resolve(&format!("{branch}/{path}")).unwrap().entry;
        let s = match e.kind {
            EntryKind::File => Staged::File {
                size: e.size,
                mode: e.mode,
                mtime_ns: e.mtime_ns,
                content: Content::Blob(e.hash),
                owner: Some(owner),
                extra: e.extra.clone(),
            },
            EntryKind::Dir => {
                Staged::Dir { mode: e.mode, mtime_ns: e.mtime_ns, tree: Some(e.hash), owner: Some(owner), extra: e.extra.clone() }
            }
            k => panic!("these tests chown files and folders only, not a {}", k.word()),
        };
        a.staging().stage(branch, path, &s).unwrap();
        a.commit_staging(branch, "chown").unwrap().unwrap();
    }

    #[test]
    fn a_chown_on_one_side_survives_the_merge() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Archive::init(&dir.path().join("arch")).unwrap();
        put(&mut a, "main", "Day01/a.txt", "a1", dir.path());
        put(&mut a, "main", "Day01/b.txt", "b1", dir.path());
        a.create_branch("grade", Some("main")).unwrap();
        let editor = Owner { uid: 1234, gid: 55 };
        chown(&mut a, "grade", "Day01/a.txt", editor);
        // (An ingest into Day01 sets the folder's owner from its source folder, so the chown comes after.)
        put(&mut a, "grade", "Day01/c.txt", "c1", dir.path());
        chown(&mut a, "grade", "Day01", Owner { uid: 77, gid: 77 });
        // main moves on inside the same folder: the folder merges entry by entry.
        put(&mut a, "main", "Day01/b.txt", "b2", dir.path());
        let r = merge(&mut a, "grade", "main", &MergeOptions::default()).unwrap();
        assert_eq!(r.outcome, Outcome::Merged);
        assert!(r.conflicts.is_empty(), "{:?}", r.conflicts);
        assert_eq!(a.resolve("main/Day01/a.txt").unwrap().entry.owner, Some(editor));
        assert_eq!(a.resolve("main/Day01").unwrap().entry.owner, Some(Owner { uid: 77, gid: 77 }));
        assert!(a.resolve("main/Day01/c.txt").is_ok());
    }
}
