//! `reelfs diff`: file-level differences between two versions.

use super::Result;
use crate::archive::diff::{self, Change, DiffSummary};
use crate::archive::Archive;
use std::path::Path;

#[derive(Debug, Clone, serde::Serialize)]
pub struct DiffReport {
    pub a: String,
    pub b: String,
    pub path: Option<String>,
    pub changes: Vec<Change>,
    pub summary: DiffSummary,
}

/// Differences from `a` to `b` (`BRANCH` or `BRANCH@COMMIT`), below `path` if given.
pub fn diff(archive: &Path, a: &str, b: &str, path: Option<&str>) -> Result<DiffReport> {
    let arch = Archive::open(archive)?;
    let changes = diff::diff(&arch, a, b, path.unwrap_or(""))?;
    let summary = diff::summarize(&changes);
    Ok(DiffReport { a: a.to_string(), b: b.to_string(), path: path.map(String::from), changes, summary })
}
