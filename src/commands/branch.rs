//! `reelfs branch`: list, create, delete branches.

use super::Result;
use crate::archive::Archive;
use std::path::Path;

#[derive(Debug, Clone, serde::Serialize)]
pub struct BranchItem {
    pub name: String,
    /// Head commit (hex); None for a branch with no commit yet.
    pub head: Option<String>,
}

pub fn list(archive: &Path) -> Result<Vec<BranchItem>> {
    let a = Archive::open(archive)?;
    Ok(a.branches()?.into_iter().map(|(name, h)| BranchItem { name, head: h.map(|h| h.to_hex()) }).collect())
}

/// Create `name` from `from` (`BRANCH[@COMMIT]`): one row, whatever the archive's size.
pub fn create(archive: &Path, name: &str, from: &str) -> Result<()> {
    let mut a = Archive::open_writer(archive)?;
    a.create_branch(name, Some(from))?;
    Ok(())
}

/// Delete the branch `name`; data other branches use is untouched.
pub fn delete(archive: &Path, name: &str) -> Result<()> {
    let mut a = Archive::open_writer(archive)?;
    a.delete_branch(name)?;
    Ok(())
}
