//! The catalog checked against what it indexes: every tree, blob, commit and
//! branch row against the pack record it came from, and a walk from the branch
//! heads that finds what the catalog names but does not have.
//!
//! Ids are BLAKE3 of canonical records, so a row is verified by re-encoding the
//! record from the rows and hashing it; only when that differs is the record read
//! from its pack and compared field by field (an older writer may have encoded
//! the same content differently; equal content is not damage).

use super::catalog::Catalog;
use super::error::Result;
use super::objects::{BlobRecord, Commit, EntryKind, Hash, RecordKind, RefRecord, TcFactRecord, Tree};
use super::pack;
use super::pack_store::PackStore;
use super::read_at::ReadAt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Reads metadata records from the packs, each pack opened once.
pub struct RecordReader<'a> {
    cat: &'a Catalog,
    packs: Arc<dyn PackStore>,
    names: HashMap<i64, String>,
    files: HashMap<i64, Option<Arc<dyn ReadAt>>>,
}

impl<'a> RecordReader<'a> {
    pub fn new(cat: &'a Catalog, packs: Arc<dyn PackStore>) -> Result<RecordReader<'a>> {
        let names = cat.pack_names()?.into_iter().map(|(id, name, _)| (id, name)).collect();
        Ok(RecordReader { cat, packs, names, files: HashMap::new() })
    }

    /// The record's raw bytes, verified against its id; None when it cannot be
    /// read (no row, pack gone, damaged: the pack pass reports those).
    pub fn read(&mut self, id: &Hash) -> Result<Option<Vec<u8>>> {
        let Some((pack, loc)) = self.cat.object_loc(id)? else { return Ok(None) };
        let Some(name) = self.names.get(&pack) else { return Ok(None) };
        let file = self.files.entry(pack).or_insert_with(|| self.packs.open(name).ok());
        Ok(file.as_ref().and_then(|f| pack::read_record(&**f, name, &loc).ok()))
    }
}

/// A tree as its catalog rows say (None: no `trees` row).
pub fn tree_from_rows(cat: &Catalog, id: &Hash) -> Result<Option<Tree>> {
    if !cat.has_tree(id)? {
        return Ok(None);
    }
    Ok(Some(Tree { entries: cat.tree_rows(id)? }))
}

/// A blob's record as its catalog rows say, and the record id the row names.
pub fn blob_from_rows(cat: &Catalog, hash: &Hash) -> Result<Option<(BlobRecord, Option<Hash>)>> {
    let Some((size, record)) = cat.blob_row(hash)? else { return Ok(None) };
    Ok(Some((BlobRecord { hash: *hash, size, extents: cat.extents(hash)? }, record)))
}

pub fn commit_from_rows(cat: &Catalog, id: &Hash) -> Result<Option<Commit>> {
    Ok(cat.commit_row(id)?.map(|c| Commit {
        tree: c.tree,
        parents: c.parents,
        time_ns: c.time_ns,
        author: c.author,
        message: c.message,
        branch: c.branch,
    }))
}

/// Catalog rows that do not match the records they were indexed from.
#[derive(Debug, Default)]
pub struct RowDamage {
    pub trees: HashSet<Hash>,
    pub blobs: HashSet<Hash>,
    pub commits: HashSet<Hash>,
    /// Branch names whose row matches no ref record.
    pub branches: Vec<String>,
    /// Recorded timecodes (`tc_facts` rows) that do not match their records, or
    /// records with no row, as `branch/path (recorded timecode, commit …)`.
    pub tc_facts: Vec<String>,
    /// `tc_facts` rows with no record at all: written before facts had pack
    /// records; a rebuild would drop them until a `tc set`/`tc clear` stores them.
    pub tc_facts_unstored: Vec<String>,
}

impl RowDamage {
    pub fn count(&self) -> usize {
        self.trees.len() + self.blobs.len() + self.commits.len() + self.branches.len() + self.tc_facts.len()
    }
}

/// Does `rows` (re-encoded from the catalog) match the record `id`? Equal ids
/// settle it; otherwise the record is read and compared as a value.
/// `normalize` puts a parsed record in the catalog's order (rows come back sorted).
fn matches_record<T: serde::de::DeserializeOwned + PartialEq>(
    reader: &mut RecordReader,
    id: &Hash,
    rows: &T,
    encoded: &[u8],
    normalize: fn(&mut T),
) -> Result<bool> {
    if Hash::of(encoded) == *id {
        return Ok(true);
    }
    Ok(match reader.read(id)? {
        Some(raw) => serde_json::from_slice::<T>(&raw)
            .map(|mut rec| {
                normalize(&mut rec);
                rec == *rows
            })
            .unwrap_or(false),
        // No readable record: the pack pass names the pack; the rows cannot be
        // vouched for, but neither are they shown wrong.
        None => true,
    })
}

/// Check every tree, blob, commit and branch row against its record.
pub fn verify_rows(cat: &Catalog, reader: &mut RecordReader) -> Result<RowDamage> {
    let mut d = RowDamage::default();
    // Trees: those with a row, and any tree_entries rows whose tree has none
    // (a damaged `tree` column moves an entry to a tree nobody knows).
    for id in cat.tree_ids()? {
        let ok = match tree_from_rows(cat, &id)? {
            Some(t) => {
                cat.object_loc(&id)?.is_some()
                    && matches_record(reader, &id, &t, &t.encode(), |t: &mut Tree| t.entries.sort_by(|a, b| a.name.cmp(&b.name)))?
            }
            None => false,
        };
        if !ok {
            d.trees.insert(id);
        }
    }
    for hash in cat.blob_ids()? {
        let ok = match blob_from_rows(cat, &hash)? {
            Some((b, Some(record))) => {
                let raw = serde_json::to_vec(&b).unwrap_or_default();
                matches_record(reader, &record, &b, &raw, |b: &mut BlobRecord| b.extents.sort_by_key(|e| e.file_offset))?
            }
            _ => false,
        };
        if !ok {
            d.blobs.insert(hash);
        }
    }
    for id in cat.commit_ids()? {
        let ok = match commit_from_rows(cat, &id)? {
            Some(c) => cat.object_loc(&id)?.is_some() && matches_record(reader, &id, &c, &c.encode(), |_| {})?,
            None => false,
        };
        if !ok {
            d.commits.insert(id);
        }
    }
    // A branch row is the newest ref record of that branch: same seq, same head.
    // (A branch deleted and created again may reuse a sequence number, so one
    // (branch, seq) can have several records.)
    let mut refs: HashMap<(String, i64), Vec<Option<Hash>>> = HashMap::new();
    let mut newest: HashMap<String, (i64, i64, bool)> = HashMap::new();
    let mut unreadable = false;
    for id in cat.object_ids_of_kind(RecordKind::Ref)? {
        match reader.read(&id)?.and_then(|raw| serde_json::from_slice::<RefRecord>(&raw).ok()) {
            Some(r) => {
                let n = newest.entry(r.branch.clone()).or_insert((r.seq, r.time_ns, r.head.is_some()));
                if (r.seq, r.time_ns) > (n.0, n.1) {
                    *n = (r.seq, r.time_ns, r.head.is_some());
                }
                refs.entry((r.branch, r.seq)).or_default().push(r.head);
            }
            None => unreadable = true,
        }
    }
    verify_tc_facts(cat, reader, &mut d)?;
    let rows = cat.branches()?;
    // A branch the refs say exists (its newest record has a head) needs a row.
    for (name, (_, _, exists)) in &newest {
        if *exists && !rows.iter().any(|(n, _)| n == name) {
            d.branches.push(name.clone());
        }
    }
    for (name, head) in rows {
        let seq = cat.branch_seq(&name)?.unwrap_or(-1);
        match refs.get(&(name.clone(), seq)) {
            Some(heads) if heads.contains(&head) => {}
            None if unreadable => {}
            _ => d.branches.push(name),
        }
    }
    Ok(d)
}

/// Every `tc_facts` row against the `TcFact` records: a row is good when its
/// re-encoded record is indexed (ids are BLAKE3 of canonical bytes); a row that
/// differs from the record of its (commit, path), or a record with no row, is
/// catalog damage that a rebuild repairs.
fn verify_tc_facts(cat: &Catalog, reader: &mut RecordReader, d: &mut RowDamage) -> Result<()> {
    let rows = cat.all_tc_facts()?;
    let ids = cat.object_ids_of_kind(RecordKind::TcFact)?;
    let mut records: HashMap<(Hash, String), Vec<Hash>> = HashMap::new();
    let mut row_ids: HashSet<Hash> = HashSet::new();
    for r in &rows {
        row_ids.insert(r.id());
    }
    let mut orphans = Vec::new();
    for id in ids {
        // An unreadable record is the pack pass's to report; its row cannot be judged.
        let Some(raw) = reader.read(&id)? else { continue };
        match TcFactRecord::decode(&raw, &id) {
            Ok(rec) => {
                if !row_ids.contains(&id) {
                    orphans.push(label(cat, &rec)?);
                }
                records.entry((rec.commit, rec.path)).or_default().push(id);
            }
            Err(e) => orphans.push(format!("timecode fact record {}: {e}", id.short())),
        }
    }
    for r in &rows {
        if cat.has_object(&r.id())? {
            continue;
        }
        if records.contains_key(&(r.commit, r.path.clone())) || !orphans.is_empty() {
            d.tc_facts.push(label(cat, r)?);
        } else {
            d.tc_facts_unstored.push(label(cat, r)?);
        }
    }
    d.tc_facts.extend(orphans);
    Ok(())
}

/// `main/Day01/clip.mov (recorded timecode, commit 1a2b3c4d5e6f)`; the branch is
/// the one the commit was made on.
fn label(cat: &Catalog, r: &TcFactRecord) -> Result<String> {
    let branch = cat.commit_row(&r.commit)?.map(|c| c.branch).unwrap_or_else(|| "?".into());
    Ok(format!("{branch}/{} (recorded timecode, commit {})", r.path, r.commit.short()))
}

/// Something a branch reaches that is wrong: a row that does not match its
/// record, or an object the catalog does not have (`missing`, with the ids).
#[derive(Debug, Clone)]
pub struct Finding {
    /// What a user would call it: `branch grade`, `commit 1a2b… (history of main)`,
    /// `main/Day01/card` (a folder), `main/Day01/card/A001C002.mov` (a file).
    pub label: String,
    pub missing: Vec<Hash>,
}

#[derive(Clone)]
struct Rel {
    rel: String,
    id: Hash,
    missing: Vec<Hash>,
}

/// Walk every branch head and its history; name what is damaged (`bad`) or not
/// in the catalog. Heads name every path; history names only what the heads or
/// newer commits have not already named, so a lost folder is listed once.
pub fn walk(cat: &Catalog, bad: &RowDamage) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    let mut memo: HashMap<Hash, Vec<Rel>> = HashMap::new();
    let mut named: HashSet<Hash> = HashSet::new();
    let mut seen_commits: HashSet<Hash> = HashSet::new();
    let mut lost_commits: HashSet<Hash> = HashSet::new();
    for name in &bad.branches {
        out.push(Finding { label: format!("branch {name}"), missing: Vec::new() });
    }
    for (branch, head) in cat.branches()? {
        let Some(head) = head else { continue };
        let mut queue = vec![(head, true)];
        while let Some((c, is_head)) = queue.pop() {
            let first_visit = seen_commits.insert(c);
            // Every head names its own paths, even when another branch points at
            // the same commit; history is walked once.
            if !first_visit && !is_head {
                // A lost commit is named in every branch whose history it is.
                if !is_head && lost_commits.contains(&c) {
                    out.push(Finding { label: format!("commit {} (history of {branch})", c.short()), missing: vec![c] });
                }
                continue;
            }
            let Some(row) = cat.commit_row(&c)? else {
                lost_commits.insert(c);
                let label = if is_head {
                    format!("branch {branch} (its head commit {} and the history before it)", c.short())
                } else {
                    format!("commit {} (history of {branch})", c.short())
                };
                out.push(Finding { label, missing: vec![c] });
                continue;
            };
            if first_visit && bad.commits.contains(&c) {
                out.push(Finding { label: format!("commit {} (history of {branch})", c.short()), missing: Vec::new() });
            }
            let base = if is_head { branch.clone() } else { format!("{branch}@{}", &c.to_hex()[..8]) };
            for r in tree_findings(cat, &row.tree, bad, &mut memo)? {
                if !is_head && named.contains(&r.id) {
                    continue;
                }
                named.insert(r.id);
                let label = if r.rel.is_empty() { base.clone() } else { format!("{base}/{}", r.rel) };
                out.push(Finding { label, missing: r.missing });
            }
            if first_visit {
                queue.extend(row.parents.iter().rev().map(|p| (*p, false)));
            }
        }
    }
    Ok(out)
}

