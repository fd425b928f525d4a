//! `tape verify`: read every file of a cartridge back, in tape order, and
//! compare its BLAKE3 with the archive's. A file that is missing, short or
//! different is named, marked bad, and queued again for the next cartridge.

use super::blocks::{Block, Pool};
use super::error::Result;
use super::volume::VolumeReader;
use super::write::{requeue, Placement};
use crate::archive::catalog::{Catalog, TapeItemRow};
use crate::archive::content_hash::is_plain_blake3;
use crate::archive::objects::now_ns;
use crate::archive::progress::{ProgressHandle, Unit};
use crate::archive::Archive;
use std::collections::HashMap;
use std::io::Read;
use std::time::Instant;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Mismatch {
    pub tape_path: String,
    pub source: String,
    pub problem: String,
    /// The cartridge a fresh copy was queued for.
    pub requeued_to: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    pub barcode: String,
    pub verified: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub mb_per_s: f64,
    pub mismatches: Vec<Mismatch>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Bytes read from the volume at a time.
const BLOCK: usize = 8 << 20;
/// Blocks queued between the reader and the hasher.
const IN_FLIGHT: usize = 4;
/// Verified files recorded in one catalog commit (an fsync each: one per
/// file was most of the time of checking many small sidecars). A crash in
/// between only leaves those files to be verified again.
const UNRECORDED_FILES: usize = 64;
const UNRECORDED_SECS: f64 = 1.0;

/// What the reader sends the hasher: a file's next block, or its end.
enum ToHasher {
    Block(Block),
    End(usize),
}

/// One file's check as the reader leaves it: refused before hashing, or
/// waiting for the hasher's BLAKE3.
enum Pending {
    Problem(String),
    Hashing { expected: String, read: u64 },
}

pub fn verify_tape(a: &Archive, barcode: &str, reader: &mut dyn VolumeReader, progress: &ProgressHandle) -> Result<VerifyReport> {
    let cat = &a.catalog;
    cat.ensure_tape_schema()?;
    if cat.cartridge(barcode)?.is_none() {
        return Err(super::error::TapeError::NoSuchTape(barcode.into()));
    }
    let mut items: Vec<TapeItemRow> =
        cat.tape_items_on(barcode)?.into_iter().filter(|i| i.state == "written" || i.state == "verified").collect();
    let on_volume: HashMap<String, super::volume::VolumeFile> = reader.files()?.into_iter().map(|f| (f.path.clone(), f)).collect();
    // Tape order: partition, then the block the driver put the file at; a
    // folder standing in for a mount has no blocks, and write order decides.
    let key =
        |i: &TapeItemRow| on_volume.get(&i.tape_path).map(|f| (f.placement.partition, f.placement.start_block)).unwrap_or(('z', u64::MAX));
    items.sort_by_key(|i| (key(i), i.ord));
    let total: u64 = items.iter().map(|i| i.length).sum();
    progress.begin("tape verify", Unit::Bytes, total);
    let t0 = Instant::now();
    let mut rep = VerifyReport { barcode: barcode.into(), verified: 0, bytes: 0, seconds: 0.0, mb_per_s: 0.0, mismatches: Vec::new() };
    // Blocks reused from file to file (reader and hasher hold a few at once).
    let pool = Pool::new(BLOCK, 2 * IN_FLIGHT + 2);
    let mut verdicts = Verdicts { barcode, items: &items, verified: Vec::new(), since: None };
    // One hasher for the whole pass: this thread reads the next file while the
    // hasher is still on this one, so the reads never wait for the hashing
    // (or, for small files, for the catalog).
    let outcome = std::thread::scope(|sc| -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded::<ToHasher>(IN_FLIGHT);
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<(usize, String)>();
        sc.spawn(move || {
            let mut h = blake3::Hasher::new();
            for m in rx {
                match m {
                    ToHasher::Block(b) => {
                        h.update(b.bytes());
                    }
                    ToHasher::End(i) => {
                        if done_tx.send((i, h.finalize().to_hex().to_string())).is_err() {
                            return;
                        }
                        h.reset();
                    }
                }
            }
        });
        let mut pending: HashMap<usize, Pending> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            progress.message(&item.tape_path);
            let p = match read_one(a, reader, item, on_volume.get(&item.tape_path), &pool, progress, &tx, i) {
                Ok(p) => p,
                Err(e) => Pending::Problem(format!("read error: {e}")),
            };
            if let Pending::Problem(problem) = p {
                verdicts.bad(cat, i, problem, &mut rep)?;
            } else {
                pending.insert(i, p);
            }
            for (j, got) in done_rx.try_iter() {
                if let Some(p) = pending.remove(&j) {
                    verdicts.judge(cat, j, p, &got, &mut rep)?;
                }
            }
            verdicts.record_if_due(cat)?;
        }
        drop(tx);
        for (j, got) in done_rx.iter() {
            if let Some(p) = pending.remove(&j) {
                verdicts.judge(cat, j, p, &got, &mut rep)?;
            }
        }
        for (j, p) in pending {
            // Only a hasher that stopped early leaves one unjudged.
            verdicts.judge(cat, j, p, "", &mut rep)?;
        }
        Ok(())
    });
    // What was verified before an error is recorded all the same.
    let recorded = verdicts.record(cat);
    outcome?;
    recorded?;
    progress.finish();
    rep.seconds = t0.elapsed().as_secs_f64();
    rep.mb_per_s = if rep.seconds > 0.0 { rep.bytes as f64 / 1e6 / rep.seconds } else { 0.0 };
    Ok(rep)
}

