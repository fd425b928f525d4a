//! Recall of a file split across cartridges: which cartridge each part is read
//! from, and reading a part into its place in the file being put back
//! together. `recall` drives the order (the cartridge already in the drive
//! first, then each other one once) and the whole-file check.

use super::error::{Result, TapeError};
use super::volume::VolumeReader;
use crate::archive::catalog::TapeItemRow;
use crate::archive::Archive;
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::FileExt;

/// Loads the cartridge with this barcode (a changer moving it to the drive)
/// and opens its volume; `Ok(None)` when the library does not hold it.
pub type LoadCartridge<'a> = dyn FnMut(&str) -> Result<Option<Box<dyn VolumeReader>>> + 'a;

/// A split file to put back together: one complete copy of every part, in
/// part order.
#[derive(Debug, Clone)]
pub struct SplitFile {
    pub source: String,
    pub parts: Vec<TapeItemRow>,
}

impl SplitFile {
    pub fn first(&self) -> &TapeItemRow {
        &self.parts[0]
    }

    /// The barcodes to read from, each once, the cartridge `from` first.
    pub fn barcodes(&self, from: &str) -> Vec<String> {
        let mut out = vec![from.to_string()];
        for p in &self.parts {
            if !out.contains(&p.barcode) {
                out.push(p.barcode.clone());
            }
        }
        out
    }
}

/// Choose where each part of a split file is read from: the cartridge `from`
/// where it holds the part, else a cartridge of the same copy (the set a
/// facility keeps together), else any other complete copy; verified before
/// written. Err(why) when a part has no complete copy anywhere.
pub fn choose_parts(a: &Archive, items: &[TapeItemRow], from: &str) -> Result<std::result::Result<Vec<TapeItemRow>, String>> {
    let parts = items.first().map(|i| i.parts).unwrap_or(0);
    let copy_of = |bc: &str| -> Result<u32> { Ok(a.catalog.cartridge(bc)?.map(|c| c.copy).unwrap_or(0)) };
    let from_copy = copy_of(from)?;
    let mut copies: HashMap<String, u32> = HashMap::new();
    for i in items {
        if !copies.contains_key(&i.barcode) {
            copies.insert(i.barcode.clone(), copy_of(&i.barcode)?);
        }
    }
    let mut chosen = Vec::new();
    for part in 1..=parts {
        let best = items
            .iter()
            .filter(|i| i.part == part && (i.state == "verified" || i.state == "written"))
            .min_by_key(|i| (i.barcode != from, copies.get(&i.barcode) != Some(&from_copy), i.state != "verified", i.barcode.clone()));
        match best {
            Some(i) => chosen.push(i.clone()),
            None => {
                return Ok(Err(format!(
                    "part {part} of {parts} is on no cartridge as a complete copy; `reelfs tape where` shows the copies"
                )))
            }
        }
    }
    Ok(Ok(chosen))
}

/// Read `part` off `reader` into `out` at the part's offset in the file,
/// checking its length and the BLAKE3 taken when it was written. Some(why)
/// when the bytes are not what was written.
pub fn read_part(
    reader: &mut dyn VolumeReader,
    part: &TapeItemRow,
    out: &std::fs::File,
    out_path: &std::path::Path,
) -> Result<Option<String>> {
    let mut r = match reader.open(&part.tape_path) {
        Ok(r) => r,
        Err(e) => return Ok(Some(format!("cannot read {} on {}: {e}", part.tape_path, part.barcode))),
    };
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 8 << 20];
    let mut n = 0u64;
    loop {
        let got = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Some(format!("read error on {}: {e}", part.barcode))),
        };
        if n + got as u64 > part.length {
            break;
        }
        h.update(&buf[..got]);
        out.write_all_at(&buf[..got], part.offset + n).map_err(|e| TapeError::Io { path: out_path.to_path_buf(), source: e })?;
        n += got as u64;
    }
    let mut extra = [0u8; 1];
    if n != part.length || r.read(&mut extra).map(|k| k > 0).unwrap_or(false) {
        return Ok(Some(format!("{} on {} is not the {} bytes written there: refused", part.tape_path, part.barcode, part.length)));
    }
    if let Some(want) = &part.blake3 {
        let got = h.finalize().to_hex().to_string();
        if &got != want {
            return Ok(Some(format!(
                "{} on {} does not match what was written (BLAKE3 {got}, expected {want}): refused, nothing stored",
                part.tape_path, part.barcode
            )));
        }
    }
    Ok(None)
}

/// The BLAKE3 of the file put back together at `path`.
pub fn blake3_of(path: &std::path::Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| TapeError::Io { path: path.to_path_buf(), source: e })?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 8 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                h.update(&buf[..k]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TapeError::Io { path: path.to_path_buf(), source: e }),
        }
    }
    Ok(h.finalize().to_hex().to_string())
}
