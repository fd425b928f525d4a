//! `ObjectPackStore`: sealed packs as objects in an S3-compatible bucket (or
//! any `object_store` backend with multipart upload), read through a local
//! block cache.
//!
//! - A pack is one multipart upload: parts go up while it is written (a few
//!   in flight, memory bounded), and the object exists only once the upload is
//!   completed at `seal`. A failed, aborted or dropped upload is aborted in the
//!   store; one a killed process left is aborted by the next writer or `gc`
//!   (see journal.rs).
//! - Reads are ranged GETs of whole cache blocks (cache.rs); a read spanning
//!   several missing blocks fetches them concurrently. The archive's own
//!   read-ahead (readahead.rs) sits above this, as it does above local packs.
//! - A block is fetched once however many readers want it: chunks are not
//!   block-aligned, so the read-ahead's parallel loads of neighbouring
//!   chunks both need the block on their boundary. The first claims it and
//!   the others wait for its answer (without this a sequential read asked
//!   the server for 1.67x the file).
//! - object_store is async; the `PackStore` seam is sync. One small runtime
//!   lives inside the store and every call blocks on it.
//! - Transient failures (a server restarting, a dropped connection) are
//!   retried with exponential back-off by object_store's retry layer for
//!   `retry_seconds`; after that the read fails with an error naming the pack.

use super::cache::{BlockCache, BLOCK};
use super::journal::{Journal, Pending};
use super::uploads::UploadLister;
use super::{credentials, S3Url, StoreConfig};
use crate::archive::error::{ArchiveError, Result};
use crate::archive::pack_store::{PackStore, PackUpload};
use crate::archive::read_at::ReadAt;
use bytes::Bytes;
use futures::TryStreamExt;
use hashlink::LinkedHashMap;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjPath;
use object_store::{MultipartId, ObjectStore, ObjectStoreExt, PutPayload};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// What the store needs of a backend: objects and the multipart calls that
/// hand out an upload id (so a left-over upload can be aborted later).
pub trait Backend: ObjectStore + MultipartStore {}
impl<T: ObjectStore + MultipartStore> Backend for T {}

/// Parts are 8 MiB: above S3's 5 MiB minimum, and a 512 MiB pack is 64 parts
/// (S3 allows 10,000).
const PART: usize = 8 << 20;
/// Parts uploading at once per pack: enough to keep a link busy, and at most
/// 32 MiB of a pack in memory.
const PARTS_IN_FLIGHT: usize = 4;
/// Largest span one `read_at` fetches: bounds memory per read.
const MAX_READ_BLOCKS: u64 = 8;
/// Blocks kept in memory after use: a reader's small reads inside one block
/// (record headers, a pack's trailer) do not re-read and re-hash the file,
/// and a boundary block one read-ahead load fetched is still here when the
/// load of the next chunk (on another thread, a few loads later) needs it.
/// 64 MiB.
const HOT_BLOCKS: usize = 16;

pub struct ObjectPackStore {
    inner: Arc<Inner>,
    /// How long a writer's lease lasts unless renewed (lease.rs).
    lease_seconds: u64,
}

pub(super) struct Inner {
    pub(super) backend: Arc<dyn Backend>,
    rt: tokio::runtime::Runtime,
    /// `s3://bucket/prefix`, for messages.
    pub(super) url: String,
    /// The prefix, where objects of the archive that are not packs live.
    pub(super) prefix: String,
    /// Packs are objects below `<prefix>/packs/`, so the prefix can also hold
    /// other objects of the archive (a writer lease) that are not packs.
    packs: String,
    cache: BlockCache,
    hot: Mutex<LinkedHashMap<(String, u64), Bytes>>,
    /// Blocks being fetched now, by pack and block: a second reader of one
    /// waits for the first's answer instead of asking the server again.
    fetching: Mutex<HashMap<(String, u64), Arc<Fetching>>>,
    journal: Journal,
    sizes: Mutex<HashMap<String, u64>>,
    /// The archive folder (catalog snapshots are published from and pulled into it).
    pub(super) root: std::path::PathBuf,
    /// The bucket's own list of unfinished uploads (S3 only; `None` for the
    /// in-memory backend of the unit tests).
    lister: Option<UploadLister>,
    /// Uploads this process has open: never aborted as left-overs.
    live: Mutex<HashSet<String>>,
}

fn io_err(kind: std::io::ErrorKind, msg: String) -> std::io::Error {
    std::io::Error::new(kind, msg)
}

fn to_io(e: object_store::Error) -> std::io::Error {
    match e {
        object_store::Error::NotFound { .. } => io_err(std::io::ErrorKind::NotFound, "no such pack in the store".into()),
        e => io_err(std::io::ErrorKind::Other, e.to_string()),
    }
}

