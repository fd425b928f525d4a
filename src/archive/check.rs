//! Verification and recovery: `check` (catalog vs packs), `check --deep`
//! (re-hash every record, name the damaged files), `check --rebuild-catalog`
//! (a new catalog from the packs alone).

use super::catalog::{Catalog, RecordRow};
use super::error::{ArchiveError, IoContext, Result};
use super::objects::{BlobRecord, Commit, EntryKind, Hash, MediaRecord, ProxyRecord, RecordKind, RefRecord, TcFactRecord, Tree};
use super::pack::{self, RecordLoc};
use super::pack_store::{self, PackStore};
use super::repo::Archive;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Default, serde::Serialize)]
pub struct CheckReport {
    pub packs: u64,
    pub chunks: u64,
    pub objects: u64,
    pub bytes_verified: u64,
    /// Packs whose records were all re-read (every pack with --deep; a
    /// sample with --sample).
    pub packs_verified: u64,
    pub problems: Vec<String>,
    /// Files (as `branch/path`, or `commit <id>: path` for history only) whose content is damaged.
    pub damaged_files: Vec<String>,
    pub uncommitted_packs: Vec<String>,
    /// What catalog rows that do not match their pack records affect (paths,
    /// commits, branches); `check --rebuild-catalog` repairs these.
    pub catalog_damage: Vec<String>,
    /// What branches reach that is in no pack any more (a pack was lost before
    /// the catalog was rebuilt): paths, commits, branches. A rebuild cannot bring
    /// these back.
    pub lost: Vec<String>,
    /// Contents released to tape on purpose (`reelfs tape release`): their
    /// chunks are not in the packs, which is not an error; not checked.
    pub released_skipped: u64,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.damaged_files.is_empty() && self.catalog_damage.is_empty() && self.lost.is_empty()
    }
}

pub fn check(archive: &Archive, deep: bool, progress: &super::progress::ProgressHandle) -> Result<CheckReport> {
    check_sampled(archive, deep, None, progress)
}

/// Whether a routine sampled check re-reads `pack` this time: a fresh draw each
/// run (seeded by the clock), so successive runs cover different packs and,
/// over time, all of them, at `percent` of the cost of a deep check each.
fn drawn(pack: &str, percent: f64, seed: u128) -> bool {
    let h = blake3::hash(format!("{seed}:{pack}").as_bytes());
    let x = u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or_default());
    (x as f64 / u64::MAX as f64) * 100.0 < percent
}

