//! `tape recall`: bring released files back onto disk from one cartridge.
//! Files are read in tape order (partition, then start block: no backward
//! seeks on a real drive), each copied to a staging file beside the packs
//! while its BLAKE3 is taken and compared with the archive's; a file whose
//! bytes differ is refused and named. What matches is stored again through
//! the ingest pipeline (same chunker, so the same chunks and the same content
//! id), and its released mark is cleared in the same catalog transaction.

use super::error::{Result, TapeError};
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
}

impl RecallReport {
    pub fn ok(&self) -> bool {
        self.refused.is_empty()
    }
}

/// The item of `source` on `barcode` that a recall reads, or why there is none.
fn item_on(a: &Archive, source: &str, barcode: &str) -> Result<std::result::Result<TapeItemRow, String>> {
    let items = a.catalog.tape_items_of_source(source)?;
    if items.is_empty() {
        return Ok(Err(format!("not on any tape; `reelfs tape where ARCHIVE {source}` shows the copies")));
    }
    let on: Vec<TapeItemRow> =
        items.iter().filter(|i| i.barcode == barcode && (i.state == "verified" || i.state == "written")).cloned().collect();
    match on.as_slice() {
        [] => {
            let mut elsewhere: Vec<String> =
                items.iter().filter(|i| i.state == "verified").map(|i| i.barcode.clone()).collect();
            elsewhere.dedup();
            Ok(Err(format!("no complete copy on {barcode}; verified copies are on: {}", if elsewhere.is_empty() { "none".into() } else { elsewhere.join(", ") })))
        }
        [one] if one.parts == 1 => Ok(Ok(one.clone())),
        _ => Ok(Err(format!(
            "split into {} parts across cartridges; recall of split files is not supported yet: join the parts (see the join list on the cartridge) and `reelfs ingest` the file",
            on[0].parts
        ))),
    }
}

pub fn recall(a: &mut Archive, sources: &[String], barcode: &str, reader: &mut dyn VolumeReader) -> Result<RecallReport> {
    a.catalog.ensure_tape_schema()?;
    if a.catalog.cartridge(barcode)?.is_none() {
        return Err(TapeError::NoSuchTape(barcode.into()));
    }
    a.require_writer()?;
    let mut rep = RecallReport { barcode: barcode.into(), recalled: Vec::new(), refused: Vec::new(), already_on_disk: Vec::new() };
    let mut todo = Vec::new();
    for s in sources {
        let s = s.trim_matches('/').to_string();
        match item_on(a, &s, barcode)? {
            Err(why) => rep.refused.push(RecallProblem { source: s, error: why }),
            Ok(item) if a.catalog.released(&item.blob)?.is_none() => rep.already_on_disk.push(s),
            Ok(item) if !is_plain_blake3(&a.catalog, &item.blob)? => rep.refused.push(RecallProblem {
                source: s,
                error: "its content id is not a plain BLAKE3 (an older archive format); re-ingest the file from the cartridge".into(),
            }),
            Ok(item) => todo.push(item),
        }
    }
    // Tape order: a drive reads forward, never back. A volume mounted by a
    // driver that does not expose start blocks gives 0 for all: then the
    // order they were written in.
    todo.sort_by(|x, y| (&x.partition, x.start_block, x.ord).cmp(&(&y.partition, y.start_block, y.ord)));
    todo.dedup_by(|x, y| x.blob == y.blob);
    let stage = a.root().join(format!(".recall-{}", std::process::id()));
    std::fs::create_dir_all(&stage).map_err(|e| TapeError::Io { path: stage.clone(), source: e })?;
    let result = (|| -> Result<()> {
        let mut good: Vec<(PathBuf, TapeItemRow)> = Vec::new();
        for (n, item) in todo.iter().enumerate() {
            let path = stage.join(format!("{n:08}"));
            match copy_checked(reader, item, &path)? {
                None => good.push((path, item.clone())),
                Some(why) => {
                    let _ = std::fs::remove_file(&path);
                    rep.refused.push(RecallProblem { source: item.source.clone(), error: why });
                }
            }
        }
        if good.is_empty() {
            return Ok(());
        }
        let paths: Vec<PathBuf> = good.iter().map(|(p, _)| p.clone()).collect();
        store_local_files(a, &paths, Arc::new(AtomicBool::new(false)), |sink, stored| {
            for ((hash, _), (_, item)) in stored.iter().zip(&good) {
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
        rep.recalled.extend(good.iter().map(|(_, i)| RecalledFile {
            source: i.source.clone(),
            tape_path: i.tape_path.clone(),
            bytes: i.length,
            start_block: i.start_block.unwrap_or(0),
        }));
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&stage);
    result?;
    Ok(rep)
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
