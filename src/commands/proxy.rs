//! `reelfs proxy`: render the missing proxies, once or (`--watch`) whenever a
//! branch head moves.

use super::{CommandError, Result};
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
    let rungs = proxy_run::parse_rungs(&req.profiles).map_err(CommandError::Invalid)?;
    let opts = proxy_run::ProxyRunOptions {
        specs: req.paths.clone(),
        rungs,
        jobs: req.jobs.max(1),
        progress: req.progress.clone(),
        interrupt: req.interrupt.clone(),
        on_done,
    };
    proxy_run::run(archive, opts).map_err(|e| {
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
    mut on_run: impl FnMut(&ProxyRunReport),
) -> Result<i32> {
    let interrupt = &req.interrupt;
    // Sleep in short steps so a stop is answered quickly.
    let step = Duration::from_millis(100);
    let steps = (interval.as_millis() / step.as_millis()).max(10) as u64;
    loop {
        let seen = heads(archive)?;
        let rep = render(archive, req, on_done())?;
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
            if heads(archive)? != seen {
                break;
            }
        }
    }
}
