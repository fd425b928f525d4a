//! Running a mount: checks that give clear errors before touching FUSE, the
//! session with several worker threads, and a clean unmount on SIGINT/SIGTERM.

use super::core::{FsCore, FsOptions};
use super::fuse::FuseAdapter;
use crate::archive::Archive;
use fuser::{Config, MountOption, SessionACL};
use std::path::Path;

pub struct MountOptions {
    pub allow_other: bool,
    pub read_only: bool,
    pub cache_bytes: usize,
    pub threads: usize,
    /// Commit staged changes of every branch this often (None: only `reelfs commit`).
    pub autocommit: Option<std::time::Duration>,
    /// Size limit of the remuxed-slice cache for this mount (None: reelfs.toml's).
    pub remux_cache_limit: Option<u64>,
    /// Let the kernel cache writes into branch files (FUSE writeback caching,
    /// see `FuseAdapter::init`); off: every write(2) is a round trip to the daemon.
    pub writeback: bool,
}

impl MountOptions {
    /// What the filesystem core gets: `--threads` is the number of FUSE worker
    /// threads and also of read-ahead workers (and so of metadata connections):
    /// as many requests as can run at once each get one.
    pub fn core_options(&self) -> FsOptions {
        FsOptions { cache_bytes: self.cache_bytes, readahead_workers: self.threads.max(1), read_only: self.read_only }
    }
}

/// Every `every`, commit what is staged on each branch. Skips a round when
/// another process holds the writer lock (an ingest), and never takes bytes
/// still buffered in the mount: those are committed once closed or fsynced.
fn spawn_autocommit(archive: std::path::PathBuf, every: std::time::Duration) {
    let _ = std::thread::Builder::new().name("reelfs-autocommit".into()).spawn(move || loop {
        std::thread::sleep(every);
        let mut a = match Archive::open_writer(&archive) {
            Ok(a) => a,
            Err(e) => {
                log::debug!("autocommit skipped: {e}");
                continue;
            }
        };
        let branches = a.branches().unwrap_or_default();
        for (b, _) in branches {
            if a.staging().has_changes(&b).unwrap_or(false) {
                match a.commit_staging(&b, "autocommit") {
                    Ok(Some(c)) => log::info!("autocommit {b}: {}", c.short()),
                    Ok(None) => {}
                    Err(e) => log::warn!("autocommit {b} failed: {e}"),
                }
            }
        }
    });
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("{0}")]
    Archive(#[from] crate::archive::ArchiveError),
    #[error("mountpoint {0}: does not exist; create it with `mkdir -p {0}`")]
    NoMountpoint(String),
    #[error("mountpoint {0}: a dead mount is left here (its process ended without unmounting); run `reelfs umount {0}` first")]
    StaleMount(String),
    #[error("mountpoint {0}: {1}")]
    Inaccessible(String, std::io::Error),
    #[error("mountpoint {0}: is not a directory")]
    NotADirectory(String),
    #[error("mountpoint {0}: is not empty (or is already a mount); choose an empty directory")]
    NotEmpty(String),
    #[error("/dev/fuse is missing: load the fuse module (`modprobe fuse`) or, in a container, pass --device /dev/fuse")]
    NoFuse,
    #[error("mounting {path} failed: {source}")]
    Mount { path: String, source: std::io::Error },
}

/// Everything that can be checked before mounting, so a bad invocation fails
/// with a reason instead of leaving a half-made mount behind.
pub fn preflight(archive: &Path, mountpoint: &Path) -> Result<(), MountError> {
    let mp = mountpoint.display().to_string();
    let meta = std::fs::metadata(mountpoint).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => MountError::NoMountpoint(mp.clone()),
        Some(libc::ENOTCONN) => MountError::StaleMount(mp.clone()),
        _ => MountError::Inaccessible(mp.clone(), e),
    })?;
    if !meta.is_dir() {
        return Err(MountError::NotADirectory(mp));
    }
    // A dead mount's root can still stat from the kernel's attribute cache (the
    // mount now stats its root once it is up); listing it says ENOTCONN.
    let mut rd = std::fs::read_dir(mountpoint).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOTCONN) => MountError::StaleMount(mp.clone()),
        _ => MountError::NotEmpty(mp.clone()),
    })?;
    if rd.next().is_some() {
        return Err(MountError::NotEmpty(mp));
    }
    if !Path::new("/dev/fuse").exists() {
        return Err(MountError::NoFuse);
    }
    Archive::open(archive)?;
    Ok(())
}

