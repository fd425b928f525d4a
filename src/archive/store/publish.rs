//! A writer's term on a shared bucket: begins when it takes the writer
//! lease, by bringing this folder's catalog up to the bucket's newest
//! snapshot (another host may have written since this folder last did:
//! writing on a stale catalog would publish over that host's commits), and
//! ends, before the lease is let go, by publishing the catalog as the next
//! snapshot (snapshot.rs) so attached folders and replicas see the commits.

use super::lease::{hostname, Lease};
use super::object::Inner;
use super::snapshot;
use crate::archive::error::Result;
use std::sync::Arc;

pub struct WriterTerm {
    inner: Arc<Inner>,
    /// Dropped after the catalog is published (field order is drop order).
    lease: Option<Lease>,
}

impl WriterTerm {
    pub(super) fn begin(inner: Arc<Inner>, lease: Lease) -> Result<WriterTerm> {
        let local = snapshot::read_local(&inner.root);
        let head = match snapshot::read_head(&inner) {
            Ok(h) => h,
            // Republished when this writer finishes (snapshot::publish).
            Err(crate::archive::ArchiveError::Inconsistent(why)) => {
                log::warn!("{why}; writing on this folder's catalog");
                None
            }
            Err(e) => return Err(e),
        };
        if let Some((head, _)) = head {
            if head.seq > local.seq {
                log::info!(
                    "{}: another host ({}) wrote since this folder did; taking its catalog (snapshot {}) before writing",
                    inner.url,
                    head.host,
                    head.seq
                );
                snapshot::pull(&inner, &inner.root, &head)?;
            }
        }
        Ok(WriterTerm { inner, lease: Some(lease) })
    }
}

impl Drop for WriterTerm {
    fn drop(&mut self) {
        match snapshot::publish(&self.inner, &self.inner.root, &hostname()) {
            Ok(Some(seq)) => log::info!("published catalog snapshot {seq} to {}", self.inner.url),
            Ok(None) => {}
            // The commits are durable here and their packs in the bucket; only
            // other hosts do not see them yet. The next writer here publishes.
            Err(e) => log::error!(
                "could not publish the catalog to {}: {e}; other hosts will not see the latest commits until the next write from this folder",
                self.inner.url
            ),
        }
        drop(self.lease.take());
    }
}
