//! `tape write`: one cartridge's share of a plan, from the archive (every
//! chunk verified against its BLAKE3 as it is read) onto a volume, in plan
//! order; then the set catalog and the ASC MHL manifest, last.
//!
//! A write error or end of medium abandons the file being written (no index
//! lists it), closes the cartridge, and moves that file and everything after
//! it to the next cartridge of the same copy (a new barcode when there is
//! none). The tape catalog records each completed file (small ones a few at a
//! time, see `Unrecorded`), and never one that is not complete.
//!
//! Ctrl-C (SIGINT/SIGTERM) stops at a safe point: the file being written is
//! abandoned and stays queued (not on the tape), the index is written so the
//! volume mounts with exactly its complete files, and the set catalog is left
//! for the run that finishes the cartridge. A rerun continues with what is
//! still queued; it first removes whatever a killed run left on the volume
//! under a queued file's name (a truncated file a reader could take for the
//! original), and says so.

use super::blocks::{Block, Pool};
use super::error::{Result, TapeError};
use super::hashes::{Fast, FileHashes, Md5};
use super::mhl::{self, MhlEntry};
use super::plan;
use super::set_catalog::{SetCatalog, CATALOG_DIR};
use super::volume::{VolumeError, VolumeWriter};
use crate::archive::catalog::{Catalog, ItemWritten, TapeItemRow};
use crate::archive::objects::now_ns;
use crate::archive::progress::{ProgressHandle, Unit};
use crate::archive::{Archive, ArchiveError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Bytes read from the archive and written to the volume at a time: large
/// writes keep an LTO drive streaming.
const BLOCK: usize = 8 << 20;
/// How far the archive's read-ahead runs in front of the writer, so that its
/// workers keep the packs' disk busy while the volume's synchronous
/// (`O_DIRECT`) writes wait on theirs. No more than half the archive's chunk
/// cache (`BlobReader::read_ahead` holds it to that): 128 MiB here made the
/// loads evict the chunks the reader was about to read.
const READ_AHEAD: u64 = 32 << 20;
/// Blocks queued between the reader, the hashers and the writer.
const IN_FLIGHT: usize = 3;

#[derive(Clone, Default)]
pub struct WriteOptions {
    pub progress: ProgressHandle,
    /// Write an LTFS index after this many bytes (0: only at the end), so a
    /// crash leaves a volume holding everything before the last index.
    pub index_every: u64,
    /// Set by SIGINT/SIGTERM: stop at the next safe point (between two blocks).
    pub interrupt: Arc<AtomicBool>,
    /// Test hook: told the cartridge index of each file as MD5 starts on it.
    #[doc(hidden)]
    pub md5_started: Option<crossbeam_channel::Sender<usize>>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct WrittenFile {
    pub tape_path: String,
    pub source: String,
    pub bytes: u64,
    pub start_block: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    pub tape_path: String,
    pub source: String,
    pub error: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct WriteReport {
    pub barcode: String,
    pub plan: String,
    pub written: Vec<WrittenFile>,
    pub bytes: u64,
    pub seconds: f64,
    pub mb_per_s: f64,
    /// The file a write error or end of medium cut short (not on the tape).
    pub abandoned: Option<Problem>,
    /// Files refused or unreadable from the archive (left queued).
    pub failed: Vec<Problem>,
    /// Where the rest of this cartridge's files went after `abandoned`.
    pub moved_to: Option<String>,
    pub moved: u64,
    /// Files written but listed by no index (an index write failed): moved on.
    pub not_indexed: Vec<String>,
    /// The set catalog and manifest files written last.
    pub catalog_files: Vec<String>,
    /// The cartridge was closed after an error; why.
    pub closed_early: Option<String>,
    /// Stopped by Ctrl-C: the cartridge stays open for a rerun.
    pub interrupted: bool,
    /// Files a killed earlier run left on the volume under a queued file's
    /// name, removed before writing (the file is then written whole).
    pub removed_partial: Vec<RemovedPartial>,
    /// Files whose MD5 and xxHash64 were taken from an earlier
    /// cartridge's copy of the same bytes (copy B of an A/B set) instead of
    /// being computed again; this write's own BLAKE3 of the bytes matched the
    /// one recorded with them.
    pub hashes_reused: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RemovedPartial {
    pub tape_path: String,
    /// Size of the leftover that was removed.
    pub bytes: u64,
}

impl WriteReport {
    pub fn complete(&self) -> bool {
        self.abandoned.is_none() && self.failed.is_empty() && self.closed_early.is_none() && !self.interrupted
    }
}

/// Why one file did not make it.
enum ItemError {
    Volume(VolumeError),
    Archive(ArchiveError),
    Interrupted,
}

/// The cartridge `barcode` of `plan`, checked.
pub fn cartridge_of(cat: &Catalog, plan: &str, barcode: &str) -> Result<crate::archive::catalog::CartridgeRow> {
    cat.ensure_tape_schema()?;
    if cat.tape_plan(plan)?.is_none() {
        return Err(TapeError::NoSuchPlan(plan.into()));
    }
    let c = cat.cartridge(barcode)?.ok_or_else(|| TapeError::NoSuchTape(barcode.into()))?;
    if c.plan != plan {
        return Err(TapeError::invalid(format!("cartridge {barcode} belongs to plan '{}', not '{plan}'", c.plan)));
    }
    Ok(c)
}

pub fn write_tape(a: &Archive, plan_name: &str, barcode: &str, mut vol: Box<dyn VolumeWriter>, opts: &WriteOptions) -> Result<WriteReport> {
    let cat = &a.catalog;
    let cart = cartridge_of(cat, plan_name, barcode)?;
    if cart.state != "planned" {
        return Err(TapeError::invalid(format!(
            "cartridge {barcode} is already {} (tapes are append-only); `reelfs tape ls ARCHIVE --tape {barcode}` shows what is on it",
            cart.state
        )));
    }
    // Written before a crash but on no index (the process was killed before
    // the next one): not on the tape, so written again, in its place.
    for i in cat.tape_items_on(barcode)?.into_iter().filter(|i| i.state == "written") {
        if vol.lists(&i.tape_path) == Some(false) {
            log::warn!("tape {barcode}: {} was written by a run that was killed before an index listed it; writing it again", i.tape_path);
            let note = "written by a run killed before an index listed it: written again";
            cat.write(|c| c.set_tape_item_state(barcode, i.ord, "queued", Some(note)))?;
        }
    }
    let items: Vec<TapeItemRow> = cat.tape_items_on(barcode)?.into_iter().filter(|i| i.state == "queued").collect();
    let total: u64 = items.iter().map(|i| i.length).sum();
    let pb = &opts.progress;
    pb.begin("tape write", Unit::Bytes, total);
    let t0 = Instant::now();
    let mut rep = WriteReport {
        barcode: barcode.into(),
        plan: plan_name.into(),
        written: Vec::new(),
        bytes: 0,
        seconds: 0.0,
        mb_per_s: 0.0,
        abandoned: None,
        failed: Vec::new(),
        moved_to: None,
        moved: 0,
        not_indexed: Vec::new(),
        catalog_files: Vec::new(),
        closed_early: None,
        interrupted: false,
        removed_partial: Vec::new(),
        hashes_reused: 0,
    };
    // A killed run (no safe point) can leave a queued file on the volume,
    // truncated, under its final name: it goes before anything is written.
    for item in &items {
        match vol.remove_leftover(&item.tape_path) {
            Ok(None) => {}
            Ok(Some(bytes)) => {
                log::warn!(
                    "tape {barcode}: removed {} ({bytes} bytes), left by an earlier write that was killed; writing it again whole",
                    item.tape_path
                );
                rep.removed_partial.push(RemovedPartial { tape_path: item.tape_path.clone(), bytes });
            }
            // A refusal about this one path (`..` in it, a folder under its
            // name): the file's own turn below reports it and records it.
            Err(VolumeError::Format { .. }) => {}
            Err(e) => {
                let _ = vol.finish();
                return Err(e.into());
            }
        }
    }
    let mut since_index = 0u64;
    // Files completed since the last index that was written: on tape only
    // once an index lists them.
    let mut unindexed: Vec<usize> = Vec::new();
    let mut deferred: Vec<TapeItemRow> = Vec::new();
    // Every block the reader, the hashers and the writer hold at once, reused
    // from file to file.
    let pool = Pool::new(BLOCK, 4 * IN_FLIGHT + 2);
    let mut pending = Unrecorded::default();
    // The first item a Ctrl-C left unwritten (the rest of the cartridge).
    let mut stopped_at = items.len();
    // One archive reader for the whole cartridge, running ahead of the
    // writer across files: the next file's chunks load (and verify) while
    // this one is still being hashed and written.
    std::thread::scope(|sc| -> Result<()> {
        let (job_tx, job_rx) = crossbeam_channel::unbounded::<ReadJob>();
        let (feed_tx, feed) = crossbeam_channel::bounded::<Fed>(IN_FLIGHT);
        let (md5_tx, md5_rx) = crossbeam_channel::bounded::<ToMd5>(MD5_IN_FLIGHT);
        let (md5_done_tx, md5_done) = crossbeam_channel::unbounded::<(usize, String)>();
        let pool = &pool;
        let hook = opts.md5_started.clone();
        let no_thread = |e: std::io::Error| TapeError::invalid(format!("could not start a thread for tape write: {e}"));
        std::thread::Builder::new()
            .name("tape-read".into())
            .spawn_scoped(sc, move || read_jobs(job_rx, feed_tx, md5_tx, pool))
            .map_err(no_thread)?;
        std::thread::Builder::new()
            .name("tape-md5".into())
            .spawn_scoped(sc, move || md5_worker(md5_rx, md5_done_tx, hook))
            .map_err(no_thread)?;
        let mut jobs = Jobs { tx: job_tx, queued: 0, unopened: HashMap::new(), known: HashMap::new() };
        for (n, item) in items.iter().enumerate() {
            if opts.interrupt.load(Ordering::Relaxed) {
                rep.interrupted = true;
                stopped_at = n;
                break;
            }
            pb.message(&item.tape_path);
            pb.files(n as u64, items.len() as u64);
            // A large file takes long enough that a kill during it is likely:
            // what completed before it is recorded first, and a rerun then
            // removes only the file the kill cut short.
            if item.length >= BLOCK as u64 {
                if let Err(e) = pending.record(cat, barcode, vol.as_mut())? {
                    index_failed(cat, &cart, &items, &unindexed, n, NOT_DURABLE, &e, &mut rep)?;
                    unindexed.clear();
                    break;
                }
            }
            jobs.queue_through(a, &items, n + JOBS_AHEAD)?;
            let known = jobs.known.remove(&n);
            let unopened = jobs.unopened.remove(&n);
            let result = write_item(vol.as_mut(), item, n, unopened, (&feed, &md5_done), pb, opts, known.as_ref());
            if result.is_err() {
                if let Err(e) = pending.record(cat, barcode, vol.as_mut())? {
                    let _ = vol.abandon_file();
                    index_failed(cat, &cart, &items, &unindexed, n, NOT_DURABLE, &e, &mut rep)?;
                    unindexed.clear();
                    break;
                }
            }
            match result {
                Ok((placement, h)) => {
                    if known.is_some() {
                        rep.hashes_reused += 1;
                    }
                    let w = ItemWritten {
                        partition: placement.partition.to_string(),
                        start_block: placement.start_block,
                        md5: h.md5,
                        xxh64: h.xxh64,
                        blake3: h.blake3,
                        written_ns: now_ns(),
                    };
                    pending.add(item.ord, w);
                    rep.bytes += item.length;
                    since_index += item.length;
                    unindexed.push(n);
                    rep.written.push(WrittenFile {
                        tape_path: item.tape_path.clone(),
                        source: item.source.clone(),
                        bytes: item.length,
                        start_block: placement.start_block,
                    });
                    if pending.due(item.length) {
                        if let Err(e) = pending.record(cat, barcode, vol.as_mut())? {
                            index_failed(cat, &cart, &items, &unindexed, n + 1, NOT_DURABLE, &e, &mut rep)?;
                            unindexed.clear();
                            break;
                        }
                    }
                    if opts.index_every > 0 && since_index >= opts.index_every {
                        since_index = 0;
                        if let Err(e) = pending.record(cat, barcode, vol.as_mut())? {
                            index_failed(cat, &cart, &items, &unindexed, n + 1, NOT_DURABLE, &e, &mut rep)?;
                            unindexed.clear();
                            break;
                        }
                        match vol.sync_index() {
                            Ok(()) => unindexed.clear(),
                            Err(e) => {
                                // No index lists what was written since the last one:
                                // those files and all that follows go to the next cartridge.
                                index_failed(cat, &cart, &items, &unindexed, n + 1, "writing an index", &e, &mut rep)?;
                                unindexed.clear();
                                break;
                            }
                        }
                    }
                }
                Err(ItemError::Interrupted) => {
                    // Not on the tape: no index will list it, and it stays queued
                    // here for the rerun.
                    let _ = vol.abandon_file();
                    let note = "interrupted while being written (not on the tape); `reelfs tape write` again writes it";
                    cat.write(|c| c.set_tape_item_state(barcode, item.ord, "queued", Some(note)))?;
                    rep.interrupted = true;
                    stopped_at = n;
                    break;
                }
                Err(ItemError::Archive(e)) => {
                    let _ = vol.abandon_file();
                    let msg = e.to_string();
                    // Not this cartridge's fault: recorded here, and queued again at
                    // the end of the next cartridge (after `reelfs check`/re-ingest repairs it).
                    cat.write(|c| c.set_tape_item_state(barcode, item.ord, "abandoned", Some(&msg)))?;
                    deferred.push(item.clone());
                    rep.failed.push(Problem { tape_path: item.tape_path.clone(), source: item.source.clone(), error: msg });
                }
                Err(ItemError::Volume(e @ VolumeError::Format { .. })) => {
                    // A refusal about this file alone (a path that would leave the
                    // volume, a name already there): the cartridge is fine.
                    let _ = vol.abandon_file();
                    let msg = e.to_string();
                    cat.write(|c| c.set_tape_item_state(barcode, item.ord, "abandoned", Some(&msg)))?;
                    rep.failed.push(Problem { tape_path: item.tape_path.clone(), source: item.source.clone(), error: msg });
                }
                Err(ItemError::Volume(e)) => {
                    let _ = vol.abandon_file();
                    let msg = e.to_string();
                    rep.abandoned = Some(Problem { tape_path: item.tape_path.clone(), source: item.source.clone(), error: msg.clone() });
                    rep.closed_early = Some(msg.clone());
                    cat.write(|c| c.set_tape_item_state(barcode, item.ord, "abandoned", Some(&msg)))?;
                    close_early(cat, &cart, &items[n..], &msg, &mut rep)?;
                    break;
                }
            }
        }
        Ok(())
    })?;
    if let Err(e) = pending.record(cat, barcode, vol.as_mut())? {
        index_failed(cat, &cart, &items, &unindexed, stopped_at, NOT_DURABLE, &e, &mut rep)?;
    }
    pb.files(rep.written.len() as u64, items.len() as u64);
    if rep.interrupted && rep.closed_early.is_none() {
        pb.finish();
        return finish_interrupted(cat, barcode, vol, &deferred, &unindexed, &items, &cart, t0, rep);
    }
    if !deferred.is_empty() {
        let to =
            cat.write(|c| requeue(c, barcode, &deferred, Placement::Back, &format!("could not be read from the archive for {barcode}")))?;
        rep.moved += deferred.len() as u64;
        rep.moved_to.get_or_insert(to);
    }
    // The set catalog and the manifest, last. On a cartridge closed early they
    // are still tried: after end of medium the driver often has room for a few
    // small files; after a drive error it refuses, and that is reported.
    match write_catalog_files(a, plan_name, barcode, vol.as_mut()) {
        Ok(files) => rep.catalog_files = files,
        Err(e) if rep.closed_early.is_some() => log::warn!("tape {barcode}: the set catalog was not written: {e}"),
        Err(e) => {
            rep.closed_early = Some(format!("writing the set catalog failed: {e}"));
            cat.write(|c| c.set_cartridge_state(barcode, "full", Some(now_ns()), Some(&format!("set catalog not written: {e}"))))?;
        }
    }
    let finished = vol.finish();
    pb.finish();
    rep.seconds = t0.elapsed().as_secs_f64();
    rep.mb_per_s = if rep.seconds > 0.0 { rep.bytes as f64 / 1e6 / rep.seconds } else { 0.0 };
    if let Err(e) = finished {
        index_failed(cat, &cart, &items, &unindexed, items.len(), "writing an index", &e, &mut rep)?;
        return Ok(rep);
    }
    if rep.closed_early.is_none() {
        cat.write(|c| c.set_cartridge_state(barcode, "written", Some(now_ns()), None))?;
    }
    Ok(rep)
}

/// Files completed on the volume but not yet recorded as written in the
/// catalog. Recording is one catalog commit (an fsync); per file it was half
/// the time of writing many small sidecars, so small files are recorded
/// together: at most `UNRECORDED_FILES` of them or `UNRECORDED_SECS` behind,
/// and always before a large file, before an index is written, before
/// anything else about this cartridge is recorded, and at the end. A crash in
/// between leaves those few small files queued: the rerun removes what a
/// killed run left under a queued name and writes it again, as it does for a
/// file the crash cut short.
#[derive(Default)]
struct Unrecorded {
    rows: Vec<(i64, ItemWritten)>,
    since: Option<Instant>,
}

const UNRECORDED_FILES: usize = 64;
const UNRECORDED_SECS: f64 = 1.0;

impl Unrecorded {
    fn add(&mut self, ord: i64, w: ItemWritten) {
        self.since.get_or_insert_with(Instant::now);
        self.rows.push((ord, w));
    }

    /// A large file is recorded at once: its commit costs little beside it.
    fn due(&self, last_len: u64) -> bool {
        last_len >= BLOCK as u64
            || self.rows.len() >= UNRECORDED_FILES
            || self.since.is_some_and(|t| t.elapsed().as_secs_f64() >= UNRECORDED_SECS)
    }

    /// Make the files durable on the volume, then record them. When the
    /// volume cannot (a flush failed), nothing is recorded and the error is
    /// handed back: those files are not on the tape.
    fn record(&mut self, cat: &Catalog, barcode: &str, vol: &mut dyn VolumeWriter) -> Result<std::result::Result<(), VolumeError>> {
        if self.rows.is_empty() {
            return Ok(Ok(()));
        }
        if let Err(e) = vol.make_durable() {
            self.rows.clear();
            self.since = None;
            return Ok(Err(e));
        }
        cat.write(|c| {
            for (ord, w) in &self.rows {
                c.set_tape_item_written(barcode, *ord, w)?;
            }
            Ok(())
        })?;
        self.rows.clear();
        self.since = None;
        Ok(Ok(()))
    }
}

/// What failed when the volume could not make completed files durable.
const NOT_DURABLE: &str = "flushing completed files to the volume";

/// Ctrl-C: write the index (the volume then mounts with exactly the files
/// completed so far) and leave the cartridge open for a rerun, without the set
/// catalog, which is written once, last, by the run that completes it.
#[allow(clippy::too_many_arguments)]
fn finish_interrupted(
    cat: &Catalog,
    barcode: &str,
    vol: Box<dyn VolumeWriter>,
    deferred: &[TapeItemRow],
    unindexed: &[usize],
    items: &[TapeItemRow],
    cart: &crate::archive::catalog::CartridgeRow,
    t0: Instant,
    mut rep: WriteReport,
) -> Result<WriteReport> {
    if !deferred.is_empty() {
        let to =
            cat.write(|c| requeue(c, barcode, deferred, Placement::Back, &format!("could not be read from the archive for {barcode}")))?;
        rep.moved += deferred.len() as u64;
        rep.moved_to.get_or_insert(to);
    }
    let finished = vol.finish();
    rep.seconds = t0.elapsed().as_secs_f64();
    rep.mb_per_s = if rep.seconds > 0.0 { rep.bytes as f64 / 1e6 / rep.seconds } else { 0.0 };
    if let Err(e) = finished {
        index_failed(cat, cart, items, unindexed, items.len(), "writing an index", &e, &mut rep)?;
        return Ok(rep);
    }
    let note = "interrupted: `reelfs tape write` again with the same cartridge continues with what is still queued";
    cat.write(|c| c.set_cartridge_state(barcode, "planned", None, Some(note)))?;
    Ok(rep)
}

/// An index write (or, `what` says, the flush before the catalog records a
/// batch) failed: the files in `unindexed` (indices into `items`) are on no
/// index, so they are recorded abandoned and, with `items[rest_from..]` still
/// queued, moved to the next cartridge; this one is closed.
#[allow(clippy::too_many_arguments)]
fn index_failed(
    cat: &Catalog,
    cart: &crate::archive::catalog::CartridgeRow,
    items: &[TapeItemRow],
    unindexed: &[usize],
    rest_from: usize,
    what: &str,
    e: &VolumeError,
    rep: &mut WriteReport,
) -> Result<()> {
    let why = format!("{what} failed: {e}");
    let note = format!("written, but no index lists it ({why})");
    cat.write(|c| {
        for &i in unindexed {
            c.set_tape_item_state(&cart.barcode, items[i].ord, "abandoned", Some(&note))?;
        }
        Ok(())
    })?;
    let lost: Vec<&str> = unindexed.iter().map(|&i| items[i].tape_path.as_str()).collect();
    rep.written.retain(|w| !lost.contains(&w.tape_path.as_str()));
    rep.bytes = rep.written.iter().map(|w| w.bytes).sum();
    rep.not_indexed.extend(lost.iter().map(|s| s.to_string()));
    let mut to_move: Vec<TapeItemRow> = unindexed.iter().map(|&i| items[i].clone()).collect();
    to_move.extend(items[rest_from..].iter().filter(|i| i.state == "queued").cloned());
    if rep.closed_early.is_none() {
        rep.closed_early = Some(why.clone());
    }
    close_early(cat, cart, &to_move, &why, rep)
}

/// Write item `n` from the blocks the archive reader feeds, taking its BLAKE3
/// and xxHash64 here; its MD5 comes from the MD5 thread, which the reader
/// feeds the same blocks (shared, not copied), so MD5 runs on a core of its
/// own and goes on to the next file while this one is being closed.
#[allow(clippy::too_many_arguments)]
fn write_item(
    vol: &mut dyn VolumeWriter,
    item: &TapeItemRow,
    n: usize,
    unopened: Option<ArchiveError>,
    (feed, md5_done): (&crossbeam_channel::Receiver<Fed>, &crossbeam_channel::Receiver<(usize, String)>),
    pb: &ProgressHandle,
    opts: &WriteOptions,
    known: Option<&FileHashes>,
) -> std::result::Result<(super::volume::FilePlacement, FileHashes), ItemError> {
    if let Some(e) = unopened {
        return Err(ItemError::Archive(e));
    }
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_nanos(item.mtime_ns.max(0) as u64);
    vol.begin_file(&item.tape_path, mtime).map_err(ItemError::Volume)?;
    // Hashes an earlier cartridge took of these bytes: only BLAKE3 is taken
    // here, to prove they are the same bytes.
    let mut fast = Fast::new(known.is_none());
    let mut written = 0u64;
    while written < item.length {
        if opts.interrupt.load(Ordering::Relaxed) {
            return Err(ItemError::Interrupted);
        }
        let block = loop {
            match feed.recv() {
                // What is left of a file given up before its end.
                Ok((m, _)) if m < n => continue,
                Ok((m, Ok(b))) if m == n => break b,
                Ok((m, Err(e))) if m == n => return Err(ItemError::Archive(e)),
                _ => return Err(internal("the archive reader stopped")),
            }
        };
        fast.update(block.bytes());
        vol.write(block.bytes()).map_err(ItemError::Volume)?;
        written += block.bytes().len() as u64;
        pb.advance(block.bytes().len() as u64);
    }
    let hashes = match known {
        None => {
            let md5 = if item.length == 0 {
                // The reader has no job for an empty file.
                Md5::default().finish_hex()
            } else {
                loop {
                    match md5_done.recv() {
                        // A file given up before its end (its MD5 finished anyway).
                        Ok((m, _)) if m < n => continue,
                        Ok((m, h)) if m == n => break h,
                        _ => return Err(internal("the MD5 thread stopped")),
                    }
                }
            };
            FileHashes::join(&fast, md5)
        }
        Some(known) => {
            let b3 = fast.blake3_hex();
            if b3 != known.blake3 {
                // Every chunk was checked as it was read, so this means the
                // earlier record is wrong: the file is not written on it.
                return Err(ItemError::Archive(ArchiveError::Inconsistent(format!(
                    "{} read as BLAKE3 {b3}, but an earlier cartridge recorded {} for the same content; `reelfs check ARCHIVE` says which is damaged",
                    item.source, known.blake3
                ))));
            }
            known.clone()
        }
    };
    let placement = vol.end_file(&hashes.ltfs_xattrs()).map_err(ItemError::Volume)?;
    Ok((placement, hashes))
}

fn internal(what: &str) -> ItemError {
    ItemError::Archive(ArchiveError::Invalid(format!("internal: {what}")))
}

/// Files handed to the archive reader ahead of the one being written: enough
/// that a run of small files never leaves it idle (each holds at most
/// `IN_FLIGHT` blocks in the feed, whatever the count).
const JOBS_AHEAD: usize = 16;

/// One file for the archive reader: item `n` of the cartridge, the bytes
/// `from..to` of `reader`.
struct ReadJob {
    n: usize,
    reader: Arc<crate::archive::BlobReader>,
    from: u64,
    to: u64,
    source: String,
    file_size: u64,
    /// Feed the MD5 thread too (no earlier cartridge's hashes to reuse).
    md5: bool,
}

/// What the archive reader sends the writer: a block of item `n`, or why
/// item `n` could not be read (then nothing more of it follows).
type Fed = (usize, std::result::Result<Arc<Block>, ArchiveError>);

/// The files queued for the archive reader, in cartridge order. Readers are
/// opened here (the catalog is this thread's); one that cannot be opened is
/// kept to be reported on its file's turn.
struct Jobs {
    tx: crossbeam_channel::Sender<ReadJob>,
    queued: usize,
    unopened: HashMap<usize, ArchiveError>,
    /// Hashes an earlier cartridge took of the same bytes, by item.
    known: HashMap<usize, FileHashes>,
}

impl Jobs {
    fn queue_through(&mut self, a: &Archive, items: &[TapeItemRow], last: usize) -> Result<()> {
        while self.queued <= last && self.queued < items.len() {
            let n = self.queued;
            let item = &items[n];
            self.queued += 1;
            let known = earlier_hashes(&a.catalog, item)?;
            let md5 = known.is_none();
            if let Some(k) = known {
                self.known.insert(n, k);
            }
            if item.length == 0 {
                continue;
            }
            match a.blob_reader(&item.blob) {
                Ok(r) => {
                    let job = ReadJob {
                        n,
                        reader: Arc::new(r),
                        from: item.offset,
                        to: item.offset + item.length,
                        source: item.source.clone(),
                        file_size: item.file_size,
                        md5,
                    };
                    // The reader only stops when the writer is gone.
                    let _ = self.tx.send(job);
                }
                Err(e) => {
                    self.unopened.insert(n, e);
                }
            }
        }
        Ok(())
    }
}

/// The archive reader: every queued file in turn, through the archive's
/// read-ahead (two workers loading and verifying chunks ahead of it, as
/// restore and cat use it), into blocks for the writer and, first, for the
/// MD5 thread: the bytes are read once for every hash.
fn read_jobs(
    jobs: crossbeam_channel::Receiver<ReadJob>,
    feed: crossbeam_channel::Sender<Fed>,
    md5: crossbeam_channel::Sender<ToMd5>,
    pool: &Pool,
) {
    for job in jobs {
        let ra = job.reader.read_ahead(job.from, job.to, READ_AHEAD);
        let mut off = job.from;
        while off < job.to {
            ra.advance(off);
            let mut block = pool.take();
            let want = ((job.to - off) as usize).min(BLOCK);
            let msg = match job.reader.read_at(off, &mut block.space()[..want]) {
                Ok(0) => Err(ArchiveError::Inconsistent(format!(
                    "{} ended at byte {off}, before its recorded size {}",
                    job.source, job.file_size
                ))),
                Ok(got) => {
                    block.set_len(got);
                    off += got as u64;
                    Ok(Arc::new(block))
                }
                Err(e) => Err(e),
            };
            if let (true, Ok(b)) = (job.md5, &msg) {
                if md5.send(ToMd5::Block(job.n, b.clone())).is_err() {
                    return;
                }
            }
            let failed = msg.is_err();
            if feed.send((job.n, msg)).is_err() {
                return;
            }
            if failed {
                break;
            }
        }
        // A file that failed part-way gets no end: the MD5 thread drops its
        // part when the next file's first block comes.
        if job.md5 && off >= job.to && md5.send(ToMd5::End(job.n)).is_err() {
            return;
        }
    }
}

/// What the archive reader sends the MD5 thread: a block of item `n`, or the
/// end of item `n`.
enum ToMd5 {
    Block(usize, Arc<Block>),
    End(usize),
}

/// Blocks queued for the MD5 thread: room for it to run on into the next file
/// while the writer closes this one.
const MD5_IN_FLIGHT: usize = 2 * IN_FLIGHT;

/// The MD5 thread: one file after the other, in cartridge order, each MD5
/// sent when the file's end comes.
fn md5_worker(
    rx: crossbeam_channel::Receiver<ToMd5>,
    done: crossbeam_channel::Sender<(usize, String)>,
    started: Option<crossbeam_channel::Sender<usize>>,
) {
    let mut current: Option<(usize, Md5)> = None;
    for msg in rx {
        match msg {
            ToMd5::Block(n, block) => {
                if current.as_ref().map(|(m, _)| *m) != Some(n) {
                    if let Some(hook) = &started {
                        let _ = hook.send(n);
                    }
                    current = Some((n, Md5::default()));
                }
                if let Some((_, h)) = &mut current {
                    h.update(block.bytes());
                }
            }
            ToMd5::End(n) => match current.take() {
                Some((m, h)) if m == n => {
                    if done.send((n, h.finish_hex())).is_err() {
                        return;
                    }
                }
                other => current = other,
            },
        }
    }
}

/// The MD5, xxHash64 and BLAKE3 an earlier cartridge recorded for
/// exactly these bytes (the same content and the same part of it), so copy B
/// of an A/B set does not take MD5 again: MD5 is serial and was the slowest
/// stage of a write. `write_item` uses them only when its own BLAKE3 of the
/// bytes matches.
fn earlier_hashes(cat: &Catalog, item: &TapeItemRow) -> Result<Option<FileHashes>> {
    Ok(cat.tape_items_of_blob(&item.blob)?.into_iter().find_map(|i| {
        let complete = i.state == "written" || i.state == "verified";
        if !complete || i.offset != item.offset || i.length != item.length {
            return None;
        }
        Some(FileHashes { blake3: i.blake3?, md5: i.md5?, xxh64: i.xxh64? })
    }))
}

/// Close `cart` after an error and move `rest` (not written) to the next cartridge.
fn close_early(
    cat: &Catalog,
    cart: &crate::archive::catalog::CartridgeRow,
    rest: &[TapeItemRow],
    why: &str,
    rep: &mut WriteReport,
) -> Result<()> {
    let note = format!("closed early: {why}");
    let next = cat.write(|c| {
        c.set_cartridge_state(&cart.barcode, "full", Some(now_ns()), Some(&note))?;
        if rest.is_empty() {
            return Ok(None);
        }
        requeue(c, &cart.barcode, rest, Placement::Front, &format!("moved from {}: {why}", cart.barcode)).map(Some)
    })?;
    rep.moved += rest.len() as u64;
    if next.is_some() {
        rep.moved_to = next;
    }
    Ok(())
}

/// Where requeued items go on the next cartridge.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Before what it holds (the rest of a cartridge cut short keeps plan order).
    Front,
    /// After what it holds (a file that failed verification).
    Back,
}

/// Queue fresh copies of `items` on the cartridge after `from` (same plan and
/// copy, still to be written), adding a cartridge to the plan when there is
/// none. Inside the caller's write transaction. Returns the barcode.
pub fn requeue(c: &Catalog, from: &str, items: &[TapeItemRow], at: Placement, note: &str) -> crate::archive::Result<String> {
    let cart = c.cartridge(from)?.ok_or_else(|| ArchiveError::Invalid(format!("no cartridge {from}")))?;
    let all = c.cartridges(Some(&cart.plan))?;
    let next = all.iter().filter(|x| x.copy == cart.copy && x.seq > cart.seq && x.state == "planned").min_by_key(|x| x.seq).cloned();
    let next = match next {
        Some(n) => n,
        None => {
            let letter = cart.barcode.chars().next().unwrap_or('A');
            let suffix = cart.barcode.get(6..).unwrap_or("L8").to_string();
            let number = c.barcodes()?.iter().filter_map(|b| plan::barcode_number(b, letter)).max().unwrap_or(0) + 1;
            let seq = all.iter().filter(|x| x.copy == cart.copy).map(|x| x.seq).max().unwrap_or(0) + 1;
            let row = crate::archive::catalog::CartridgeRow {
                barcode: plan::barcode(letter, number, &suffix),
                plan: cart.plan.clone(),
                copy: cart.copy,
                seq,
                state: "planned".into(),
                written_ns: None,
                note: Some(format!("added when {from} was cut short")),
            };
            c.insert_cartridge(&row)?;
            row
        }
    };
    let range = c.tape_item_ord_range(&next.barcode)?;
    let first = match (at, range) {
        (_, None) => 0,
        (Placement::Front, Some((lo, _))) => lo - items.len() as i64,
        (Placement::Back, Some((_, hi))) => hi + 1,
    };
    for (i, it) in items.iter().enumerate() {
        let fresh = TapeItemRow {
            barcode: next.barcode.clone(),
            ord: first + i as i64,
            state: "queued".into(),
            partition: None,
            start_block: None,
            md5: None,
            sha1: None,
            xxh64: None,
            blake3: None,
            written_ns: None,
            verified_ns: None,
            note: Some(note.to_string()),
            ..it.clone()
        };
        c.insert_tape_item(&fresh)?;
    }
    Ok(next.barcode)
}

/// The set catalog (JSON, CSV, joins) and then the ASC MHL manifest of this
/// cartridge's files (the catalog files included), written as the last files.
fn write_catalog_files(a: &Archive, plan_name: &str, barcode: &str, vol: &mut dyn VolumeWriter) -> Result<Vec<String>> {
    let cat = &a.catalog;
    let plan = cat.tape_plan(plan_name)?.ok_or_else(|| TapeError::NoSuchPlan(plan_name.into()))?;
    let mut carts = cat.cartridges(Some(plan_name))?;
    // This cartridge is being closed: the copy it carries says so.
    for c in carts.iter_mut().filter(|c| c.barcode == barcode && c.state == "planned") {
        c.state = "written".into();
    }
    let set = SetCatalog::new(plan, carts, cat.tape_items_of_plan(plan_name)?);
    let mut files = vec![(format!("{CATALOG_DIR}/{plan_name}.json"), set.json()), (format!("{CATALOG_DIR}/{plan_name}.csv"), set.csv())];
    if let Some(j) = set.joins() {
        files.push((format!("{CATALOG_DIR}/{plan_name}-joins.txt"), j));
    }
    let now = now_ns();
    let mut entries: Vec<MhlEntry> = set.mhl_entries(barcode);
    let mut names = Vec::new();
    for (path, bytes) in &files {
        let h = FileHashes::of(bytes);
        write_small(vol, path, bytes, now, &h)?;
        entries.push(MhlEntry { path: path.clone(), size: bytes.len() as u64, mtime_ns: now, md5: h.md5, xxh64: h.xxh64 });
        names.push(path.clone());
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "localhost".into());
    for (path, bytes) in mhl::manifest_files(barcode, &entries, now, &host) {
        write_small(vol, &path, &bytes, now, &FileHashes::of(&bytes))?;
        names.push(path);
    }
    Ok(names)
}

fn write_small(vol: &mut dyn VolumeWriter, path: &str, bytes: &[u8], now: i64, h: &FileHashes) -> Result<()> {
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_nanos(now.max(0) as u64);
    if let Some(bytes) = vol.remove_leftover(path)? {
        log::warn!("tape {}: removed {path} ({bytes} bytes), left by an earlier write that was killed", vol.barcode());
    }
    let res = (|| {
        vol.begin_file(path, mtime)?;
        vol.write(bytes)?;
        vol.end_file(&h.ltfs_xattrs())
    })();
    if let Err(e) = res {
        let _ = vol.abandon_file();
        return Err(e.into());
    }
    Ok(())
}
