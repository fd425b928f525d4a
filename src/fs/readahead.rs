//! Read-ahead for sequential readers.
//!
//! The kernel sends FUSE reads of at most `max_readahead` bytes and waits for
//! each, so a single reader would see one disk round-trip per request. Here a
//! sequential reader's upcoming chunks are loaded (read + verified) by a worker
//! pool ahead of it, into a byte-bounded cache. Back-pressure is explicit: the
//! job queue is bounded and a job that does not fit is dropped (the reader
//! loads that chunk itself when it gets there), and each handle's window is
//! capped, so memory is bounded by `--cache-size` whatever the number of readers.

use crate::archive::catalog::ChunkLoc;
use crate::archive::read::ChunkStore;
use crate::archive::Hash;
use crossbeam_channel::{bounded, Sender};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

type Loaded = Result<Arc<Vec<u8>>, String>;

/// A chunk being loaded; readers that need it wait on the condvar.
struct Slot {
    result: Mutex<Option<Loaded>>,
    cv: Condvar,
}

struct Cache {
    cap: usize,
    used: usize,
    map: HashMap<Hash, Arc<Vec<u8>>>,
    order: VecDeque<Hash>,
}

impl Cache {
    fn get(&mut self, h: &Hash) -> Option<Arc<Vec<u8>>> {
        let v = self.map.get(h).cloned()?;
        // Move to the back (most recent). O(n) in entries, which are few (cap / 4 MiB).
        if let Some(pos) = self.order.iter().position(|x| x == h) {
            self.order.remove(pos);
        }
        self.order.push_back(*h);
        Some(v)
    }
    fn put(&mut self, h: Hash, v: Arc<Vec<u8>>) {
        if v.len() > self.cap || self.map.contains_key(&h) {
            return;
        }
        self.used += v.len();
        self.map.insert(h, v);
        self.order.push_back(h);
        while self.used > self.cap {
            let Some(old) = self.order.pop_front() else { break };
            if let Some(v) = self.map.remove(&old) {
                self.used -= v.len();
            }
        }
    }
}

pub struct Prefetcher {
    store: Arc<ChunkStore>,
    cache: Mutex<Cache>,
    inflight: Mutex<HashMap<Hash, Arc<Slot>>>,
    jobs: Sender<(Hash, ChunkLoc, Arc<Slot>)>,
    /// The largest read-ahead window one handle may have.
    pub max_window: u64,
}

impl Prefetcher {
    pub fn new(store: Arc<ChunkStore>, cache_bytes: usize, workers: usize) -> Arc<Prefetcher> {
        // Jobs are small; memory is bounded by the window and the cache, so the
        // queue may hold a whole window of chunks.
        let (tx, rx) = bounded::<(Hash, ChunkLoc, Arc<Slot>)>(64);
        // A window of a quarter of the cache lets four sequential readers run
        // at full speed before they start to compete for memory.
        let max_window = ((cache_bytes / 4) as u64).clamp(4 << 20, 128 << 20);
        let p = Arc::new(Prefetcher {
            store,
            cache: Mutex::new(Cache { cap: cache_bytes, used: 0, map: HashMap::new(), order: VecDeque::new() }),
            inflight: Mutex::new(HashMap::new()),
            jobs: tx,
            max_window,
        });
        for i in 0..workers {
            let rx = rx.clone();
            let weak = Arc::downgrade(&p);
            let _ = std::thread::Builder::new().name(format!("reelfs-ra{i}")).spawn(move || {
                for (hash, loc, slot) in rx {
                    let Some(p) = weak.upgrade() else { break };
                    p.load_into(&hash, &loc, &slot);
                }
            });
        }
        p
    }

    fn load_into(&self, hash: &Hash, loc: &ChunkLoc, slot: &Slot) {
        let res = self.store.load_verified(hash, loc).map(Arc::new).map_err(|e| e.to_string());
        if let Ok(v) = &res {
            if let Ok(mut c) = self.cache.lock() {
                c.put(*hash, v.clone());
            }
        }
        if let Ok(mut r) = slot.result.lock() {
            *r = Some(res);
        }
        slot.cv.notify_all();
        if let Ok(mut m) = self.inflight.lock() {
            m.remove(hash);
        }
    }

    pub fn cached(&self, hash: &Hash) -> Option<Arc<Vec<u8>>> {
        self.cache.lock().ok()?.get(hash)
    }

    /// Queue chunks for loading, in order; chunks already cached or in flight
    /// count as done. Stops at the first chunk the bounded queue cannot take
    /// (back-pressure) and returns how many were accepted.
    pub fn prefetch(&self, chunks: &[(u64, Hash, ChunkLoc)]) -> usize {
        for (i, (_, h, loc)) in chunks.iter().enumerate() {
            if self.cache.lock().map(|c| c.map.contains_key(h)).unwrap_or(false) {
                continue;
            }
            let slot = {
                let Ok(mut m) = self.inflight.lock() else { return i };
                if m.contains_key(h) {
                    continue;
                }
                let slot = Arc::new(Slot { result: Mutex::new(None), cv: Condvar::new() });
                m.insert(*h, slot.clone());
                slot
            };
            if self.jobs.try_send((*h, loc.clone(), slot)).is_err() {
                if let Ok(mut m) = self.inflight.lock() {
                    m.remove(h);
                }
                return i;
            }
        }
        chunks.len()
    }

    /// The whole chunk: from the cache, from a load in flight, or loaded now.
    pub fn get(&self, hash: &Hash, loc: &ChunkLoc) -> Loaded {
        if let Some(v) = self.cached(hash) {
            return Ok(v);
        }
        let slot = self.inflight.lock().ok().and_then(|m| m.get(hash).cloned());
        if let Some(slot) = slot {
            let mut r = slot.result.lock().map_err(|_| "poisoned".to_string())?;
            while r.is_none() {
                r = slot.cv.wait(r).map_err(|_| "poisoned".to_string())?;
            }
            if let Some(res) = r.as_ref() {
                return res.clone();
            }
        }
        let v = Arc::new(self.store.load_verified(hash, loc).map_err(|e| e.to_string())?);
        if let Ok(mut c) = self.cache.lock() {
            c.put(*hash, v.clone());
        }
        Ok(v)
    }

    pub fn store(&self) -> &Arc<ChunkStore> {
        &self.store
    }
}
