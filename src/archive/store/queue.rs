//! Proxy workers on several hosts sharing one queue (archive/claims.rs) in the
//! bucket: a source's claim is the object `PREFIX/proxy-queue/KEY`, created
//! with a conditional put (If-None-Match: *, so two workers cannot both take
//! it), naming its holder and when it expires. The holder renews it every
//! third of its life while it renders; a worker that dies holds it no longer
//! than that life, and the next worker to ask takes it over with If-Match on
//! the ETag it read (so two cannot both take over a dead one's).
//!
//! A finished claim is kept, marked done, rather than deleted: a worker that
//! planned from a catalog older than the finisher's commit would otherwise
//! claim the source again and render it twice.

use super::lease::{hostname, now, spawn_renewer, Renewal};
use super::object::{Inner, ObjectPackStore};
use crate::archive::claims::{ClaimTicket, Claimed, WorkClaims};
use crate::archive::config::Config;
use crate::archive::error::{ArchiveError, Result};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    host: String,
    pid: u32,
    /// Unix seconds.
    since: u64,
    expires: u64,
    #[serde(default)]
    done: bool,
}

pub struct BucketClaims {
    store: ObjectPackStore,
    secs: u64,
}

impl BucketClaims {
    /// The queue of the bucket behind the archive at `root`, with claims that
    /// last as long as its writer lease (`[store] lease_seconds`). `None` when
    /// the packs are local (one host: nothing to share).
    pub fn for_archive(root: &Path) -> Result<Option<BucketClaims>> {
        let cfg = Config::load(&root.join("reelfs.toml"))?;
        let Some(sc) = &cfg.store else { return Ok(None) };
        let store = ObjectPackStore::s3_metadata(root, sc)?;
        Ok(Some(BucketClaims { store, secs: sc.lease_seconds.max(3) }))
    }

    /// Bring this folder's catalog to the bucket's newest snapshot, so the
    /// work planned from it leaves out what other hosts have stored.
    pub fn catch_up(&self) -> Result<()> {
        super::follow::Follower::new(&self.store).poll().map(|_| ())
    }

    fn inner(&self) -> &Arc<Inner> {
        self.store.inner()
    }

    fn path(&self, key: &str) -> Result<ObjPath> {
        // Keys are the run's own (hex hashes, rung names): refuse anything that
        // could name an object outside the queue.
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || "-_.,".contains(c)) {
            return Err(ArchiveError::Invalid(format!("not a work key: {key:?}")));
        }
        let p = self.inner().prefix.as_str();
        Ok(ObjPath::from(if p.is_empty() { format!("proxy-queue/{key}") } else { format!("{p}/proxy-queue/{key}") }))
    }
}

fn put(inner: &Inner, path: &ObjPath, h: &Holder, mode: PutMode) -> object_store::Result<Option<String>> {
    let body = serde_json::to_vec(h).unwrap_or_default();
    inner.run(inner.backend.put_opts(path, PutPayload::from(body), PutOptions { mode, ..Default::default() })).map(|r| r.e_tag)
}

impl WorkClaims for BucketClaims {
    fn claim(&self, key: &str) -> Result<Claimed> {
        let inner = self.inner();
        let path = self.path(key)?;
        let io = |e: object_store::Error| ArchiveError::Io {
            path: format!("{}/proxy-queue/{key}", inner.url).into(),
            source: std::io::Error::other(e.to_string()),
        };
        let me = Holder { host: hostname(), pid: std::process::id(), since: now(), expires: now() + self.secs, done: false };
        // A few rounds: a claim may be released or expire between reading and replacing it.
        for _ in 0..5 {
            match put(inner, &path, &me, PutMode::Create) {
                Ok(tag) => return self.ticket(path, tag, me),
                Err(object_store::Error::AlreadyExists { .. }) | Err(object_store::Error::Precondition { .. }) => {}
                Err(e) => return Err(io(e)),
            }
            let got = match inner.run(inner.backend.get(&path)) {
                Ok(g) => g,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(io(e)),
            };
            let e_tag = got.meta.e_tag.clone();
            let version = got.meta.version.clone();
            let bytes = match inner.run(got.bytes()) {
                Ok(b) => b,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(io(e)),
            };
            match serde_json::from_slice::<Holder>(&bytes).ok() {
                Some(o) if o.done => return Ok(Claimed::Elsewhere(format!("rendered by {} (pid {})", o.host, o.pid))),
                Some(o) if o.expires > now() => return Ok(Claimed::Elsewhere(format!("being rendered by {} (pid {})", o.host, o.pid))),
                // Expired (its worker died) or unreadable: take it over, only
                // if it is still the version read.
                _ => match put(inner, &path, &me, PutMode::Update(UpdateVersion { e_tag, version })) {
                    Ok(tag) => {
                        log::info!("took over an expired claim on {key} in {}", inner.url);
                        return self.ticket(path, tag, me);
                    }
                    Err(object_store::Error::Precondition { .. }) | Err(object_store::Error::NotFound { .. }) => continue,
                    Err(e) => return Err(io(e)),
                },
            }
        }
        Ok(Claimed::Elsewhere("claimed and released by other workers meanwhile; the next run takes it".into()))
    }
}

