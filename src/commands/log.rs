//! `reelfs log`: a branch's history, or one path's, newest first.

use super::Result;
use crate::archive::catalog::CommitRow;
use crate::archive::diff::{self, Status};
use crate::archive::Archive;
use std::path::Path;

/// A commit as `log --json` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogCommit {
    pub commit: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub merge: bool,
    pub time_ns: i64,
    pub author: String,
    pub message: String,
    pub branch: String,
}

impl From<&CommitRow> for LogCommit {
    fn from(c: &CommitRow) -> Self {
        LogCommit {
            commit: c.hash.to_hex(),
            tree: c.tree.to_hex(),
            parents: c.parents.iter().map(|p| p.to_hex()).collect(),
            merge: c.parents.len() > 1,
            time_ns: c.time_ns,
            author: c.author.clone(),
            message: c.message.clone(),
            branch: c.branch.clone(),
        }
    }
}

/// What a commit did to the path asked about (`log BRANCH PATH`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PathChange {
    pub path: String,
    pub status: Status,
    pub renamed_from: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LogEntry {
    #[serde(flatten)]
    pub commit: LogCommit,
    #[serde(flatten)]
    pub change: Option<PathChange>,
}

/// The history of `spec` (`BRANCH[@COMMIT]`), at most `limit` commits; with
/// `path`, only the commits that changed it (followed back across renames).
pub fn log(archive: &Path, spec: &str, path: Option<&str>, limit: usize) -> Result<Vec<LogEntry>> {
    let a = Archive::open(archive)?;
    let (_, head) = a.resolve_ref(spec)?;
    if let Some(p) = path {
        let events = diff::path_history(&a, head, p, limit)?;
        return Ok(events
            .iter()
            .map(|e| LogEntry {
                commit: LogCommit::from(&e.commit),
                change: Some(PathChange { path: e.path.clone(), status: e.status, renamed_from: e.renamed_from.clone() }),
            })
            .collect());
    }
    Ok(a.log(head, limit)?.iter().map(|c| LogEntry { commit: LogCommit::from(c), change: None }).collect())
}
