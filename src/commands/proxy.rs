//! `reelfs proxy`: render the missing proxies, once or (`--watch`) whenever a
//! branch head moves.

use super::{CommandError, Result};
use crate::archive::claims::WorkClaims;
use crate::archive::progress::ProgressHandle;
use crate::archive::Archive;
use crate::media::proxy::run::{self as proxy_run, OnDone, ProxyRunReport};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct ProxyRequest {
    /// `BRANCH[/PATH]`s; empty: all media on all branches.
    pub paths: Vec<String>,
    /// Rungs, comma-separated ("thumb,sheet,preview,editorial").
    pub profiles: String,
    /// Files rendered at once.
    pub jobs: usize,
    pub progress: ProgressHandle,
    /// Set it to stop: renders in progress are abandoned, stored ones kept.
    pub interrupt: Arc<AtomicBool>,
}

/// Render what is missing below `req.paths`. `on_done` is called with each file
/// as it is stored.
pub fn render(archive: &Path, req: &ProxyRequest, on_done: Option<OnDone>) -> Result<ProxyRunReport> {
    render_claiming(archive, req, on_done, None)
}

/// The queue `proxy --worker` shares with workers on other hosts: the
/// archive's bucket. An archive with local packs has no other hosts to share
/// with, which is said rather than silently rendering alone.
pub fn shared_queue(archive: &Path) -> Result<Arc<dyn WorkClaims>> {
    #[cfg(feature = "s3")]
    {
        match crate::archive::store::queue::BucketClaims::for_archive(archive)? {
            Some(q) => Ok(Arc::new(q)),
            None => Err(CommandError::Invalid(format!(
                "{} keeps its packs on this machine, so no other host can share its proxy queue; \
                 run `reelfs proxy` without --worker, or move the packs to a bucket with `reelfs store migrate`",
                archive.display()
            ))),
        }
    }
    #[cfg(not(feature = "s3"))]
    {
        Err(CommandError::Invalid(format!(
            "--worker shares the proxy queue of an archive in a bucket ({}), and this reelfs was built without S3 support (feature `s3`)",
            archive.display()
        )))
    }
}

/// `proxy --worker`: bring this folder's catalog to the bucket's newest
/// snapshot, then render what is missing, claiming each source in the shared
/// queue first so that workers on several hosts split the work and never
/// render a source twice.
pub fn render_as_worker(archive: &Path, req: &ProxyRequest, on_done: Option<OnDone>) -> Result<ProxyRunReport> {
    let queue = shared_queue(archive)?;
    render_claiming(archive, req, on_done, Some(queue))
}

fn render_claiming(
    archive: &Path,
    req: &ProxyRequest,
    on_done: Option<OnDone>,
    queue: Option<Arc<dyn WorkClaims>>,
) -> Result<ProxyRunReport> {
    if queue.is_some() {
        catch_up(archive)?;
    }
    let rungs = proxy_run::parse_rungs(&req.profiles).map_err(CommandError::Invalid)?;
    let opts = proxy_run::ProxyRunOptions {
        specs: req.paths.clone(),
        rungs,
        jobs: req.jobs.max(1),
        progress: req.progress.clone(),
        interrupt: req.interrupt.clone(),
        on_done,
    };
    proxy_run::run_shared(archive, opts, queue).map_err(|e| {
        if e.is_disk_full() {
            let hint = format!(
                "the disk holding {} is full; every proxy already stored is kept and nothing is half-stored. Free space and run `reelfs proxy` again to resume.",
                archive.display()
            );
            CommandError::WithHint { source: e, hint }
        } else {
            e.into()
        }
    })
}

/// The exit status of a run: 130 interrupted, 2 when a file failed, else 0.
pub fn exit_code(rep: &ProxyRunReport) -> i32 {
    if rep.interrupted {
        130
    } else if rep.failed.is_empty() {
        0
    } else {
        2
    }
}

/// A worker's folder follows the bucket: what other hosts stored is not planned again.
fn catch_up(archive: &Path) -> Result<()> {
    #[cfg(feature = "s3")]
    if let Some(q) = crate::archive::store::queue::BucketClaims::for_archive(archive)? {
        q.catch_up()?;
    }
    let _ = archive;
    Ok(())
}

/// Each branch and its head, to see when a commit lands.
fn heads(archive: &Path) -> Result<Vec<(String, Option<String>)>> {
    Ok(Archive::open(archive)?.branches()?.into_iter().map(|(n, h)| (n, h.map(|h| h.to_hex()))).collect())
}

/// `proxy --watch`: render what is missing, then again whenever a branch head
/// moves (looking every `interval`), until `req.interrupt` is set. `on_run` sees
/// each run's report and `on_done` each file. Returns the exit status: 0 when
/// stopped, 2 when the run the stop ended had a failed file.
pub fn watch(
    archive: &Path,
    req: &ProxyRequest,
    interval: Duration,
    on_done: impl Fn() -> Option<OnDone>,
    on_run: impl FnMut(&ProxyRunReport),
) -> Result<i32> {
    watch_claiming(archive, req, interval, on_done, on_run, None)
}

/// `proxy --watch --worker`: `watch`, as one of the workers sharing the
/// bucket's queue; each look at the heads first catches up with the bucket.
pub fn watch_as_worker(
    archive: &Path,
    req: &ProxyRequest,
    interval: Duration,
    on_done: impl Fn() -> Option<OnDone>,
    on_run: impl FnMut(&ProxyRunReport),
) -> Result<i32> {
    let queue = shared_queue(archive)?;
    watch_claiming(archive, req, interval, on_done, on_run, Some(queue))
}

fn watch_claiming(
    archive: &Path,
    req: &ProxyRequest,
    interval: Duration,
    on_done: impl Fn() -> Option<OnDone>,
    mut on_run: impl FnMut(&ProxyRunReport),
    queue: Option<Arc<dyn WorkClaims>>,
) -> Result<i32> {
    let interrupt = &req.interrupt;
    // Sleep in short steps so a stop is answered quickly.
    let step = Duration::from_millis(100);
    let steps = (interval.as_millis() / step.as_millis()).max(10) as u64;
    loop {
        if queue.is_some() {
            catch_up(archive)?;
        }
        let seen = heads(archive)?;
        let rep = render_claiming(archive, req, on_done(), queue.clone())?;
        on_run(&rep);
        if interrupt.load(Ordering::Relaxed) {
            let rc = exit_code(&rep);
            return Ok(if rc == 130 { 0 } else { rc });
        }
        // Wait for a commit (a head that moves) or the stop.
        loop {
            for _ in 0..steps {
                if interrupt.load(Ordering::Relaxed) {
                    return Ok(0);
                }
                std::thread::sleep(step);
            }
            if queue.is_some() {
                // The bucket away for a while: keep watching, catch up later.
                if let Err(e) = catch_up(archive) {
                    log::warn!("proxy --worker: cannot catch up with the bucket: {e}");
                }
            }
            if heads(archive)? != seen {
                break;
            }
        }
    }
}