impl BucketClaims {
    fn ticket(&self, path: ObjPath, tag: Option<String>, me: Holder) -> Result<Claimed> {
        let mut t = Ticket {
            inner: self.inner().clone(),
            path,
            etag: Arc::new(Mutex::new(tag)),
            stop: Arc::new(AtomicBool::new(false)),
            renewer: None,
            me,
            secs: self.secs,
            done: false,
        };
        t.start_renewing()?;
        Ok(Claimed::Mine(Box::new(t)))
    }
}

struct Ticket {
    inner: Arc<Inner>,
    path: ObjPath,
    etag: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    renewer: Option<std::thread::JoinHandle<()>>,
    me: Holder,
    secs: u64,
    done: bool,
}

impl Ticket {
    fn start_renewing(&mut self) -> Result<()> {
        self.stop = Arc::new(AtomicBool::new(false));
        let secs = self.secs;
        let renewing = self.me.clone();
        let renewer = spawn_renewer(Renewal {
            store: self.inner.clone(),
            path: self.path.clone(),
            etag: self.etag.clone(),
            stop: self.stop.clone(),
            secs,
            what: "proxy claim",
            body: Box::new(move || serde_json::to_vec(&Holder { expires: now() + secs, ..renewing.clone() }).unwrap_or_default()),
        })
        .map_err(|e| ArchiveError::Io { path: self.path.to_string().into(), source: e })?;
        self.renewer = Some(renewer);
        Ok(())
    }

    fn stop_renewing(&mut self) -> Option<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        self.etag.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ClaimTicket for Ticket {
    fn finish(mut self: Box<Self>) -> Result<()> {
        let tag = self.stop_renewing();
        let done = Holder { done: true, expires: now(), ..self.me.clone() };
        let res = put(&self.inner, &self.path, &done, PutMode::Update(UpdateVersion { e_tag: tag, version: None }));
        self.done = true;
        res.map(|_| ()).map_err(|e| ArchiveError::Io { path: self.path.to_string().into(), source: std::io::Error::other(e.to_string()) })
    }

    fn still_mine(&mut self) -> Result<bool> {
        // The renewer stops first: its put and this one would race on the
        // same ETag, and the loser would read as a lost claim.
        let tag = self.stop_renewing();
        let me = Holder { expires: now() + self.secs, ..self.me.clone() };
        // Replaced only if it is still the version this process last wrote: a
        // worker that took over an expired claim wrote a new one.
        match put(&self.inner, &self.path, &me, PutMode::Update(UpdateVersion { e_tag: tag, version: None })) {
            Ok(new) => {
                *self.etag.lock().unwrap_or_else(|p| p.into_inner()) = new;
                self.start_renewing()?;
                Ok(true)
            }
            Err(object_store::Error::Precondition { .. }) | Err(object_store::Error::NotFound { .. }) => {
                log::warn!(
                    "lost the claim {} while working (stalled past its {} s life): another worker took it over",
                    self.path,
                    self.secs
                );
                Ok(false)
            }
            Err(e) => Err(ArchiveError::Io { path: self.path.to_string().into(), source: std::io::Error::other(e.to_string()) }),
        }
    }
}

impl Drop for Ticket {
    /// Not finished: the work failed or was abandoned; let another worker have it.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let ours = self.stop_renewing();
        // Release only the claim still ours (not one taken over after ours expired).
        let head = self.inner.run(self.inner.backend.head(&self.path));
        if let (Ok(m), Some(tag)) = (head, ours) {
            if m.e_tag.as_deref() == Some(tag.as_str()) {
                if let Err(e) = self.inner.run(self.inner.backend.delete(&self.path)) {
                    log::warn!("could not release the claim {}: {e} (it expires by itself)", self.path);
                }
            }
        }
    }
}
