//! The whole-catalog queries of gc, check and verify: marking what is live,
//! sweeping the rest, repointing moved records, and listing every row of a
//! kind. Only maintenance commands call these; the mount never does.

use super::{h, Catalog, ChunkLoc, ZERO_RUN_ID};
use crate::archive::error::Result;
use crate::archive::objects::{Extent, Hash, RecordKind};
use rusqlite::params;
use std::collections::HashSet;

/// What gc's mark found live and what the sweep will free.
#[derive(Debug, Clone, Copy, Default)]
pub struct GcCounts {
    pub live_chunks: u64,
    pub live_chunk_bytes: u64,
    pub chunks_freed: u64,
    pub chunk_bytes_freed: u64,
    pub blobs_freed: u64,
    pub trees_freed: u64,
    pub commits_freed: u64,
}

/// A pack's size against the bytes its live rows still use.
#[derive(Debug, Clone)]
pub struct PackUsage {
    pub id: i64,
    pub name: String,
    pub size: u64,
    /// Stored bytes plus record headers of the rows still pointing into it.
    pub live_bytes: u64,
    pub records: u64,
}

/// One catalogued record (a chunk or a metadata object) and where it is.
#[derive(Debug, Clone)]
pub struct RecordRow {
    pub id: Hash,
    pub pack: i64,
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
    pub codec: u8,
    /// The record kind code (`RecordKind`); chunks are `RecordKind::Chunk`.
    pub kind: i64,
}

impl RecordRow {
    fn from_row(r: &rusqlite::Row, kind: Option<i64>) -> rusqlite::Result<RecordRow> {
        Ok(RecordRow {
            id: h(r.get(0)?),
            pack: r.get(1)?,
            offset: r.get::<_, i64>(2)? as u64,
            stored_len: r.get(3)?,
            raw_len: r.get(4)?,
            codec: r.get(5)?,
            kind: match kind {
                Some(k) => k,
                None => r.get(6)?,
            },
        })
    }
    pub fn is_chunk(&self) -> bool {
        self.kind == RecordKind::Chunk as i64
    }
}

