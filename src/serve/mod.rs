//! `reelfs serve`: the archive over HTTP, read-only, for players, NLEs and
//! MAM systems that cannot mount it.
//!
//! URLs are mount paths (`/main/Day01/A001C003.mov`, its `@IN-OUT+H` slices,
//! `.proxy/...`, `branch@commit/...`), resolved by `view` exactly as the mount
//! resolves them, and read through the archive's read layer (one chunk cache
//! bounded by `--cache-size`, read-ahead for sequential bodies).
//!
//! Pure parts are modules of their own and unit-tested without a socket:
//! `range` (the Range header), `conditional` (If-* headers), `url` (percent
//! decoding), `sign` (signed links). `router` answers one request; `server`
//! owns connections (limit, idle timeout); `body` streams with back-pressure.
//!
//! Layering: `serve` is an adapter above `commands`, as `fs` is above `view`:
//! it answers a clip's JSON with `commands::info` and playlists with
//! `commands::hls`, so `reelfs serve` and `reelfs share` (`share`) live here and
//! `commands` never reaches up into the server.

pub mod body;
pub mod cache;
pub mod conditional;
pub mod content;
pub mod hls;
pub mod listing;
pub mod range;
pub mod resident;
pub mod router;
pub mod server;
pub mod share;
pub mod sign;
pub mod tls;
pub mod url;

