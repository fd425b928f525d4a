//! Writing into a folder the user named (restore DEST, extract --out, slice -o)
//! without being steered elsewhere.
//!
//! Two rules. The destination may not lie inside the archive directory, however
//! it is spelled: we compare device+inode of every folder of the archive with the
//! destination and each folder above it, walking up through `..` from an open
//! descriptor, so symlinks, `..` and bind mounts all resolve to the same answer.
//! And below the destination nothing is looked up by path: folders and files are
//! opened relative to directory descriptors with O_NOFOLLOW, temporaries are
//! created with O_EXCL under fresh names and renamed into place (a rename replaces
//! a link at the final name instead of writing through it). The destination path
//! itself is the user's choice and may be reached through symlinks.

use super::error::{ArchiveError, IoContext, Result};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashSet;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Device and inode of every folder of the archive at `root`.
fn archive_folders(root: &Path) -> Result<HashSet<(u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(root).at(root)?;
    let mut set = HashSet::from([(m.dev(), m.ino())]);
    // A folder below the root that we cannot read is skipped: we could not
    // list it, and the root itself is always in the set.
    for e in walkdir::WalkDir::new(root).follow_links(false).min_depth(1).into_iter().flatten() {
        if e.file_type().is_dir() {
            if let Ok(m) = e.metadata() {
                set.insert((m.dev(), m.ino()));
            }
        }
    }
    Ok(set)
}

fn inside_error(archive_root: &Path, dest: &Path) -> ArchiveError {
    ArchiveError::Invalid(format!(
        "{} is inside the archive {}: writing there could overwrite packs or the catalog; choose a destination outside the archive (nothing was written)",
        dest.display(),
        archive_root.display()
    ))
}

/// Refuse `dest` (which need not exist yet) when it is, or would be created,
/// inside the archive at `archive_root`. Call before creating anything.
pub fn refuse_inside_archive(archive_root: &Path, dest: &Path) -> Result<()> {
    refuse_inside(archive_root, &archive_folders(archive_root)?, dest)
}

fn refuse_inside(archive_root: &Path, folders: &HashSet<(u64, u64)>, dest: &Path) -> Result<()> {
    let dest_abs = if dest.is_absolute() { dest.to_path_buf() } else { std::env::current_dir().at(".")?.join(dest) };
    // The nearest folder that exists; the part below it is created later, and a
    // `..` there would be resolved by the kernel only after creation.
    let mut start = None;
    for a in dest_abs.ancestors() {
        if std::fs::metadata(a).map(|m| m.is_dir()).unwrap_or(false) {
            start = Some(a);
            break;
        }
    }
    let start = start.unwrap_or(Path::new("/"));
    let rest = dest_abs.strip_prefix(start).unwrap_or(Path::new(""));
    if rest.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(ArchiveError::Invalid(format!(
            "{}: '..' after a folder that does not exist; give the destination without '..'",
            dest.display()
        )));
    }
    let fd = rustix::fs::open(start, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| io_err(start, e))?;
    if fd_is_inside(fd.as_fd(), folders).map_err(|e| io_err(start, e))? {
        return Err(inside_error(archive_root, dest));
    }
    Ok(())
}

/// Is the folder open at `fd`, or any folder above it, one of `folders`?
fn fd_is_inside(fd: BorrowedFd<'_>, folders: &HashSet<(u64, u64)>) -> std::result::Result<bool, Errno> {
    let mut cur: Option<OwnedFd> = None;
    loop {
        let here = cur.as_ref().map(|f| f.as_fd()).unwrap_or(fd);
        let st = rustix::fs::fstat(here)?;
        if folders.contains(&(st.st_dev as u64, st.st_ino as u64)) {
            return Ok(true);
        }
        let up = rustix::fs::openat(here, "..", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        let ust = rustix::fs::fstat(&up)?;
        if (ust.st_dev, ust.st_ino) == (st.st_dev, st.st_ino) {
            return Ok(false);
        }
        cur = Some(up);
    }
}

fn io_err(path: &Path, e: Errno) -> ArchiveError {
    ArchiveError::Io { path: path.into(), source: e.into() }
}

/// A name of an archived entry is used as one path component only.
pub fn check_component(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(ArchiveError::Inconsistent(format!("entry name {name:?} is not a single file name")));
    }
    Ok(())
}

/// A short name no other process picks: pid, a counter and the clock, hashed.
pub fn fresh_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = format!("{}:{n}:{}", std::process::id(), super::objects::now_ns());
    format!("{prefix}{}", &blake3::hash(seed.as_bytes()).to_hex()[..12])
}

