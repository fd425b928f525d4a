//! The remux cache (`ARCHIVE/cache/slices/`): remuxed slices of containers that
//! cannot be sliced in place, bounded in size.
//!
//! Decisions:
//! - Recency lives on disk, in each file's mtime (touched on every use), so the
//!   least-recently-used order survives restarts and is shared by every process
//!   (mount, `reelfs slice`, `extract`) that uses the same folder; no index can
//!   disagree with the files.
//! - Eviction only unlinks. A reader holds an open descriptor, which Linux keeps
//!   valid after the unlink, so a file in use never disappears from under it.
//! - One remux per name at a time in a process (single flight): later callers
//!   wait for the first and share its open file or its error. A failure is not
//!   remembered, so the next lookup tries again.
//! - Output is written under a private temporary name and renamed into place,
//!   so a partial remux (crash, full disk, concurrent process) is never visible
//!   under the final name.
//! - A single result larger than the whole limit is refused rather than kept:
//!   the limit is a promise about the disk, not a hint.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

/// Temporaries this old belong to a process that died mid-remux (a live remux
/// keeps writing, so its temporary's mtime stays fresh).
const STALE_TMP: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error, Clone)]
pub enum CacheError {
    #[error("remux cache {path}: {msg}")]
    Io { path: PathBuf, msg: String },
    #[error("{0}")]
    Remux(String),
    #[error("the remuxed slice is {size} bytes, more than the remux cache limit of {limit} bytes: ask for a shorter range, or raise `remux_limit` under [cache] in ARCHIVE/reelfs.toml (or mount with --remux-cache-limit)")]
    TooLarge { size: u64, limit: u64 },
}

fn io_err(path: &Path, e: io::Error) -> CacheError {
    CacheError::Io { path: path.to_path_buf(), msg: e.to_string() }
}

type Outcome = Result<(PathBuf, Arc<File>), CacheError>;

/// A remux in progress; waiters block on `done` until `result` is set.
#[derive(Default)]
struct Flight {
    result: Mutex<Option<Outcome>>,
    done: Condvar,
}

