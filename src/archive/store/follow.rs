//! A replica follows the writer: every poll interval it reads the bucket's
//! `catalog/HEAD`, and when a newer snapshot is there it downloads and
//! verifies it, then swaps it into the local catalog in one SQLite
//! transaction (snapshot::apply), so a mount reading that catalog moves from
//! one committed state to the next and never sees half a commit. When the
//! bucket cannot be reached it keeps serving the catalog it has and says so
//! in the log, once per outage, and again when the bucket is back.

use super::object::{Inner, ObjectPackStore};
use super::snapshot;
use crate::archive::error::Result;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Bounds of the poll interval: at least a second (a HEAD GET each time is
/// cheap, but hundreds of bays polling faster would only load the server);
/// at most five minutes (a replica that lags more is not following).
pub const MIN_POLL_SECS: u64 = 1;
pub const MAX_POLL_SECS: u64 = 300;
pub const DEFAULT_POLL_SECS: u64 = 5;

pub struct Follower {
    inner: Arc<Inner>,
    root: PathBuf,
    reachable: bool,
}

/// What one poll did.
#[derive(Debug, PartialEq, Eq)]
pub enum Polled {
    Current(u64),
    Moved { from: u64, to: u64 },
}

impl Follower {
    pub fn new(store: &ObjectPackStore) -> Follower {
        let inner = store.inner().clone();
        let root = inner.root.clone();
        Follower { inner, root, reachable: true }
    }

    /// Bring the local catalog to the bucket's newest snapshot, if newer.
    pub fn poll(&self) -> Result<Polled> {
        let local = snapshot::read_local(&self.root);
        let Some((head, _)) = snapshot::read_head(&self.inner)? else { return Ok(Polled::Current(local.seq)) };
        if head.seq <= local.seq {
            return Ok(Polled::Current(local.seq));
        }
        let tmp = snapshot::WorkDir::new(&self.root)?;
        let snap = tmp.path().join("catalog.db");
        snapshot::fetch(&self.inner, &head, &snap)?;
        let db = self.root.join("catalog.db");
        snapshot::apply(&snap, &db)?;
        snapshot::write_local(&self.root, &snapshot::Local { seq: head.seq, fingerprint: snapshot::fingerprint(&db)? })?;
        Ok(Polled::Moved { from: local.seq, to: head.seq })
    }

    /// Poll every `every` on a thread of its own, for as long as the process runs.
    pub fn spawn(mut self, every: Duration) -> std::io::Result<()> {
        std::thread::Builder::new().name("reelfs-replica".into()).spawn(move || loop {
            self.round();
            std::thread::sleep(every);
        })?;
        Ok(())
    }

    fn round(&mut self) {
        match self.poll() {
            Ok(p) => {
                if !self.reachable {
                    log::warn!("replica: {} is reachable again", self.inner.url);
                    self.reachable = true;
                }
                if let Polled::Moved { from, to } = p {
                    log::info!("replica: catalog moved from snapshot {from} to {to} of {}", self.inner.url);
                }
            }
            Err(e) => {
                if self.reachable {
                    let at = snapshot::read_local(&self.root).seq;
                    log::warn!("replica: cannot follow {}: {e}; still serving the catalog of snapshot {at}", self.inner.url);
                    self.reachable = false;
                }
            }
        }
    }
}
