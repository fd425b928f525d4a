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
    let path = join(&live.path, name);
    let child = Live { branch: live.branch.clone(), path: path.clone() };
    ctx.read(|a| {
        let committed = match tree {
            Some(t) => a.catalog.tree_child(t, name)?,
            None => None,
        };
        // Most branches have nothing staged: one indexed probe saves a
        // staging query per component.
        let staging = a.staging();
        let staged = if staging.has_changes(&live.branch)? { staging.get(&live.branch, &path)? } else { None };
        Ok(match (staged, committed) {
            (Some(Staged::Deleted), _) => None,
            (Some(Staged::File { size, mode, mtime_ns, content, owner }), _) => {
                Some(Target::Staged { live: child, content, size, mode, mtime_ns, owner })
            }
            (Some(Staged::Dir { mode, mtime_ns, tree: t, owner }), c) => {
                let t = t.or(c.filter(|c| c.kind == EntryKind::Dir).map(|c| c.hash));
                Some(Target::Dir { tree: t, mode, mtime_ns, owner, live: Some(child) })
            }
            (None, Some(e)) if e.kind == EntryKind::Dir => {
                Some(Target::Dir { tree: Some(e.hash), mode: e.mode, mtime_ns: e.mtime_ns, owner: e.owner, live: Some(child) })
            }
            (None, Some(e)) => Some(Target::File { entry: e, live: Some(child) }),
            (None, None) => None,
        })
    })
}