impl ObjectPackStore {
    /// The store an archive's `[store]` names, with its cache and upload
    /// journal in the archive folder `root`.
    pub fn s3(root: &Path, sc: &StoreConfig) -> Result<ObjectPackStore> {
        let (backend, url, lister) = Self::s3_backend(root, sc)?;
        let cache_dir = root.join("cache").join("packs");
        Ok(ObjectPackStore::with_cache_dir(backend, Some(lister), &url, root, cache_dir, sc.cache_limit)?
            .with_lease_seconds(sc.lease_seconds))
    }

    /// The same bucket for metadata only (catalog snapshots): its own
    /// connections and runtime, and a pack cache of its own that it never
    /// fills, so it shares no cache files with the archive's pack reads.
    pub fn s3_metadata(root: &Path, sc: &StoreConfig) -> Result<ObjectPackStore> {
        let (backend, url, _) = Self::s3_backend(root, sc)?;
        ObjectPackStore::with_cache_dir(backend, None, &url, root, root.join("cache").join("replica"), 0)
    }

    fn s3_backend(root: &Path, sc: &StoreConfig) -> Result<(Arc<dyn Backend>, S3Url, UploadLister)> {
        use object_store::aws::AmazonS3Builder;
        let bad = |msg: String| ArchiveError::Config { path: root.join("reelfs.toml"), msg };
        let url = S3Url::parse(&sc.url).map_err(bad)?;
        let retry = object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: 100,
            retry_timeout: Duration::from_secs(sc.retry_seconds.max(1)),
        };
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&url.bucket).with_retry(retry);
        if let Some(e) = &sc.endpoint {
            // A named server (MinIO, RGW, a test server) is addressed by path,
            // not by a bucket hostname it may not resolve.
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://")).with_virtual_hosted_style_request(false);
        }
        let profile = credentials::from_profile_file();
        if let Some(k) = &profile {
            b = b.with_access_key_id(&k.access_key_id).with_secret_access_key(&k.secret_access_key);
            if let Some(t) = &k.session_token {
                b = b.with_token(t);
            }
        }
        let region = sc.region.clone().or_else(|| profile.and_then(|p| p.region));
        if let Some(r) = region {
            b = b.with_region(r);
        }
        let s3 = b.clone().build().map_err(|e| bad(format!("cannot use {}: {e}", sc.url)))?;
        let lister = UploadLister::new(&b, s3.clone()).map_err(|e| bad(format!("cannot use {}: {e}", sc.url)))?;
        Ok((Arc::new(s3), url, lister))
    }

    /// A store over any backend (tests use object_store's `InMemory`).
    pub fn new(backend: Arc<dyn Backend>, url: &S3Url, root: &Path, cache_limit: u64) -> Result<ObjectPackStore> {
        ObjectPackStore::with_cache_dir(backend, None, url, root, root.join("cache").join("packs"), cache_limit)
    }

    /// `lister`: the bucket's own list of unfinished uploads, given here (not
    /// set later) because the store is shared from the moment it exists.
    fn with_cache_dir(
        backend: Arc<dyn Backend>,
        lister: Option<UploadLister>,
        url: &S3Url,
        root: &Path,
        cache_dir: std::path::PathBuf,
        cache_limit: u64,
    ) -> Result<ObjectPackStore> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("reelfs-store")
            .enable_all()
            .build()
            .map_err(|e| ArchiveError::Io { path: url.display().into(), source: e })?;
        let cache = BlockCache::open(cache_dir.clone(), cache_limit).map_err(|source| ArchiveError::Io { path: cache_dir, source })?;
        let packs = if url.prefix.is_empty() { "packs".to_string() } else { format!("{}/packs", url.prefix) };
        Ok(ObjectPackStore {
            inner: Arc::new(Inner {
                backend,
                rt,
                url: url.display(),
                prefix: url.prefix.clone(),
                packs,
                cache,
                hot: Mutex::new(LinkedHashMap::new()),
                fetching: Mutex::new(HashMap::new()),
                journal: Journal::new(root.join("uploads")),
                sizes: Mutex::new(HashMap::new()),
                root: root.to_path_buf(),
                lister,
                live: Mutex::new(HashSet::new()),
            }),
            lease_seconds: super::DEFAULT_LEASE_SECONDS,
        })
    }

    /// Writers' leases last `secs` unless renewed.
    pub fn with_lease_seconds(mut self, secs: u64) -> ObjectPackStore {
        self.lease_seconds = secs.max(3);
        self
    }

    /// Drop a pack's blocks from the local caches, so its next read comes
    /// from the store itself (a migration verifying what it uploaded).
    pub fn forget_cached(&self, name: &str) {
        self.inner.hot.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, _| k.0 != name);
        self.inner.cache.drop_pack(name);
    }

    /// The bucket side of the store, for catalog snapshots (snapshot.rs).
    pub(super) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Bytes of pack data in the local cache now.
    pub fn cached_bytes(&self) -> u64 {
        self.inner.cache.size()
    }
}