/// `check`, with `sample`: re-read and re-hash the records of about that
/// percentage of the packs (chosen afresh each run), checking the rest as a
/// plain check does. For remote stores, where `--deep` reads every byte back
/// over the network.
pub fn check_sampled(
    archive: &Archive,
    deep: bool,
    sample: Option<f64>,
    progress: &super::progress::ProgressHandle,
) -> Result<CheckReport> {
    let seed = super::objects::now_ns() as u128;
    let reread = |name: &str| deep || sample.is_some_and(|p| drawn(name, p, seed));
    let deep = deep || sample.is_some();
    let cat = &archive.catalog;
    let mut rep = CheckReport::default();
    let packs = cat.pack_names()?;
    rep.packs = packs.len() as u64;
    let store = archive.pack_store();
    for name in archive.uncommitted_packs()? {
        rep.uncommitted_packs.push(store.locate(&name));
    }
    let total_bytes: u64 = packs.iter().filter(|p| reread(&p.1)).map(|p| p.2).sum();
    // A deep check counts the bytes it re-reads; a plain one the packs it opens.
    let pb = progress;
    if deep {
        pb.begin("check", super::progress::Unit::Bytes, total_bytes);
    } else {
        pb.begin("check", super::progress::Unit::Items, packs.len() as u64);
    }
    let mut bad_chunks: HashSet<Hash> = HashSet::new();
    // Catalog rows come one pack at a time in pack-id order (memory stays at one pack's
    // rows), merged with the pack list, also in id order, to compare each pack's rows with
    // its own trailer. A pack no row points into is still opened and measured.
    let mut pending = packs.iter().peekable();
    let mut ctx = PackCheck { store, deep, reread: &reread, pb, rep: &mut rep, bad_chunks: &mut bad_chunks };
    cat.records_by_pack(|pid, rows| {
        while let Some(pack) = pending.next_if(|p| p.0 < pid) {
            ctx.pack(pack, &[]);
        }
        for r in &rows {
            if r.is_chunk() {
                ctx.rep.chunks += 1;
            } else {
                ctx.rep.objects += 1;
            }
        }
        match pending.next_if(|p| p.0 == pid) {
            Some(pack) => ctx.pack(pack, &rows),
            None => ctx.rep.problems.push(format!("catalog rows point into pack #{pid}, which the catalog does not list")),
        }
        Ok(())
    })?;
    for pack in pending {
        ctx.pack(pack, &[]);
    }
    pb.finish();
    // Catalog rows against their records (deep: it reads every metadata record),
    // then what the branches reach that is damaged or not there at all.
    let rows = if deep {
        let mut reader = super::verify::RecordReader::new(cat, store.clone())?;
        super::verify::verify_rows(cat, &mut reader)?
    } else {
        super::verify::RowDamage::default()
    };
    let mut unknown = 0usize;
    for f in super::verify::walk(cat, &rows)? {
        let mut lost = !f.missing.is_empty();
        for id in &f.missing {
            lost &= cat.lost(id)?.is_some();
        }
        if lost {
            rep.lost.push(f.label);
        } else {
            unknown += f.missing.len();
            rep.catalog_damage.push(f.label);
        }
    }
    rep.catalog_damage.extend(rows.tc_facts.iter().cloned());
    let archive_arg = archive.root().display();
    if !rows.tc_facts_unstored.is_empty() {
        rep.problems.push(format!(
            "{} recorded timecodes are only in catalog.db (set by an older reelfs), not in the packs: \
             a catalog rebuild would drop them; any `reelfs tc set` or `reelfs tc clear` on {archive_arg} stores them all in the packs ({})",
            rows.tc_facts_unstored.len(),
            rows.tc_facts_unstored.join(", ")
        ));
    }
    if rows.count() > 0 || unknown > 0 {
        rep.problems.push(format!(
            "the catalog does not match the records in the packs ({} rows differ, {} objects missing); \
             rebuild it from the packs with `reelfs check {archive_arg} --rebuild-catalog`",
            rows.count(),
            unknown
        ));
    }
    if !rep.lost.is_empty() {
        rep.problems.push(format!(
            "{} items are lost: they were in a pack that was missing when the catalog was rebuilt; \
             put the pack back (from a copy or tape) and rebuild again, or re-ingest the originals",
            rep.lost.len()
        ));
    }
    // Every extent must point at a known chunk (a zero run points at none; chunks
    // already named as lost or explained by a damaged row are not counted again).
    let mut missing = 0u64;
    let released = cat.released_blobs()?;
    let mut released_seen = HashSet::new();
    for (c, b) in cat.dangling_extents()? {
        if released.contains(&b) {
            released_seen.insert(b);
            continue;
        }
        if !rows.blobs.contains(&b) {
            missing += 1;
            bad_chunks.insert(c);
        }
    }
    rep.released_skipped = released_seen.len() as u64;
    if missing > 0 {
        rep.problems.push(format!("{missing} extents point at chunks the catalog does not have"));
    }
    if deep {
        check_outboards(cat, &mut rep)?;
        check_heads(archive, &bad_chunks, &mut rep)?;
    }
    if !bad_chunks.is_empty() {
        rep.problems.push(format!("{} damaged or missing chunk(s)", bad_chunks.len()));
        // So that re-ingesting the originals stores good copies (best effort: a
        // busy or read-only catalog only loses that convenience).
        // The skip cache must not vouch for those sources either: without this an
        // unchanged original would be skipped and never heal the archive.
        let bad: Vec<Hash> = bad_chunks.iter().copied().collect();
        if let Err(e) = cat.mark_damaged(&bad).and_then(|_| cat.forget_sources_using(&bad)) {
            log::warn!("could not record damaged chunks: {e}");
        }
        rep.damaged_files = files_using_chunks(archive, &bad_chunks)?;
    }
    Ok(rep)
}

/// Every BLAKE3 outboard (archive/outboard.rs) must hash to its chunk's or
/// file's id. The chunks' bytes were re-hashed whole above, so a flipped byte
/// in any block is already caught there; this catches a wrong outboard row,
/// which readers ignore (they verify that chunk whole) and which is dropped
/// here (best effort) so the next writer of those bytes records a right one.
/// One pack of `check_sampled`'s pass over the packs: opened, measured, its trailer
/// compared with the catalog's rows for it, and (deep) every record re-read.
struct PackCheck<'a, R: Fn(&str) -> bool> {
    store: &'a Arc<dyn PackStore>,
    deep: bool,
    reread: &'a R,
    pb: &'a super::progress::ProgressHandle,
    rep: &'a mut CheckReport,
    bad_chunks: &'a mut HashSet<Hash>,
}

