//! What `statfs` (and so `df`, Finder, Explorer over SMB) is told about the
//! mount's space: the free space of the disk holding the archive, since that
//! is where anything written into a branch goes. A share that reports no free
//! space makes Finder refuse to copy onto it.

use super::error::{FsError, FsResult, NAME_MAX};
use std::path::Path;

/// The numbers of `statvfs(3)` the kernel passes on for the mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

/// The space of the filesystem holding `dir`, with the mount's own name limit.
pub fn of_dir(dir: &Path) -> FsResult<Space> {
    let s = rustix::fs::statvfs(dir).map_err(|e| FsError::Io(format!("statfs of {}: {e}", dir.display())))?;
    Ok(Space {
        blocks: s.f_blocks,
        bfree: s.f_bfree,
        bavail: s.f_bavail,
        files: s.f_files,
        ffree: s.f_ffree,
        // Block counts are in f_frsize units; the kernel takes both as given.
        bsize: u32::try_from(s.f_bsize).unwrap_or(u32::MAX),
        namelen: NAME_MAX as u32,
        frsize: u32::try_from(s.f_frsize).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_free_space_of_the_disk_holding_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let got = of_dir(dir.path()).unwrap();
        let want = rustix::fs::statvfs(dir.path()).unwrap();
        assert_eq!(got.blocks, want.f_blocks);
        assert!(got.blocks > 0 && got.bavail > 0 && got.bavail <= got.bfree, "{got:?}");
        assert_eq!(got.namelen, 255);
        assert!(of_dir(&dir.path().join("missing")).is_err());
    }
}