/// Block SIGINT/SIGTERM in this thread (and so in every thread started after)
/// and return the set, for a dedicated thread to `sigwait` on.
fn block_term_signals() -> libc::sigset_t {
    // SAFETY: plain signal-mask calls on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Mount and serve until unmounted (by `reelfs umount`, `fusermount3 -u`, or a
/// signal). `ready` is called once the kernel has accepted the mount.
pub fn mount_foreground(archive: &Path, mountpoint: &Path, opts: &MountOptions, ready: impl FnOnce()) -> Result<(), MountError> {
    preflight(archive, mountpoint)?;
    let set = block_term_signals();
    let a = Archive::open(archive)?;
    if let Some(limit) = opts.remux_cache_limit {
        crate::media::remux::cache::set_limit(&a.root().join("cache"), limit);
    }
    let core = FsCore::new(a, opts.core_options());
    core.warm();
    let fs = FuseAdapter::new(core).with_writeback(opts.writeback && !opts.read_only);
    let mut mount_options = vec![
        MountOption::FSName(format!("reelfs:{}", archive.display())),
        MountOption::Subtype("reelfs".into()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    // Branch folders are writable (copy-on-write into the staging overlay) unless
    // --read-only; old versions, proxies and slices are read-only either way.
    mount_options.push(if opts.read_only { MountOption::RO } else { MountOption::RW });
    let mut cfg = Config::default();
    cfg.mount_options = mount_options;
    cfg.acl = if opts.allow_other { SessionACL::All } else { SessionACL::Owner };
    cfg.n_threads = Some(opts.threads.max(1));
    cfg.clone_fd = true;
    let mp = mountpoint.display().to_string();
    if let (Some(every), false) = (opts.autocommit, opts.read_only) {
        spawn_autocommit(archive.to_path_buf(), every);
    }
    let mut session = fuser::Session::new(fs, mountpoint, &cfg).map_err(|source| MountError::Mount { path: mp.clone(), source })?;
    // Bigger kernel requests for sequential readers (see fs/bdi.rs).
    super::bdi::raise_read_ahead_when_ready(mountpoint);
    let mut unmounter = session.unmount_callable();
    std::thread::Builder::new()
        .name("reelfs-signals".into())
        .spawn(move || {
            // Keep waiting after a failed attempt: the signals stay blocked in every
            // thread, so returning here would make the process deaf to them. A
            // busy mount (files open) is detached lazily on the next signal.
            let fusermount = |args: &[&str]| {
                std::process::Command::new("fusermount3")
                    .args(args)
                    .arg(&mp)
                    .stderr(std::process::Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false)
            };
            let mut first = true;
            loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: waiting on the set blocked above.
                if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                    continue;
                }
                if first {
                    first = false;
                    log::info!("signal {sig}: unmounting");
                    match unmounter.unmount() {
                        Ok(()) => return,
                        Err(e) if fusermount(&["-u"]) => log::debug!("unmount: {e}; fusermount3 -u succeeded"),
                        Err(e) => {
                            log::warn!("cannot unmount {mp}: {e}; close the files open on it, or signal again to detach it now");
                            continue;
                        }
                    }
                    return;
                }
                if fusermount(&["-u"]) {
                    return;
                }
                log::warn!("signal {sig}: detaching {mp} (lazy unmount); this process ends when its last open file is closed");
                fusermount(&["-u", "-z"]);
                return;
            }
        })
        .map_err(|source| MountError::Mount { path: mountpoint.display().to_string(), source })?;
    ready();
    match session.run() {
        // A lazy unmount (`fusermount3 -u -z`, the second signal) ends the session
        // by aborting the connection: that is a normal end, not a failure.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNABORTED) | Some(libc::ENODEV)) => Ok(()),
        other => other.map_err(|source| MountError::Mount { path: mountpoint.display().to_string(), source }),
    }
}

/// Unmount a reelfs mount: `fusermount3 -u`, falling back to umount(2) as root.
/// A mount is busy for a moment while a `stat` of its root is in flight (the
/// mount's own read-ahead thread makes one just after mounting, fs/bdi.rs), so
/// a busy mount is tried again for up to a second before the error is returned.
pub fn unmount(mountpoint: &Path) -> Result<(), String> {
    let mut tries = 0;
    loop {
        match unmount_once(mountpoint) {
            Err(e) if e.contains("busy") && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

fn unmount_once(mountpoint: &Path) -> Result<(), String> {
    let out = std::process::Command::new("fusermount3").arg("-u").arg(mountpoint).output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        other => {
            let msg = match other {
                Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                Err(e) => format!("fusermount3: {e}"),
            };
            let c = std::ffi::CString::new(mountpoint.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
            // SAFETY: umount2 on a NUL-terminated path.
            if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
                Ok(())
            } else {
                Err(format!("cannot unmount {}: {msg}", mountpoint.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(threads: usize) -> MountOptions {
        MountOptions {
            allow_other: false,
            read_only: true,
            cache_bytes: 64 << 20,
            threads,
            autocommit: None,
            remux_cache_limit: None,
            writeback: false,
        }
    }

    #[test]
    fn threads_option_sets_the_read_ahead_workers() {
        assert_eq!(opts(7).core_options().readahead_workers, 7);
        assert_eq!(opts(1).core_options().readahead_workers, 1);
        // `--threads 0` still gets one worker, as the FUSE session does.
        assert_eq!(opts(0).core_options().readahead_workers, 1);
        assert_eq!(opts(7).core_options().cache_bytes, 64 << 20);
    }
}