impl<R: Fn(&str) -> bool> PackCheck<'_, R> {
    fn pack(&mut self, (_, name, size): &(i64, String, u64), rows: &[RecordRow]) {
        let (store, rep, pb) = (self.store, &mut *self.rep, self.pb);
        let path = store.locate(name);
        let deep_pack = (self.reread)(name);
        pb.message(name);
        let file = match store.open(name) {
            Ok(f) => f,
            Err(e) => {
                let e = match e {
                    ArchiveError::Io { source, .. } => source.to_string(),
                    e => e.to_string(),
                };
                rep.problems.push(format!("pack {path} is missing: {e}"));
                self.bad_chunks.extend(rows.iter().map(|r| r.id));
                if !self.deep {
                    pb.advance(1);
                }
                return;
            }
        };
        if file.len() != *size {
            rep.problems.push(format!("pack {path}: size {} but the catalog says {}", file.len(), size));
        }
        let trailer: HashMap<Hash, RecordLoc> = match pack::read_trailer(&*file, &path) {
            Ok(t) => t.into_iter().map(|l| (l.id, l)).collect(),
            Err(e) => {
                rep.problems.push(e.to_string());
                HashMap::new()
            }
        };
        for r in rows {
            let loc = RecordLoc {
                kind: RecordKind::Chunk,
                codec: r.codec,
                raw_len: r.raw_len,
                stored_len: r.stored_len,
                offset: r.offset,
                id: r.id,
            };
            match trailer.get(&r.id) {
                Some(t) if t.offset == r.offset && t.stored_len == r.stored_len => {}
                _ if trailer.is_empty() => {}
                _ => rep.problems.push(format!("pack {path}: record {} is not where the catalog says", r.id.short())),
            }
            if deep_pack {
                match pack::read_record(&*file, &path, &loc) {
                    Ok(_) => rep.bytes_verified += r.stored_len as u64,
                    Err(e) => {
                        if r.is_chunk() {
                            self.bad_chunks.insert(r.id);
                        } else {
                            rep.problems.push(format!("metadata object damaged: {e}"));
                        }
                    }
                }
                pb.advance(r.stored_len as u64);
            }
        }
        if !self.deep {
            pb.advance(1);
        }
        if deep_pack {
            rep.packs_verified += 1;
        }
    }
}

fn check_outboards(cat: &Catalog, rep: &mut CheckReport) -> Result<()> {
    let mut wrong: Vec<(bool, Hash)> = Vec::new();
    cat.each_outboard(|is_chunk, id, len, log, bytes| {
        let ok = log != super::outboard::BLOCK_LOG as i64
            || super::outboard::decode(bytes).is_some_and(|cvs| super::outboard::matches(&id, len, &cvs));
        if !ok {
            wrong.push((is_chunk, id));
        }
    })?;
    wrong.extend(wrong_piece_outboards(cat)?.into_iter().map(|id| (false, id)));
    if !wrong.is_empty() {
        let names: Vec<String> =
            wrong.iter().take(5).map(|(c, id)| format!("{} {}", if *c { "chunk" } else { "file" }, id.short())).collect();
        rep.problems.push(format!(
            "{} BLAKE3 outboard(s) in the catalog do not match their data ({}); reads verify those chunks whole, \
             and the outboards are dropped (no data is affected)",
            wrong.len(),
            names.join(", ")
        ));
        if let Err(e) = cat.delete_outboards(&wrong) {
            log::warn!("could not drop wrong outboards: {e}");
        }
    }
    Ok(())
}