impl Catalog {
    /// Columns of `table` (empty if it does not exist); `table` is this module's text.
    fn columns(&self, table: &str) -> Result<Vec<String>> {
        let mut st = self.conn.prepare(&format!("PRAGMA table_info({table})")).map_err(|e| self.err(e))?;
        let rows = st.query_map([], |r| r.get::<_, String>(1)).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    fn batch(&self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(|e| self.err(e))
    }

    /// gc's mark, inside the caller's write transaction: from the live commits,
    /// their trees (and staged folder moves) down to files, proxies and staged
    /// files, then the chunks all of those use, into temporary tables.
    pub fn gc_mark(&self, live_commits: &HashSet<Hash>) -> Result<()> {
        self.gc_drop_marks()?;
        self.batch(
            "CREATE TEMP TABLE gc_commits (h BLOB PRIMARY KEY) WITHOUT ROWID;
           CREATE TEMP TABLE gc_roots (h BLOB PRIMARY KEY) WITHOUT ROWID;
           CREATE TEMP TABLE gc_trees (h BLOB PRIMARY KEY) WITHOUT ROWID;
           CREATE TEMP TABLE gc_blobs (h BLOB PRIMARY KEY) WITHOUT ROWID;
           CREATE TEMP TABLE gc_chunks (h BLOB PRIMARY KEY) WITHOUT ROWID;",
        )?;
        {
            let mut st = self.conn.prepare("INSERT OR IGNORE INTO gc_commits (h) VALUES (?1)").map_err(|e| self.err(e))?;
            for c in live_commits {
                st.execute([&c.0[..]]).map_err(|e| self.err(e))?;
            }
        }
        let x = |sql: &str| self.batch(sql);
        x("INSERT OR IGNORE INTO gc_roots SELECT tree FROM commits WHERE hash IN (SELECT h FROM gc_commits);")?;
        let staging = self.columns("staging")?;
        if staging.iter().any(|c| c == "tree") {
            x("INSERT OR IGNORE INTO gc_roots SELECT tree FROM staging WHERE tree IS NOT NULL;")?;
        }
        x("INSERT OR IGNORE INTO gc_trees
             WITH RECURSIVE t(h) AS (
               SELECT h FROM gc_roots
               UNION SELECT e.hash FROM tree_entries e JOIN t ON e.tree = t.h WHERE e.kind = 2)
             SELECT h FROM t;")?;
        x("INSERT OR IGNORE INTO gc_blobs SELECT hash FROM tree_entries WHERE kind = 1 AND tree IN (SELECT h FROM gc_trees);")?;
        if self.columns("proxies")?.iter().any(|c| c == "blob") {
            x("INSERT OR IGNORE INTO gc_blobs SELECT blob FROM proxies;")?;
        }
        if staging.iter().any(|c| c == "blob") {
            x("INSERT OR IGNORE INTO gc_blobs SELECT blob FROM staging WHERE blob IS NOT NULL;")?;
        }
        // Content released to tape (`reelfs tape release`) keeps its blob row
        // but not its chunks: those are what the release frees.
        if self.has_released_table()? {
            x("INSERT OR IGNORE INTO gc_chunks SELECT DISTINCT chunk FROM extents
                 WHERE blob IN (SELECT h FROM gc_blobs) AND blob NOT IN (SELECT blob FROM tape_released);")?;
        } else {
            x("INSERT OR IGNORE INTO gc_chunks SELECT DISTINCT chunk FROM extents WHERE blob IN (SELECT h FROM gc_blobs);")?;
        }
        if self.columns("staged_extents")?.iter().any(|c| c == "chunk") {
            x("INSERT OR IGNORE INTO gc_chunks SELECT chunk FROM staged_extents;")?;
        }
        Ok(())
    }

    /// What the mark found (after `gc_mark`).
    pub fn gc_counts(&self) -> Result<GcCounts> {
        let n = |sql: &str| self.scalar_u64(sql);
        Ok(GcCounts {
            live_chunks: n("SELECT COUNT(*) FROM chunks WHERE hash IN (SELECT h FROM gc_chunks)")?,
            live_chunk_bytes: n("SELECT SUM(stored_len) FROM chunks WHERE hash IN (SELECT h FROM gc_chunks)")?,
            chunks_freed: n("SELECT COUNT(*) FROM chunks WHERE hash NOT IN (SELECT h FROM gc_chunks)")?,
            chunk_bytes_freed: n("SELECT SUM(stored_len) FROM chunks WHERE hash NOT IN (SELECT h FROM gc_chunks)")?,
            blobs_freed: n("SELECT COUNT(*) FROM blobs WHERE hash NOT IN (SELECT h FROM gc_blobs)")?,
            trees_freed: n("SELECT COUNT(*) FROM trees WHERE hash NOT IN (SELECT h FROM gc_trees)")?,
            commits_freed: n("SELECT COUNT(*) FROM commits WHERE hash NOT IN (SELECT h FROM gc_commits)")?,
        })
    }

    /// Delete every row the mark did not reach (after `gc_mark`, same transaction).
    pub fn gc_sweep(&self) -> Result<()> {
        let (blob_k, tree_k, commit_k) = (RecordKind::Blob as i64, RecordKind::Tree as i64, RecordKind::Commit as i64);
        // Ref, media and proxy records are small and always kept: a branch
        // deletion's ref record must outlive older refs of that branch, or a
        // catalog rebuilt from the packs would bring the branch back.
        self.batch(&format!(
            "DELETE FROM objects WHERE
               (kind = {blob_k} AND id NOT IN (SELECT record FROM blobs WHERE record IS NOT NULL AND hash IN (SELECT h FROM gc_blobs)))
            OR (kind = {tree_k} AND id NOT IN (SELECT h FROM gc_trees))
            OR (kind = {commit_k} AND id NOT IN (SELECT h FROM gc_commits));
             DELETE FROM chunks WHERE hash NOT IN (SELECT h FROM gc_chunks);
             DELETE FROM damaged_chunks WHERE hash NOT IN (SELECT h FROM gc_chunks);
             DELETE FROM chunk_outboards WHERE chunk NOT IN (SELECT h FROM gc_chunks);
             DELETE FROM chunk_heads WHERE chunk NOT IN (SELECT h FROM gc_chunks);
             DELETE FROM blob_outboards WHERE blob NOT IN (SELECT h FROM gc_blobs);
             DELETE FROM blob_outboard_pieces WHERE blob NOT IN (SELECT h FROM gc_blobs);
             DELETE FROM extents WHERE blob NOT IN (SELECT h FROM gc_blobs);
             DELETE FROM blobs WHERE hash NOT IN (SELECT h FROM gc_blobs);
             DELETE FROM sources WHERE blob NOT IN (SELECT h FROM gc_blobs);
             DELETE FROM tree_entries WHERE tree NOT IN (SELECT h FROM gc_trees);
             DELETE FROM trees WHERE hash NOT IN (SELECT h FROM gc_trees);
             DELETE FROM commits WHERE hash NOT IN (SELECT h FROM gc_commits);"
        ))
    }

    /// Drop gc's temporary mark tables.
    pub fn gc_drop_marks(&self) -> Result<()> {
        self.batch(
            "DROP TABLE IF EXISTS temp.gc_commits; DROP TABLE IF EXISTS temp.gc_roots; DROP TABLE IF EXISTS temp.gc_trees;
               DROP TABLE IF EXISTS temp.gc_blobs; DROP TABLE IF EXISTS temp.gc_chunks;",
        )
    }

    /// Every pack with the bytes and records its rows still use; `record_header`
    /// is the pack format's per-record header length.
    pub fn pack_usage(&self, record_header: u64) -> Result<Vec<PackUsage>> {
        let hdr = record_header as i64;
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT p.id, p.name, p.size,
                   COALESCE((SELECT SUM(stored_len + {hdr}) FROM chunks WHERE pack = p.id), 0)
                 + COALESCE((SELECT SUM(stored_len + {hdr}) FROM objects WHERE pack = p.id), 0),
                   COALESCE((SELECT COUNT(*) FROM chunks WHERE pack = p.id), 0)
                 + COALESCE((SELECT COUNT(*) FROM objects WHERE pack = p.id), 0)
                 FROM packs p ORDER BY p.id"
            ))
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(PackUsage {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    live_bytes: r.get::<_, i64>(3)? as u64,
                    records: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Remove a pack's row (its file is deleted by the caller after the commit).
    pub fn delete_pack_row(&self, id: i64) -> Result<()> {
        self.conn.execute("DELETE FROM packs WHERE id = ?1", [id]).map(|_| ()).map_err(|e| self.err(e))
    }

    /// The records catalogued in one pack: chunks first, then objects, each by offset.
    pub fn records_in_pack(&self, pack: i64) -> Result<Vec<RecordRow>> {
        let mut st = self
            .conn
            .prepare("SELECT hash, pack, offset, stored_len, raw_len, codec FROM chunks WHERE pack = ?1 ORDER BY offset")
            .map_err(|e| self.err(e))?;
        let mut out: Vec<RecordRow> = st
            .query_map([pack], |r| RecordRow::from_row(r, Some(RecordKind::Chunk as i64)))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))?;
        let mut st2 = self
            .conn
            .prepare("SELECT id, pack, offset, stored_len, raw_len, codec, kind FROM objects WHERE pack = ?1 ORDER BY offset")
            .map_err(|e| self.err(e))?;
        let objs = st2
            .query_map([pack], |r| RecordRow::from_row(r, None))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        out.extend(objs);
        Ok(out)
    }

    /// Every catalogued record, handed to `each` one pack at a time in pack-id order
    /// (chunks and objects of a pack together, by offset). SQLite sorts with its own
    /// bounded cache and temporary files, so memory stays at one pack's records however
    /// large the archive: `check` of a 100 TB catalog (25 M chunks) held every row in a
    /// map before, about 140 bytes a chunk.
    pub fn records_by_pack(&self, mut each: impl FnMut(i64, Vec<RecordRow>) -> Result<()>) -> Result<()> {
        let mut st = self
            .conn
            .prepare(
                "SELECT hash, pack, offset, stored_len, raw_len, codec, ?1 FROM chunks \
                 UNION ALL SELECT id, pack, offset, stored_len, raw_len, codec, kind FROM objects \
                 ORDER BY 2, 3",
            )
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([RecordKind::Chunk as i64], |r| RecordRow::from_row(r, None)).map_err(|e| self.err(e))?;
        let mut group: Vec<RecordRow> = Vec::new();
        for row in rows {
            let row = row.map_err(|e| self.err(e))?;
            if group.first().is_some_and(|g| g.pack != row.pack) {
                let pack = group[0].pack;
                each(pack, std::mem::take(&mut group))?;
            }
            group.push(row);
        }
        if let Some(pack) = group.first().map(|g| g.pack) {
            each(pack, group)?;
        }
        Ok(())
    }

    /// Repoint a record moved by compaction from pack `old` to (`new`, `offset`).
    pub fn move_record(&self, is_chunk: bool, id: &Hash, old: i64, new: i64, offset: u64) -> Result<()> {
        let sql = if is_chunk {
            "UPDATE chunks SET pack = ?1, offset = ?2 WHERE hash = ?3 AND pack = ?4"
        } else {
            "UPDATE objects SET pack = ?1, offset = ?2 WHERE id = ?3 AND pack = ?4"
        };
        let mut st = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        st.execute(params![new, offset as i64, &id.0[..], old]).map(|_| ()).map_err(|e| self.err(e))
    }

    /// How many chunk and object rows still point into a pack.
    pub fn records_left_in_pack(&self, id: i64) -> Result<u64> {
        self.conn
            .query_row("SELECT (SELECT COUNT(*) FROM chunks WHERE pack = ?1) + (SELECT COUNT(*) FROM objects WHERE pack = ?1)", [id], |r| {
                r.get::<_, i64>(0)
            })
            .map(|v| v as u64)
            .map_err(|e| self.err(e))
    }

    /// Extents whose chunk the catalog does not have, as (chunk, blob); zero runs
    /// and chunks already recorded as lost are not counted.
    pub fn dangling_extents(&self) -> Result<Vec<(Hash, Hash)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT e.chunk, e.blob FROM extents e LEFT JOIN chunks c ON c.hash = e.chunk
             WHERE c.hash IS NULL AND e.chunk IS NOT NULL AND e.chunk != ?1 AND e.chunk NOT IN (SELECT id FROM lost_objects)",
            )
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([&ZERO_RUN_ID[..]], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))).map_err(|e| self.err(e))?;
        // A row that does not decode is not a dangling extent this pass can name.
        Ok(rows.flatten().filter_map(|(c, b)| Some((Hash::from_slice(&c)?, Hash::from_slice(&b)?))).collect())
    }

    /// Blobs whose extents use any of these chunks.
    pub fn blobs_using_chunks<'a>(&self, chunks: impl IntoIterator<Item = &'a Hash>) -> Result<HashSet<Hash>> {
        let mut st = self.conn.prepare_cached("SELECT DISTINCT blob FROM extents WHERE chunk = ?1").map_err(|e| self.err(e))?;
        let mut out = HashSet::new();
        for c in chunks {
            let rows = st.query_map([&c.0[..]], |r| r.get::<_, Vec<u8>>(0)).map_err(|e| self.err(e))?;
            out.extend(rows.flatten().filter_map(|r| Hash::from_slice(&r)));
        }
        Ok(out)
    }

    /// (raw bytes of all chunks, their stored bytes, bytes of all packs).
    pub fn storage_totals(&self) -> Result<(u64, u64, u64)> {
        Ok((
            self.scalar_u64("SELECT SUM(raw_len) FROM chunks")?,
            self.scalar_u64("SELECT SUM(stored_len) FROM chunks")?,
            self.scalar_u64("SELECT SUM(size) FROM packs")?,
        ))
    }

    /// Every tree id: with a row, or named by `tree_entries` rows (a damaged
    /// `tree` column moves an entry to a tree nobody knows).
    pub fn tree_ids(&self) -> Result<Vec<Hash>> {
        self.ids("SELECT hash FROM trees UNION SELECT DISTINCT tree FROM tree_entries", None)
    }

    /// Every blob id: with a row, or named by `extents` rows.
    pub fn blob_ids(&self) -> Result<Vec<Hash>> {
        self.ids("SELECT hash FROM blobs UNION SELECT DISTINCT blob FROM extents", None)
    }

    pub fn commit_ids(&self) -> Result<Vec<Hash>> {
        self.ids("SELECT hash FROM commits", None)
    }

    /// Ids of the metadata records of one kind.
    pub fn object_ids_of_kind(&self, kind: RecordKind) -> Result<Vec<Hash>> {
        self.ids("SELECT id FROM objects WHERE kind = ?1", Some(kind as u8 as i64))
    }

    /// Bytes of a blob that are zero runs (holes).
    pub fn zero_run_bytes(&self, blob: &Hash) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(length), 0) FROM extents WHERE blob = ?1 AND chunk = ?2",
                [&blob.0[..], &ZERO_RUN_ID[..]],
                |r| r.get::<_, i64>(0),
            )
            .map(|v| v as u64)
            .map_err(|e| self.err(e))
    }

    /// A blob's extents, each with where its chunk is (None: the chunk has no
    /// row), in one JOIN instead of a query per chunk.
    pub fn extents_with_locs(&self, blob: &Hash) -> Result<Vec<(Extent, Option<ChunkLoc>)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT e.file_offset, e.length, e.chunk, e.chunk_offset, c.pack, c.offset, c.stored_len, c.raw_len, c.codec
                 FROM extents e LEFT JOIN chunks c ON c.hash = e.chunk WHERE e.blob = ?1 ORDER BY e.file_offset",
            )
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([&blob.0[..]], extent_with_loc).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// The extent holding `offset` and up to `limit - 1` after it, with their
    /// chunks' locations: one probe of the (blob, file_offset) primary key, so
    /// a reader that starts at one place of a file with thousands of extents
    /// reads only the catalog pages around it (`BlobReader`'s paged mode).
    pub fn extents_with_locs_from(&self, blob: &Hash, offset: u64, limit: usize) -> Result<Vec<(Extent, Option<ChunkLoc>)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT e.file_offset, e.length, e.chunk, e.chunk_offset, c.pack, c.offset, c.stored_len, c.raw_len, c.codec
                 FROM extents e LEFT JOIN chunks c ON c.hash = e.chunk
                 WHERE e.blob = ?1 AND e.file_offset >= COALESCE(
                   (SELECT MAX(x.file_offset) FROM extents x WHERE x.blob = ?1 AND x.file_offset <= ?2), 0)
                 ORDER BY e.file_offset LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![&blob.0[..], offset.min(i64::MAX as u64) as i64, limit.min(i64::MAX as usize) as i64], extent_with_loc)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Begin a read transaction that lasts until this connection is dropped
    /// (its snapshot is taken at the first query after this): a long file's
    /// paged reader reads its pages in one so that what it reads stays what
    /// it opened, whatever another process commits meanwhile.
    pub fn begin_snapshot(&self) -> Result<()> {
        self.conn.execute_batch("BEGIN DEFERRED").map_err(|e| self.err(e))
    }

    /// End the read transaction `begin_snapshot` began.
    pub fn end_snapshot(&self) -> Result<()> {
        self.conn.execute_batch("ROLLBACK").map_err(|e| self.err(e))
    }
}

/// One row of `e.file_offset, e.length, e.chunk, e.chunk_offset, c.pack,
/// c.offset, c.stored_len, c.raw_len, c.codec` (extents LEFT JOIN chunks): the
/// extent and, if its chunk is in the catalog, where the chunk is.
fn extent_with_loc(r: &rusqlite::Row) -> rusqlite::Result<(Extent, Option<ChunkLoc>)> {
    let pack: Option<i64> = r.get(4)?;
    let loc = match pack {
        Some(p) => {
            Some(ChunkLoc { pack: p, offset: r.get::<_, i64>(5)? as u64, stored_len: r.get(6)?, raw_len: r.get(7)?, codec: r.get(8)? })
        }
        None => None,
    };
    Ok((
        Extent {
            file_offset: r.get::<_, i64>(0)? as u64,
            length: r.get::<_, i64>(1)? as u64,
            chunk: h(r.get(2)?),
            chunk_offset: r.get::<_, i64>(3)? as u64,
        },
        loc,
    ))
}
