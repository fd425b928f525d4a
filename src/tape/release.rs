//! `tape release`: free the disk copy of content that is verified on enough
//! cartridges. The blob row, its tree entries, media facts and proxies stay
//! (browsing, `ls`, the mount's sizes and xattrs are unchanged); its chunks
//! leave the packs through gc, which does not mark the chunks of released
//! content (a chunk another file still uses stays). Reading released content
//! fails with an error naming the cartridges; `tape recall` brings it back.

use super::error::{Result, TapeError};
use crate::archive::gc::{self, GcOptions, GcReport};
use crate::archive::objects::{now_ns, Hash};
use crate::archive::Archive;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReleasedFile {
    pub source: String,
    pub bytes: u64,
    /// Cartridges holding a verified copy.
    pub barcodes: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReleaseReport {
    pub plan: String,
    pub copies: u32,
    pub released: Vec<ReleasedFile>,
    /// Files of the plan left on disk: verified on fewer than `copies` copies.
    pub kept: Vec<String>,
    /// What gc freed (the released content's chunks, and any other garbage).
    pub gc: GcReport,
}

/// Release what of `plan` is verified on at least `copies` copies of the plan
/// (a split file counts on a copy when every part is verified there).
pub fn release(a: &mut Archive, plan_name: &str, copies: Option<u32>) -> Result<ReleaseReport> {
    let cat = &a.catalog;
    cat.ensure_tape_schema()?;
    let plan = cat.tape_plan(plan_name)?.ok_or_else(|| TapeError::NoSuchPlan(plan_name.into()))?;
    let copies = copies.unwrap_or(plan.copies).max(1);
    let copy_of: BTreeMap<String, u32> = cat.cartridges(Some(plan_name))?.into_iter().map(|c| (c.barcode, c.copy)).collect();
    // blob -> (source, size, parts, copy -> verified parts, barcodes)
    struct Seen {
        source: String,
        bytes: u64,
        parts: u32,
        verified: BTreeMap<u32, BTreeSet<u32>>,
        barcodes: BTreeSet<String>,
    }
    let mut by_blob: BTreeMap<Hash, Seen> = BTreeMap::new();
    for it in cat.tape_items_of_plan(plan_name)? {
        let s = by_blob.entry(it.blob).or_insert_with(|| Seen {
            source: it.source.clone(),
            bytes: it.file_size,
            parts: it.parts,
            verified: BTreeMap::new(),
            barcodes: BTreeSet::new(),
        });
        if it.state == "verified" {
            if let Some(copy) = copy_of.get(&it.barcode) {
                s.verified.entry(*copy).or_default().insert(it.part);
                s.barcodes.insert(it.barcode.clone());
            }
        }
    }
    let mut rep = ReleaseReport { plan: plan_name.into(), copies, released: Vec::new(), kept: Vec::new(), gc: GcReport::default() };
    let mut to_release = Vec::new();
    for (blob, s) in &by_blob {
        let whole_copies = s.verified.values().filter(|parts| parts.len() as u32 >= s.parts).count() as u32;
        if whole_copies >= copies {
            let barcodes: Vec<String> = s.barcodes.iter().cloned().collect();
            to_release.push((*blob, barcodes.join(",")));
            rep.released.push(ReleasedFile { source: s.source.clone(), bytes: s.bytes, barcodes });
        } else {
            rep.kept.push(s.source.clone());
        }
    }
    a.require_writer()?;
    let now = now_ns();
    a.catalog.write(|c| {
        for (blob, barcodes) in &to_release {
            c.set_released(blob, barcodes, now)?;
        }
        Ok(())
    })?;
    rep.gc = gc::gc(a, &GcOptions::default())?;
    Ok(rep)
}