/// Every chunk head proof (archive/outboard.rs `head_proof`) must check its
/// chunk's first 16 KiB against the chunk's id. Chunks found damaged above
/// are skipped (their head may be what is wrong). A wrong proof costs reads
/// nothing but a fallback to the first block (they never trust it), and is
/// dropped here so the next ingest of those bytes records a right one.
fn check_heads(archive: &Archive, bad_chunks: &HashSet<Hash>, rep: &mut CheckReport) -> Result<()> {
    use super::outboard::{head_matches, HEAD_LEN};
    let cat = &archive.catalog;
    let mut proofs = Vec::new();
    cat.each_chunk_head(|id, cvs| proofs.push((id, cvs)))?;
    let mut wrong = Vec::new();
    for (id, cvs) in proofs {
        let Some(loc) = cat.chunk_loc(&id)? else { continue };
        if bad_chunks.contains(&id) || u64::from(loc.raw_len) <= HEAD_LEN {
            continue;
        }
        let mut head = vec![0u8; HEAD_LEN as usize];
        let read = match archive.store().read_raw_unverified(&id, &loc, 0, &mut head) {
            Ok(true) => true,
            // Compressed: decoded (and verified) whole.
            Ok(false) => match archive.store().chunk(&id, &loc).map(|c| c.get(..HEAD_LEN as usize).map(|h| head.copy_from_slice(h))) {
                Ok(Some(())) => true,
                // Shorter than its catalog row says: the chunk's problem too.
                _ => false,
            },
            Err(_) => false,
        };
        // A head that cannot be read is the chunk's problem, reported above.
        if read && !head_matches(&id, u64::from(loc.raw_len), &head, &cvs) {
            wrong.push(id);
        }
    }
    if !wrong.is_empty() {
        let names: Vec<String> = wrong.iter().take(5).map(|id| format!("chunk {}", id.short())).collect();
        rep.problems.push(format!(
            "{} head proof(s) in the catalog do not match their chunks ({}); reads check those heads through their \
             first block, and the proofs are dropped (no data is affected)",
            wrong.len(),
            names.join(", ")
        ));
        if let Err(e) = cat.delete_chunk_heads(&wrong) {
            log::warn!("could not drop wrong head proofs: {e}");
        }
    }
    Ok(())
}

/// Files whose outboard, stored in pieces, does not merge to their hash or
/// does not have their block count: each checked a piece at a time with a
/// merge stack, so a 1 TiB file's outboard is never held whole.
fn wrong_piece_outboards(cat: &Catalog) -> Result<Vec<Hash>> {
    use super::outboard::{self, MergeStack, PIECE_CVS};
    struct Current {
        id: Hash,
        len: u64,
        next_piece: i64,
        stack: MergeStack,
        ok: bool,
        other_log: bool,
    }
    fn verdict(c: Current) -> Option<Hash> {
        let whole = c.stack.count() == outboard::block_count(c.len) as u64 && outboard::has_blocks(c.len);
        // Outboards of another block size are ignored, as single rows are.
        let ok = c.other_log || (c.ok && whole && c.stack.root() == Some(c.id));
        (!ok).then_some(c.id)
    }
    let mut wrong = Vec::new();
    let mut cur: Option<Current> = None;
    cat.each_outboard_piece(|id, len, piece, log, bytes| {
        if cur.as_ref().is_some_and(|c| c.id != id) {
            wrong.extend(cur.take().and_then(verdict));
        }
        let c = cur.get_or_insert_with(|| Current { id, len, next_piece: 0, stack: MergeStack::default(), ok: true, other_log: false });
        if log != outboard::BLOCK_LOG as i64 {
            c.other_log = true;
        }
        // Every piece but the last holds exactly PIECE_CVS CVs, and none is missing.
        let full_before = c.stack.count() == c.next_piece as u64 * PIECE_CVS as u64;
        if piece != c.next_piece || !full_before || !bytes.len().is_multiple_of(32) || bytes.is_empty() || bytes.len() > PIECE_CVS * 32 {
            c.ok = false;
        }
        c.next_piece = piece + 1;
        if c.ok {
            for cv in bytes.chunks_exact(32) {
                c.stack.push(cv.try_into().unwrap_or([0; 32]));
            }
        }
    })?;
    wrong.extend(cur.take().and_then(verdict));
    Ok(wrong)
}