fn tree_findings(cat: &Catalog, tree: &Hash, bad: &RowDamage, memo: &mut HashMap<Hash, Vec<Rel>>) -> Result<Vec<Rel>> {
    if let Some(v) = memo.get(tree) {
        return Ok(v.clone());
    }
    let mut out = Vec::new();
    if *tree != Tree::default().id() && !cat.has_tree(tree)? {
        out.push(Rel { rel: String::new(), id: *tree, missing: vec![*tree] });
    } else {
        if bad.trees.contains(tree) {
            out.push(Rel { rel: String::new(), id: *tree, missing: Vec::new() });
        }
        for e in cat.tree_rows(tree)? {
            match e.kind {
                EntryKind::Dir => {
                    for r in tree_findings(cat, &e.hash, bad, memo)? {
                        let rel = if r.rel.is_empty() { e.name.clone() } else { format!("{}/{}", e.name, r.rel) };
                        out.push(Rel { rel, ..r });
                    }
                }
                // No stored bytes behind a link, FIFO, socket or device.
                EntryKind::Symlink | EntryKind::Fifo | EntryKind::Socket | EntryKind::CharDevice | EntryKind::BlockDevice => {}
                EntryKind::File => {
                    let has_blob = cat.has_blob(&e.hash)?;
                    let mut missing = if has_blob { cat.missing_chunks_of(&e.hash)? } else { vec![e.hash] };
                    // Released to tape on purpose (`reelfs tape release`): its
                    // chunks are meant to be gone; `check` counts it apart.
                    if has_blob && !missing.is_empty() && cat.released(&e.hash)?.is_some() {
                        missing.clear();
                    }
                    if !missing.is_empty() || bad.blobs.contains(&e.hash) {
                        out.push(Rel { rel: e.name.clone(), id: e.hash, missing });
                    }
                }
            }
        }
    }
    memo.insert(*tree, out.clone());
    Ok(out)
}
