//! `reelfs check`: the catalog against the packs, or the catalog rebuilt from them.

use super::Result;
use crate::archive::check::{self, CheckReport, RebuildReport};
use crate::archive::progress::ProgressHandle;
use crate::archive::Archive;
use std::path::Path;

/// Verify the archive; `deep` re-reads and re-hashes every record.
pub fn check(archive: &Path, deep: bool, progress: &ProgressHandle) -> Result<CheckReport> {
    let a = Archive::open(archive)?;
    Ok(check::check(&a, deep, progress)?)
}

/// Rebuild catalog.db from the packs alone (the old one is kept beside it).
pub fn rebuild_catalog(archive: &Path) -> Result<RebuildReport> {
    Ok(check::rebuild_catalog(archive)?)
}
