//! Old versions in the mount, read-only:
//!
//! - `MOUNT/<branch>@<commit-prefix>/...`: any commit by id prefix (at least 4
//!   hex digits, as `reelfs log` prints), resolved on lookup at the mount root
//!   and never listed by readdir (like slices: the root lists branches only);
//! - `MOUNT/.history/<branch>/<YYYY-MM-DDTHH.MM.SS>_<commit8>/...`: one folder per
//!   commit of the branch (first-parent history, newest first, UTC time with `.`
//!   for `:` so Windows clients can name it). `.history` itself is resolved on
//!   lookup (it is not in the root listing, so `ls MOUNT` shows only branches);
//!   its contents are listed so a Finder user can browse.
//!
//! A commit folder is a `NodeKind::Commit`, which behaves like an immutable
//! folder: what is below it are ordinary `Dir`/`File` nodes of that commit's
//! tree, so reads share the normal read path and every write is EROFS.
//!
//! Names are resolved by `view::history` (shared with the CLI and the
//! server); this child module of `core` lists these folders with inode
//! numbers and gives their xattrs.

use super::{Attr, FsCore, FsError, FsResult};
use crate::fs::inodes::{Node, NodeKind};

pub use crate::view::history::{civil_from_days, history_name, HISTORY_DIR};

impl FsCore {
    /// Listings this module answers: `.history` (one folder per branch) and
    /// `.history/<branch>` (one per commit, newest first).
    pub(crate) fn version_readdir(&self, p: &Node) -> FsResult<Option<Vec<(String, Attr)>>> {
        match &p.kind {
            NodeKind::History => {
                let mut names: Vec<String> = self.heads_snapshot()?.into_keys().collect();
                names.sort();
                let out = names
                    .into_iter()
                    .map(|b| {
                        let n = self.inodes.child(p, &b, NodeKind::HistoryBranch { branch: b.clone() }, 4096, 0o555, self.mount_time_ns);
                        (b, self.attr_of(&n))
                    })
                    .collect();
                Ok(Some(out))
            }
            NodeKind::HistoryBranch { branch } => {
                let head = self.heads_snapshot()?.get(branch).cloned().ok_or(FsError::NotFound)?;
                let commits = self.with_archive(|a| a.log(head, usize::MAX))?;
                let out = commits
                    .into_iter()
                    .map(|c| {
                        let name = history_name(c.time_ns, &c.hash);
                        let n = self.inodes.child(p, &name, NodeKind::Commit { commit: c.hash, tree: c.tree }, 4096, 0o555, c.time_ns);
                        (name, self.attr_of(&n))
                    })
                    .collect();
                Ok(Some(out))
            }
            _ => Ok(None),
        }
    }

    pub(crate) fn version_xattrs(&self, n: &Node) -> Vec<(String, String)> {
        match &n.kind {
            NodeKind::Commit { commit, tree } => vec![
                ("user.reelfs.commit".into(), commit.to_hex()),
                ("user.reelfs.tree".into(), tree.to_hex()),
                ("user.reelfs.read_only".into(), "old version".into()),
            ],
            NodeKind::HistoryBranch { branch } => vec![("user.reelfs.branch".into(), branch.clone())],
            _ => Vec::new(),
        }
    }
}
