//! `reelfs status` and `reelfs commit`: what is staged on a branch (writes made
//! through the mount), and committing it.

use super::Result;
use crate::archive::staging::{Content, Staged};
use crate::archive::Archive;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StagedChange {
    Deleted,
    Folder,
    /// Renamed or copied from content the archive already has.
    Moved,
    Written,
    /// A symlink, FIFO, socket or device node made (or changed) through the mount.
    Special,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StagedItem {
    pub path: String,
    pub change: StagedChange,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

pub fn status(archive: &Path, branch: &str) -> Result<Vec<StagedItem>> {
    let a = Archive::open(archive)?;
    a.resolve_ref(branch)?;
    Ok(a.staging_rows(branch)?
        .into_iter()
        .map(|(path, s)| match s {
            Staged::Deleted => StagedItem { path, change: StagedChange::Deleted, size: None },
            Staged::Dir { .. } => StagedItem { path, change: StagedChange::Folder, size: None },
            Staged::Special { .. } => StagedItem { path, change: StagedChange::Special, size: None },
            Staged::File { size, content, .. } => {
                let change = if matches!(content, Content::Blob(_)) { StagedChange::Moved } else { StagedChange::Written };
                StagedItem { path, change, size: Some(size) }
            }
        })
        .collect())
}

/// Commit what is staged on `branch`; None when nothing was.
pub fn commit(archive: &Path, branch: &str, message: Option<&str>) -> Result<Option<String>> {
    let mut a = Archive::open_writer(archive)?;
    let msg = message.unwrap_or("changes made through the mount");
    Ok(a.commit_staging(branch, msg)?.map(|c| c.to_hex()))
}