impl Inner {
    /// Run a store call to completion from sync code. Called from inside some
    /// other tokio runtime (a server built on one), blocking that thread would
    /// panic, so the call runs on a scoped plain thread instead.
    pub(super) fn run<F>(&self, f: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| match s.spawn(|| self.rt.block_on(f)).join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            })
        } else {
            self.rt.block_on(f)
        }
    }

    /// Abort the uploads under the packs prefix that the bucket holds open and
    /// no writer of this process owns: ones the journal never named (a writer
    /// killed before its entry was made, a folder lost with its journal, another
    /// host's dead writer). Only under the writer lease, which no other live
    /// writer holds; a writer that lost it (stalled past its expiry) fails at
    /// completing its upload instead of committing.
    fn abort_unlisted(&self) -> Result<Vec<String>> {
        let Some(lister) = &self.lister else { return Ok(Vec::new()) };
        let strip = format!("{}/", self.packs);
        let open = self.run(lister.list(&strip)).map_err(|e| ArchiveError::Io {
            path: format!("{}/packs", self.url).into(),
            source: io_err(std::io::ErrorKind::Other, e.to_string()),
        })?;
        let mut aborted = Vec::new();
        for u in open {
            if self.live.lock().unwrap_or_else(|p| p.into_inner()).contains(&u.upload_id) {
                continue;
            }
            let Some(name) = u.key.strip_prefix(&strip) else { continue };
            let path = self.path(name)?;
            match self.run(self.backend.abort_multipart(&path, &u.upload_id)) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => aborted.push(name.to_string()),
                Err(e) => return Err(self.err(name, e)),
            }
        }
        Ok(aborted)
    }

    fn where_(&self, name: &str) -> String {
        format!("{}/packs/{name}", self.url)
    }

    fn err(&self, name: &str, e: object_store::Error) -> ArchiveError {
        ArchiveError::Io { path: self.where_(name).into(), source: to_io(e) }
    }

    /// The object of a pack. Names come from the catalog or from the store's
    /// own listing; one that would leave the packs prefix is refused.
    fn path(&self, name: &str) -> Result<ObjPath> {
        let plain =
            !name.is_empty() && name.split('/').all(|p| !p.is_empty() && p != "." && p != ".." && !p.contains('\0') && !p.contains('\\'));
        if !plain {
            return Err(ArchiveError::Inconsistent(format!("pack name '{name}' is not a name inside {}/packs", self.url)));
        }
        ObjPath::parse(format!("{}/{name}", self.packs)).map_err(|e| ArchiveError::Inconsistent(format!("pack name '{name}': {e}")))
    }

    fn head(&self, name: &str) -> Result<Option<u64>> {
        if let Some(s) = self.sizes.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Ok(Some(*s));
        }
        let path = self.path(name)?;
        match self.run(self.backend.head(&path)) {
            Ok(m) => {
                self.sizes.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), m.size);
                Ok(Some(m.size))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(name, e)),
        }
    }

    fn hot_get(&self, name: &str, block: u64) -> Option<Bytes> {
        let mut hot = self.hot.lock().unwrap_or_else(|p| p.into_inner());
        let key = (name.to_string(), block);
        let v = hot.remove(&key)?;
        hot.insert(key, v.clone());
        Some(v)
    }

    fn hot_put(&self, name: &str, block: u64, bytes: Bytes) {
        let mut hot = self.hot.lock().unwrap_or_else(|p| p.into_inner());
        hot.insert((name.to_string(), block), bytes);
        while hot.len() > HOT_BLOCKS {
            hot.pop_front();
        }
    }

    /// Blocks `first..=last` of a pack `len` bytes long, from memory, the
    /// cache, another reader's fetch, or the store (every block no one is
    /// fetching yet asked for at once).
    fn blocks(&self, name: &str, len: u64, first: u64, last: u64) -> std::io::Result<Vec<Bytes>> {
        let mut have: Vec<Option<Bytes>> = Vec::new();
        for b in first..=last {
            let got = self.hot_get(name, b).or_else(|| {
                let bytes = self.cache.get(name, b)?;
                self.hot_put(name, b, bytes.clone());
                Some(bytes)
            });
            have.push(got);
        }
        let mut claim = Claim { store: self, name, blocks: Vec::new(), answered: Vec::new() };
        let mut theirs = Vec::new();
        {
            let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
            for b in first..=last {
                let slot = &mut have[(b - first) as usize];
                if slot.is_some() {
                    continue;
                }
                // Checked again under the lock: a fetch that finished since
                // put its block here before it left `fetching` (it leaves
                // only once the block is in the disk cache, too).
                if let Some(v) = self.hot_get(name, b) {
                    *slot = Some(v);
                } else if let Some(f) = fetching.get(&(name.to_string(), b)) {
                    theirs.push((b, f.clone()));
                } else {
                    let f = Arc::new(Fetching::default());
                    fetching.insert((name.to_string(), b), f.clone());
                    claim.blocks.push((b, f));
                }
            }
        }
        if !claim.blocks.is_empty() {
            let path = match self.path(name) {
                Ok(p) => p,
                Err(e) => {
                    let msg = e.to_string();
                    claim.fail(std::io::ErrorKind::InvalidInput, &msg);
                    return Err(io_err(std::io::ErrorKind::InvalidInput, msg));
                }
            };
            let backend = &self.backend;
            // Each block settles with its own answer: a reader waiting for a
            // block that came is not failed by another that did not.
            let fetched = self.run(futures::future::join_all(claim.blocks.iter().map(|(b, _)| {
                let range = b * BLOCK..((b + 1) * BLOCK).min(len);
                let path = &path;
                async move { backend.get_range(path, range).await }
            })));
            let mut failed = None;
            let mut got = Vec::new();
            // Settled one at a time off the claim, so a block not yet settled
            // is still the claim's to fail if anything here panics.
            for r in fetched.into_iter().rev() {
                let Some((b, f)) = claim.blocks.pop() else { break };
                match self.checked(name, len, b, r) {
                    Ok(bytes) => {
                        self.hot_put(name, b, bytes.clone());
                        claim.answer(b, &f, bytes.clone());
                        have[(b - first) as usize] = Some(bytes.clone());
                        got.push((b, bytes));
                    }
                    Err((kind, msg)) => {
                        claim.fail_one(b, &f, kind, msg.clone());
                        failed.get_or_insert((kind, msg));
                    }
                }
            }
            // Waiting readers had their blocks before this one writes them to
            // disk; the blocks leave `fetching` once there (the claim's drop).
            for (b, bytes) in &got {
                self.cache.put(name, *b, bytes);
            }
            drop(claim);
            if let Some((kind, msg)) = failed {
                return Err(io_err(kind, msg));
            }
        }
        for (b, f) in theirs {
            have[(b - first) as usize] = Some(f.wait().map_err(|(kind, msg)| io_err(kind, msg))?);
        }
        Ok(have.into_iter().flatten().collect())
    }
}

