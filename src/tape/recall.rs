//! `tape recall`: bring released files back onto disk from one cartridge.
//! Files are read in tape order (partition, then start block: no backward
//! seeks on a real drive), each copied to a staging file beside the packs
//! while its BLAKE3 is taken and compared with the archive's; a file whose
//! bytes differ is refused and named. What matches is stored again through
//! the ingest pipeline (same chunker, so the same chunks and the same content
//! id), and its released mark is cleared in the same catalog transaction.
//!
//! A file split across cartridges is put back together from its parts, each
//! checked against the BLAKE3 taken when it was written, then the whole
//! against the archive's content id; the other cartridges are loaded through
//! a changer (`recall_across`), each once, and one the library lacks is named.

use super::error::{Result, TapeError};
use super::recall_split::{blake3_of, choose_parts, read_part, LoadCartridge, SplitFile};
use super::volume::VolumeReader;
use crate::archive::catalog::TapeItemRow;
use crate::archive::content_hash::is_plain_blake3;
use crate::archive::ingest::store_local_files;
use crate::archive::{Archive, ArchiveError};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Debug, Clone, serde::Serialize)]
pub struct RecalledFile {
    pub source: String,
    pub tape_path: String,
    pub bytes: u64,
    pub start_block: u64,
    /// For a file split across cartridges: each part read, in part order
    /// (empty for a whole file).
    pub parts: Vec<RecalledPart>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RecalledPart {
    pub barcode: String,
    pub tape_path: String,
    pub bytes: u64,
    pub start_block: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RecallProblem {
    pub source: String,
    pub error: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RecallReport {
    pub barcode: String,
    /// In the order they were read (tape order).
    pub recalled: Vec<RecalledFile>,
    /// Named and refused: not on this cartridge, or bytes that differ.
    pub refused: Vec<RecallProblem>,
    /// Asked for but already on disk (not released): left as they are.
    pub already_on_disk: Vec<String>,
    /// A cartridge holding a part of a split file that the library does not
    /// hold: put it in a slot and run the recall again.
    pub waiting_for: Option<String>,
    /// How the drive positioned its head during the recall (`--device` on an
    /// emulated cartridge counts; other volumes do not say).
    pub seeks: Option<crate::tape::device::SeekCounts>,
}

/// The order a recall reads files in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Partition, then start block: the head only moves forward.
    #[default]
    Tape,
    /// As the paths were given (what a script reading one file after another
    /// off an LTFS mount does): for comparison, e.g. `scripts/bench tape`.
    Given,
}

impl RecallReport {
    pub fn ok(&self) -> bool {
        self.refused.is_empty()
    }
}

/// What a recall reads for one file.
enum Recallable {
    Whole(Box<TapeItemRow>),
    /// Split across cartridges: every part, in part order.
    Split(SplitFile),
}

/// The item(s) of `source` that a recall from `barcode` reads, or why there
/// are none. A split file qualifies when one of its parts is on `barcode`;
/// its other parts are read from the other cartridges (`can_load`: a changer
/// that can load them), else it is refused with what to do.
fn item_on(a: &Archive, source: &str, barcode: &str, can_load: bool) -> Result<std::result::Result<Recallable, String>> {
    let items = a.catalog.tape_items_of_source(source)?;
    if items.is_empty() {
        return Ok(Err(format!("not on any tape; `reelfs tape where ARCHIVE {source}` shows the copies")));
    }
    let on: Vec<TapeItemRow> =
        items.iter().filter(|i| i.barcode == barcode && (i.state == "verified" || i.state == "written")).cloned().collect();
    match on.as_slice() {
        [] => {
            let mut elsewhere: Vec<String> = items.iter().filter(|i| i.state == "verified").map(|i| i.barcode.clone()).collect();
            elsewhere.dedup();
            Ok(Err(format!(
                "no complete copy on {barcode}; verified copies are on: {}",
                if elsewhere.is_empty() { "none".into() } else { elsewhere.join(", ") }
            )))
        }
        [one] if one.parts == 1 => Ok(Ok(Recallable::Whole(Box::new(one.clone())))),
        [first, ..] => {
            let parts = match choose_parts(a, &items, barcode)? {
                Ok(p) => p,
                Err(why) => return Ok(Err(why)),
            };
            let on_carts: Vec<String> = parts.iter().map(|p| p.barcode.clone()).collect();
            if !can_load && on_carts.iter().any(|b| b != barcode) {
                return Ok(Err(format!(
                    "split into {} parts on {}: recall it through the library, which loads each cartridge in turn (`reelfs tape recall ARCHIVE {source} --from {barcode} --changer LIB`), or join the parts (see the join list on the cartridge) and `reelfs ingest` the file",
                    first.parts,
                    on_carts.join(", ")
                )));
            }
            Ok(Ok(Recallable::Split(SplitFile { source: source.to_string(), parts })))
        }
    }
}

pub fn recall(a: &mut Archive, sources: &[String], barcode: &str, reader: &mut dyn VolumeReader) -> Result<RecallReport> {
    recall_across(a, sources, barcode, reader, None)
}

/// `recall`, reading whole files in `order`.
pub fn recall_in_order(
    a: &mut Archive,
    sources: &[String],
    barcode: &str,
    reader: &mut dyn VolumeReader,
    order: Order,
) -> Result<RecallReport> {
    recall_ordered(a, sources, barcode, reader, None, order)
}

/// `recall`, with `load` opening the other cartridges a split file's parts
/// are on (a changer). `reader` (the cartridge `barcode`) is read first and
/// not again once `load` has been called: the changer took it out.
pub fn recall_across(
    a: &mut Archive,
    sources: &[String],
    barcode: &str,
    reader: &mut dyn VolumeReader,
    load: Option<&mut LoadCartridge<'_>>,
) -> Result<RecallReport> {
    recall_ordered(a, sources, barcode, reader, load, Order::Tape)
}

fn recall_ordered(
    a: &mut Archive,
    sources: &[String],
    barcode: &str,
    reader: &mut dyn VolumeReader,
    mut load: Option<&mut LoadCartridge<'_>>,
    order: Order,
) -> Result<RecallReport> {
    a.catalog.ensure_tape_schema()?;
    if a.catalog.cartridge(barcode)?.is_none() {
        return Err(TapeError::NoSuchTape(barcode.into()));
    }
    a.require_writer()?;
    let mut rep = RecallReport {
        barcode: barcode.into(),
        recalled: Vec::new(),
        refused: Vec::new(),
        already_on_disk: Vec::new(),
        waiting_for: None,
        seeks: None,
    };
    let mut todo = Vec::new();
    let mut splits: Vec<SplitFile> = Vec::new();
    for s in sources {
        let s = s.trim_matches('/').to_string();
        let found = match item_on(a, &s, barcode, load.is_some())? {
            Err(why) => {
                rep.refused.push(RecallProblem { source: s, error: why });
                continue;
            }
            Ok(f) => f,
        };
        let blob = match &found {
            Recallable::Whole(i) => i.blob,
            Recallable::Split(f) => f.first().blob,
        };
        if a.catalog.released(&blob)?.is_none() {
            rep.already_on_disk.push(s);
        } else if !is_plain_blake3(&a.catalog, &blob)? {
            rep.refused.push(RecallProblem {
                source: s,
                error: "its content id is not a plain BLAKE3 (an older archive format); re-ingest the file from the cartridge".into(),
            });
        } else {
            match found {
                Recallable::Whole(i) => todo.push(*i),
                Recallable::Split(f) if !splits.iter().any(|x| x.first().blob == f.first().blob) => splits.push(f),
                Recallable::Split(_) => {}
            }
        }
    }
    // Tape order: a drive reads forward, never back. A volume mounted by a
    // driver that does not expose start blocks gives 0 for all: then the
    // order they were written in.
    if order == Order::Tape {
        todo.sort_by(|x, y| (&x.partition, x.start_block, x.ord).cmp(&(&y.partition, y.start_block, y.ord)));
    }
    todo.dedup_by(|x, y| x.blob == y.blob);
    let stage = a.root().join(format!(".recall-{}", std::process::id()));
    std::fs::create_dir_all(&stage).map_err(|e| TapeError::Io { path: stage.clone(), source: e })?;
    let result = (|| -> Result<()> {
        let mut good: Vec<(PathBuf, TapeItemRow, Vec<RecalledPart>)> = Vec::new();
        for (n, item) in todo.iter().enumerate() {
            let path = stage.join(format!("{n:08}"));
            match copy_checked(reader, item, &path)? {
                None => good.push((path, item.clone(), Vec::new())),
                Some(why) => {
                    let _ = std::fs::remove_file(&path);
                    rep.refused.push(RecallProblem { source: item.source.clone(), error: why });
                }
            }
        }
        let joined = join_splits(&splits, barcode, reader, load.as_deref_mut(), &stage, &mut rep)?;
        good.extend(joined);
        if good.is_empty() {
            return Ok(());
        }
        let paths: Vec<PathBuf> = good.iter().map(|(p, _, _)| p.clone()).collect();
        store_local_files(a, &paths, Arc::new(AtomicBool::new(false)), |sink, stored| {
            for ((hash, _), (_, item, _)) in stored.iter().zip(&good) {
                if *hash != item.blob {
                    return Err(ArchiveError::Inconsistent(format!(
                        "{} read back from {barcode} as {} but the archive has {}",
                        item.source,
                        hash.short(),
                        item.blob.short()
                    )));
                }
                sink.catalog().clear_released(&item.blob)?;
            }
            Ok(())
        })?;
        rep.recalled.extend(good.into_iter().map(|(_, i, parts)| RecalledFile {
            source: i.source.clone(),
            tape_path: if parts.is_empty() { i.tape_path.clone() } else { tape_path_of_whole(&i) },
            bytes: if parts.is_empty() { i.length } else { i.file_size },
            start_block: i.start_block.unwrap_or(0),
            parts,
        }));
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&stage);
    result?;
    rep.seeks = reader.seeks();
    Ok(rep)
}

/// The file's own path on tape (a part's name less its `.partNNNofMMM`).
fn tape_path_of_whole(part: &TapeItemRow) -> String {
    match part.tape_path.rfind(".part") {
        Some(i) if part.parts > 1 => part.tape_path[..i].to_string(),
        _ => part.tape_path.clone(),
    }
}

/// Put each split file back together in a staging file: the parts on the
/// cartridge in the drive first, then each other cartridge loaded once, its
/// parts read in tape order; then the whole file's BLAKE3 checked against the
/// archive's content id. Returns the files that came back whole and right.
fn join_splits(
    splits: &[SplitFile],
    barcode: &str,
    reader: &mut dyn VolumeReader,
    mut load: Option<&mut LoadCartridge<'_>>,
    stage: &std::path::Path,
    rep: &mut RecallReport,
) -> Result<Vec<(PathBuf, TapeItemRow, Vec<RecalledPart>)>> {
    if splits.is_empty() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for n in 0..splits.len() {
        let path = stage.join(format!("split-{n:08}"));
        let out = std::fs::File::create(&path).map_err(|e| TapeError::Io { path: path.clone(), source: e })?;
        files.push((path, out));
    }
    let mut failed: Vec<Option<String>> = vec![None; splits.len()];
    let mut order: Vec<String> = Vec::new();
    for f in splits {
        for b in f.barcodes(barcode) {
            if !order.contains(&b) {
                order.push(b);
            }
        }
    }
    let mut loaded: Option<Box<dyn VolumeReader>> = None;
    for bc in &order {
        let wanted: Vec<(usize, &TapeItemRow)> = splits
            .iter()
            .enumerate()
            .filter(|(i, _)| failed[*i].is_none())
            .flat_map(|(i, f)| f.parts.iter().filter(|p| &p.barcode == bc).map(move |p| (i, p)))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let vol: &mut dyn VolumeReader = if bc == barcode {
            &mut *reader
        } else {
            // The cartridge in the drive goes back before the next one loads.
            loaded = None;
            let Some(l) = load.as_deref_mut() else {
                for (i, _) in &wanted {
                    failed[*i] = Some(format!("a part is on {bc}, and no library was given to load it (--changer)"));
                }
                continue;
            };
            match l(bc)? {
                Some(v) => loaded.insert(v).as_mut(),
                None => {
                    for (i, p) in &wanted {
                        failed[*i] = Some(format!(
                            "part {} of {} is on {bc}, which is not in the library: put {bc} in a free slot and run the recall again",
                            p.part, p.parts
                        ));
                    }
                    rep.waiting_for.get_or_insert_with(|| bc.clone());
                    continue;
                }
            }
        };
        let mut wanted = wanted;
        wanted.sort_by(|(_, x), (_, y)| (&x.partition, x.start_block, x.part).cmp(&(&y.partition, y.start_block, y.part)));
        for (i, p) in wanted {
            if failed[i].is_some() {
                continue;
            }
            let (path, out) = &files[i];
            if let Some(why) = read_part(vol, p, out, path)? {
                failed[i] = Some(why);
            }
        }
    }
    drop(loaded);
    let mut good = Vec::new();
    for ((f, (path, out)), why) in splits.iter().zip(files).zip(failed) {
        drop(out);
        let why = match why {
            Some(w) => Some(w),
            None => {
                let got = blake3_of(&path)?;
                let want = f.first().blob.to_hex().to_string();
                (got != want).then(|| {
                    format!("the parts put together do not match the archive (BLAKE3 {got}, expected {want}): refused, nothing stored")
                })
            }
        };
        match why {
            Some(error) => {
                let _ = std::fs::remove_file(&path);
                rep.refused.push(RecallProblem { source: f.source.clone(), error });
            }
            None => {
                let parts = f
                    .parts
                    .iter()
                    .map(|p| RecalledPart {
                        barcode: p.barcode.clone(),
                        tape_path: p.tape_path.clone(),
                        bytes: p.length,
                        start_block: p.start_block.unwrap_or(0),
                    })
                    .collect();
                good.push((path, f.first().clone(), parts));
            }
        }
    }
    Ok(good)
}

/// Copy `item` off the volume to `to`, hashing it; Some(why) when the bytes
/// are not the archive's.
fn copy_checked(reader: &mut dyn VolumeReader, item: &TapeItemRow, to: &std::path::Path) -> Result<Option<String>> {
    let mut r = match reader.open(&item.tape_path) {
        Ok(r) => r,
        Err(e) => return Ok(Some(format!("cannot read {} on the cartridge: {e}", item.tape_path))),
    };
    let mut out = std::fs::File::create(to).map_err(|e| TapeError::Io { path: to.to_path_buf(), source: e })?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 8 << 20];
    let mut n = 0u64;
    loop {
        let got = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Some(format!("read error on the cartridge: {e}"))),
        };
        h.update(&buf[..got]);
        out.write_all(&buf[..got]).map_err(|e| TapeError::Io { path: to.to_path_buf(), source: e })?;
        n += got as u64;
    }
    out.sync_all().map_err(|e| TapeError::Io { path: to.to_path_buf(), source: e })?;
    if n != item.length {
        return Ok(Some(format!("{} on the cartridge has {n} bytes, the archive {}: refused", item.tape_path, item.length)));
    }
    let got = h.finalize().to_hex().to_string();
    if got != item.blob.to_hex() {
        return Ok(Some(format!(
            "{} on the cartridge does not match the archive (BLAKE3 {got}, expected {}): refused, nothing stored",
            item.tape_path,
            item.blob.to_hex()
        )));
    }
    Ok(None)
}
