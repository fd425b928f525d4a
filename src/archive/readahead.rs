//! Read-ahead: one component for every reader of the archive (the mount's
//! open files, restore, `cat`, extract, and next the HTTP server).
//!
//! - `Sequential` tells a sequential reader from a random one and grows its
//!   window (doubling up to a cap) while it stays sequential.
//! - `Prefetcher` loads (reads + verifies) chunks ahead of readers on a pool
//!   of worker threads into a byte-bounded cache. Back-pressure is explicit:
//!   the job queue is bounded and a job that does not fit is not taken (the
//!   reader asks again on its next read, or loads the chunk itself), so
//!   memory is bounded by the cache whatever the number of readers.
//! - `ReadAhead` (from `BlobReader::read_ahead`) drives both for one reader
//!   that reports its position: nothing waits in a sleep loop; workers block
//!   on the job queue, and the reader's `advance` hands out what the window
//!   allows.
//!
//! Why chunk-level: the kernel sends FUSE reads of at most `max_readahead`
//! bytes and waits for each; large parallel loads ahead of the reader are
//! what make a cold sequential read run at disk speed.

use super::catalog::ChunkLoc;
use super::chunk_buffers::ChunkBuf;
use super::Hash;
use crossbeam_channel::{bounded, Sender};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

/// A chunk's bytes, or why it could not be loaded (the reader reports it).
pub type Loaded = Result<Arc<ChunkBuf>, String>;

/// Where chunks come from: the archive's `ChunkStore`, or anything else that
/// can load a chunk by hash and location.
pub trait ChunkSource: Send + Sync + 'static {
    fn load(&self, hash: &Hash, loc: &ChunkLoc) -> Loaded;
}

/// How much read-ahead may do.
#[derive(Debug, Clone, Copy)]
pub struct ReadAheadConfig {
    /// Bytes of loaded chunks kept (0: keep none; the source keeps them).
    pub cache_bytes: usize,
    /// Loader threads (the mount's `--threads` sets this).
    pub workers: usize,
    /// Jobs that may wait for a worker.
    pub queue: usize,
    /// The largest window one reader may have.
    pub max_window: u64,
}

impl ReadAheadConfig {
    /// The mount's: a window of a quarter of the cache lets four sequential
    /// readers run at full speed before they compete for memory.
    pub fn for_cache(cache_bytes: usize, workers: usize) -> ReadAheadConfig {
        ReadAheadConfig {
            cache_bytes,
            workers: workers.max(1),
            queue: 64,
            max_window: ((cache_bytes / 4) as u64).clamp(4 << 20, 128 << 20),
        }
    }
}

// ---- sequential detection ---------------------------------------------------------

/// One reader's sequential detector and how far it has asked ahead.
#[derive(Debug, Clone, Default)]
pub struct Sequential {
    /// Where the reader is expected next.
    pub next: u64,
    /// The current window (0: not sequential).
    pub window: u64,
    /// How far ahead read-ahead has already been requested.
    pub requested_to: u64,
    /// Chunks ending before this were let go (`behind`).
    pub released_to: u64,
    /// Where the current run of near reads began (see `run`).
    pub run_from: u64,
}

/// Reads this close to where the last ended count as sequential: a band, not
/// equality, because the kernel sends several read-ahead requests at once and
/// worker threads answer them in any order.
pub const SEQUENTIAL_BAND: u64 = 16 << 20;
/// How close to where the last read ended a read must start to make a reader
/// that is not yet sequential one: two of the kernel's 1 MiB read-ahead
/// requests, which the worker threads may answer out of order.
pub const START_BAND: u64 = 2 << 20;
/// A run of reads shorter than this is not yet a stream to the mount. The
/// kernel sends one application read of 1 MiB (its largest request,
/// `max_pages` 256) as two or more requests that follow each other exactly;
/// and a random read that lands next to pages already cached looks like a
/// stream to the kernel, which then reads ahead up to its read-ahead (8 MiB,
/// `fs::bdi`) in requests that follow each other too. Taken for streams,
/// such runs loaded windows of whole chunks: 96 random 1 MiB reads over
/// 192 MiB read 157-238 MiB from the packs (strace), depending on timing
/// and the archive's chunker seed. A run longer than two of the kernel's
/// read-aheads is the application's own; the kernel's read-ahead keeps the
/// first 16 MiB of a real stream busy meanwhile.
pub const STREAM_MIN_RUN: u64 = 16 << 20;
/// The first window of a reader found sequential is twice this.
pub const MIN_WINDOW: u64 = 4 << 20;