/// What a reader waiting for a block gets: its bytes, or why not.
type BlockAnswer = std::result::Result<Bytes, (std::io::ErrorKind, String)>;

impl Inner {
    /// A ranged GET's result for block `b` of a pack `len` bytes long, as a
    /// waiter's answer: a short body is an error, never a short block.
    fn checked(&self, name: &str, len: u64, b: u64, got: object_store::Result<Bytes>) -> BlockAnswer {
        let want = (((b + 1) * BLOCK).min(len) - b * BLOCK) as usize;
        match got {
            Ok(bytes) if bytes.len() == want => Ok(bytes),
            Ok(bytes) => Err((
                std::io::ErrorKind::UnexpectedEof,
                format!("{}: the store answered {} bytes for a {want}-byte range at offset {}", self.where_(name), bytes.len(), b * BLOCK),
            )),
            Err(e) => {
                let e = to_io(e);
                Err((e.kind(), format!("reading {}: {e}", self.where_(name))))
            }
        }
    }
}

/// One block's fetch, shared by every reader that wants the block meanwhile.
#[derive(Default)]
struct Fetching {
    answer: Mutex<Option<BlockAnswer>>,
    ready: Condvar,
}

impl Fetching {
    fn wait(&self) -> BlockAnswer {
        let mut answer = self.answer.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(a) = answer.as_ref() {
                return a.clone();
            }
            answer = self.ready.wait(answer).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The blocks one reader claimed to fetch. Each is answered with its bytes
/// and leaves the table of fetches when the claim is dropped (after the
/// reader has put it in the disk cache, so a reader arriving meanwhile finds
/// the answer rather than nothing); any left unanswered (the reader returned
/// early or panicked) are answered with an error then, so no waiter hangs.
struct Claim<'a> {
    store: &'a Inner,
    name: &'a str,
    blocks: Vec<(u64, Arc<Fetching>)>,
    /// Answered, still in the table.
    answered: Vec<u64>,
}

impl Claim<'_> {
    fn tell(f: &Fetching, answer: BlockAnswer) {
        *f.answer.lock().unwrap_or_else(|p| p.into_inner()) = Some(answer);
        f.ready.notify_all();
    }

