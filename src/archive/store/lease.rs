//! The writer lease: one writer at a time for a bucket that several hosts
//! use. The archive folder's lock file only keeps out writers on the same
//! host; this is the same rule across hosts.
//!
//! The lease is an object, `PREFIX/writer.lease`, naming its holder (host,
//! pid, since when) and when it expires. It is taken with a conditional put
//! (If-None-Match: *, so two writers cannot both create it), or, when the one
//! there has expired, replaced with If-Match on the ETag read (so two writers
//! cannot both take over a dead one's). A live writer renews it every third
//! of its life; one that dies (kill -9, a crashed host) holds the archive no
//! longer than that life. Dropping the lease deletes the object.

use super::object::Inner;
use crate::archive::error::{ArchiveError, Result};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    host: String,
    pid: u32,
    /// Unix seconds.
    since: u64,
    expires: u64,
}

pub(super) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "unknown host".into())
}

/// "2026-11-30 00:12:05 UTC" without a date crate.
fn utc(secs: u64) -> String {
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Whether a process of this host is running (EPERM: it is, as another user's).
fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

pub struct Lease {
    stop: Arc<AtomicBool>,
    renewer: Option<std::thread::JoinHandle<()>>,
    store: Arc<Inner>,
    path: ObjPath,
    etag: Arc<Mutex<Option<String>>>,
}

fn put(store: &Inner, path: &ObjPath, h: &Holder, mode: PutMode) -> object_store::Result<Option<String>> {
    let body = serde_json::to_vec(h).unwrap_or_default();
    let opts = PutOptions { mode, ..Default::default() };
    store.run(store.backend.put_opts(path, PutPayload::from(body), opts)).map(|r| r.e_tag)
}

impl Lease {
    pub(super) fn acquire(store: Arc<Inner>, secs: u64) -> Result<Lease> {
        let path =
            ObjPath::from(if store.prefix.is_empty() { "writer.lease".to_string() } else { format!("{}/writer.lease", store.prefix) });
        let where_ = format!("{}/writer.lease", store.url);
        let io = |e: object_store::Error| ArchiveError::Io { path: where_.clone().into(), source: std::io::Error::other(e.to_string()) };
        let me = Holder { host: hostname(), pid: std::process::id(), since: now(), expires: now() + secs };
        let mut taken = None;
        // A few rounds: a lease may expire, or be released, between reading and replacing it.
        for _ in 0..5 {
            match put(&store, &path, &me, PutMode::Create) {
                Ok(tag) => {
                    taken = Some(tag);
                    break;
                }
                Err(object_store::Error::AlreadyExists { .. }) | Err(object_store::Error::Precondition { .. }) => {}
                Err(e) => return Err(io(e)),
            }
            let got = match store.run(async { store.backend.get(&path).await?.bytes().await.map(|b| b.to_vec()) }) {
                Ok(b) => b,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(io(e)),
            };
            let meta = match store.run(store.backend.head(&path)) {
                Ok(m) => m,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(io(e)),
            };
            let other: Option<Holder> = serde_json::from_slice(&got).ok();
            match other {
                // Live: unexpired, and not a gone process of this host.
                // `Locked`, as a writer on this host is: a caller that waits for
                // the writer to finish (a proxy run storing its renders) waits
                // for one on another host the same way.
                Some(o) if o.expires > now() && (o.host != me.host || pid_alive(o.pid)) => {
                    return Err(ArchiveError::Locked {
                        path: store.url.clone().into(),
                        pid: format!(
                            "{} on host {} since {}; a writer that died holds it until {}",
                            o.pid,
                            o.host,
                            utc(o.since),
                            utc(o.expires)
                        ),
                    })
                }
                // Expired, held by a process of this host that is gone (a
                // killed writer: no need to wait out its lease), or unreadable:
                // take it over, only if it is still the version read.
                _ => {
                    let v = UpdateVersion { e_tag: meta.e_tag.clone(), version: meta.version.clone() };
                    match put(&store, &path, &me, PutMode::Update(v)) {
                        Ok(tag) => {
                            log::info!("took over an expired writer lease on {}", store.url);
                            taken = Some(tag);
                            break;
                        }
                        Err(object_store::Error::Precondition { .. }) | Err(object_store::Error::NotFound { .. }) => continue,
                        Err(e) => return Err(io(e)),
                    }
                }
            }
        }
        let Some(tag) = taken else {
            return Err(ArchiveError::Invalid(format!(
                "{}: could not take the writer lease (other writers keep taking it); try again",
                store.url
            )));
        };
        let etag = Arc::new(Mutex::new(tag));
        let stop = Arc::new(AtomicBool::new(false));
        let body = move || serde_json::to_vec(&Holder { expires: now() + secs, ..me.clone() }).unwrap_or_default();
        let renewer = spawn_renewer(Renewal {
            store: store.clone(),
            path: path.clone(),
            etag: etag.clone(),
            stop: stop.clone(),
            secs,
            what: "writer lease",
            body: Box::new(body),
        })
        .map_err(|e| ArchiveError::Io { path: where_.clone().into(), source: e })?;
        Ok(Lease { stop, renewer: Some(renewer), store, path, etag })
    }
}

/// What keeps an expiring object (the writer lease, a proxy claim) alive.
pub(super) struct Renewal {
    pub store: Arc<Inner>,
    pub path: ObjPath,
    /// The ETag of the version this process wrote last (only that one is replaced).
    pub etag: Arc<Mutex<Option<String>>>,
    pub stop: Arc<AtomicBool>,
    pub secs: u64,
    /// For messages.
    pub what: &'static str,
    /// The object's next body (with its expiry moved on).
    pub body: Box<dyn Fn() -> Vec<u8> + Send>,
}

/// Renew every third of the object's life until `stop`, on a thread of its own.
pub(super) fn spawn_renewer(r: Renewal) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("reelfs-lease".into()).spawn(move || {
        let every = Duration::from_millis(r.secs * 1000 / 3);
        let mut last = std::time::Instant::now();
        while !r.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            if last.elapsed() < every {
                continue;
            }
            last = std::time::Instant::now();
            let cur = r.etag.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let opts = PutOptions { mode: PutMode::Update(UpdateVersion { e_tag: cur, version: None }), ..Default::default() };
            match r.store.run(r.store.backend.put_opts(&r.path, PutPayload::from((r.body)()), opts)) {
                Ok(res) => *r.etag.lock().unwrap_or_else(|p| p.into_inner()) = res.e_tag,
                Err(e) => log::error!("could not renew the {} {}: {e}", r.what, r.path),
            }
        }
    })
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        // Release only the lease still ours (not one taken over after ours expired).
        let ours = self.etag.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let head = self.store.run(self.store.backend.head(&self.path));
        if let (Ok(m), Some(tag)) = (head, ours) {
            if m.e_tag.as_deref() == Some(tag.as_str()) {
                if let Err(e) = self.store.run(self.store.backend.delete(&self.path)) {
                    log::warn!("could not release the writer lease on {}: {e} (it expires by itself)", self.store.url);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lease_times_read_as_utc() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_796_083_925), "2026-12-01 00:12:05 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
