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

/// Verify the archive, re-reading `sample` percent of the packs (see
/// `archive::check::check_sampled`).
pub fn check_sampled(archive: &Path, deep: bool, sample: Option<f64>, progress: &ProgressHandle) -> Result<CheckReport> {
    let a = Archive::open(archive)?;
    Ok(check::check_sampled(&a, deep, sample, progress)?)
}

/// Rebuild catalog.db from the packs alone (the old one is kept beside it).
pub fn rebuild_catalog(archive: &Path) -> Result<RebuildReport> {
    Ok(check::rebuild_catalog(archive)?)
}