    /// Answer a block's waiters; it stays in the table until the drop.
    fn answer(&mut self, block: u64, f: &Fetching, bytes: Bytes) {
        Self::tell(f, Ok(bytes));
        self.answered.push(block);
    }

    /// Fail a block's waiters and take it out of the table (a failed
    /// block is asked for again by the next reader).
    fn fail_one(&self, block: u64, f: &Fetching, kind: std::io::ErrorKind, msg: String) {
        self.store.fetching.lock().unwrap_or_else(|p| p.into_inner()).remove(&(self.name.to_string(), block));
        Self::tell(f, Err((kind, msg)));
    }

    /// Every block still unanswered gets this error.
    fn fail(&mut self, kind: std::io::ErrorKind, msg: &str) {
        while let Some((b, f)) = self.blocks.pop() {
            self.fail_one(b, &f, kind, msg.to_string());
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.blocks.is_empty() {
            let msg = format!("reading {}: the read that was fetching this block stopped", self.store.where_(self.name));
            self.fail(std::io::ErrorKind::Other, &msg);
        }
        if !self.answered.is_empty() {
            let mut fetching = self.store.fetching.lock().unwrap_or_else(|p| p.into_inner());
            for b in self.answered.drain(..) {
                fetching.remove(&(self.name.to_string(), b));
            }
        }
    }
}

impl PackStore for ObjectPackStore {
    fn begin(&self, name: &str) -> Result<Box<dyn PackUpload>> {
        let s = &self.inner;
        let path = s.path(name)?;
        if s.head(name)?.is_some() {
            return Err(ArchiveError::Io {
                path: s.where_(name).into(),
                source: io_err(std::io::ErrorKind::AlreadyExists, "pack exists".into()),
            });
        }
        let id = s.run(s.backend.create_multipart(&path)).map_err(|e| s.err(name, e))?;
        s.live.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone());
        let pending = match s.journal.record(name, &id) {
            Ok(p) => p,
            Err(e) => {
                let _ = s.run(s.backend.abort_multipart(&path, &id));
                return Err(ArchiveError::Io { path: s.journal.dir().into(), source: e });
            }
        };
        Ok(Box::new(ObjectUpload {
            store: self.inner.clone(),
            name: name.to_string(),
            path,
            id,
            pending,
            buf: Vec::with_capacity(PART),
            in_flight: VecDeque::new(),
            parts: Vec::new(),
            size: 0,
            done: false,
        }))
    }

    fn open(&self, name: &str) -> Result<Arc<dyn ReadAt>> {
        let s = &self.inner;
        match s.head(name)? {
            Some(len) => Ok(Arc::new(ObjectPack { store: self.inner.clone(), name: name.to_string(), len })),
            None => Err(ArchiveError::Io {
                path: s.where_(name).into(),
                source: to_io(object_store::Error::NotFound { path: name.into(), source: "no such pack".into() }),
            }),
        }
    }

    fn size(&self, name: &str) -> Result<Option<u64>> {
        self.inner.head(name)
    }

    fn list(&self) -> Result<Vec<String>> {
        let s = &self.inner;
        let prefix = ObjPath::from(s.packs.as_str());
        let metas: Vec<object_store::ObjectMeta> = s
            .run(s.backend.list(Some(&prefix)).try_collect())
            .map_err(|e| ArchiveError::Io { path: format!("{}/packs", s.url).into(), source: to_io(e) })?;
        let strip = format!("{}/", s.packs);
        let mut names: Vec<String> =
            metas.into_iter().filter_map(|m| m.location.as_ref().strip_prefix(&strip).map(str::to_string)).collect();
        names.sort();
        Ok(names)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let s = &self.inner;
        let path = s.path(name)?;
        match s.run(s.backend.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(s.err(name, e)),
        }
        s.sizes.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
        s.hot.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, _| k.0 != name);
        s.cache.drop_pack(name);
        Ok(())
    }

    fn locate(&self, name: &str) -> String {
        self.inner.where_(name)
    }

    fn may_remove_uncommitted(&self, names: &[String]) -> Vec<String> {
        let mine = self.inner.journal.written();
        names.iter().filter(|n| mine.contains(n.as_str())).cloned().collect()
    }

    fn writer_lease(&self) -> Result<Option<Box<dyn Send + Sync>>> {
        let lease = super::lease::Lease::acquire(self.inner.clone(), self.lease_seconds)?;
        Ok(Some(Box::new(super::publish::WriterTerm::begin(self.inner.clone(), lease)?)))
    }

    fn abort_interrupted(&self) -> Result<Vec<String>> {
        let s = &self.inner;
        let mut aborted = Vec::new();
        for p in s.journal.pending() {
            let path = s.path(&p.pack)?;
            match s.run(s.backend.abort_multipart(&path, &p.upload_id)) {
                // Gone already (completed then killed before the entry was
                // removed, or aborted by a lifecycle rule): nothing to do.
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(s.err(&p.pack, e)),
            }
            s.journal.done(&p);
            aborted.push(p.pack);
        }
        // The bucket's own list is housekeeping on top of the journal: a server that
        // refuses ListMultipartUploads (or cannot be reached for it) must not stop
        // every write. Parts left unlisted stay until a later sweep or a lifecycle rule.
        match s.abort_unlisted() {
            Ok(more) => aborted.extend(more),
            Err(e) => log::warn!(
                "could not look for unfinished uploads that no journal names ({e}); they stay in the bucket \
                 until a later write or `reelfs gc` can list them, or a lifecycle rule (AbortIncompleteMultipartUpload) removes them"
            ),
        }
        Ok(aborted)
    }
}