pub struct RemuxCache {
    dir: PathBuf,
    limit: u64,
    flights: Mutex<HashMap<String, Arc<Flight>>>,
    tmp_seq: AtomicU64,
    /// How many remuxes this process has run (observability for logs and tests).
    made: AtomicU64,
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<RemuxCache>>> {
    static ALL: OnceLock<Mutex<HashMap<PathBuf, Arc<RemuxCache>>>> = OnceLock::new();
    ALL.get_or_init(Default::default)
}

/// Absolute but not resolved: `canonicalize` would fail while the (disposable) folder
/// is missing and give another key once it exists, losing a mount's limit.
fn registry_key(cache_dir: &Path) -> PathBuf {
    std::path::absolute(cache_dir).unwrap_or_else(|_| cache_dir.to_path_buf())
}

/// The remux cache of an archive, from its cache folder (`ARCHIVE/cache`). One
/// object per folder in a process, so every lookup of a mount shares one
/// single-flight table. The limit is the one set for this process
/// ([`set_limit`], a mount option) or else `[cache] remux_limit` of the
/// archive's reelfs.toml.
pub fn for_cache_dir(cache_dir: &Path) -> Arc<RemuxCache> {
    let key = registry_key(cache_dir);
    let mut all = registry().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = all.get(&key) {
        return c.clone();
    }
    let cfg = cache_dir.parent().map(|a| a.join("reelfs.toml"));
    let limit = match cfg.as_deref().map(crate::archive::config::Config::load) {
        Some(Ok(c)) => c.cache.remux_limit,
        // Opening the archive already reported a bad config; stay bounded anyway.
        _ => crate::archive::config::DEFAULT_REMUX_LIMIT,
    };
    let c = Arc::new(RemuxCache::new(&cache_dir.join("slices"), limit));
    c.evict_on_open();
    all.insert(key, c.clone());
    c
}

/// Overrides the archive's configured limit for this process (a mount option).
pub fn set_limit(cache_dir: &Path, limit: u64) {
    let c = Arc::new(RemuxCache::new(&cache_dir.join("slices"), limit));
    c.evict_on_open();
    registry().lock().unwrap_or_else(|p| p.into_inner()).insert(registry_key(cache_dir), c);
}

impl RemuxCache {
    pub fn new(dir: &Path, limit: u64) -> RemuxCache {
        RemuxCache {
            dir: dir.to_path_buf(),
            limit,
            flights: Mutex::new(HashMap::new()),
            tmp_seq: AtomicU64::new(0),
            made: AtomicU64::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn remuxes_made(&self) -> u64 {
        self.made.load(Ordering::Relaxed)
    }

    pub fn path_of(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.mov"))
    }

    /// The cached file for `key`, opened; made by `make` (which writes the file it
    /// is given) when absent. Concurrent calls for one key run `make` once.
    pub fn get_or_make(&self, key: &str, make: impl FnOnce(&Path) -> Result<(), String>) -> Outcome {
        let path = self.path_of(key);
        if let Some(f) = self.open_hit(&path)? {
            return Ok((path, Arc::new(f)));
        }
        let (flight, leader) = {
            let mut fl = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            match fl.get(key) {
                Some(f) => (f.clone(), false),
                None => {
                    let f = Arc::new(Flight::default());
                    fl.insert(key.to_string(), f.clone());
                    (f, true)
                }
            }
        };
        if !leader {
            let mut r = flight.result.lock().unwrap_or_else(|p| p.into_inner());
            while r.is_none() {
                r = flight.done.wait(r).unwrap_or_else(|p| p.into_inner());
            }
            return r.clone().unwrap_or_else(|| Err(CacheError::Remux("remux ended without a result".into())));
        }
        // Another process may have finished it while this one was deciding.
        let outcome = match self.open_hit(&path) {
            Ok(Some(f)) => Ok((path.clone(), Arc::new(f))),
            Ok(None) => self.make_into(&path, make),
            Err(e) => Err(e),
        };
        *flight.result.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome.clone());
        flight.done.notify_all();
        self.flights.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        outcome
    }

    /// Opens a cached file and marks it used; `None` when it is not there.
    fn open_hit(&self, path: &Path) -> Result<Option<File>, CacheError> {
        match File::open(path) {
            Ok(f) => {
                touch(path);
                Ok(Some(f))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(path, e)),
        }
    }

    fn make_into(&self, path: &Path, make: impl FnOnce(&Path) -> Result<(), String>) -> Outcome {
        std::fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!(".{stem}.{}-{seq}.tmp", std::process::id()));
        let res = make(&tmp).map_err(CacheError::Remux).and_then(|()| {
            let size = std::fs::metadata(&tmp).map_err(|e| io_err(&tmp, e))?.len();
            if size > self.limit {
                return Err(CacheError::TooLarge { size, limit: self.limit });
            }
            // Open before the rename: from here on the bytes are pinned for the caller
            // even if a concurrent eviction removes the name at once.
            let f = File::open(&tmp).map_err(|e| io_err(&tmp, e))?;
            std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
            Ok(f)
        });
        let f = match res {
            Ok(f) => f,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        self.made.fetch_add(1, Ordering::Relaxed);
        log::info!("remuxed into the slice cache: {}", path.display());
        if let Err(e) = self.evict(Some(path)) {
            log::warn!("remux cache {}: eviction failed: {e}", self.dir.display());
        }
        Ok((path.to_path_buf(), Arc::new(f)))
    }

    /// A limit lowered since the last run applies at once, not at the next remux.
    fn evict_on_open(&self) {
        if self.dir.is_dir() {
            if let Err(e) = self.evict(None) {
                log::warn!("remux cache {}: eviction failed: {e}", self.dir.display());
            }
        }
    }

    /// Removes least-recently-used files until the folder holds at most `limit`
    /// bytes (never `keep`, the file just made), and temporaries left by a crash.
    pub fn evict(&self, keep: Option<&Path>) -> io::Result<()> {
        let now = SystemTime::now();
        let mut entries = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if name.starts_with('.') && name.ends_with(".tmp") {
                if now.duration_since(mtime).is_ok_and(|age| age > STALE_TMP) {
                    let _ = std::fs::remove_file(e.path());
                }
                continue;
            }
            entries.push((mtime, meta.len(), e.path()));
        }
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        entries.sort();
        for (_, size, path) in entries {
            if total <= self.limit {
                break;
            }
            if Some(path.as_path()) == keep {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => log::info!("remux cache: evicted {}", path.display()),
                // Another process evicted it first.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            total -= size;
        }
        Ok(())
    }
}

/// Marks a cached file as just used. Best effort: a file owned by another user
/// (a command run by someone else) keeps its old time and is evicted sooner.
fn touch(path: &Path) {
    let _ = filetime::set_file_mtime(path, filetime::FileTime::now());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn put(c: &RemuxCache, key: &str, size: usize) -> PathBuf {
        let (p, _) = c.get_or_make(key, |tmp| std::fs::write(tmp, vec![7u8; size]).map_err(|e| e.to_string())).unwrap();
        p
    }

    fn set_age(p: &Path, secs: u64) {
        filetime::set_file_mtime(p, filetime::FileTime::from_system_time(UNIX_EPOCH + Duration::from_secs(secs))).unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn evicts_least_recently_used_first() {
        let d = tempfile::tempdir().unwrap();
        let c = RemuxCache::new(d.path(), 3000);
        let a = put(&c, "a", 1000);
        let b = put(&c, "b", 1000);
        let cc = put(&c, "c", 1000);
        // Recency as the disk records it: b oldest, then c, then a (used last).
        set_age(&b, 1_000);
        set_age(&cc, 2_000);
        set_age(&a, 3_000);
        put(&c, "d", 1000);
        assert_eq!(names(d.path()), vec!["a.mov", "c.mov", "d.mov"]);
        // A hit refreshes recency: c becomes the newest, so a goes next.
        set_age(&c.path_of("d"), 4_000);
        let (_, _) = c.get_or_make("c", |_| panic!("c is cached")).unwrap();
        put(&c, "e", 1000);
        assert_eq!(names(d.path()), vec!["c.mov", "d.mov", "e.mov"]);
    }

    #[test]
    fn order_survives_a_new_cache_object() {
        let d = tempfile::tempdir().unwrap();
        let c = RemuxCache::new(d.path(), 10_000);
        for (k, age) in [("x", 5_000), ("y", 1_000), ("z", 3_000)] {
            let p = put(&c, k, 1000);
            set_age(&p, age);
        }
        // A restart with a smaller limit keeps the two most recent.
        let c2 = RemuxCache::new(d.path(), 2000);
        c2.evict(None).unwrap();
        assert_eq!(names(d.path()), vec!["x.mov", "z.mov"]);
    }

    #[test]
    fn open_file_survives_eviction() {
        let d = tempfile::tempdir().unwrap();
        let c = RemuxCache::new(d.path(), 1000);
        let (_, f) = c.get_or_make("a", |tmp| std::fs::write(tmp, vec![1u8; 1000]).map_err(|e| e.to_string())).unwrap();
        put(&c, "b", 1000);
        assert_eq!(names(d.path()), vec!["b.mov"]);
        let mut buf = vec![0u8; 1000];
        std::os::unix::fs::FileExt::read_exact_at(&*f, &mut buf, 0).unwrap();
        assert!(buf.iter().all(|&x| x == 1));
    }

    #[test]
    fn too_large_and_failed_results_are_not_cached() {
        let d = tempfile::tempdir().unwrap();
        let c = RemuxCache::new(d.path(), 100);
        let e = c.get_or_make("big", |tmp| std::fs::write(tmp, vec![0u8; 101]).map_err(|e| e.to_string())).unwrap_err();
        assert!(matches!(e, CacheError::TooLarge { size: 101, limit: 100 }), "{e}");
        let e = c.get_or_make("bad", |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err("ffmpeg failed".into())
        });
        assert!(matches!(e, Err(CacheError::Remux(m)) if m == "ffmpeg failed"));
        assert!(names(d.path()).is_empty(), "{:?}", names(d.path()));
        // The next lookup tries again.
        put(&c, "bad", 10);
        assert_eq!(names(d.path()), vec!["bad.mov"]);
    }

    #[test]
    fn concurrent_lookups_share_one_remux() {
        let d = tempfile::tempdir().unwrap();
        let c = Arc::new(RemuxCache::new(d.path(), 1 << 20));
        let runs = Arc::new(AtomicU64::new(0));
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (c, runs, barrier) = (c.clone(), runs.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    c.get_or_make("k", |tmp| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(300));
                        std::fs::write(tmp, b"remuxed").map_err(|e| e.to_string())
                    })
                    .map(|(p, _)| p)
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap().unwrap(), c.path_of("k"));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(c.remuxes_made(), 1);
    }

    #[test]
    fn waiters_get_the_leaders_error() {
        let d = tempfile::tempdir().unwrap();
        let c = Arc::new(RemuxCache::new(d.path(), 1 << 20));
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let runs = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (c, barrier, runs) = (c.clone(), barrier.clone(), runs.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    c.get_or_make("k", |_| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(300));
                        Err("no video".into())
                    })
                    .map(|_| ())
                })
            })
            .collect();
        for t in threads {
            assert!(matches!(t.join().unwrap(), Err(CacheError::Remux(m)) if m == "no video"));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn stale_temporaries_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let old = d.path().join(".a.1-0.tmp");
        let fresh = d.path().join(".b.1-1.tmp");
        std::fs::write(&old, b"x").unwrap();
        std::fs::write(&fresh, b"x").unwrap();
        set_age(&old, 1_000);
        RemuxCache::new(d.path(), 1 << 20).evict(None).unwrap();
        assert_eq!(names(d.path()), vec![".b.1-1.tmp"]);
    }
}
