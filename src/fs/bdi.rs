//! The kernel's read-ahead for the mount (its backing-device info, BDI).
//!
//! The kernel offers a FUSE mount only its default read-ahead (128 KiB) at
//! INIT and keeps the smaller of that and what the daemon answers, so
//! `set_max_readahead` cannot raise it. With 128 KiB of read-ahead a
//! sequential `cat` reaches the daemon as 128 KiB requests, one round trip
//! each, although the connection allows 1 MiB (`max_pages` 256). Raising the
//! BDI's `read_ahead_kb` once INIT is done makes the kernel send 1 MiB
//! requests, several in flight (measured: 2,001 requests of 128 KiB for
//! 250 MiB before, 263 of 1 MiB after). Only root may write the sysfs file;
//! anyone else keeps the kernel default, which is slower but correct.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Read-ahead asked of the kernel for a mount: 8 MiB keeps eight 1 MiB
/// requests in flight ahead of a sequential reader; it costs page cache only
/// (reclaimable), never daemon memory.
pub const MOUNT_READ_AHEAD_KB: u32 = 8 << 10;

/// The sysfs file holding the read-ahead of the filesystem on device `dev`.
pub fn read_ahead_file(dev: u64) -> PathBuf {
    let (major, minor) = (libc::major(dev as libc::dev_t), libc::minor(dev as libc::dev_t));
    PathBuf::from(format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb"))
}

/// Raise the read-ahead of the filesystem mounted at `mountpoint` to at least
/// `kb`. The `stat` of the mountpoint is answered only once the session has
/// handled INIT, so the kernel's own INIT-time value cannot undo this.
pub fn raise_read_ahead(mountpoint: &Path, kb: u32) -> std::io::Result<()> {
    let dev = std::fs::metadata(mountpoint)?.dev();
    let file = read_ahead_file(dev);
    let now: u32 = std::fs::read_to_string(&file)?.trim().parse().unwrap_or(0);
    if now >= kb {
        return Ok(());
    }
    std::fs::write(&file, kb.to_string())
}

/// `raise_read_ahead` on a thread of its own (its `stat` waits for the
/// session loop, which the caller starts next); a failure is logged, not fatal.
pub fn raise_read_ahead_when_ready(mountpoint: &Path) {
    let mp = mountpoint.to_path_buf();
    let _ = std::thread::Builder::new().name("reelfs-bdi".into()).spawn(move || match raise_read_ahead(&mp, MOUNT_READ_AHEAD_KB) {
        Ok(()) => log::debug!("{}: kernel read-ahead {} KiB", mp.display(), MOUNT_READ_AHEAD_KB),
        Err(e) => log::info!("{}: kernel read-ahead left at its default ({e}); sequential reads use 128 KiB requests", mp.display()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_ahead_file_names_the_device() {
        let dev = libc::makedev(0, 39) as u64;
        assert_eq!(read_ahead_file(dev), PathBuf::from("/sys/class/bdi/0:39/read_ahead_kb"));
    }
}
