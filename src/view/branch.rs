//! Names inside a branch: the head commit's tree with the branch's staging
//! overlay laid over it (what was written through the mount and not
//! committed yet wins over the tree; a staged delete hides the name).

use super::{Access, Live, Result, Target};
use crate::archive::staging::Staged;
use crate::archive::EntryKind;

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// `name` in the branch folder `live` whose committed tree is `tree`. None:
/// no such name (or a staged delete of it).
pub fn lookup(ctx: &impl Access, live: &Live, tree: Option<&crate::archive::Hash>, name: &str) -> Result<Option<Target>> {
    ctx.read(|a| {
        // Most branches have nothing staged: one indexed probe saves a
        // staging query per component.
        let staged_any = a.staging().has_changes(&live.branch)?;
        child_in(a, live, tree, name, staged_any)
    })
}

/// What `path` (inside the branch, `""` for its root) names in `branch`: a
/// `Target::Dir`, `File` or `Staged` with `live` set. None: no such branch or
/// name. Walked in one read transaction: the head and the staging rows must
/// come from the same moment, or a commit in between would show old content.
pub fn entry(ctx: &impl Access, branch: &str, path: &str) -> Result<Option<Target>> {
    ctx.read(|a| {
        a.catalog.read(|_| {
            let Some(head) = a.catalog.branch_head(branch)? else { return Ok(None) };
            let tree = match head {
                Some(c) => Some(a.commit(&c)?.tree),
                None => None,
            };
            let root = Live { branch: branch.to_string(), path: String::new() };
            // The branch root is no tree entry: its mode is fixed, its mtime
            // (0 here) is its head commit's time, which the caller knows.
            let mut cur = Target::Dir { tree, mode: 0o755, mtime_ns: 0, owner: None, live: Some(root), extra: Default::default() };
            if path.is_empty() {
                return Ok(Some(cur));
            }
            let staged_any = a.staging().has_changes(branch)?;
            for name in path.split('/') {
                let Target::Dir { tree, live: Some(live), .. } = &cur else { return Ok(None) };
                match child_in(a, live, tree.as_ref(), name, staged_any)? {
                    Some(t) => cur = t,
                    None => return Ok(None),
                }
            }
            Ok(Some(cur))
        })
    })
}

/// One step of both: `name` in the branch folder `live` (committed tree
/// `tree`), the staging overlay laid over the tree.
fn child_in(
    a: &crate::archive::Archive,
    live: &Live,
    tree: Option<&crate::archive::Hash>,
    name: &str,
    staged_any: bool,
) -> crate::archive::Result<Option<Target>> {
    let path = join(&live.path, name);
    let committed = match tree {
        Some(t) => a.catalog.tree_child(t, name)?,
        None => None,
    };
    let staged = if staged_any { a.staging().get(&live.branch, &path)? } else { None };
    let child = Live { branch: live.branch.clone(), path };
    Ok(match (staged, committed) {
        (Some(Staged::Deleted), _) => None,
        (Some(Staged::File { size, mode, mtime_ns, content, owner, extra }), _) => {
            Some(Target::Staged { live: child, content, size, mode, mtime_ns, owner, extra })
        }
        (Some(Staged::Dir { mode, mtime_ns, tree: t, owner, extra }), c) => {
            let t = t.or(c.filter(|c| c.kind == EntryKind::Dir).map(|c| c.hash));
            Some(Target::Dir { tree: t, mode, mtime_ns, owner, live: Some(child), extra })
        }
        // A link, FIFO, socket or device made through the mount travels as its entry.
        (Some(Staged::Special { kind, extra, mode, mtime_ns, owner }), _) => {
            let entry = crate::archive::objects::TreeEntry::special(name.to_string(), kind, extra, mode, mtime_ns, owner);
            Some(Target::File { entry, live: Some(child) })
        }
        (None, Some(e)) if e.kind == EntryKind::Dir => {
            Some(Target::Dir { tree: Some(e.hash), mode: e.mode, mtime_ns: e.mtime_ns, owner: e.owner, live: Some(child), extra: e.extra })
        }
        (None, Some(e)) => Some(Target::File { entry: e, live: Some(child) }),
        (None, None) => None,
    })
}
