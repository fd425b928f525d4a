//! Synthetic archives for `scripts/bench versioning` (the hidden `reelfs synth`
//! command): terabytes of logical content made of many references to a small
//! pool of real chunks, written straight through the library (chunk records,
//! blob records, trees, a commit and a ref, with their catalog rows) instead of
//! ingesting terabytes.
//!
//! The chunks are real and every extent reads back; a file's content hash,
//! though, is a stand-in (BLAKE3 of the file's identity, not of its bytes, which
//! would mean hashing terabytes), so `restore` of a synthetic file reports a
//! hash mismatch. It is a benchmark fixture, not an archive to keep.

use super::error::{ArchiveError, Result};
use super::objects::{BlobRecord, EntryKind, Extent, Hash, RecordKind, Tree, TreeEntry};
use super::pack::CODEC_RAW;
use super::repo::{make_commit, Archive, NewObject};
use std::collections::BTreeMap;

pub const CHUNK: u64 = 4 << 20;

#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub branch: String,
    /// Add files `start..start+add` (paths from their index).
    pub add: u64,
    pub start: u64,
    /// Replace the content of this many existing files (spread over the tree).
    pub modify: u64,
    /// Shifts which files `modify` picks and what content they get.
    pub seed: u64,
    /// Real chunks in the pool (4 MiB each).
    pub pool_chunks: u64,
    pub extents_per_file: u64,
    /// Files already on the branch (for `modify`).
    pub existing: u64,
    /// Every extent its own chunk (100 TB of unique content), in sparse
    /// stand-in packs, instead of references to the pool.
    pub unique: bool,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct SynthReport {
    pub files_added: u64,
    pub files_modified: u64,
    pub logical_bytes_added: u64,
    pub pool_chunks_written: u64,
    /// Unique chunks cataloged in stand-in packs (`unique`).
    pub standin_chunks: u64,
    pub commit: Option<String>,
}

/// Path of synthetic file `i`: 100 files a roll, 100 rolls a day.
pub fn path_of(i: u64) -> Vec<String> {
    vec![format!("Day{:04}", i / 10_000), format!("R{:03}", (i / 100) % 100), format!("C{i:07}.mov")]
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ceb9fe1a85ec53);
    x ^ (x >> 33)
}