use crate::archive::read_pool::ReadPool;
use crate::archive::readahead::{Prefetcher, ReadAheadConfig};
use crate::archive::Archive;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Bytes of decoded chunks kept for all clients together.
    pub cache_bytes: usize,
    /// Serve only signed links, checked with the key in this file.
    pub token_key: Option<PathBuf>,
    /// Connections served at once; more are answered 503.
    pub max_connections: usize,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Set: HTTPS (HTTP/2 by ALPN, HTTP/1.1 still offered) with this certificate and key.
    pub tls: Option<tls::TlsFiles>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    #[error(transparent)]
    Key(#[from] sign::SignError),
    #[error("cannot listen on {0}: {1}; pick another address with --listen (port 0 picks a free one)")]
    Listen(SocketAddr, std::io::Error),
    #[error("cannot start the server's runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Threads for blocking archive reads: they wait on disks, not CPUs, so more
/// than the cores; bounded so a flood of requests queues instead of spawning.
const BLOCKING_THREADS: usize = 32;
/// Read-only catalog connections shared by all requests.
const CATALOG_VIEWS: usize = 8;
/// Read-ahead loader threads of the shared prefetcher.
const READAHEAD_WORKERS: usize = 4;
/// Blocking threads started before the server says it is ready, and how long
/// an idle one is kept. A cold request takes two or three of them (the thread
/// that takes over a runtime thread's other tasks while it reads, the body's
/// producer): started on demand, each cost the request a thread start, and
/// after tokio's default 10 s keep-alive a fresh start whose first touch of
/// the thread-spawning code, cold after a page-cache drop, was a major fault
/// reading about 6 MB of the binary around it (this disk's 8 MiB
/// read-ahead): `scripts/bench serve`'s cold time to first byte waited for it.
const BLOCKING_STARTED: usize = 8;
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(600);

/// Serve `archive` until SIGINT/SIGTERM. `on_ready` is called with the bound
/// address (port 0 picks one) once connections are accepted.
pub fn run(archive: &Path, opts: &ServeOptions, on_ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    run_until(archive, opts, on_ready, shutdown_signal())
}

/// Serve `archive` until `stop` completes: `run` stops on a signal; a caller
/// that serves from a thread of its own (the Python package's `reelfs.serve`
/// block) stops it with a channel instead, since the process's signals are
/// not the server's to take there.
pub fn run_until(
    archive: &Path,
    opts: &ServeOptions,
    on_ready: impl FnOnce(SocketAddr),
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    let signer = opts.token_key.as_deref().map(sign::Signer::from_file).transpose()?;
    // Before binding: a wrong certificate or key is an error at start.
    let tls = opts.tls.as_ref().map(tls::acceptor).transpose()?;
    // A client that resets its connection makes the next write to it raise
    // SIGPIPE, whose default action (the CLI sets it, to exit quietly when piped
    // into `head`) kills the whole server. Ignored, the write fails with EPIPE
    // and only that connection ends.
    // SAFETY: changing a signal disposition before the runtime's threads start.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let a = Archive::open(archive)?;
    let pool = ReadPool::new(&a, CATALOG_VIEWS);
    let prefetch = Prefetcher::new(a.store().clone(), ReadAheadConfig::for_cache(opts.cache_bytes, READAHEAD_WORKERS));
    let shared = Arc::new(router::Shared { root: archive.to_path_buf(), pool, prefetch, signer, cache: cache::EntityCache::new(a) });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .thread_name("reelfs-serve")
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    resident::make_code_resident();
    warm(&shared);
    rt.block_on(start_blocking_threads(BLOCKING_STARTED));
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(opts.listen).await.map_err(|e| ServeError::Listen(opts.listen, e))?;
        let addr = listener.local_addr().map_err(|e| ServeError::Listen(opts.listen, e))?;
        on_ready(addr);
        let limits = server::Limits { max_connections: opts.max_connections, idle_timeout: opts.idle_timeout };
        server::accept_loop(listener, shared, limits, tls, stop).await;
        Ok::<(), ServeError>(())
    })?;
    // Connections still open are dropped with the runtime: a stop is a stop.
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// Ready the first request's path before the server says it is ready: a
/// catalog view open (its connection, schema and WAL index read), and the
/// chunk store's own catalog connection (outboard lookups). `scripts/bench
/// serve` found the first request after a start paying it (a cold time to first
/// byte 1.5x nginx's, which has nothing to open).
///
/// The catalog files are never opened here by any other means than SQLite (an
/// earlier version opened them to `posix_fadvise` and closed them): closing any
/// descriptor of a file drops every POSIX lock this process holds on it, SQLite's
/// included, so a mount's writer then took the catalog as unshared, reset the
/// WAL under this server's views, and a write it staged afterwards was never seen
/// here (the server went on serving the committed bytes instead of 409).
fn warm(shared: &router::Shared) {
    if let Err(e) = shared.pool.with(|a| a.branches()) {
        // The request that needs the catalog reports it, with its path.
        log::warn!("serve: could not read the catalog at start: {e}");
    }
    // As a mount does (catalog/resident.rs): the first request for any file
    // descends the path, extent and chunk indexes from pages already read.
    if let Err(e) = shared.pool.with(|a| a.catalog.read_lookup_indexes_ahead()) {
        log::debug!("serve: could not read the catalog's indexes ahead: {e}");
    }
    // The connections a first verified block's outboard and pack name lookups
    // take (opened on that lookup, they cost the first request a file open and
    // a few cold pages), and the threads that load long files' extent lists and
    // look outboards up (started on the request path, a thread start was a
    // major fault on the binary, a stack and a malloc arena before the first byte).
    shared.prefetch.store().open_lookups();
    // Beside the start, not before it: an archive of thousands of packs
    // would hold the start up for seconds of cold opens.
    let store = shared.prefetch.store().clone();
    let spawned = std::thread::Builder::new().name("reelfs-open-packs".into()).spawn(move || {
        let n = store.open_packs(PACKS_KEPT_OPEN);
        log::debug!("serve: {n} packs open");
    });
    if let Err(e) = spawned {
        log::debug!("serve: packs open on first read ({e})");
    }
}

/// Most packs a server opens at start: 4,096 packs of 512 MiB are 2 TiB of
/// the archive. `open_packs` also keeps to half of what the store may hold
/// open (a quarter of the descriptor limit), leaving the rest for connections,
/// catalog views and packs opened later.
const PACKS_KEPT_OPEN: usize = 4096;

/// Start `n` threads of the runtime's blocking pool, left idle for the first
/// requests (a pool only starts a thread when none is idle, so each of these
/// waits until all `n` run).
async fn start_blocking_threads(n: usize) {
    let all = Arc::new(std::sync::Barrier::new(n));
    let started: Vec<_> = (0..n)
        .map(|_| {
            let all = all.clone();
            tokio::task::spawn_blocking(move || {
                all.wait();
            })
        })
        .collect();
    for s in started {
        let _ = s.await;
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