/// Name every file, on every branch head and in history, whose content uses a
/// damaged chunk, so the user knows what to re-ingest or restore from tape.
pub fn files_using_chunks(archive: &Archive, bad: &HashSet<Hash>) -> Result<Vec<String>> {
    let cat = &archive.catalog;
    let bad_blobs = cat.blobs_using_chunks(bad)?;
    let mut out = Vec::new();
    // Paths (relative to a tree) of damaged files below it, memoised by tree hash:
    // branches and commits share most subtrees, and each must still be named.
    let mut memo: HashMap<Hash, Vec<String>> = HashMap::new();
    for (branch, head) in archive.branches()? {
        let mut cur = head;
        let mut first = true;
        while let Some(c) = cur {
            let row = archive.commit(&c)?;
            let label = if first { branch.clone() } else { format!("{branch}@{}", &c.to_hex()[..8]) };
            for rel in bad_paths_below(cat, &row.tree, &bad_blobs, &mut memo)? {
                out.push(format!("{label}/{rel}"));
            }
            first = false;
            cur = row.parents.first().copied();
        }
    }
    if out.is_empty() && !bad_blobs.is_empty() {
        for b in &bad_blobs {
            out.push(format!("(content {} not reachable from any branch)", b.short()));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn bad_paths_below(cat: &Catalog, tree: &Hash, bad: &HashSet<Hash>, memo: &mut HashMap<Hash, Vec<String>>) -> Result<Vec<String>> {
    if let Some(v) = memo.get(tree) {
        return Ok(v.clone());
    }
    let mut out = Vec::new();
    for e in cat.tree_entries(tree)? {
        match e.kind {
            EntryKind::File if bad.contains(&e.hash) => out.push(e.name),
            EntryKind::File => {}
            // Special entries hold no stored bytes that could be damaged.
            EntryKind::Symlink | EntryKind::Fifo | EntryKind::Socket | EntryKind::CharDevice | EntryKind::BlockDevice => {}
            EntryKind::Dir => {
                for rel in bad_paths_below(cat, &e.hash, bad, memo)? {
                    out.push(format!("{}/{rel}", e.name));
                }
            }
        }
    }
    memo.insert(*tree, out.clone());
    Ok(out)
}

#[derive(Debug, Default, serde::Serialize)]
pub struct RebuildReport {
    pub packs: u64,
    pub unsealed_packs: u64,
    pub chunks: u64,
    pub blobs: u64,
    pub trees: u64,
    pub commits: u64,
    pub branches: u64,
    pub damaged_records: u64,
    /// User timecode facts (`tc set`/`tc clear`) restored from their records.
    pub tc_facts: u64,
    pub old_catalog: String,
    /// What the branches reach that no pack holds (recorded in `lost_objects`).
    pub lost: Vec<String>,
}

/// Rebuild catalog.db from the packs alone. The old catalog is kept beside it.
/// Requires the writer lock (the caller opened with `open_writer`, which also
/// removed uncommitted packs — their ingests never happened).
pub fn rebuild_catalog(root: &Path) -> Result<RebuildReport> {
    rebuild_catalog_with_store(root, super::store::for_archive(root)?)
}

/// `rebuild_catalog` for an archive whose packs live in `packs`.
pub fn rebuild_catalog_with_store(root: &Path, packs: Arc<dyn PackStore>) -> Result<RebuildReport> {
    let _lock = super::lock::WriterLock::acquire(root)?;
    if !root.join("reelfs.toml").is_file() {
        return Err(ArchiveError::NotAnArchive { path: root.into() });
    }
    super::config::Config::load(&root.join("reelfs.toml"))?;
    let mut rep = RebuildReport::default();
    let db = root.join("catalog.db");
    let tmp = root.join("catalog.db.rebuild");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{}", tmp.display(), suffix));
    }
    let cat = Catalog::open(&tmp, true)?;
    cat.begin()?;
    let mut pack_files: Vec<(i64, String)> = packs.list()?.into_iter().filter_map(|n| Some((pack::parse_pack_name(&n)?, n))).collect();
    pack_files.sort();
    let mut refs: HashMap<String, RefRecord> = HashMap::new();
    let mut max_seq = 0i64;
    for (id, name) in &pack_files {
        let path = packs.locate(name);
        let file = packs.open(name)?;
        let locs = match pack::read_trailer(&*file, &path) {
            Ok(l) => l,
            Err(_) => {
                rep.unsealed_packs += 1;
                pack::scan_records(&*file, &path)?
            }
        };
        let size = file.len();
        cat.insert_pack(*id, name, size, locs.len())?;
        rep.packs += 1;
        for loc in &locs {
            if loc.kind == RecordKind::Chunk {
                if let Some(old) = cat.chunk_loc(&loc.id)? {
                    // A second copy is stored when the first was found damaged (or by a
                    // failed file): keep the first only if it still verifies.
                    let old_name = pack_files.iter().find(|(n, _)| *n == old.pack).map(|(_, name)| name);
                    let old_ok = old_name.is_some_and(|n| {
                        let rl = RecordLoc {
                            kind: RecordKind::Chunk,
                            codec: old.codec,
                            raw_len: old.raw_len,
                            stored_len: old.stored_len,
                            offset: old.offset,
                            id: loc.id,
                        };
                        packs.open(n).map(|f| pack::read_record(&*f, n, &rl).is_ok()).unwrap_or(false)
                    });
                    if !old_ok {
                        cat.mark_damaged(&[loc.id])?;
                        cat.insert_record(*id, loc)?;
                        cat.clear_damaged(&loc.id)?;
                    }
                    continue;
                }
                cat.insert_record(*id, loc)?;
                rep.chunks += 1;
                continue;
            }
            cat.insert_record(*id, loc)?;
            let raw = match pack::read_record(&*file, &path, loc) {
                Ok(r) => r,
                Err(e) => {
                    log::warn!("{e}");
                    rep.damaged_records += 1;
                    continue;
                }
            };
            let bad = |what: &str| ArchiveError::BadPack {
                path: path.clone().into(),
                msg: format!("{what} record {} does not parse", loc.id.short()),
            };
            match loc.kind {
                RecordKind::Blob => {
                    let b: BlobRecord = serde_json::from_slice(&raw).map_err(|_| bad("blob"))?;
                    cat.insert_blob(&b.hash, b.size, &loc.id, &b.extents)?;
                    rep.blobs += 1;
                }
                RecordKind::Tree => {
                    let t: Tree = serde_json::from_slice(&raw).map_err(|_| bad("tree"))?;
                    cat.insert_tree(&loc.id, &t.entries)?;
                    rep.trees += 1;
                }
                RecordKind::Commit => {
                    let c: Commit = serde_json::from_slice(&raw).map_err(|_| bad("commit"))?;
                    cat.insert_commit(&loc.id, &c)?;
                    rep.commits += 1;
                }
                RecordKind::Ref => {
                    let r: RefRecord = serde_json::from_slice(&raw).map_err(|_| bad("ref"))?;
                    // Archives written before the sequence high-water mark may hold a
                    // re-created branch's ref with the seq of its deletion: time breaks the tie.
                    let newer = refs.get(&r.branch).map(|o| (r.seq, r.time_ns) > (o.seq, o.time_ns)).unwrap_or(true);
                    max_seq = max_seq.max(r.seq);
                    if newer {
                        refs.insert(r.branch.clone(), r);
                    }
                }
                RecordKind::Media => {
                    let m: MediaRecord = serde_json::from_slice(&raw).map_err(|_| bad("media"))?;
                    let facts = m.facts.map(|f| f.to_string());
                    cat.set_media(&m.blob, facts.as_deref(), m.error.as_deref())?;
                }
                RecordKind::Proxy => {
                    let p: ProxyRecord = serde_json::from_slice(&raw).map_err(|_| bad("proxy"))?;
                    cat.set_proxy(&p)?;
                }
                RecordKind::TcFact => {
                    // One unusable fact loses that fact, not the rebuild.
                    match TcFactRecord::decode(&raw, &loc.id) {
                        Ok(f) => {
                            cat.set_tc_fact(&f.commit, &f.path, &(&f).into())?;
                            rep.tc_facts += 1;
                        }
                        Err(e) => {
                            log::warn!("{path}: {e}; skipped");
                            rep.damaged_records += 1;
                        }
                    }
                }
                RecordKind::Chunk => {}
            }
        }
    }
    cat.note_ref_seq(max_seq)?;
    for r in refs.values() {
        if r.head.is_some() {
            cat.set_branch(&r.branch, r.head.as_ref(), r.seq, r.time_ns)?;
            rep.branches += 1;
        }
    }
    // What the branches reach and no pack holds is lost: record it, so that
    // reads reaching it say so instead of asking for another rebuild.
    for f in super::verify::walk(&cat, &super::verify::RowDamage::default())? {
        // A commit is named by its id alone: several branches may reach it.
        let is_commit = f.label.starts_with("branch ") || f.label.starts_with("commit ");
        for id in &f.missing {
            if is_commit {
                cat.mark_lost(id, "commit", &format!("commit {}", id.short()))?;
            } else {
                cat.mark_lost(id, "content", &f.label)?;
            }
        }
        if !f.missing.is_empty() {
            rep.lost.push(f.label);
        }
    }
    cat.set_format_version(super::config::FORMAT_VERSION)?;
    cat.commit()?;
    cat.checkpoint()?;
    drop(cat);
    let backup = root.join(format!("catalog.db.before-rebuild-{}", super::objects::now_ns() / 1_000_000_000));
    if db.exists() {
        // Checkpoint the old catalog's WAL into it so the backup is one file.
        if let Ok(old) = Catalog::open(&db, false) {
            let _ = old.checkpoint();
        }
        std::fs::rename(&db, &backup).at(&db)?;
        rep.old_catalog = backup.display().to_string();
        // A catalog SQLite could not open keeps its WAL beside the backup:
        // whatever was only there stays with it.
        let wal = format!("{}-wal", db.display());
        if std::path::Path::new(&wal).exists() {
            let _ = std::fs::rename(&wal, format!("{}-wal", backup.display()));
        }
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{}", db.display(), suffix));
        let _ = std::fs::remove_file(format!("{}{}", tmp.display(), suffix));
    }
    std::fs::rename(&tmp, &db).at(&tmp)?;
    pack_store::fsync_dir(root)?;
    Ok(rep)
}

#[derive(Debug, serde::Serialize)]
pub struct Stats {
    pub branches: u64,
    pub commits: u64,
    pub files: u64,
    pub logical_bytes: u64,
    pub unique_bytes: u64,
    pub stored_bytes: u64,
    pub pack_bytes: u64,
    pub chunks: u64,
    pub packs: u64,
    pub dedup_ratio: f64,
    pub compression_ratio: f64,
    pub catalog_bytes: u64,
}

/// Archive-wide figures. Logical bytes count every file of every branch head
/// (the size a user would see copying each branch out).
pub fn stats(archive: &Archive) -> Result<Stats> {
    let cat = &archive.catalog;
    let mut logical = 0u64;
    let mut files = 0u64;
    for (_, head) in archive.branches()? {
        if let Some(h) = head {
            let t = archive.commit(&h)?.tree;
            let (f, b) = tree_totals(cat, &t, &mut HashMap::new())?;
            files += f;
            logical += b;
        }
    }
    let (unique, stored, pack_bytes) = cat.storage_totals()?;
    let catalog_bytes =
        ["catalog.db", "catalog.db-wal"].iter().filter_map(|n| std::fs::metadata(archive.root().join(n)).ok()).map(|m| m.len()).sum();
    Ok(Stats {
        branches: archive.branches()?.len() as u64,
        commits: cat.count("commits")?,
        files,
        logical_bytes: logical,
        unique_bytes: unique,
        stored_bytes: stored,
        pack_bytes,
        chunks: cat.count("chunks")?,
        packs: cat.count("packs")?,
        dedup_ratio: if unique > 0 { logical as f64 / unique as f64 } else { 1.0 },
        compression_ratio: if stored > 0 { unique as f64 / stored as f64 } else { 1.0 },
        catalog_bytes,
    })
}

/// (file count, bytes) below a tree; memoised by tree hash so shared subtrees
/// (branches) are walked once.
fn tree_totals(cat: &Catalog, tree: &Hash, memo: &mut HashMap<Hash, (u64, u64)>) -> Result<(u64, u64)> {
    if let Some(v) = memo.get(tree) {
        return Ok(*v);
    }
    let mut files = 0;
    let mut bytes = 0;
    for e in cat.tree_entries(tree)? {
        match e.kind {
            EntryKind::File => {
                files += 1;
                bytes += e.size;
            }
            EntryKind::Dir => {
                let (f, b) = tree_totals(cat, &e.hash, memo)?;
                files += f;
                bytes += b;
            }
            // Links, FIFOs, sockets and devices are names, not stored content.
            _ => {}
        }
    }
    memo.insert(*tree, (files, bytes));
    Ok((files, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::test_support::{noise, put};

    /// The pass over the packs merges the catalog's rows (streamed by pack id) with the
    /// pack list: a pack with rows but no packs row, a listed pack whose file is gone and a
    /// pack no row points into are each found, and every row is still counted once.
    #[test]
    fn rows_of_an_unlisted_pack_a_missing_pack_file_and_every_row_are_each_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("arch");
        let mut a = Archive::init(&root).unwrap();
        for (i, name) in ["a.bin", "b.bin", "c.bin"].iter().enumerate() {
            put(&mut a, "main", dir.path(), name, &noise(2 << 20, i as u64 + 1));
        }
        let clean = check(&a, false, &Default::default()).unwrap();
        assert!(clean.ok(), "{:?}", clean.problems);
        let packs = a.catalog.pack_names().unwrap();
        assert!(packs.len() >= 3, "{packs:?}");
        let with_rows: Vec<i64> = packs.iter().map(|p| p.0).filter(|id| !a.catalog.records_in_pack(*id).unwrap().is_empty()).collect();
        assert!(with_rows.len() >= 2, "{with_rows:?}");
        let (unlisted, gone) = (with_rows[0], with_rows[with_rows.len() - 1]);
        a.catalog.delete_pack_row(unlisted).unwrap();
        let gone_name = packs.iter().find(|p| p.0 == gone).unwrap().1.clone();
        std::fs::remove_file(a.pack_store().locate(&gone_name)).unwrap();

        let r = check(&a, false, &Default::default()).unwrap();
        assert_eq!((r.chunks, r.objects), (clean.chunks, clean.objects), "every row counted once");
        assert_eq!(r.packs, clean.packs - 1);
        let unlisted_msg = format!("catalog rows point into pack #{unlisted}, which the catalog does not list");
        assert_eq!(r.problems.iter().filter(|p| **p == unlisted_msg).count(), 1, "{:?}", r.problems);
        let missing: Vec<_> = r.problems.iter().filter(|p| p.contains("is missing")).collect();
        assert_eq!(missing.len(), 1, "{:?}", r.problems);
        assert!(missing[0].contains(&gone_name), "{missing:?}");
    }

    /// An ingested file's head proof passes `check --deep`; a forged one is
    /// reported and dropped, and the file still reads right.
    #[test]
    fn check_deep_reports_and_drops_a_head_proof_that_does_not_match_its_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let root = crate::archive::test_support::archive_with_file(dir.path(), &noise(5 << 20, 21));
        let a = Archive::open_writer(&root).unwrap();
        let blob = a.resolve("main/f.bin").unwrap().entry.hash;
        let chunk = a.catalog.extents(&blob).unwrap()[0].chunk;
        let head_problems = |r: &CheckReport| r.problems.iter().filter(|p| p.contains("head proof")).cloned().collect::<Vec<_>>();
        let r = check(&a, true, &Default::default()).unwrap();
        assert!(r.ok(), "{r:?}");
        let mut forged = a.catalog.chunk_head(&chunk).unwrap().expect("ingest keeps the first chunk's head proof");
        forged[1][5] ^= 1;
        a.catalog.put_chunk_head(&chunk, &forged).unwrap();
        let r = check(&a, true, &Default::default()).unwrap();
        let found = head_problems(&r);
        assert_eq!(found.len(), 1, "{:?}", r.problems);
        assert!(found[0].contains(&chunk.short()) && r.damaged_files.is_empty(), "{r:?}");
        assert_eq!(a.catalog.chunk_head(&chunk).unwrap(), None, "the wrong proof is dropped");
        assert!(check(&a, true, &Default::default()).unwrap().ok());
    }

    /// A file outboard of three pieces (a 16 GiB file's, as a catalog row
    /// only) passes `check --deep`; one CV flipped in its 2nd piece is found
    /// and the outboard dropped, verified a piece at a time.
    #[test]
    fn check_deep_finds_a_flipped_cv_in_the_second_piece_of_a_file_outboard() {
        use crate::archive::outboard::{MergeStack, BLOCK_LEN, PIECE_CVS};
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::init(&dir.path().join("arch")).unwrap();
        let n = 2 * PIECE_CVS + 9;
        let cvs: Vec<_> = (0..n as u64).map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes()).collect();
        let mut m = MergeStack::default();
        cvs.iter().for_each(|cv| m.push(*cv));
        let id = m.root().unwrap();
        a.catalog.insert_blob(&id, n as u64 * BLOCK_LEN, &Hash([1; 32]), &[]).unwrap();
        a.catalog.put_blob_outboard(&id, &cvs).unwrap();
        let outboard_problems = |r: &CheckReport| r.problems.iter().filter(|p| p.contains("BLAKE3 outboard")).cloned().collect::<Vec<_>>();
        let r = check(&a, true, &Default::default()).unwrap();
        assert_eq!(outboard_problems(&r), Vec::<String>::new());

        let mut flipped = cvs.clone();
        flipped[PIECE_CVS + 3][0] ^= 1;
        a.catalog.put_blob_outboard(&id, &flipped).unwrap();
        let r = check(&a, true, &Default::default()).unwrap();
        let found = outboard_problems(&r);
        assert_eq!(found.len(), 1, "{:?}", r.problems);
        assert!(found[0].contains(&format!("file {}", id.short())), "{found:?}");
        assert_eq!(a.catalog.blob_outboard(&id).unwrap(), None, "the wrong outboard is dropped");
    }
}