fn pool_chunk(k: u64) -> Vec<u8> {
    let mut x = mix(k + 0x5eed) | 1;
    let mut v = Vec::with_capacity(CHUNK as usize);
    while (v.len() as u64) < CHUNK {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

/// Write the pool's chunks that are not stored yet; returns their hashes.
fn ensure_pool(archive: &mut Archive, n: u64, rep: &mut SynthReport) -> Result<Vec<Hash>> {
    let mut hashes = Vec::with_capacity(n as usize);
    let mut missing = Vec::new();
    for k in 0..n {
        let data = pool_chunk(k);
        let h = Hash::of(&data);
        hashes.push(h);
        if !archive.catalog.has_chunk(&h)? {
            missing.push(k);
        }
    }
    if missing.is_empty() {
        return Ok(hashes);
    }
    let cat = &archive.catalog;
    let mut w = archive.pack_writer()?;
    let r = (|| {
        for k in &missing {
            let data = pool_chunk(*k);
            w.append(RecordKind::Chunk, CODEC_RAW, hashes[*k as usize], data.len(), &data)?;
        }
        let sealed = w.finish()?;
        cat.begin()?;
        for p in sealed {
            cat.insert_pack(p.id, &p.name, p.size, p.records.len())?;
            for l in &p.records {
                cat.insert_record(p.id, l)?;
            }
        }
        cat.commit()?;
        Ok(sealed.iter().map(|p| (p.id, p.name.clone())).collect::<Vec<_>>())
    })();
    match r {
        Ok(names) => archive.store().register_packs(names),
        Err(e) => {
            cat.rollback();
            w.abort();
            return Err(e);
        }
    }
    rep.pool_chunks_written = missing.len() as u64;
    Ok(hashes)
}

/// Chunks a stand-in pack holds: 16 GiB of logical content, a 213 KB trailer.
const STANDIN_RECORDS: usize = 4096;

/// The chunk of extent `j` of file `i` at `version` in a `unique` archive.
fn unique_chunk(i: u64, version: u64, j: u64) -> Hash {
    Hash::of(format!("reelfs-synthetic chunk {i} {version} {j}").as_bytes())
}

/// Catalog `chunks` as stored in new packs without writing their bytes: each
/// pack is a sparse file with a real header, a hole where the records would
/// be, and a real trailer and footer, so `check` (not deep), `stats` and
/// every catalog operation see a pack of the full size. Reading a chunk's
/// bytes finds the hole (a damaged record): a benchmark fixture only.
fn standin_chunks(archive: &mut Archive, chunks: &[Hash], rep: &mut SynthReport) -> Result<()> {
    use super::pack::{encode_header, encode_tail, pack_rel_path, RecordLoc, HEADER_LEN, RECORD_HEADER_LEN};
    use std::io::{Seek, SeekFrom, Write};
    if archive.config.store.is_some() {
        return Err(ArchiveError::Invalid("synth --unique writes stand-in packs on local disk; use an archive without [store]".into()));
    }
    let dir = archive.root().join("packs");
    // In key order, each batch's rows go into the chunks table's pages one
    // after another rather than at random (which pack holds which stand-in
    // chunk does not matter).
    let mut chunks = chunks.to_vec();
    chunks.sort_unstable();
    let mut names = Vec::new();
    let mut next = archive.catalog.max_pack_id()? + 1;
    let cat = &archive.catalog;
    cat.begin()?;
    let r = (|| {
        for group in chunks.chunks(STANDIN_RECORDS) {
            let id = next;
            next += 1;
            let name = pack_rel_path(id);
            let locs: Vec<RecordLoc> = group
                .iter()
                .enumerate()
                .map(|(k, h)| RecordLoc {
                    kind: RecordKind::Chunk,
                    codec: CODEC_RAW,
                    raw_len: CHUNK as u32,
                    stored_len: CHUNK as u32,
                    offset: HEADER_LEN + k as u64 * (RECORD_HEADER_LEN + CHUNK),
                    id: *h,
                })
                .collect();
            let end = HEADER_LEN + group.len() as u64 * (RECORD_HEADER_LEN + CHUNK);
            let tail = encode_tail(&locs, end);
            let path = dir.join(&name);
            let io = |e: std::io::Error| ArchiveError::Io { path: path.clone(), source: e };
            std::fs::create_dir_all(path.parent().unwrap_or(&dir)).map_err(io)?;
            let mut f = std::fs::File::create_new(&path).map_err(io)?;
            f.write_all(&encode_header()).map_err(io)?;
            f.seek(SeekFrom::Start(end)).map_err(io)?;
            f.write_all(&tail).map_err(io)?;
            // The rule of the archive, kept by the fixture too: packs durable before the catalog commit.
            f.sync_all().map_err(io)?;
            cat.insert_pack(id, &name, end + tail.len() as u64, locs.len())?;
            for l in &locs {
                cat.insert_record(id, l)?;
            }
            names.push((id, name));
        }
        cat.commit()
    })();
    if let Err(e) = r {
        cat.rollback();
        return Err(e);
    }
    rep.standin_chunks += chunks.len() as u64;
    archive.store().register_packs(names);
    Ok(())
}

fn blob_for(i: u64, version: u64, pool: &[Hash], extents: u64, unique: bool) -> BlobRecord {
    let ext: Vec<Extent> = (0..extents)
        .map(|j| Extent {
            file_offset: j * CHUNK,
            length: CHUNK,
            chunk: if unique {
                unique_chunk(i, version, j)
            } else {
                pool[(mix(i * 1_000_003 + version * 7919 + j) % pool.len() as u64) as usize]
            },
            chunk_offset: 0,
        })
        .collect();
    let hash = Hash::of(format!("reelfs-synthetic file {i} version {version}").as_bytes());
    BlobRecord { hash, size: extents * CHUNK, extents: ext }
}

/// SQLite page cache of a synth run: the catalog of a 100 TB synthetic
/// archive is ~6 GB, and one batch touches pages all over it.
const SYNTH_CACHE_MIB: u32 = 1024;

/// A batch of blobs in content-hash order, so their catalog rows (keyed by
/// that hash) are inserted in key order; a pack's record order is free.
fn by_id(mut batch: Vec<NewObject>) -> Vec<NewObject> {
    batch.sort_by_key(|o| match o {
        NewObject::Blob(b) => Some(b.hash),
        _ => None,
    });
    batch
}

/// Apply `changes` (path -> new entry) below `base`, collecting new trees.
fn edit(
    archive: &Archive,
    base: Option<Hash>,
    changes: &[(Vec<String>, TreeEntry)],
    depth: usize,
    out: &mut Vec<Tree>,
) -> Result<(Hash, u64)> {
    let mut entries: BTreeMap<String, TreeEntry> = BTreeMap::new();
    if let Some(b) = base {
        for e in archive.catalog.tree_entries(&b)? {
            entries.insert(e.name.clone(), e);
        }
    }
    let mut i = 0;
    while i < changes.len() {
        let name = &changes[i].0[depth];
        let mut j = i;
        while j < changes.len() && &changes[j].0[depth] == name {
            j += 1;
        }
        if changes[i].0.len() == depth + 1 {
            entries.insert(name.clone(), changes[j - 1].1.clone());
        } else {
            let child = entries.get(name).filter(|e| e.kind == EntryKind::Dir).map(|e| e.hash);
            let (h, size) = edit(archive, child, &changes[i..j], depth + 1, out)?;
            entries.insert(
                name.clone(),
                TreeEntry {
                    name: name.clone(),
                    kind: EntryKind::Dir,
                    hash: h,
                    size,
                    mode: 0o755,
                    mtime_ns: 1_600_000_000_000_000_000,
                    owner: None,
                    extra: Default::default(),
                },
            );
        }
        i = j;
    }
    let tree = Tree { entries: entries.into_values().collect() };
    let id = tree.id();
    let size = tree.total_size();
    out.push(tree);
    Ok((id, size))
}

pub fn synth(archive: &mut Archive, opts: &SynthOptions) -> Result<SynthReport> {
    archive.require_writer()?;
    let mut rep = SynthReport::default();
    if opts.pool_chunks == 0 || opts.extents_per_file == 0 {
        return Err(ArchiveError::Invalid("synth: pool and extents per file must be positive".into()));
    }
    let head = archive.catalog.branch_head(&opts.branch)?.ok_or_else(|| ArchiveError::NoSuchBranch(opts.branch.clone()))?;
    // Profiled on a 500 k-chunk batch: most of the time was SQLite reading
    // pages back through its 2 MiB cache and spilling dirty ones mid-batch.
    archive.catalog.set_cache_mib(SYNTH_CACHE_MIB)?;
    let pool = if opts.unique { Vec::new() } else { ensure_pool(archive, opts.pool_chunks, &mut rep)? };
    let mut changes: Vec<(Vec<String>, TreeEntry)> = Vec::new();
    let mut batch: Vec<NewObject> = Vec::new();
    let mtime = 1_600_000_000_000_000_000i64;
    // Unique mode: the batch's chunks, cataloged in stand-in packs before the
    // blobs that point at them are written.
    let mut fresh: Vec<Hash> = Vec::new();
    let file = |i: u64, version: u64, batch: &mut Vec<NewObject>, changes: &mut Vec<(Vec<String>, TreeEntry)>, fresh: &mut Vec<Hash>| {
        let b = blob_for(i, version, &pool, opts.extents_per_file, opts.unique);
        if opts.unique {
            fresh.extend(b.extents.iter().map(|e| e.chunk));
        }
        let p = path_of(i);
        changes.push((
            p.clone(),
            TreeEntry {
                name: p[2].clone(),
                kind: EntryKind::File,
                hash: b.hash,
                size: b.size,
                mode: 0o644,
                mtime_ns: mtime + version as i64,
                owner: None,
                extra: Default::default(),
            },
        ));
        batch.push(NewObject::Blob(b));
    };
    for i in opts.start..opts.start + opts.add {
        file(i, 0, &mut batch, &mut changes, &mut fresh);
        rep.files_added += 1;
        rep.logical_bytes_added += opts.extents_per_file * CHUNK;
        if batch.len() >= 20_000 {
            standin_chunks(archive, &std::mem::take(&mut fresh), &mut rep)?;
            archive.write_objects(&by_id(std::mem::take(&mut batch)), &[])?;
        }
    }
    let n = opts.existing.max(1);
    if let Some(stride) = n.checked_div(opts.modify) {
        let stride = stride.max(1);
        for k in 0..opts.modify {
            let i = (k * stride + opts.seed % stride) % n;
            file(i, opts.seed + 1, &mut batch, &mut changes, &mut fresh);
            rep.files_modified += 1;
        }
    }
    if !fresh.is_empty() {
        standin_chunks(archive, &std::mem::take(&mut fresh), &mut rep)?;
    }
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    let base = archive.root_tree(head.as_ref())?;
    let mut trees = Vec::new();
    let (root, _) = edit(archive, base, &changes, 0, &mut trees)?;
    batch.extend(trees.into_iter().map(NewObject::Tree));
    let commit = make_commit(
        root,
        head.into_iter().collect(),
        &opts.branch,
        &format!("synthetic: +{} files, {} modified", rep.files_added, rep.files_modified),
    );
    let id = Hash::of(&commit.encode());
    batch.push(NewObject::Commit(commit));
    archive.write_objects(&batch, &[(opts.branch.clone(), Some(id))])?;
    rep.commit = Some(id.to_hex());
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::progress::ProgressHandle;

    fn opts(unique: bool) -> SynthOptions {
        SynthOptions {
            branch: "main".into(),
            add: 3,
            start: 0,
            modify: 0,
            seed: 0,
            pool_chunks: 2,
            extents_per_file: 2,
            existing: 0,
            unique,
        }
    }

    #[test]
    fn unique_synth_catalogs_every_extent_as_its_own_chunk_in_sparse_packs_that_check_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a");
        drop(Archive::init(&root).unwrap());
        let mut a = Archive::open_writer(&root).unwrap();
        let rep = synth(&mut a, &opts(true)).unwrap();
        assert_eq!((rep.files_added, rep.standin_chunks, rep.pool_chunks_written), (3, 6, 0));
        let chunk_packs: Vec<_> = a.catalog.pack_names().unwrap().into_iter().filter(|p| p.2 > 6 * CHUNK).collect();
        assert_eq!(chunk_packs.len(), 1, "six 4 MiB chunks fit one stand-in pack");
        let file = root.join("packs").join(&chunk_packs[0].1);
        let meta = std::fs::metadata(&file).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.len(), chunk_packs[0].2);
        assert!(meta.blocks() * 512 < 1 << 20, "a stand-in pack is sparse: {} bytes allocated", meta.blocks() * 512);
        let check = crate::archive::check::check(&a, false, &ProgressHandle::none()).unwrap();
        assert!(check.ok() && check.chunks == 6, "{check:?}");
        // A second synth continues the numbering (no stand-in pack is overwritten).
        let rep2 = synth(&mut a, &SynthOptions { start: 3, ..opts(true) }).unwrap();
        assert_eq!(rep2.standin_chunks, 6);
        assert_eq!(crate::archive::check::check(&a, false, &ProgressHandle::none()).unwrap().chunks, 12);
    }
}