impl Sequential {
    /// A read of `len` bytes at `offset` of a file of `size` bytes: the range
    /// to load ahead now, if any. A read near the last one grows the window
    /// (doubling, up to `max_window`); a jump resets it.
    pub fn on_read(&mut self, offset: u64, len: u64, size: u64, max_window: u64) -> Option<(u64, u64)> {
        // A reader not yet found sequential must start about where the last
        // read ended: random 1 MiB reads land within the wide band of the one
        // before often enough (47 of 1,000 over 1 GiB) that each such pair
        // loaded and verified 8+ MiB of whole chunks (970 MiB for 1,000 MiB
        // asked), competing for the disk with the reads after them: that was
        // the random-read p99. A stream already found keeps the wide band.
        let band = if self.window == 0 { START_BAND } else { SEQUENTIAL_BAND };
        let near = offset + band >= self.next && offset <= self.next + band;
        if near && (offset > 0 || self.next > 0) {
            self.window = (self.window.max(MIN_WINDOW) * 2).min(max_window);
            self.next = self.next.max(offset + len);
        } else {
            self.window = 0;
            self.requested_to = 0;
            self.released_to = offset;
            self.run_from = offset;
            self.next = offset + len;
        }
        if self.window == 0 {
            return None;
        }
        let from = self.next.max(self.requested_to);
        let to = (self.next + self.window).min(size);
        (to > from).then_some((from, to))
    }

    /// Bytes the reader has read in its current run of near reads.
    pub fn run(&self) -> u64 {
        self.next.saturating_sub(self.run_from)
    }

    /// The part of the file a sequential reader has left a band behind, not
    /// yet let go: its chunks can leave the read-ahead cache (the kernel keeps
    /// the pages it was sent), so their buffers are reused for the loads ahead
    /// instead of new ones being mapped and faulted in (page faults and their
    /// memory accounting were a fifth of the CPU of a cold `cat` through the
    /// mount, with a cache large enough to keep the whole file). Requests
    /// answered out of order within the band still find their chunks.
    pub fn behind(&self) -> Option<(u64, u64)> {
        if self.window == 0 {
            return None;
        }
        let upto = self.next.saturating_sub(SEQUENTIAL_BAND);
        (upto > self.released_to).then_some((self.released_to, upto))
    }

    /// Read-ahead of [from, ..) was accepted up to `upto`: the rest is asked
    /// for again on the next read (back-pressure, not loss).
    pub fn accepted(&mut self, upto: u64) {
        self.requested_to = upto;
    }
}

// ---- the loader and its cache ---------------------------------------------------------

/// A chunk being loaded; readers that need it wait on the condvar.
struct Slot {
    result: Mutex<Option<Loaded>>,
    cv: Condvar,
}

/// Loaded chunks, bounded in bytes: each counted by its buffer's capacity (what
/// stays resident), and loads in flight reserve their size before they start,
/// so the cache plus the loads feeding it never exceed the bound (the mount's
/// RSS is `--cache-size` plus a fixed overhead, not plus `workers` chunks).
struct Cache {
    cap: usize,
    used: usize,
    /// Bytes reserved by loads in flight (`reserve`), not yet `put`.
    reserved: usize,
    map: HashMap<Hash, Arc<ChunkBuf>>,
    order: VecDeque<Hash>,
}

impl Cache {
    fn get(&mut self, h: &Hash) -> Option<Arc<ChunkBuf>> {
        let v = self.map.get(h).cloned()?;
        // Move to the back (most recent). O(n) in entries, which are few (cap / 4 MiB).
        if let Some(pos) = self.order.iter().position(|x| x == h) {
            self.order.remove(pos);
        }
        self.order.push_back(*h);
        Some(v)
    }

