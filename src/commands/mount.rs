//! `reelfs mount` / `umount`: what the flags mean for the mount (src/fs does the mounting).

use super::Result;
use std::path::Path;
use std::time::Duration;

pub use crate::fs::mount::MountOptions;

/// The flags of `reelfs mount` as the user gave them.
#[derive(Debug, Clone)]
pub struct MountRequest {
    pub allow_other: bool,
    pub read_only: bool,
    /// Bytes for read-ahead and decompressed chunks.
    pub cache_size: u64,
    pub threads: usize,
    /// Seconds between automatic commits of staged writes (0 or None: never).
    pub autocommit_secs: Option<u64>,
    pub remux_cache_limit: Option<u64>,
}

impl MountRequest {
    pub fn options(&self) -> MountOptions {
        MountOptions {
            allow_other: self.allow_other,
            read_only: self.read_only,
            cache_bytes: self.cache_size as usize,
            threads: self.threads,
            autocommit: self.autocommit_secs.filter(|s| *s > 0).map(Duration::from_secs),
            remux_cache_limit: self.remux_cache_limit,
            writeback: WRITEBACK_BY_DEFAULT,
        }
    }
}

/// Whether a mount caches writes in the kernel unless told otherwise
/// (`reelfs mount --writeback on`). Off: in two A/B runs of a 2 GiB `cp` it
/// measured 1.25x and 0.89x of the mount without it (the daemon's store of
/// the written data, not request wake-ups, set the pace), and the kernel then
/// keeps the size of a cached file even when a merge or ingest changes it
/// from outside the mount.
pub const WRITEBACK_BY_DEFAULT: bool = false;

/// Check what can be checked before a background mount starts, so errors reach
/// the user's terminal.
pub fn preflight(archive: &Path, mountpoint: &Path) -> Result<()> {
    Ok(crate::fs::mount::preflight(archive, mountpoint)?)
}

/// Mount and serve until unmounted; `ready` runs once the mount answers.
pub fn mount(archive: &Path, mountpoint: &Path, req: &MountRequest, ready: impl FnOnce()) -> Result<()> {
    Ok(crate::fs::mount::mount_foreground(archive, mountpoint, &req.options(), ready)?)
}

/// `mount` with options already settled (`MountRequest::options` and any
/// change the caller made, e.g. `--writeback`).
pub fn mount_with(archive: &Path, mountpoint: &Path, opts: &MountOptions, ready: impl FnOnce()) -> Result<()> {
    Ok(crate::fs::mount::mount_foreground(archive, mountpoint, opts, ready)?)
}

pub fn unmount(mountpoint: &Path) -> Result<()> {
    crate::fs::mount::unmount(mountpoint).map_err(super::CommandError::Invalid)
}