/// The verdicts on a cartridge's files: the good ones recorded a few at a
/// time, a bad one at once (with a fresh copy queued for the next cartridge).
struct Verdicts<'a> {
    barcode: &'a str,
    items: &'a [TapeItemRow],
    verified: Vec<i64>,
    since: Option<Instant>,
}

impl Verdicts<'_> {
    fn judge(&mut self, cat: &Catalog, i: usize, p: Pending, got: &str, rep: &mut VerifyReport) -> Result<()> {
        let item = &self.items[i];
        let problem = match p {
            Pending::Problem(problem) => problem,
            Pending::Hashing { read, .. } if read != item.length => format!("read {read} bytes, {} expected", item.length),
            Pending::Hashing { expected, .. } if got == expected => {
                self.since.get_or_insert_with(Instant::now);
                self.verified.push(item.ord);
                rep.verified += 1;
                rep.bytes += item.length;
                return Ok(());
            }
            Pending::Hashing { expected, .. } if got.is_empty() => {
                format!("internal: the hashing thread stopped before this file (BLAKE3 {expected} expected)")
            }
            Pending::Hashing { expected, .. } => format!("BLAKE3 {got} on tape, {expected} in the archive"),
        };
        self.bad(cat, i, problem, rep)
    }

    fn bad(&mut self, cat: &Catalog, i: usize, problem: String, rep: &mut VerifyReport) -> Result<()> {
        let item = &self.items[i];
        let barcode = self.barcode;
        let note = format!("verification failed on {barcode}: {problem}");
        let to = cat.write(|c| {
            c.set_tape_item_state(barcode, item.ord, "bad", Some(&note))?;
            requeue(c, barcode, std::slice::from_ref(item), Placement::Back, &note)
        })?;
        rep.mismatches.push(Mismatch { tape_path: item.tape_path.clone(), source: item.source.clone(), problem, requeued_to: Some(to) });
        Ok(())
    }

    fn record_if_due(&mut self, cat: &Catalog) -> Result<()> {
        let due = self.verified.len() >= UNRECORDED_FILES || self.since.is_some_and(|t| t.elapsed().as_secs_f64() >= UNRECORDED_SECS);
        if due {
            self.record(cat)?;
        }
        Ok(())
    }

    fn record(&mut self, cat: &Catalog) -> Result<()> {
        if self.verified.is_empty() {
            return Ok(());
        }
        let now = now_ns();
        cat.write(|c| {
            for ord in &self.verified {
                c.set_tape_item_verified(self.barcode, *ord, now)?;
            }
            Ok(())
        })?;
        self.verified.clear();
        self.since = None;
        Ok(())
    }
}

/// Read one file off the volume into the hasher (its blocks, then its end);
/// a problem found before hashing (not on the volume, wrong size) is the
/// verdict at once.
#[allow(clippy::too_many_arguments)]
fn read_one(
    a: &Archive,
    reader: &mut dyn VolumeReader,
    item: &TapeItemRow,
    listed: Option<&super::volume::VolumeFile>,
    pool: &Pool,
    progress: &ProgressHandle,
    tx: &crossbeam_channel::Sender<ToHasher>,
    i: usize,
) -> Result<Pending> {
    let Some(listed) = listed else { return Ok(Pending::Problem("not on the volume".into())) };
    if listed.bytes != item.length {
        return Ok(Pending::Problem(format!("{} bytes on tape, {} expected", listed.bytes, item.length)));
    }
    // What the archive says the bytes are: a whole file's content id is its
    // BLAKE3; a part's BLAKE3 was taken from the archive's bytes as it was written.
    let expected = if item.parts == 1 && is_plain_blake3(&a.catalog, &item.blob)? {
        item.blob.to_hex()
    } else {
        match &item.blake3 {
            Some(h) => h.clone(),
            None => return Ok(Pending::Problem("no BLAKE3 recorded when it was written".into())),
        }
    };
    let stopped = || Pending::Problem("internal: the hashing thread stopped".into());
    let mut r = reader.open(&item.tape_path)?;
    let mut read = 0u64;
    loop {
        let mut b = pool.take();
        let got = match r.read(b.space()) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // The hasher still needs the file's end before the next one.
                if tx.send(ToHasher::End(i)).is_err() {
                    return Ok(stopped());
                }
                return Ok(Pending::Problem(format!("read error: {e}")));
            }
        };
        b.set_len(got);
        read += got as u64;
        progress.advance(got as u64);
        if tx.send(ToHasher::Block(b)).is_err() {
            return Ok(stopped());
        }
    }
    if tx.send(ToHasher::End(i)).is_err() {
        return Ok(stopped());
    }
    Ok(Pending::Hashing { expected, read })
}