/// An open folder that output is written into.
pub struct OutDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl OutDir {
    /// Open the folder at `path` (following links in the path: the user chose it).
    pub fn open(path: &Path) -> Result<OutDir> {
        let p = if path.as_os_str().is_empty() { Path::new(".") } else { path };
        let fd = rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| io_err(p, e))?;
        Ok(OutDir { fd, path: p.into() })
    }

    /// Create (as `mkdir -p`) and open `path` for output, refusing it when it is
    /// inside the archive at `archive_root`: checked before creating anything and
    /// again on the opened folder.
    pub fn create(archive_root: &Path, path: &Path) -> Result<OutDir> {
        let folders = archive_folders(archive_root)?;
        refuse_inside(archive_root, &folders, path)?;
        if !path.as_os_str().is_empty() {
            std::fs::create_dir_all(path).at(path)?;
        }
        let d = OutDir::open(path)?;
        if fd_is_inside(d.fd.as_fd(), &folders).map_err(|e| io_err(path, e))? {
            return Err(inside_error(archive_root, path));
        }
        Ok(d)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new temporary file in this folder under a fresh name (O_EXCL: a file or
    /// link already there is never opened). Returns (name, file).
    pub fn create_temp(&self, prefix: &str) -> Result<(String, File)> {
        create_temp_in(self.fd.as_fd(), &self.path, prefix)
    }

    /// Move `tmp` (in this folder) to `name`, replacing what is there, even a link.
    pub fn rename(&self, tmp: &str, name: &str) -> Result<()> {
        rustix::fs::renameat(&self.fd, tmp, &self.fd, name).map_err(|e| io_err(&self.path.join(name), e))
    }

    /// Remove a file of this folder; best effort (used on error paths).
    pub fn remove(&self, name: &str) {
        let _ = rustix::fs::unlinkat(&self.fd, name, AtFlags::empty());
    }

    /// Write `name` whole: to a temporary, fsynced, then renamed over `name`.
    /// It ends with the mode a newly created file gets (0666 less the umask).
    pub fn write_file(&self, name: &str, write: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
        check_component(name)?;
        let (tmp, mut f) = self.create_temp(".reelfs-")?;
        let res = write(&mut f)
            .and_then(|_| f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666 & !umask())))
            .and_then(|_| f.sync_all())
            .at(self.path.join(name))
            .and_then(|_| self.rename(&tmp, name));
        if res.is_err() {
            self.remove(&tmp);
        }
        res
    }
}

/// The process umask, read from /proc (setting it to read it back would race
/// with other threads creating files); 022 when /proc does not say.
pub fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Umask:").and_then(|v| u32::from_str_radix(v.trim(), 8).ok())))
        .unwrap_or(0o022)
}

/// Create a new file in the folder open at `dir` under a fresh name.
pub fn create_temp_in(dir: BorrowedFd<'_>, dir_path: &Path, prefix: &str) -> Result<(String, File)> {
    for _ in 0..64 {
        let name = fresh_name(prefix);
        match rustix::fs::openat(
            dir,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        ) {
            Ok(fd) => return Ok((name, File::from(fd))),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(io_err(&dir_path.join(name), e)),
        }
    }
    Err(ArchiveError::Invalid(format!("{}: cannot find a free temporary name", dir_path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_is_found_through_links_and_dotdot() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("A");
        std::fs::create_dir_all(a.join("packs/02")).unwrap();
        std::os::unix::fs::symlink(a.join("packs"), t.path().join("lnk")).unwrap();
        assert!(refuse_inside_archive(&a, &a.join("packs/02/x.pack")).is_err());
        assert!(refuse_inside_archive(&a, &t.path().join("lnk/new/dir")).is_err());
        assert!(refuse_inside_archive(&a, &t.path().join("out/../A/catalog.db")).is_err());
        assert!(refuse_inside_archive(&a, &a).is_err());
        assert!(refuse_inside_archive(&a, &t.path().join("out")).is_ok());
        assert!(refuse_inside_archive(&a, t.path()).is_ok());
    }

    #[test]
    fn write_file_replaces_a_link_instead_of_writing_through_it() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let out = t.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&victim, out.join("report.json")).unwrap();
        let d = OutDir::open(&out).unwrap();
        d.write_file("report.json", |f| std::io::Write::write_all(f, b"{}")).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(!std::fs::symlink_metadata(out.join("report.json")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(out.join("report.json")).unwrap(), b"{}");
    }
}
