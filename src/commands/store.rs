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

/// `reelfs attach DIR s3://...`: an archive folder on this host for the
/// archive in the bucket (see archive/store/attach.rs).
pub fn attach(
    dir: &Path,
    url: &str,
    endpoint: Option<String>,
    region: Option<String>,
) -> super::Result<crate::archive::store::attach::AttachReport> {
    let sc = StoreConfig::new(url, endpoint, region).map_err(ArchiveError::Invalid)?;
    Ok(crate::archive::store::attach::attach(dir, sc)?)
}

/// What `mount --replica` needs of the archive folder: packs in a bucket.
pub fn check_replica(archive: &Path) -> super::Result<()> {
    if !archive.join("reelfs.toml").is_file() {
        return Err(ArchiveError::NotAnArchive { path: archive.into() }.into());
    }
    match crate::archive::store::object_store_for(archive)? {
        Some(_) => Ok(()),
        None => Err(ArchiveError::Invalid(format!(
            "--replica follows an archive in a bucket, but the packs of {} are local; mount it without --replica",
            archive.display()
        ))
        .into()),
    }
}

/// Start following the bucket's published catalog for a replica mount:
/// brought up to date once now (so the mount starts current), then every
/// `poll_secs` on a thread of its own.
pub fn follow(archive: &Path, poll_secs: u64) -> super::Result<()> {
    use crate::archive::store::follow::{Follower, MAX_POLL_SECS, MIN_POLL_SECS};
    let Some(store) = crate::archive::store::object_store_for(archive)? else {
        return check_replica(archive);
    };
    let f = Follower::new(&store);
    if let Err(e) = f.poll() {
        log::warn!("replica: cannot follow the bucket now: {e}; serving the catalog this folder has");
    }
    let every = std::time::Duration::from_secs(poll_secs.clamp(MIN_POLL_SECS, MAX_POLL_SECS));
    f.spawn(every).map_err(|e| ArchiveError::Io { path: archive.into(), source: e })?;
    Ok(())
}
