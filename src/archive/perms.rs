//! Who may read an archive's files.
//!
//! Design: the archive root's own mode is the policy, so there is nothing to keep
//! in step and an admin can see it with `ls -ld ARCHIVE`.
//! - Private (the default of `reelfs init`): root and every folder 0700, every file
//!   0600. Only the owner (and root) can read packs, catalog.db (SQLite gives its
//!   -wal/-shm the database file's mode), reelfs.toml, cache/ and lock.
//! - Shared (`reelfs init ARCHIVE --group GROUP`): folders 2750 owned by GROUP
//!   (setgid, so everything created below takes GROUP without a chown), files 0640.
//!   Members can read the archive (run `mount`, `restore`, `check`); only the owner
//!   writes.
//!
//! Either way, other local users can reach the content only through a mount,
//! whose permission checks then decide.
//!
//! Folders and files that reelfs creates later (pack folders, packs, a rebuilt
//! catalog) take the mode of the nearest existing folder above them, set with
//! chmod after creation so the process umask cannot loosen or tighten it. An
//! archive made before this policy (root 0755) keeps its old 0755/0644 modes.

use super::error::{ArchiveError, IoContext, Result};
use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Folder mode of a private archive.
pub const PRIVATE_DIR: u32 = 0o700;
/// Folder mode of an archive shared with a group: setgid, group may read and enter.
pub const SHARED_DIR: u32 = 0o2750;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub dir_mode: u32,
    pub file_mode: u32,
}

impl Policy {
    /// The policy a folder's own mode stands for: the owner always has full
    /// access; group/other bits and setgid carry over; files lose execute bits.
    pub fn from_dir_mode(mode: u32) -> Policy {
        Policy { dir_mode: (mode & 0o2777) | 0o700, file_mode: (mode & 0o666) | 0o600 }
    }

    /// The policy of the nearest existing folder at or above `dir`.
    pub fn inherited(dir: &Path) -> Result<Policy> {
        let mut cur = Some(dir);
        while let Some(d) = cur {
            match std::fs::metadata(d) {
                Ok(m) if m.is_dir() => return Ok(Policy::from_dir_mode(m.mode())),
                Ok(_) => return Err(ArchiveError::Invalid(format!("{}: not a folder", d.display()))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => cur = d.parent(),
                Err(e) => return Err(ArchiveError::Io { path: d.into(), source: e }),
            }
        }
        Ok(Policy::from_dir_mode(PRIVATE_DIR))
    }

    /// Create `dir` and any missing folders above it with this policy's mode.
    /// Folders that already exist are left as they are.
    pub fn create_dir_all(&self, dir: &Path) -> Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            if !parent.as_os_str().is_empty() {
                self.create_dir_all(parent)?;
            }
        }
        match std::fs::create_dir(dir) {
            Ok(()) => self.apply_dir(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            Err(e) => Err(ArchiveError::Io { path: dir.into(), source: e }),
        }
    }

    /// Set a folder's mode exactly (mkdir's mode is filtered by the umask).
    pub fn apply_dir(&self, dir: &Path) -> Result<()> {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(self.dir_mode)).at(dir)
    }

    /// Create a new file (it must not exist) for writing, with this policy's mode.
    pub fn create_new_file(&self, path: &Path) -> Result<File> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(self.file_mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .at(path)?;
        f.set_permissions(std::fs::Permissions::from_mode(self.file_mode)).at(path)?;
        Ok(f)
    }
}

/// Share the archive folder `root` (already created) with group `gid` (named
/// `group` in messages): owned by it, mode 2750. Fails clearly when the user may
/// not give files to that group.
pub fn share_with_group(root: &Path, group: &str, gid: u32) -> Result<()> {
    let f = File::open(root).at(root)?;
    rustix::fs::fchown(&f, None, Some(rustix::fs::Gid::from_raw(gid))).map_err(|e| {
        if e == rustix::io::Errno::PERM {
            ArchiveError::Invalid(format!(
                "cannot give {} to group '{group}': you are not a member of it (see `id`); ask an admin to add you, or run init as root",
                root.display()
            ))
        } else {
            ArchiveError::Io { path: root.into(), source: e.into() }
        }
    })?;
    Policy::from_dir_mode(SHARED_DIR).apply_dir(root)
}

/// A group's id by name (or a plain number).
pub fn group_id(group: &str) -> Result<u32> {
    let unknown = || {
        ArchiveError::Invalid(format!("no group named '{group}' on this machine; create it (groupadd {group}) or pick one from /etc/group"))
    };
    if let Ok(n) = group.parse::<u32>() {
        return Ok(n);
    }
    let name = std::ffi::CString::new(group).map_err(|_| unknown())?;
    let mut buf = vec![0u8; 16 << 10];
    // SAFETY: getgrnam_r fills `grp` using only `buf` (whose length we pass) and
    // sets `out` to &grp or null; nothing outlives this call except the gid copy.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut out: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrnam_r(name.as_ptr(), &mut grp, buf.as_mut_ptr() as *mut libc::c_char, buf.len(), &mut out);
        if rc != 0 || out.is_null() {
            return Err(unknown());
        }
        Ok(grp.gr_gid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_follows_the_folder_mode() {
        assert_eq!(Policy::from_dir_mode(0o700), Policy { dir_mode: 0o700, file_mode: 0o600 });
        assert_eq!(Policy::from_dir_mode(0o2750), Policy { dir_mode: 0o2750, file_mode: 0o640 });
        assert_eq!(Policy::from_dir_mode(0o755), Policy { dir_mode: 0o755, file_mode: 0o644 });
    }

    #[test]
    fn created_modes_ignore_the_umask() {
        let t = tempfile::tempdir().unwrap();
        // SAFETY: umask only changes this process's file-creation mask.
        let old = unsafe { libc::umask(0) };
        let p = Policy::from_dir_mode(0o700);
        p.create_dir_all(&t.path().join("a/b")).unwrap();
        drop(p.create_new_file(&t.path().join("a/b/f")).unwrap());
        unsafe { libc::umask(old) };
        let mode = |q: &str| std::fs::metadata(t.path().join(q)).unwrap().mode() & 0o7777;
        assert_eq!(mode("a"), 0o700);
        assert_eq!(mode("a/b"), 0o700);
        assert_eq!(mode("a/b/f"), 0o600);
    }
}