    /// Drop the oldest chunks until `extra` more bytes fit; what was dropped
    /// is returned so its buffers are recycled outside the lock.
    fn evict_for(&mut self, extra: usize) -> Vec<Arc<ChunkBuf>> {
        let mut out = Vec::new();
        while self.used + self.reserved + extra > self.cap {
            let Some(old) = self.order.pop_front() else { break };
            if let Some(v) = self.map.remove(&old) {
                self.used -= v.capacity();
                out.push(v);
            }
        }
        out
    }

    /// Room for a load of `n` bytes about to start (none if it could never fit).
    fn reserve(&mut self, n: usize) -> (usize, Vec<Arc<ChunkBuf>>) {
        if n == 0 || n > self.cap {
            return (0, Vec::new());
        }
        let evicted = self.evict_for(n);
        self.reserved += n;
        (n, evicted)
    }

    /// A load failed: release what it reserved.
    fn put_failed(&mut self, reserved: usize) -> Vec<Arc<ChunkBuf>> {
        self.reserved -= reserved.min(self.reserved);
        Vec::new()
    }

    /// Keep a loaded chunk, releasing the `reserved` bytes its load held.
    fn put(&mut self, h: Hash, v: Arc<ChunkBuf>, reserved: usize) -> Vec<Arc<ChunkBuf>> {
        self.reserved -= reserved.min(self.reserved);
        let size = v.capacity();
        if size > self.cap || self.map.contains_key(&h) {
            return Vec::new();
        }
        let evicted = self.evict_for(size);
        self.used += size;
        self.map.insert(h, v);
        self.order.push_back(h);
        evicted
    }
}

/// Chunks a cache dropped: their buffers go back to the pool for the next load.
fn recycle(evicted: Vec<Arc<ChunkBuf>>) {
    for v in evicted {
        super::chunk_buffers::recycle(v);
    }
}

type Job = (Hash, ChunkLoc, Arc<Slot>);

pub struct Prefetcher<S: ChunkSource> {
    source: Arc<S>,
    cache: Mutex<Cache>,
    inflight: Mutex<HashMap<Hash, Arc<Slot>>>,
    /// For each chunk some running stream (`ReadAhead`) has queued and not yet
    /// passed, how many such streams: a chunk leaves the cache once the last
    /// stream that wanted it has passed it (see `ReadAhead::advance`).
    wanted: Mutex<HashMap<Hash, u32>>,
    jobs: Sender<Job>,
    /// The largest read-ahead window one reader may have.
    pub max_window: u64,
}

