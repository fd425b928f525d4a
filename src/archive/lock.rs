//! One writer process per archive. `flock` on `ARCHIVE/lock` is released by the
//! kernel when the holder dies, so `kill -9` never leaves a stale lock; the PID
//! written into the file is only there to tell the user who holds it.

use super::error::{ArchiveError, IoContext, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

pub struct WriterLock {
    _file: File,
    path: PathBuf,
    /// The store's own writer lease (a bucket shared by several hosts),
    /// released with the lock.
    lease: Option<Box<dyn Send + Sync>>,
}

impl std::fmt::Debug for WriterLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterLock").field("path", &self.path).field("lease", &self.lease.is_some()).finish()
    }
}

impl WriterLock {
    pub fn acquire(archive: &Path) -> Result<WriterLock> {
        let path = archive.join("lock");
        // `init` makes the lock; an archive that lost it gets one in the
        // archive's permission policy (see perms.rs), not the umask's.
        let mode = super::perms::Policy::inherited(archive)?.file_mode;
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(mode).open(&path).at(&path)?;
        // SAFETY: flock on a valid, owned descriptor.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim().to_string();
                return Err(ArchiveError::Locked { path: archive.into(), pid: if pid.is_empty() { "unknown".into() } else { pid } });
            }
            return Err(ArchiveError::Io { path, source: err });
        }
        file.set_len(0).at(&path)?;
        file.seek(SeekFrom::Start(0)).at(&path)?;
        write!(file, "{}", std::process::id()).at(&path)?;
        file.flush().at(&path)?;
        Ok(WriterLock { _file: file, path, lease: None })
    }

    /// Like `acquire`, but wait (polling) up to `timeout` for the holder to finish:
    /// for short writes (a mount's flush) that should queue behind an ingest.
    pub fn acquire_wait(archive: &Path, timeout: std::time::Duration) -> Result<WriterLock> {
        let start = std::time::Instant::now();
        loop {
            match WriterLock::acquire(archive) {
                Err(ArchiveError::Locked { .. }) if start.elapsed() < timeout => std::thread::sleep(std::time::Duration::from_millis(50)),
                other => return other,
            }
        }
    }

    /// Hold the store's writer lease as long as this lock.
    pub fn hold(&mut self, lease: Box<dyn Send + Sync>) {
        self.lease = Some(lease);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
