//! Name -> target, one name at a time (`lookup`, what the mount calls) or a
//! whole mount-relative path (`resolve`, what the CLI and the server call).

use super::{branch, history, path, proxy, slice, Access, Live, Result, Target, ViewError};
use crate::archive::{EntryKind, Hash};

/// A whole path resolved: the normalised path and what it names.
pub struct Resolved {
    pub path: String,
    pub target: Target,
}

/// What the mount-relative `path` names (`""` is the root). `..`, `.`,
/// absolute paths, NUL and empty components are refused first (see `path`).
pub fn resolve(ctx: &impl Access, path: &str) -> Result<Resolved> {
    let parts = path::components(path)?;
    let mut target = Target::Root;
    let mut at = String::new();
    for name in parts {
        target = lookup(ctx, &target, &at, name)?;
        at = if at.is_empty() { name.to_string() } else { format!("{at}/{name}") };
    }
    Ok(Resolved { path: at, target })
}

/// The committed tree of a folder target (None: none, e.g. an empty branch).
pub fn committed_tree(ctx: &impl Access, t: &Target) -> Result<Option<Hash>> {
    Ok(match t {
        Target::Branch { head: Some(c), .. } => Some(ctx.read(|a| a.commit(c))?.tree),
        Target::Commit { tree, .. } => Some(*tree),
        Target::Dir { tree, .. } => *tree,
        _ => None,
    })
}

/// `name` inside `parent` (whose mount path is `parent_path`). The caller has
/// checked `name` is one component (the kernel guarantees it; `resolve` checks).
pub fn lookup(ctx: &impl Access, parent: &Target, parent_path: &str, name: &str) -> Result<Target> {
    let here = if parent_path.is_empty() { name.to_string() } else { format!("{parent_path}/{name}") };
    match parent {
        Target::Root => {
            if name == history::HISTORY_DIR {
                return Ok(Target::History);
            }
            if let Some(t) = history::at_commit(ctx, name)? {
                return Ok(t);
            }
            return match ctx.heads()?.get(name) {
                Some(head) => Ok(Target::Branch { name: name.to_string(), head: *head }),
                None => Err(ViewError::NoBranch(name.to_string())),
            };
        }
        Target::History | Target::HistoryBranch { .. } => {
            return history::lookup(ctx, parent, name)?.ok_or_else(|| ViewError::NotFound(here));
        }
        Target::ProxyDir { .. } | Target::Proxy(_) => {
            return proxy::lookup(ctx, parent, name)?.ok_or_else(|| ViewError::NotFound(here));
        }
        Target::File { .. } | Target::Staged { .. } | Target::Slice(_) | Target::Sequence(_) => {
            return Err(ViewError::NotDir(parent_path.to_string()))
        }
        Target::Branch { .. } | Target::Commit { .. } | Target::Dir { .. } => {}
    }
    let tree = committed_tree(ctx, parent)?;
    let live = match parent {
        Target::Branch { name, .. } => Some(Live { branch: name.clone(), path: String::new() }),
        Target::Dir { live, .. } => live.clone(),
        _ => None,
    };
    if name == proxy::PROXY_DIR {
        if let Some(t) = tree {
            if let Some(p) = proxy::proxy_dir(ctx, &t, parent_path)? {
                return Ok(p);
            }
        }
    }
    let found = match &live {
        Some(live) => branch::lookup(ctx, live, tree.as_ref(), name)?,
        // One indexed probe of (tree, name): a miss costs one SQLite lookup, no scan.
        None => match tree {
            Some(t) => ctx.read(|a| a.catalog.tree_child(&t, name))?.map(|e| match e.kind {
                EntryKind::Dir => {
                    Target::Dir { tree: Some(e.hash), mode: e.mode, mtime_ns: e.mtime_ns, owner: e.owner, live: None, extra: e.extra }
                }
                // A special entry travels as its entry: its kind says what it is.
                _ => Target::File { entry: e, live: None },
            }),
            None => None,
        },
    };
    if let Some(t) = found {
        return Ok(t);
    }
    // Names that are not in the folder but name something made from it.
    if let Some(t) = tree {
        if let Some(s) = slice::lookup(ctx, parent_path, &t, name)? {
            return Ok(s);
        }
        if let Some(s) = proxy::sequence(ctx, &t, name)? {
            return Ok(s);
        }
    }
    Err(ViewError::NotFound(here))
}
