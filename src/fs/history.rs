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
//! A child module of `core`, called through hooks in lookup, readdir and xattrs.

use super::{Attr, FsCore, FsError, FsResult};
use crate::archive::Hash;
use crate::fs::inodes::{Node, NodeKind};

pub const HISTORY_DIR: &str = ".history";

/// `2024-05-01T14.03.59_1a2b3c4d` (UTC).
pub fn history_name(time_ns: i64, commit: &Hash) -> String {
    let secs = time_ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}.{:02}.{:02}_{}", rem / 3600, (rem / 60) % 60, rem % 60, &commit.to_hex()[..8])
}

/// Howard Hinnant's days-to-civil algorithm (also used by the CLI's dates).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl FsCore {
    fn commit_node(&self, parent: &Node, name: &str, commit: Hash) -> FsResult<Attr> {
        let c = self.with_archive(|a| a.commit(&commit))?;
        let n = self.inodes.child(parent, name, NodeKind::Commit { commit, tree: c.tree }, 4096, 0o555, c.time_ns);
        Ok(self.attr_of(&n))
    }

    /// Lookups this module answers: `branch@prefix` and `.history` at the root,
    /// and names inside `.history`. None: not ours.
    pub(crate) fn version_lookup(&self, p: &Node, name: &str) -> FsResult<Option<Attr>> {
        match &p.kind {
            NodeKind::Root if name == HISTORY_DIR => {
                let n = self.inodes.child(p, name, NodeKind::History, 4096, 0o555, self.mount_time_ns);
                Ok(Some(self.attr_of(&n)))
            }
            NodeKind::Root => {
                let Some((branch, prefix)) = name.split_once('@') else { return Ok(None) };
                if !self.heads_snapshot()?.contains_key(branch) {
                    return Err(FsError::NotFound);
                }
                // Any reason the id does not resolve (too short, unknown, ambiguous)
                // is ENOENT for the kernel; `reelfs log` shows the ids.
                let resolved = self.with_archive(|a| a.resolve_ref(&format!("{branch}@{prefix}")));
                match resolved {
                    Ok((_, Some(c))) => self.commit_node(p, name, c).map(Some),
                    Ok(_) => Err(FsError::NotFound),
                    Err(e) => {
                        log::info!("{name}: {e}");
                        Err(FsError::NotFound)
                    }
                }
            }
            NodeKind::History => {
                if !self.heads_snapshot()?.contains_key(name) {
                    return Err(FsError::NotFound);
                }
                let n = self.inodes.child(p, name, NodeKind::HistoryBranch { branch: name.to_string() }, 4096, 0o555, self.mount_time_ns);
                Ok(Some(self.attr_of(&n)))
            }
            NodeKind::HistoryBranch { branch } => {
                let Some((_, short)) = name.rsplit_once('_') else { return Err(FsError::NotFound) };
                let found = self.with_archive(|a| a.resolve_ref(&format!("{branch}@{short}"))).ok().and_then(|(_, c)| c);
                let Some(c) = found else { return Err(FsError::NotFound) };
                let row = self.with_archive(|a| a.commit(&c))?;
                if history_name(row.time_ns, &c) != name {
                    return Err(FsError::NotFound);
                }
                self.commit_node(p, name, c).map(Some)
            }
            _ => Ok(None),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_names_sort_by_time_and_avoid_colons() {
        let h = Hash([0xab; 32]);
        assert_eq!(history_name(0, &h), "1970-01-01T00.00.00_abababab");
        assert_eq!(history_name(1_714_572_239_000_000_000, &h), "2024-05-01T14.03.59_abababab");
        assert!(!history_name(1_714_572_239_000_000_000, &h).contains(':'));
    }
}