struct ObjectPack {
    store: Arc<Inner>,
    name: String,
    len: u64,
}

impl ReadAt for ObjectPack {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let end = (offset + buf.len() as u64).min(self.len);
        let first = offset / BLOCK;
        let last = ((end - 1) / BLOCK).min(first + MAX_READ_BLOCKS - 1);
        let blocks = self.store.blocks(&self.name, self.len, first, last)?;
        let mut done = 0usize;
        let mut pos = offset;
        for (i, block) in blocks.iter().enumerate() {
            let start = (first + i as u64) * BLOCK;
            let from = (pos - start) as usize;
            let n = (block.len() - from).min(buf.len() - done).min((end - pos) as usize);
            buf[done..done + n].copy_from_slice(&block[from..from + n]);
            done += n;
            pos += n as u64;
            if pos >= end {
                break;
            }
        }
        Ok(done)
    }

    fn len(&self) -> u64 {
        self.len
    }
}

struct ObjectUpload {
    store: Arc<Inner>,
    name: String,
    path: ObjPath,
    id: MultipartId,
    pending: Pending,
    buf: Vec<u8>,
    in_flight: VecDeque<tokio::task::JoinHandle<object_store::Result<PartId>>>,
    parts: Vec<PartId>,
    size: u64,
    /// Sealed or aborted: nothing left to do on drop.
    done: bool,
}

impl ObjectUpload {
    fn send_part(&mut self, bytes: Vec<u8>) -> Result<()> {
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.join_oldest()?;
        }
        let backend = self.store.backend.clone();
        let (path, id, idx) = (self.path.clone(), self.id.clone(), self.parts.len() + self.in_flight.len());
        let payload = PutPayload::from(bytes);
        let h = self.store.rt.spawn(async move { backend.put_part(&path, &id, idx, payload).await });
        self.in_flight.push_back(h);
        Ok(())
    }

    fn join_oldest(&mut self) -> Result<()> {
        let Some(h) = self.in_flight.pop_front() else { return Ok(()) };
        let part = self
            .store
            .run(h)
            .map_err(|e| ArchiveError::Io {
                path: self.store.where_(&self.name).into(),
                source: io_err(std::io::ErrorKind::Other, e.to_string()),
            })?
            .map_err(|e| self.store.err(&self.name, e))?;
        self.parts.push(part);
        Ok(())
    }

    fn give_up(&mut self) -> Result<()> {
        self.done = true;
        for h in self.in_flight.drain(..) {
            h.abort();
        }
        let s = &self.store;
        match s.run(s.backend.abort_multipart(&self.path, &self.id)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                s.journal.done(&self.pending);
                Ok(())
            }
            // The journal entry stays: the next writer or gc aborts it.
            Err(e) => Err(s.err(&self.name, e)),
        }
    }

    fn finish(&mut self) -> Result<u64> {
        let last = std::mem::take(&mut self.buf);
        // A pack is never empty, but an upload needs at least one part.
        if !last.is_empty() || self.parts.is_empty() && self.in_flight.is_empty() {
            self.send_part(last)?;
        }
        while !self.in_flight.is_empty() {
            self.join_oldest()?;
        }
        let s = &self.store;
        s.run(s.backend.complete_multipart(&self.path, &self.id, std::mem::take(&mut self.parts))).map_err(|e| s.err(&self.name, e))?;
        Ok(self.size)
    }
}

impl PackUpload for ObjectUpload {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = (PART - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            self.size += n as u64;
            if self.buf.len() == PART {
                let part = std::mem::replace(&mut self.buf, Vec::with_capacity(PART));
                self.send_part(part)?;
            }
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }

    /// Completing the upload is what makes the object exist: S3 writes it
    /// durably before it answers, so the catalog may point into it after.
    fn seal(mut self: Box<Self>) -> Result<u64> {
        match self.finish() {
            Ok(n) => {
                self.done = true;
                if let Err(e) = self.store.journal.sealed(&self.pending) {
                    log::warn!(
                        "could not note {} as written here: {e}; if it is never committed, remove it by hand",
                        self.store.where_(&self.name)
                    );
                }
                self.store.sizes.lock().unwrap_or_else(|p| p.into_inner()).insert(self.name.clone(), n);
                Ok(n)
            }
            Err(e) => {
                let _ = self.give_up();
                Err(e)
            }
        }
    }

