//! Resolved files by URL path, so a request for a file already served skips
//! the resolver's catalog walk (a dozen read transactions) and the extent
//! lookup: the 200-HLS-clients bench fetches the same few segments' file over
//! and over.
//!
//! Valid while the catalog is unchanged: every lookup first asks SQLite's
//! `data_version` on a connection of its own, which changes when any other
//! connection (a commit, an ingest, a write staged through a mount) has
//! committed; then the whole cache is dropped. Only files and proxies are
//! kept (their bytes are a function of their content hash); slices, folders
//! and errors are resolved every time.

use super::content::Entity;
use crate::archive::Archive;
use crate::view::{Resolved, Target};
use std::sync::{Arc, Mutex};

/// Paths kept; each entry is a path, a target and an extent list.
const ENTRIES: usize = 4096;

pub struct EntityCache {
    /// The connection whose `data_version` says whether the catalog changed.
    probe: Mutex<Archive>,
    inner: Mutex<Inner>,
}

struct Inner {
    version: Option<i64>,
    map: hashlink::LruCache<String, (Resolved, Arc<Entity>)>,
}

/// What a request saw: the catalog version it checked (None: unknown, do
/// not cache what it resolves).
#[derive(Clone, Copy)]
pub struct Seen(Option<i64>);

impl EntityCache {
    pub fn new(probe: Archive) -> EntityCache {
        EntityCache { probe: Mutex::new(probe), inner: Mutex::new(Inner { version: None, map: hashlink::LruCache::new(ENTRIES) }) }
    }

    /// The cached file at `path` if the catalog has not changed since it was
    /// cached; and what this request saw, for `put`.
    pub fn get(&self, path: &str) -> (Option<(Resolved, Arc<Entity>)>, Seen) {
        let version = self.probe.lock().ok().and_then(|a| a.catalog.data_version().ok());
        let Ok(mut inner) = self.inner.lock() else { return (None, Seen(None)) };
        if version.is_none() || inner.version != version {
            inner.map.clear();
            inner.version = version;
            return (None, Seen(version));
        }
        let hit = inner.map.get(path).map(|(r, e)| (Resolved { path: r.path.clone(), target: r.target.clone() }, e.clone()));
        (hit, Seen(version))
    }

    /// Keep what a request resolved, unless the catalog moved on since it
    /// looked (then the entry could be older than the cache).
    pub fn put(&self, path: &str, seen: Seen, resolved: &Resolved, entity: &Arc<Entity>) {
        if !matches!(resolved.target, Target::File { .. } | Target::Proxy(_)) {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else { return };
        if seen.0.is_some() && inner.version == seen.0 {
            inner.map.insert(path.to_string(), (Resolved { path: resolved.path.clone(), target: resolved.target.clone() }, entity.clone()));
        }
    }
}
