//! `tape verify`: read every file of a cartridge back, in tape order, and
//! compare its BLAKE3 with the archive's. A file that is missing, short or
//! different is named, marked bad, and queued again for the next cartridge.

use super::blocks::{Block, Pool};
use super::error::Result;
use super::volume::VolumeReader;
use super::write::{requeue, Placement};
use crate::archive::catalog::TapeItemRow;
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
    let pool = Pool::new(BLOCK, 8);
    for item in &items {
        progress.message(&item.tape_path);
        let problem = match check_one(a, reader, item, on_volume.get(&item.tape_path), &pool, progress) {
            Ok(None) => {
                cat.write(|c| c.set_tape_item_verified(barcode, item.ord, now_ns()))?;
                rep.verified += 1;
                rep.bytes += item.length;
                continue;
            }
            Ok(Some(p)) => p,
            Err(e) => format!("read error: {e}"),
        };
        let note = format!("verification failed on {barcode}: {problem}");
        let to = cat.write(|c| {
            c.set_tape_item_state(barcode, item.ord, "bad", Some(&note))?;
            requeue(c, barcode, std::slice::from_ref(item), Placement::Back, &note)
        })?;
        rep.mismatches.push(Mismatch { tape_path: item.tape_path.clone(), source: item.source.clone(), problem, requeued_to: Some(to) });
    }
    progress.finish();
    rep.seconds = t0.elapsed().as_secs_f64();
    rep.mb_per_s = if rep.seconds > 0.0 { rep.bytes as f64 / 1e6 / rep.seconds } else { 0.0 };
    Ok(rep)
}

/// None when the file on tape is the archive's bytes; otherwise what is wrong.
fn check_one(
    a: &Archive,
    reader: &mut dyn VolumeReader,
    item: &TapeItemRow,
    listed: Option<&super::volume::VolumeFile>,
    pool: &Pool,
    progress: &ProgressHandle,
) -> Result<Option<String>> {
    let Some(listed) = listed else { return Ok(Some("not on the volume".into())) };
    if listed.bytes != item.length {
        return Ok(Some(format!("{} bytes on tape, {} expected", listed.bytes, item.length)));
    }
    // What the archive says the bytes are: a whole file's content id is its
    // BLAKE3; a part's BLAKE3 was taken from the archive's bytes as it was written.
    let expected = if item.parts == 1 && is_plain_blake3(&a.catalog, &item.blob)? {
        item.blob.to_hex()
    } else {
        match &item.blake3 {
            Some(h) => h.clone(),
            None => return Ok(Some("no BLAKE3 recorded when it was written".into())),
        }
    };
    let mut r = reader.open(&item.tape_path)?;
    // Hashing on a second thread while the next block is read: the pass runs at
    // the slower of the two, not their sum.
    let outcome = std::thread::scope(|sc| {
        let (tx, rx) = crossbeam_channel::bounded::<Block>(3);
        let hasher = sc.spawn(move || {
            let mut h = blake3::Hasher::new();
            for b in rx {
                h.update(b.bytes());
            }
            h.finalize().to_hex().to_string()
        });
        let mut n = 0u64;
        let mut problem = None;
        loop {
            let mut b = pool.take();
            let got = match r.read(b.space()) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    problem = Some(format!("read error: {e}"));
                    break;
                }
            };
            b.set_len(got);
            n += got as u64;
            progress.advance(got as u64);
            if tx.send(b).is_err() {
                break;
            }
        }
        drop(tx);
        (n, problem, hasher.join().unwrap_or_default())
    });
    let (n, problem, got) = outcome;
    if let Some(p) = problem {
        return Ok(Some(p));
    }
    if n != item.length {
        return Ok(Some(format!("read {n} bytes, {} expected", item.length)));
    }
    if got != expected {
        return Ok(Some(format!("BLAKE3 {got} on tape, {expected} in the archive")));
    }
    Ok(None)
}