impl<S: ChunkSource> Prefetcher<S> {
    /// Start `config.workers` loader threads. They stop when the prefetcher is
    /// dropped (the queue closes), after the job each is doing.
    pub fn new(source: Arc<S>, config: ReadAheadConfig) -> Arc<Prefetcher<S>> {
        let (tx, rx) = bounded::<Job>(config.queue);
        let p = Arc::new(Prefetcher {
            source,
            cache: Mutex::new(Cache { cap: config.cache_bytes, used: 0, reserved: 0, map: HashMap::new(), order: VecDeque::new() }),
            inflight: Mutex::new(HashMap::new()),
            wanted: Mutex::new(HashMap::new()),
            jobs: tx,
            max_window: config.max_window,
        });
        for i in 0..config.workers.max(1) {
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
        let res = self.load_counted(hash, loc);
        if let Ok(mut r) = slot.result.lock() {
            *r = Some(res);
        }
        slot.cv.notify_all();
        if let Ok(mut m) = self.inflight.lock() {
            m.remove(hash);
        }
    }

    /// Load a chunk into the cache, its size reserved in the cache's bound
    /// for as long as the load runs.
    fn load_counted(&self, hash: &Hash, loc: &ChunkLoc) -> Loaded {
        let reserved = match self.cache.lock() {
            Ok(mut c) => {
                let (n, evicted) = c.reserve(loc.raw_len as usize);
                drop(c);
                recycle(evicted);
                n
            }
            Err(_) => 0,
        };
        let res = self.source.load(hash, loc);
        if let Ok(mut c) = self.cache.lock() {
            let evicted = match &res {
                Ok(v) => c.put(*hash, v.clone(), reserved),
                Err(_) => c.put_failed(reserved),
            };
            drop(c);
            recycle(evicted);
        }
        res
    }

    pub fn cached(&self, hash: &Hash) -> Option<Arc<ChunkBuf>> {
        self.cache.lock().ok()?.get(hash)
    }

    /// The chunk if it is cached or being loaded (waiting for that load);
    /// None when neither, so the caller decides how to read it. A reader
    /// that caught up with its read-ahead takes the load already running
    /// instead of reading and verifying the same bytes a second time.
    pub fn cached_or_loading(&self, hash: &Hash) -> Option<Loaded> {
        if let Some(v) = self.cached(hash) {
            return Some(Ok(v));
        }
        let slot = self.inflight.lock().ok()?.get(hash).cloned()?;
        let mut r = slot.result.lock().ok()?;
        while r.is_none() {
            r = slot.cv.wait(r).ok()?;
        }
        r.clone()
    }

    /// Let these chunks go from the cache (a sequential reader is past them);
    /// their buffers go back to the pool unless someone still holds them.
    pub fn release(&self, hashes: &[Hash]) {
        let Ok(mut c) = self.cache.lock() else { return };
        let mut dropped = Vec::new();
        for h in hashes {
            if let Some(v) = c.map.remove(h) {
                c.used -= v.capacity();
                dropped.push(v);
            }
        }
        if !dropped.is_empty() {
            let Cache { map, order, .. } = &mut *c;
            order.retain(|h| map.contains_key(h));
        }
        drop(c);
        recycle(dropped);
    }

    /// A stream queued these chunks: keep them for it until it passes them.
    fn want<'a>(&self, hashes: impl Iterator<Item = &'a Hash>) {
        let Ok(mut w) = self.wanted.lock() else { return };
        for h in hashes {
            *w.entry(*h).or_insert(0) += 1;
        }
    }

    /// A stream no longer needs these chunks. `passed`: it read past them, so
    /// those no other stream still wants leave the cache now and their buffers
    /// go back to the pool for the loads ahead (otherwise, a stream that ended
    /// early, they stay for the cache's own order to drop).
    fn unwant<'a>(&self, hashes: impl Iterator<Item = &'a Hash>, passed: bool) {
        let mut done = Vec::new();
        if let Ok(mut w) = self.wanted.lock() {
            for h in hashes {
                if let Some(n) = w.get_mut(h) {
                    *n -= 1;
                    if *n == 0 {
                        w.remove(h);
                        done.push(*h);
                    }
                }
            }
        }
        if passed && !done.is_empty() {
            self.release(&done);
        }
    }

    /// Chunks some running stream still wants.
    pub fn wanted_chunks(&self) -> usize {
        self.wanted.lock().map(|w| w.len()).unwrap_or(0)
    }

    /// Bytes held in the cache now (never more than its cap).
    pub fn cached_bytes(&self) -> usize {
        self.cache.lock().map(|c| c.used).unwrap_or(0)
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
        self.load_counted(hash, loc)
    }

    /// Where chunks come from (for the mount: the archive's `ChunkStore`).
    pub fn store(&self) -> &Arc<S> {
        &self.source
    }
}

// ---- one reader that reports its position ------------------------------------------

/// Read-ahead for one reader of a known list of chunks (restore, cat,
/// extract): `advance(pos)` queues the chunks that start within `window`
/// bytes of `pos`. Dropping it stops the workers.
///
/// A stream wants the chunks it queued until it reads past them; then, in a
/// prefetcher that keeps a cache (serve's shared one), each chunk no other
/// stream still wants leaves the cache and its buffer is reused by the next
/// load. Without that, a fresh server's cache kept every chunk of a long
/// file until it was full, so each load of the first GiB mapped, faulted in
/// and zeroed a new buffer: about a fifth of the server's CPU for one cold
/// whole-file GET (perf). Several clients of one file in step still share
/// each chunk: it stays until the last of them has passed it.
pub struct ReadAhead<S: ChunkSource> {
    prefetcher: Arc<Prefetcher<S>>,
    chunks: Vec<(u64, Hash, ChunkLoc)>,
    window: u64,
    at: Mutex<Progress>,
}