    fn abort(mut self: Box<Self>) -> Result<()> {
        self.give_up()
    }
}

impl Drop for ObjectUpload {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.give_up() {
                log::warn!("could not abort the upload of {}: {e} (the next writer or gc aborts it)", self.store.where_(&self.name));
            }
        }
        self.store.live.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::aws::AmazonS3Builder;
    use object_store::memory::InMemory;

    /// A server that cannot list the bucket's uploads (here: nothing listens) leaves the
    /// journal's aborts done and the writer free to write; it is only logged.
    #[test]
    fn a_failed_upload_listing_does_not_stop_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let url = S3Url::parse("s3://bucket/show").unwrap();
        let b = AmazonS3Builder::new()
            .with_bucket_name("bucket")
            .with_region("us-east-1")
            .with_endpoint("http://127.0.0.1:1")
            .with_allow_http(true)
            .with_access_key_id("k")
            .with_secret_access_key("s");
        let lister = UploadLister::new(&b, b.clone().build().unwrap()).unwrap();
        let cache = dir.path().join("cache").join("packs");
        let store = ObjectPackStore::with_cache_dir(Arc::new(InMemory::new()), Some(lister), &url, dir.path(), cache, 0).unwrap();
        let lister = store.inner.lister.as_ref().unwrap();
        assert!(store.inner.run(lister.list("show/packs/")).is_err(), "nothing listens on port 1");
        assert_eq!(store.abort_interrupted().unwrap(), Vec::<String>::new());
    }

    /// object_store's in-memory backend, counting ranged GETs; with a gate,
    /// every GET waits until the test opens it, and with `fail` it then fails.
    #[derive(Debug)]
    struct Counted {
        mem: InMemory,
        gets: std::sync::atomic::AtomicUsize,
        gate: tokio::sync::Semaphore,
        fail: bool,
    }

    impl std::fmt::Display for Counted {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Counted({})", self.mem)
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Counted {
        async fn put_opts(&self, p: &ObjPath, v: PutPayload, o: object_store::PutOptions) -> object_store::Result<object_store::PutResult> {
            self.mem.put_opts(p, v, o).await
        }
        async fn put_multipart_opts(
            &self,
            p: &ObjPath,
            o: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.mem.put_multipart_opts(p, o).await
        }
        async fn get_opts(&self, p: &ObjPath, o: object_store::GetOptions) -> object_store::Result<object_store::GetResult> {
            if o.range.is_some() {
                self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(self.gate.acquire().await);
                if self.fail {
                    return Err(object_store::Error::Generic { store: "test", source: "the server went away".into() });
                }
            }
            self.mem.get_opts(p, o).await
        }
        fn delete_stream(
            &self,
            l: futures::stream::BoxStream<'static, object_store::Result<ObjPath>>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<ObjPath>> {
            self.mem.delete_stream(l)
        }
        fn list(&self, p: Option<&ObjPath>) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
            self.mem.list(p)
        }
        async fn list_with_delimiter(&self, p: Option<&ObjPath>) -> object_store::Result<object_store::ListResult> {
            self.mem.list_with_delimiter(p).await
        }
        async fn copy_opts(&self, a: &ObjPath, b: &ObjPath, o: object_store::CopyOptions) -> object_store::Result<()> {
            self.mem.copy_opts(a, b, o).await
        }
    }

    #[async_trait::async_trait]
    impl MultipartStore for Counted {
        async fn create_multipart(&self, p: &ObjPath) -> object_store::Result<MultipartId> {
            self.mem.create_multipart(p).await
        }
        async fn put_part(&self, p: &ObjPath, id: &MultipartId, i: usize, v: PutPayload) -> object_store::Result<PartId> {
            self.mem.put_part(p, id, i, v).await
        }
        async fn complete_multipart(&self, p: &ObjPath, id: &MultipartId, v: Vec<PartId>) -> object_store::Result<object_store::PutResult> {
            self.mem.complete_multipart(p, id, v).await
        }
        async fn abort_multipart(&self, p: &ObjPath, id: &MultipartId) -> object_store::Result<()> {
            self.mem.abort_multipart(p, id).await
        }
    }

    /// A store over `Counted` holding one pack `01/00000001.pack` of `len` bytes.
    fn counted_store(dir: &Path, len: usize, open: bool, fail: bool) -> (ObjectPackStore, Arc<Counted>, Vec<u8>) {
        let gate = tokio::sync::Semaphore::new(if open { tokio::sync::Semaphore::MAX_PERMITS } else { 0 });
        let backend = Arc::new(Counted { mem: InMemory::new(), gets: Default::default(), gate, fail });
        let url = S3Url::parse("s3://bucket/show").unwrap();
        let store = ObjectPackStore::new(backend.clone(), &url, dir, 1 << 30).unwrap();
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4099) as u8).collect();
        let path = ObjPath::from("show/packs/01/00000001.pack");
        store.inner.run(backend.mem.put(&path, PutPayload::from(bytes.clone()))).unwrap();
        (store, backend, bytes)
    }

    /// Wait (at most 30 s) until the fetches in the table hold `refs`
    /// handles in all: the table's own, each claimer's, and each waiter's.
    fn wait_for_handles(store: &ObjectPackStore, refs: usize) {
        let held = || store.inner.fetching.lock().unwrap().values().map(Arc::strong_count).sum::<usize>();
        let start = std::time::Instant::now();
        while held() != refs {
            assert!(start.elapsed() < Duration::from_secs(30), "{} handles on fetches, not {refs}", held());
            std::thread::yield_now();
        }
    }

    /// The read-ahead loads neighbouring chunks on several threads at once, and
    /// chunks are not block-aligned: every block is still asked of the server
    /// once, and every reader gets the right bytes.
    #[test]
    fn readers_of_one_block_at_once_share_one_fetch_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let len = 4 * BLOCK as usize + 12_345;
        let (store, backend, bytes) = counted_store(dir.path(), len, false, false);
        let pack = store.open("01/00000001.pack").unwrap();
        // "Chunks" of 3.2 MB, most straddling a block boundary.
        let chunks: Vec<(u64, usize)> = (0..).map(|i| (i * 3_200_000u64, 3_200_000usize)).take_while(|(o, _)| *o < len as u64).collect();
        let blocks_of = |&(o, n): &(u64, usize)| ((o + n as u64).min(len as u64) - 1) / BLOCK - o / BLOCK + 1;
        let wanted: u64 = chunks.iter().map(blocks_of).sum();
        let blocks = (len as u64).div_ceil(BLOCK);
        std::thread::scope(|s| {
            for &(off, n) in &chunks {
                let (pack, bytes) = (&pack, &bytes);
                s.spawn(move || {
                    let mut buf = vec![0u8; n];
                    let got = pack.read_at(off, &mut buf).unwrap();
                    let end = (off as usize + n).min(len);
                    assert_eq!(&buf[..got], &bytes[off as usize..end]);
                });
            }
            // Every reader has claimed or is waiting for each block it needs
            // (the gate holds the GETs) before any GET is answered: each of
            // the 5 blocks is held by the table and its one claimer, and
            // every other want of it is a waiter.
            wait_for_handles(&store, (blocks + wanted) as usize);
            backend.gate.add_permits(tokio::sync::Semaphore::MAX_PERMITS);
        });
        assert!(wanted > blocks, "readers share blocks");
        assert_eq!(backend.gets.load(std::sync::atomic::Ordering::SeqCst), blocks as usize, "one GET per block");
        assert!(store.inner.fetching.lock().unwrap().is_empty());
    }

    /// A reader waiting for another's fetch of a block gets that fetch's
    /// error when it fails, not a hang, and the block is fetched afresh by
    /// the next read.
    #[test]
    fn a_failed_fetch_fails_its_waiters_too() {
        let dir = tempfile::tempdir().unwrap();
        let (store, backend, _) = counted_store(dir.path(), BLOCK as usize, false, true);
        let pack = store.open("01/00000001.pack").unwrap();
        std::thread::scope(|s| {
            let first = s.spawn(|| pack.read_at(0, &mut [0u8; 10]));
            // The first reader's claim is in the table (its own handle and the table's)...
            wait_for_handles(&store, 2);
            let second = s.spawn(|| pack.read_at(100, &mut [0u8; 10]));
            // ...and the second is waiting on it (a third handle).
            wait_for_handles(&store, 3);
            backend.gate.add_permits(tokio::sync::Semaphore::MAX_PERMITS);
            let (a, b) = (first.join().unwrap(), second.join().unwrap());
            let (a, b) = (a.unwrap_err().to_string(), b.unwrap_err().to_string());
            assert!(a.contains("went away") && a.contains("s3://bucket/show/packs/01/00000001.pack"), "{a}");
            assert_eq!(a, b);
        });
        assert_eq!(backend.gets.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(store.inner.fetching.lock().unwrap().is_empty());
        assert!(pack.read_at(0, &mut [0u8; 10]).is_err());
        assert_eq!(backend.gets.load(std::sync::atomic::Ordering::SeqCst), 2, "a failed block is asked for again");
    }
}
