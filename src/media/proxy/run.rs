//! `reelfs proxy`: find the media whose proxies are missing, render them on a
//! bounded number of worker threads (each reading the archive on its own), and
//! store each file's rungs in one commit as it finishes.
//!
//! Rendering needs no lock: workers read the archive like the mount does. Only a
//! store takes the writer lock, briefly, waiting while an ingest holds it. A
//! proxy is visible only after its commit; an interrupted run loses only the
//! files still rendering, and the next run picks up from there.

use super::{self as proxy, FrameFile, RenderOptions, Rung, SequenceSource, Source};
use crate::archive::claims::{ClaimTicket, Claimed, WorkClaims};
use crate::archive::proxies::{self as store, RenderedProxy};
use crate::archive::{Archive, ArchiveError, Hash};
use crate::media::sequence;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Called with each finished file.
pub type OnDone = Box<dyn Fn(&RenderedItem) + Send>;

pub struct ProxyRunOptions {
    /// `BRANCH[/PATH]` specs; empty: every file on every branch.
    pub specs: Vec<String>,
    pub rungs: Vec<Rung>,
    pub jobs: usize,
    /// Frames rendered so far, and files finished.
    pub progress: crate::archive::progress::ProgressHandle,
    pub interrupt: Arc<AtomicBool>,
    /// Called with each finished file (for a line of output as it happens).
    pub on_done: Option<OnDone>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RenderedItem {
    pub path: String,
    pub source: String,
    pub profiles: Vec<String>,
    pub frames: u64,
    pub seconds: f64,
    pub partial_at: Option<i64>,
    pub note: String,
    /// Source frames that hold the last good picture (damaged in the source).
    pub damaged: Vec<crate::archive::objects::DamagedRange>,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct ProxyRunReport {
    /// Distinct sources (content hashes) considered.
    pub sources: u64,
    pub rendered: Vec<RenderedItem>,
    /// Sources with every requested proxy already stored.
    pub up_to_date: u64,
    /// (path, reason): not media, audio only, a still, not decodable.
    pub skipped: Vec<(String, String)>,
    pub failed: Vec<(String, String)>,
    /// (path, who): with a shared queue (`proxy --worker`), sources another
    /// worker has rendered or is rendering.
    pub elsewhere: Vec<(String, String)>,
    pub frames: u64,
    pub seconds: f64,
    pub interrupted: bool,
}

struct Job {
    path: String,
    /// The content hash, or an image sequence's key.
    source: Hash,
    facts: crate::media::facts::MediaFacts,
    rungs: Vec<Rung>,
    /// An image sequence: (extension, (frame number, content hash) in order).
    frames: Option<(String, Vec<(u64, Hash)>)>,
}

enum Done {
    /// With the claim on it when the queue is shared (finished once stored).
    Rendered(Job, Vec<RenderedProxy>, proxy::RenderStats, PathBuf, Option<Box<dyn ClaimTicket>>),
    /// Another worker has it (shared queue).
    Elsewhere(Job, String),
    Skipped(Job, String),
    Failed(Job, String),
    /// The render folder's disk is full (the run stops).
    DiskFull(Job, String),
    Interrupted,
}

/// What needs rendering, in path order, deduplicated by content.
fn plan(archive: &Archive, opts: &ProxyRunOptions, rep: &mut ProxyRunReport) -> Result<Vec<Job>, ArchiveError> {
    let files = if opts.specs.is_empty() {
        store::all_files(archive)?
    } else {
        let mut v = Vec::new();
        for s in &opts.specs {
            v.extend(store::files_below(archive, s)?);
        }
        v
    };
    // Image sequences first: their frames get one proxy per sequence, not
    // one per file.
    let mut by_dir: std::collections::BTreeMap<String, Vec<(String, Hash)>> = Default::default();
    for (path, e) in &files {
        if sequence::frame_name(&e.name).is_some() {
            let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            by_dir.entry(dir.to_string()).or_default().push((e.name.clone(), e.hash));
        }
    }
    let mut in_sequence: HashSet<String> = HashSet::new();
    let mut seen = HashSet::new();
    let mut jobs = Vec::new();
    for (dir, names) in by_dir {
        for seq in sequence::group(names) {
            for (_, name, _) in &seq.frames {
                in_sequence.insert(format!("{dir}/{name}"));
            }
            let key = seq.key();
            if !seen.insert(key) {
                continue;
            }
            rep.sources += 1;
            let path = format!("{dir}/{}", seq.pattern());
            let missing = missing_rungs(archive, &key, &opts.rungs)?;
            if missing.is_empty() {
                rep.up_to_date += 1;
                continue;
            }
            let facts = crate::media::facts::MediaFacts { duration_frames: Some(seq.span()), ..Default::default() };
            let frames = seq.frames.iter().map(|(n, _, h)| (*n, *h)).collect();
            jobs.push(Job { path, source: key, facts, rungs: missing, frames: Some((seq.ext.clone(), frames)) });
        }
    }
    for (path, e) in files {
        if in_sequence.contains(&path) || !seen.insert(e.hash) {
            continue;
        }
        rep.sources += 1;
        let (facts, err) = crate::media::facts::stored(archive, &e.hash)?.unwrap_or((None, None));
        // A start timecode recorded with `reelfs tc set` is the one the editorial proxy carries.
        let facts = facts.map(|f| match archive.resolve(&path) {
            Ok(r) => crate::media::facts::in_force(archive, r.commit.as_ref(), &r.path, &e.hash, &f),
            Err(_) => f,
        });
        // Audio only: a waveform thumb, when the thumb is asked for.
        let audio_only = err.is_none() && facts.as_ref().is_some_and(|f| f.is_audio_only());
        let mut rungs: Vec<Rung> =
            if audio_only { opts.rungs.iter().copied().filter(|r| *r == Rung::Thumb).collect() } else { opts.rungs.clone() };
        // A rung not made for this picture size is left out (not "missing":
        // the next run must not try it again).
        let size = facts.as_ref().and_then(|f| Some((u32::try_from(f.width?).ok()?, u32::try_from(f.height?).ok()?)));
        let mut size_note = None;
        if let Some((w, h)) = size {
            rungs.retain(|r| match r.not_for_size(w, h) {
                Some(why) => {
                    size_note = Some(why);
                    false
                }
                None => true,
            });
        }
        let why = if audio_only && rungs.is_empty() {
            Some("no video stream (audio only)".to_string())
        } else if rungs.is_empty() {
            size_note
        } else if audio_only {
            None
        } else {
            proxy::skip_reason(facts.as_ref(), err.as_deref())
        };
        if let Some(why) = why {
            rep.skipped.push((path, why));
            continue;
        }
        let missing = missing_rungs(archive, &e.hash, &rungs)?;
        if missing.is_empty() {
            rep.up_to_date += 1;
            continue;
        }
        jobs.push(Job { path, source: e.hash, facts: facts.unwrap_or_default(), rungs: missing, frames: None });
    }
    jobs.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(jobs)
}

/// Why a finished render must not be stored, if it must not: this worker's
/// claim was lost while it rendered (it stalled past the claim's life and
/// another worker took the source over), or the writer's catalog, which is
/// the bucket's newest, already holds every rung. Either way storing would
/// commit a second copy of the same proxies.
fn stored_elsewhere(
    archive: &Archive,
    source: &Hash,
    rungs: &[RenderedProxy],
    ticket: Option<&mut (dyn ClaimTicket + '_)>,
) -> Result<Option<String>, ArchiveError> {
    if let Some(t) = ticket {
        if !t.still_mine()? {
            return Ok(Some(
                "rendered by another worker too: this one's claim expired while it rendered, so its copy was not stored".into(),
            ));
        }
    }
    if rungs.is_empty() {
        return Ok(None);
    }
    for r in rungs {
        if !archive.catalog.has_proxy(source, &r.profile, r.settings_version)? {
            return Ok(None);
        }
    }
    Ok(Some("rendered by another worker meanwhile (already stored); this copy was not stored".into()))
}

fn missing_rungs(archive: &Archive, source: &Hash, rungs: &[Rung]) -> Result<Vec<Rung>, ArchiveError> {
    let mut missing = Vec::new();
    for r in rungs {
        if !archive.catalog.has_proxy(source, r.name(), r.settings_version())? {
            missing.push(*r);
        }
    }
    Ok(missing)
}

/// Open the archive for writing, waiting while another writer (an ingest) holds it.
fn open_writer_waiting(root: &Path, interrupt: &AtomicBool) -> Result<Archive, ArchiveError> {
    let mut said = false;
    loop {
        match Archive::open_writer(root) {
            Err(ArchiveError::Locked { pid, .. }) => {
                if interrupt.load(Ordering::Relaxed) {
                    return Err(ArchiveError::Interrupted);
                }
                if !said {
                    log::warn!("archive is locked by PID {pid}; waiting to store proxies");
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            r => return r,
        }
    }
}

pub fn run(root: &Path, opts: ProxyRunOptions) -> Result<ProxyRunReport, ArchiveError> {
    run_shared(root, opts, None)
}

/// `run`, with each source claimed in `claims` before it is rendered, so that
/// workers on several hosts sharing the queue never render one twice.
pub fn run_shared(root: &Path, opts: ProxyRunOptions, claims: Option<Arc<dyn WorkClaims>>) -> Result<ProxyRunReport, ArchiveError> {
    let t0 = Instant::now();
    let mut rep = ProxyRunReport::default();
    let archive = Archive::open(root)?;
    store::clean_render_dirs(root);
    let jobs = plan(&archive, &opts, &mut rep)?;
    drop(archive);
    if jobs.is_empty() {
        rep.seconds = t0.elapsed().as_secs_f64();
        return Ok(rep);
    }
    let total_frames: u64 = jobs.iter().map(|j| j.facts.duration_frames.unwrap_or(0)).sum();
    let n_jobs = jobs.len();
    let workers = opts.jobs.clamp(1, n_jobs);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    // One file at a time: FFmpeg's own threads use every core. Several files at
    // once: share the cores out, so the machine is not oversubscribed.
    let threads = if workers == 1 { 0 } else { (cores / workers).max(1) };
    let frames_done = Arc::new(AtomicU64::new(0));
    let (job_tx, job_rx) = crossbeam_channel::unbounded::<Job>();
    for j in jobs {
        let _ = job_tx.send(j);
    }
    drop(job_tx);
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (rx, tx) = (job_rx.clone(), done_tx.clone());
        let root = root.to_path_buf();
        let ropts = RenderOptions { rungs: Vec::new(), threads, interrupt: opts.interrupt.clone(), frames_done: frames_done.clone() };
        let claims = claims.clone();
        handles.push(std::thread::spawn(move || worker(&root, rx, tx, ropts, claims)));
    }
    drop(done_tx);

    let pb = &opts.progress;
    pb.begin("proxy", crate::archive::progress::Unit::Frames, total_frames);
    let mut files_done = 0usize;
    let mut first_err: Option<ArchiveError> = None;
    loop {
        pb.set_done(frames_done.load(Ordering::Relaxed));
        pb.files(files_done as u64, n_jobs as u64);
        let msg = match done_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => m,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Done::Rendered(job, rungs, stats, dir, mut ticket) => {
                files_done += 1;
                // A finished render is stored even after Ctrl-C (the store is
                // quick, and it is work not to lose); a second Ctrl-C exits and
                // the uncommitted pack is removed by the next writer.
                let res = open_writer_waiting(root, &AtomicBool::new(false)).and_then(|mut a| {
                    if let Some(why) = stored_elsewhere(&a, &job.source, &rungs, ticket.as_deref_mut())? {
                        return Ok(Err(why));
                    }
                    store::store(&mut a, &job.source, &rungs, Arc::new(AtomicBool::new(false))).map(Ok)
                });
                let _ = std::fs::remove_dir_all(&dir);
                let res = match res {
                    Ok(Err(why)) => {
                        rep.elsewhere.push((job.path, why));
                        continue;
                    }
                    Ok(Ok(recs)) => Ok(recs),
                    Err(e) => Err(e),
                };
                match res {
                    Ok(recs) => {
                        if let Some(t) = ticket {
                            // Stored either way; if the claim is not marked done it
                            // expires, and a worker that has not seen this commit
                            // yet could render the source again.
                            if let Err(e) = t.finish() {
                                log::warn!("{}: stored, but could not mark its claim done: {e}", job.path);
                            }
                        }
                        let item = RenderedItem {
                            path: job.path,
                            source: job.source.to_hex(),
                            profiles: recs.iter().map(|r| r.profile.clone()).collect(),
                            frames: stats.frames,
                            seconds: stats.seconds,
                            partial_at: stats.partial_at,
                            note: stats.notes.join("; "),
                            damaged: stats.damaged,
                        };
                        rep.frames += stats.frames;
                        if let Some(f) = &opts.on_done {
                            pb.suspend(&mut || f(&item));
                        }
                        rep.rendered.push(item);
                    }
                    Err(e) if e.is_disk_full() || matches!(e, ArchiveError::Locked { .. }) => {
                        // Storing cannot work for the rest either: stop.
                        opts.interrupt.store(true, Ordering::Relaxed);
                        rep.failed.push((job.path, e.to_string()));
                        first_err.get_or_insert(e);
                    }
                    Err(e) => rep.failed.push((job.path, e.to_string())),
                }
            }
            Done::Skipped(job, why) => {
                files_done += 1;
                rep.skipped.push((job.path, why));
            }
            Done::Elsewhere(job, who) => {
                files_done += 1;
                rep.elsewhere.push((job.path, who));
            }
            Done::Failed(job, why) => {
                files_done += 1;
                rep.failed.push((job.path, why));
            }
            Done::DiskFull(job, why) => {
                opts.interrupt.store(true, Ordering::Relaxed);
                rep.failed.push((job.path, why));
                let dir = root.join("cache").join("proxy-render");
                first_err.get_or_insert(ArchiveError::Io { path: dir, source: std::io::Error::from_raw_os_error(libc::ENOSPC) });
            }
            Done::Interrupted => rep.interrupted = true,
        }
    }
    for h in handles {
        let _ = h.join();
    }
    pb.finish();
    if opts.interrupt.load(Ordering::Relaxed) && first_err.is_none() {
        rep.interrupted = true;
    }
    store::clean_render_dirs(root);
    rep.seconds = t0.elapsed().as_secs_f64();
    if let Some(e) = first_err {
        if e.is_disk_full() {
            return Err(e);
        }
    }
    Ok(rep)
}

/// A source's key in a shared queue: its content (or sequence) hash and the
/// rungs asked, each at its settings version (new settings are new work).
fn claim_key(job: &Job) -> String {
    let rungs: Vec<String> = job.rungs.iter().map(|r| format!("{}-v{}", r.name(), r.settings_version())).collect();
    format!("{}.{}", job.source.to_hex(), rungs.join(","))
}

fn worker(
    root: &Path,
    rx: crossbeam_channel::Receiver<Job>,
    tx: crossbeam_channel::Sender<Done>,
    mut ropts: RenderOptions,
    claims: Option<Arc<dyn WorkClaims>>,
) {
    let archive = match Archive::open(root) {
        Ok(a) => a,
        Err(e) => {
            for job in rx.iter() {
                let _ = tx.send(Done::Failed(job, format!("cannot open the archive: {e}")));
            }
            return;
        }
    };
    for job in rx.iter() {
        if ropts.interrupt.load(Ordering::Relaxed) {
            let _ = tx.send(Done::Interrupted);
            continue;
        }
        let ticket = match claims.as_ref().map(|c| c.claim(&claim_key(&job))) {
            None => None,
            Some(Ok(Claimed::Mine(t))) => Some(t),
            Some(Ok(Claimed::Elsewhere(who))) => {
                let _ = tx.send(Done::Elsewhere(job, who));
                continue;
            }
            Some(Err(e)) => {
                let _ = tx.send(Done::Failed(job, format!("cannot claim it in the shared queue: {e}")));
                continue;
            }
        };
        let src = match open_source(&archive, &job) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Done::Failed(job, e.to_string()));
                continue;
            }
        };
        let dir = match store::render_dir(root, &job.source) {
            Ok(d) => d,
            Err(e) => {
                let _ = tx.send(Done::Failed(job, e.to_string()));
                continue;
            }
        };
        ropts.rungs = job.rungs.clone();
        let msg = match proxy::render(&src, &job.facts, &dir, &ropts) {
            Ok((rungs, stats)) => Done::Rendered(job, rungs, stats, dir, ticket),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                match e {
                    proxy::ProxyError::Skip(why) => Done::Skipped(job, why),
                    proxy::ProxyError::Failed(why) => Done::Failed(job, why),
                    proxy::ProxyError::DiskFull(why) => Done::DiskFull(job, why),
                    proxy::ProxyError::Interrupted => Done::Interrupted,
                }
            }
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
}

fn open_source(archive: &Archive, job: &Job) -> Result<Source, ArchiveError> {
    match &job.frames {
        None => Ok(Source::Blob(Arc::new(archive.blob_reader(&job.source)?))),
        Some((ext, frames)) => {
            let mut files = Vec::with_capacity(frames.len());
            for (n, h) in frames {
                files.push((*n, FrameFile::Blob(Arc::new(archive.blob_reader(h)?))));
            }
            Ok(Source::Sequence(SequenceSource { ext: ext.clone(), frames: files }))
        }
    }
}

/// Parse `--profiles thumb,sheet,preview,editorial`.
pub fn parse_rungs(s: &str) -> Result<Vec<Rung>, String> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let r = Rung::parse(part).ok_or_else(|| format!("unknown proxy profile '{}' (profiles: {})", part.trim(), Rung::names()))?;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    if out.is_empty() {
        return Err("no proxy profile given".into());
    }
    Ok(out)
}