/// Chunks `[passed, next)` are queued and wanted; `next` is the first chunk
/// not yet accepted by the prefetcher.
struct Progress {
    passed: usize,
    next: usize,
}

impl<S: ChunkSource> ReadAhead<S> {
    pub fn new(prefetcher: Arc<Prefetcher<S>>, chunks: Vec<(u64, Hash, ChunkLoc)>, window: u64, from: u64) -> ReadAhead<S> {
        let ra = ReadAhead { prefetcher, chunks, window, at: Mutex::new(Progress { passed: 0, next: 0 }) };
        ra.advance(from);
        ra
    }

    /// The reader is at `pos`: let go of the chunks it has passed and queue
    /// what the window now allows.
    pub fn advance(&self, pos: u64) {
        let Ok(mut at) = self.at.lock() else { return };
        // A chunk is passed once its extent surely ends at `pos` (an extent
        // ends at most its chunk's length after it starts).
        let passed = self.chunks[at.passed..at.next].iter().take_while(|(off, _, loc)| off + loc.raw_len as u64 <= pos).count();
        if passed > 0 {
            self.prefetcher.unwant(self.chunks[at.passed..at.passed + passed].iter().map(|(_, h, _)| h), true);
            at.passed += passed;
        }
        let limit = pos.saturating_add(self.window);
        let end = self.chunks[at.next..].iter().take_while(|(off, _, _)| *off <= limit).count() + at.next;
        if end > at.next {
            let accepted = self.prefetcher.prefetch(&self.chunks[at.next..end]);
            self.prefetcher.want(self.chunks[at.next..at.next + accepted].iter().map(|(_, h, _)| h));
            at.next += accepted;
        }
    }

    pub fn prefetcher(&self) -> &Arc<Prefetcher<S>> {
        &self.prefetcher
    }
}

