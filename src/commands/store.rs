//! `reelfs store`: where an archive's packs live. `store migrate` moves them
//! from the local `packs/` folder to an S3-compatible bucket.

use crate::archive::progress::ProgressHandle;
use crate::archive::store::migrate::{self, MigrateReport};
use crate::archive::store::StoreConfig;
use crate::archive::ArchiveError;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Copy every pack to `url`, verify each read back, then switch the archive
/// to it; interrupted, a second run resumes.
pub fn migrate(
    archive: &Path,
    url: &str,
    endpoint: Option<String>,
    region: Option<String>,
    interrupt: &AtomicBool,
    progress: &ProgressHandle,
) -> super::Result<MigrateReport> {
    let sc = StoreConfig::new(url, endpoint, region).map_err(ArchiveError::Invalid)?;
    Ok(migrate::migrate(archive, sc, interrupt, progress)?)
}