impl<S: ChunkSource> Drop for ReadAhead<S> {
    /// A stream that ends (or is replaced by a wider one) stops wanting what
    /// it queued but did not pass; those chunks stay cached.
    fn drop(&mut self) {
        if let Ok(at) = self.at.lock() {
            self.prefetcher.unwant(self.chunks[at.passed..at.next].iter().map(|(_, h, _)| h), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Chunks made on demand (`len` bytes of the hash's first byte), counting
    /// loads; `gate` holds every load until opened.
    struct Made {
        len: usize,
        loads: AtomicUsize,
        /// Loads begun (some may be waiting at the gate).
        started: AtomicUsize,
        gate: Mutex<bool>,
        cv: Condvar,
    }

    impl Made {
        fn new(len: usize, open: bool) -> Arc<Made> {
            Arc::new(Made { len, loads: AtomicUsize::new(0), started: AtomicUsize::new(0), gate: Mutex::new(open), cv: Condvar::new() })
        }
        fn open(&self) {
            *self.gate.lock().unwrap() = true;
            self.cv.notify_all();
        }
        fn close(&self) {
            *self.gate.lock().unwrap() = false;
        }
    }

    impl ChunkSource for Made {
        fn load(&self, hash: &Hash, _loc: &ChunkLoc) -> Loaded {
            self.started.fetch_add(1, Ordering::SeqCst);
            let mut g = self.gate.lock().unwrap();
            while !*g {
                g = self.cv.wait(g).unwrap();
            }
            drop(g);
            self.loads.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(ChunkBuf::whole(vec![hash.0[0]; self.len])))
        }
    }

    fn chunk(i: usize, len: u64) -> (u64, Hash, ChunkLoc) {
        let mut h = [0u8; 32];
        h[0] = i as u8;
        h[1] = (i >> 8) as u8;
        (i as u64 * len, Hash(h), ChunkLoc { pack: 1, offset: i as u64 * len, stored_len: len as u32, raw_len: len as u32, codec: 0 })
    }

    fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        // Bounded by a count, not a duration assertion: the condition is what is tested.
        for _ in 0..10_000 {
            if f() {
                return;
            }
            std::thread::yield_now();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("{what} never happened");
    }

    #[test]
    fn sequential_reads_grow_the_window_and_a_jump_resets_it() {
        let mut s = Sequential::default();
        let max = 64 << 20;
        let size = 1 << 40;
        // The first read at 0 is not yet a pattern.
        assert_eq!(s.on_read(0, 128 << 10, size, max), None);
        let mut windows = Vec::new();
        let mut off = 128 << 10;
        for _ in 0..6 {
            let r = s.on_read(off, 128 << 10, size, max).expect("sequential reads ask for read-ahead");
            assert!(r.0 >= off + (128 << 10), "read-ahead starts past the read");
            s.accepted(r.1);
            windows.push(s.window);
            off += 128 << 10;
        }
        assert_eq!(windows, [8 << 20, 16 << 20, 32 << 20, 64 << 20, 64 << 20, 64 << 20], "doubling, capped at max_window");
        // Out-of-order reads within the band stay sequential.
        let before = s.clone();
        let r = s.on_read(off - (256 << 10), 128 << 10, size, max);
        assert_eq!(s.window, max, "{before:?} -> {s:?} ({r:?})");
        // A jump far away resets the window and what was requested.
        assert_eq!(s.on_read(off + (1 << 30), 128 << 10, size, max), None);
        assert_eq!((s.window, s.requested_to), (0, 0));
    }

    #[test]
    fn random_reads_near_each_other_do_not_start_read_ahead_but_a_stream_keeps_its_band() {
        let mut s = Sequential::default();
        let (max, size, mib) = (64 << 20, 1 << 30, 1u64 << 20);
        // Random 1 MiB reads a few MiB apart (inside the 16 MiB band) are not a stream.
        for off in [100 * mib, 108 * mib, 96 * mib, 111 * mib, 104 * mib] {
            assert_eq!(s.on_read(off, mib, size, max), None, "a random read at {off} started read-ahead: {s:?}");
        }
        // A read where the last ended starts one, and the stream then keeps
        // the wide band for requests answered out of order.
        assert!(s.on_read(105 * mib, mib, size, max).is_some());
        for off in [108 * mib, 100 * mib] {
            s.on_read(off, mib, size, max);
            assert!(s.window > 0, "a stream's out-of-order read at {off} reset it: {s:?}");
        }
    }

    #[test]
    fn read_ahead_never_reaches_past_the_end_of_the_file() {
        let mut s = Sequential::default();
        s.on_read(0, 4096, 10_000, 64 << 20);
        let r = s.on_read(4096, 4096, 10_000, 64 << 20);
        assert_eq!(r, Some((8192, 10_000)));
        assert_eq!(s.on_read(8192, 1808, 10_000, 64 << 20), None, "nothing left to read ahead");
    }

    #[test]
    fn the_cache_never_holds_more_than_its_byte_bound() {
        let src = Made::new(1 << 20, true);
        let cap = 5 << 20;
        let p = Prefetcher::new(src.clone(), ReadAheadConfig { cache_bytes: cap, workers: 2, queue: 64, max_window: 64 << 20 });
        let chunks: Vec<_> = (0..40).map(|i| chunk(i, 1 << 20)).collect();
        for c in chunks.chunks(8) {
            p.prefetch(c);
            for (_, h, loc) in c {
                assert_eq!(p.get(h, loc).unwrap()[0], h.0[0]);
                assert!(p.cached_bytes() <= cap, "{} > {cap}", p.cached_bytes());
            }
        }
        wait_for("all loads", || src.loads.load(Ordering::SeqCst) >= 40);
        assert!(p.cached_bytes() <= cap && p.cached_bytes() > 0);
        // The most recent chunks are the ones kept.
        assert!(p.cached(&chunks[39].1).is_some());
        assert!(p.cached(&chunks[0].1).is_none());
    }

    #[test]
    fn loads_in_flight_count_against_the_bound_so_the_cache_makes_room_before_they_start() {
        let src = Made::new(1 << 20, true);
        let cap = 4 << 20;
        let p = Prefetcher::new(src.clone(), ReadAheadConfig { cache_bytes: cap, workers: 2, queue: 64, max_window: 64 << 20 });
        let chunks: Vec<_> = (0..6).map(|i| chunk(i, 1 << 20)).collect();
        for (_, h, loc) in &chunks[..4] {
            p.get(h, loc).unwrap();
        }
        assert_eq!(p.cached_bytes(), cap, "four 1 MiB chunks fill a 4 MiB cache");
        // Two loads start and wait: their 2 MiB must already have been made
        // room for, or the cache plus them would hold 6 MiB under a 4 MiB bound.
        src.close();
        assert_eq!(p.prefetch(&chunks[4..]), 2);
        wait_for("both loads to start", || src.started.load(Ordering::SeqCst) == 6);
        assert!(p.cached_bytes() + (2 << 20) <= cap, "cache {} + 2 MiB in flight > {cap}", p.cached_bytes());
        src.open();
        for (_, h, loc) in &chunks[4..] {
            assert_eq!(p.get(h, loc).unwrap()[0], h.0[0]);
        }
        assert!(p.cached_bytes() <= cap);
    }

    #[test]
    fn a_full_queue_pushes_back_and_nothing_is_lost() {
        let src = Made::new(1024, false);
        let p = Prefetcher::new(src.clone(), ReadAheadConfig { cache_bytes: 1 << 20, workers: 1, queue: 4, max_window: 64 << 20 });
        let chunks: Vec<_> = (0..20).map(|i| chunk(i, 1024)).collect();
        // One worker is stuck on its first job; the queue holds 4 more.
        let mut accepted = p.prefetch(&chunks);
        wait_for("the worker to take a job", || {
            accepted += p.prefetch(&chunks[accepted..]);
            accepted >= 5
        });
        assert!(accepted <= 5, "accepted {accepted} jobs with 1 worker and a queue of 4");
        assert_eq!(p.prefetch(&chunks[accepted..]), 0, "a full queue takes nothing more");
        src.open();
        // The rest is asked for again and loaded; every chunk reads back.
        wait_for("every chunk accepted", || {
            accepted += p.prefetch(&chunks[accepted..]);
            accepted == chunks.len()
        });
        for (_, h, loc) in &chunks {
            assert_eq!(p.get(h, loc).unwrap()[0], h.0[0]);
        }
        assert_eq!(src.loads.load(Ordering::SeqCst), chunks.len(), "each chunk loaded once");
    }

    #[test]
    fn a_reader_waiting_for_a_chunk_in_flight_shares_its_load() {
        let src = Made::new(1024, false);
        let p = Prefetcher::new(src.clone(), ReadAheadConfig { cache_bytes: 1 << 20, workers: 1, queue: 4, max_window: 64 << 20 });
        let c = chunk(7, 1024);
        assert_eq!(p.prefetch(std::slice::from_ref(&c)), 1);
        let p2 = p.clone();
        let (h, loc) = (c.1, c.2.clone());
        let reader = std::thread::spawn(move || p2.get(&h, &loc).unwrap()[0]);
        src.open();
        assert_eq!(reader.join().unwrap(), 7);
        assert_eq!(src.loads.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_reader_asking_for_memory_only_waits_for_a_load_in_flight_and_never_starts_one() {
        let src = Made::new(1024, false);
        let p = Prefetcher::new(src.clone(), ReadAheadConfig { cache_bytes: 1 << 20, workers: 1, queue: 4, max_window: 64 << 20 });
        let (loading, absent) = (chunk(3, 1024), chunk(4, 1024));
        assert!(p.cached_or_loading(&absent.1).is_none(), "a chunk neither cached nor loading is left to the caller");
        assert_eq!(p.prefetch(std::slice::from_ref(&loading)), 1);
        let p2 = p.clone();
        let h = loading.1;
        let reader = std::thread::spawn(move || p2.cached_or_loading(&h).map(|r| r.unwrap()[0]));
        src.open();
        assert_eq!(reader.join().unwrap(), Some(3), "the reader takes the load in flight");
        assert!(p.cached_or_loading(&absent.1).is_none());
        assert_eq!(src.loads.load(Ordering::SeqCst), 1, "only the read-ahead's load ran");
    }

    #[test]
    fn a_stream_loads_only_what_its_window_allows() {
        let src = Made::new(1 << 20, true);
        let p = Prefetcher::new(src.clone(), ReadAheadConfig { cache_bytes: 0, workers: 2, queue: 64, max_window: 0 });
        let chunks: Vec<_> = (0..32).map(|i| chunk(i, 1 << 20)).collect();
        let ra = ReadAhead::new(p, chunks, 4 << 20, 0);
        // Chunks starting at 0..=4 MiB: five of them.
        wait_for("the first window", || src.loads.load(Ordering::SeqCst) == 5);
        ra.advance(10 << 20);
        wait_for("the window to follow the reader", || src.loads.load(Ordering::SeqCst) == 15);
        ra.advance(100 << 20);
        wait_for("the end", || src.loads.load(Ordering::SeqCst) == 32);
        drop(ra);
        assert_eq!(src.loads.load(Ordering::SeqCst), 32, "nothing loaded twice");
    }

    fn cached_of(p: &Prefetcher<Made>, chunks: &[(u64, Hash, ChunkLoc)]) -> Vec<bool> {
        chunks.iter().map(|(_, h, _)| p.cached(h).is_some()).collect()
    }

    #[test]
    fn a_stream_lets_go_of_the_chunks_it_has_read_past() {
        let src = Made::new(1 << 20, true);
        let p = Prefetcher::new(src.clone(), ReadAheadConfig { cache_bytes: 64 << 20, workers: 2, queue: 64, max_window: 4 << 20 });
        let chunks: Vec<_> = (0..16).map(|i| chunk(i, 1 << 20)).collect();
        let ra = ReadAhead::new(p.clone(), chunks.clone(), 4 << 20, 0);
        wait_for("the first window cached", || cached_of(&p, &chunks[..5]).iter().all(|c| *c));
        // Chunks 0-2 end at or before 3 MiB: passed. Chunk 3 ends past it.
        ra.advance(3 << 20);
        wait_for("the window to move on", || cached_of(&p, &chunks[5..8]).iter().all(|c| *c));
        assert_eq!(cached_of(&p, &chunks[..5]), [false, false, false, true, true], "passed chunks leave the cache, the rest stay");
        drop(ra);
        assert_eq!(p.wanted_chunks(), 0, "an ended stream wants nothing");
        assert!(cached_of(&p, &chunks[3..8]).iter().all(|c| *c), "what it had not passed stays cached for the cache's order to drop");
    }

    #[test]
    fn streams_in_step_share_a_chunk_until_the_last_of_them_has_passed_it() {
        let src = Made::new(1 << 20, true);
        let p = Prefetcher::new(src.clone(), ReadAheadConfig { cache_bytes: 64 << 20, workers: 2, queue: 64, max_window: 4 << 20 });
        let chunks: Vec<_> = (0..16).map(|i| chunk(i, 1 << 20)).collect();
        let lead = ReadAhead::new(p.clone(), chunks.clone(), 4 << 20, 0);
        let follow = ReadAhead::new(p.clone(), chunks.clone(), 4 << 20, 0);
        wait_for("the first window cached", || cached_of(&p, &chunks[..5]).iter().all(|c| *c));
        lead.advance(2 << 20);
        assert_eq!(cached_of(&p, &chunks[..2]), [true, true], "the follower still wants what the leader passed");
        follow.advance(1 << 20);
        assert_eq!(cached_of(&p, &chunks[..2]), [false, true], "each chunk goes once both have passed it");
        follow.advance(2 << 20);
        assert_eq!(cached_of(&p, &chunks[..2]), [false, false]);
        // Both windows reach chunk 6 (at 6 MiB): seven chunks, each loaded once for both streams.
        wait_for("the windows loaded", || cached_of(&p, &chunks[2..7]).iter().all(|c| *c));
        assert_eq!(src.loads.load(Ordering::SeqCst), 7, "every chunk loaded once for both");
    }
}
