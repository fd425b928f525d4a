//! BLAKE3 outboards (archive/outboard.rs): the block chaining values of each
//! chunk (so a read verifies only the blocks it touches) and of each file (so
//! a commit after a small write re-hashes only the blocks it touched).
//!
//! Rows are derived data: each is checked against the chunk's or file's hash
//! before it is trusted, a missing row only means "verify or hash the whole
//! thing", and a catalog rebuilt from the packs has none (reads then verify
//! whole chunks, as version-1 archives always do). Only inputs of more than
//! one block have a row. `block_log` records the block size they were made with.

use super::Catalog;
use crate::archive::error::Result;
use crate::archive::objects::Hash;
use crate::archive::outboard::{self, Cv, SpooledCvs, PIECE_CVS};
use rusqlite::{params, OptionalExtension};

pub const OUTBOARD_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS chunk_outboards (chunk BLOB PRIMARY KEY, block_log INTEGER NOT NULL, cvs BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blob_outboards (blob BLOB PRIMARY KEY, block_log INTEGER NOT NULL, cvs BLOB NOT NULL) WITHOUT ROWID;
-- A file's outboard in pieces of outboard::PIECE_CVS CVs (1 MiB, 8 GiB of file), so a
-- 1 TiB file's 128 MiB outboard is written and read a piece at a time. Every outboard
-- written since is stored here; rows of blob_outboards (earlier versions) stay readable.
CREATE TABLE IF NOT EXISTS blob_outboard_pieces (blob BLOB NOT NULL, piece INTEGER NOT NULL, block_log INTEGER NOT NULL,
  cvs BLOB NOT NULL, PRIMARY KEY (blob, piece)) WITHOUT ROWID;
-- The proof of a chunk's head (outboard::head_proof) for chunks that begin a file, so
-- a server's first piece reads and checks 16 KiB, not a whole 256 KiB block; block_log
-- here is outboard::HEAD_LOG, the head's size.
CREATE TABLE IF NOT EXISTS chunk_heads (chunk BLOB PRIMARY KEY, block_log INTEGER NOT NULL, cvs BLOB NOT NULL) WITHOUT ROWID;
"#;

/// A catalog from before outboards, opened read-only, has not the tables:
/// that is "no outboard", not an error.
fn no_table(e: &rusqlite::Error) -> bool {
    e.to_string().contains("no such table")
}

impl Catalog {
    fn outboard_row(&self, table: &str, key: &str, id: &Hash) -> Result<Option<Vec<Cv>>> {
        self.cvs_row(table, key, id, outboard::BLOCK_LOG)
    }

    fn cvs_row(&self, table: &str, key: &str, id: &Hash, block_log: u32) -> Result<Option<Vec<Cv>>> {
        let sql = format!("SELECT block_log, cvs FROM {table} WHERE {key} = ?1");
        let st = self.conn.prepare_cached(&sql);
        let mut st = match st {
            Ok(s) => s,
            Err(e) if no_table(&e) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let row: Option<(i64, Vec<u8>)> = st.query_row([&id.0[..]], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(|e| self.err(e))?;
        // Rows of another block size are ignored (as if absent), never misread.
        Ok(row.filter(|(log, _)| *log == block_log as i64).and_then(|(_, b)| outboard::decode(&b)))
    }

    fn put_outboard_row(&self, table: &str, key: &str, id: &Hash, cvs: &[Cv]) -> Result<()> {
        self.put_cvs_row(table, key, id, cvs, outboard::BLOCK_LOG)
    }

    fn put_cvs_row(&self, table: &str, key: &str, id: &Hash, cvs: &[Cv], block_log: u32) -> Result<()> {
        if cvs.is_empty() {
            return Ok(());
        }
        let sql = format!("INSERT OR REPLACE INTO {table} ({key}, block_log, cvs) VALUES (?1, ?2, ?3)");
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        st.execute(params![&id.0[..], block_log as i64, outboard::encode(cvs)]).map(|_| ()).map_err(|e| self.err(e))
    }

    /// The proof of a chunk's head, if recorded (unchecked: see
    /// `outboard::head_matches`).
    pub fn chunk_head(&self, chunk: &Hash) -> Result<Option<Vec<Cv>>> {
        self.cvs_row("chunk_heads", "chunk", chunk, outboard::HEAD_LOG)
    }

    /// Record the proof of a chunk's head (nothing for a chunk no longer than its head).
    pub fn put_chunk_head(&self, chunk: &Hash, proof: &[Cv]) -> Result<()> {
        self.put_cvs_row("chunk_heads", "chunk", chunk, proof, outboard::HEAD_LOG)
    }

    /// A chunk's block CVs, if recorded (unchecked: see `outboard::matches`).
    pub fn chunk_outboard(&self, chunk: &Hash) -> Result<Option<Vec<Cv>>> {
        self.outboard_row("chunk_outboards", "chunk", chunk)
    }

    /// Record a chunk's block CVs (nothing for a single-block chunk).
    pub fn put_chunk_outboard(&self, chunk: &Hash, cvs: &[Cv]) -> Result<()> {
        self.put_outboard_row("chunk_outboards", "chunk", chunk, cvs)
    }

    /// A file's block CVs, if recorded (unchecked: see `outboard::matches`).
    /// The whole list: for callers that know the file is small; others read
    /// `blob_outboard_blocks`.
    pub fn blob_outboard(&self, blob: &Hash) -> Result<Option<Vec<Cv>>> {
        match self.blob_outboard_pieces(blob, 0, i64::MAX)? {
            Some(cvs) => Ok(Some(cvs)),
            None => self.outboard_row("blob_outboards", "blob", blob),
        }
    }

    /// The CVs of blocks `first..first + count` of a file (fewer if the file
    /// has fewer), reading only the pieces that hold them; None if the file
    /// has no outboard or a piece of that range is missing.
    pub fn blob_outboard_blocks(&self, blob: &Hash, first: usize, count: usize) -> Result<Option<Vec<Cv>>> {
        if count == 0 {
            return Ok(Some(Vec::new()));
        }
        let (p0, p1) = (first / PIECE_CVS, (first + count - 1) / PIECE_CVS);
        let skip = first - p0 * PIECE_CVS;
        match self.blob_outboard_pieces(blob, p0 as i64, p1 as i64)? {
            Some(cvs) => Ok(Some(cvs.into_iter().skip(skip).take(count).collect())),
            None => Ok(self.outboard_row("blob_outboards", "blob", blob)?.map(|cvs| cvs.into_iter().skip(first).take(count).collect())),
        }
    }

    /// Piece `p` of a file's outboard as stored since outboards are kept in
    /// pieces (None if absent or not a valid piece): for a reader that walks a
    /// big file's outboard a piece at a time. Outboards of earlier versions
    /// (one `blob_outboards` row) are not read here; see `blob_outboard`.
    pub fn blob_outboard_piece(&self, blob: &Hash, p: usize) -> Result<Option<Vec<Cv>>> {
        self.blob_outboard_pieces(blob, p as i64, p as i64)
    }

    /// Pieces `p0..=p1` (those that exist) concatenated; None when there are
    /// none, or they are not consecutive full pieces from `p0` (a damaged or
    /// foreign outboard is "no outboard", never misread).
    fn blob_outboard_pieces(&self, blob: &Hash, p0: i64, p1: i64) -> Result<Option<Vec<Cv>>> {
        let st = self.conn.prepare_cached(
            "SELECT piece, block_log, cvs FROM blob_outboard_pieces WHERE blob = ?1 AND piece BETWEEN ?2 AND ?3 ORDER BY piece",
        );
        let mut st = match st {
            Ok(s) => s,
            Err(e) if no_table(&e) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let mut rows = st.query(params![&blob.0[..], p0, p1]).map_err(|e| self.err(e))?;
        let mut out: Vec<Cv> = Vec::new();
        let mut expect = p0;
        let mut last_short = false;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let (piece, log): (i64, i64) = (r.get(0).map_err(|e| self.err(e))?, r.get(1).map_err(|e| self.err(e))?);
            let bytes: Vec<u8> = r.get(2).map_err(|e| self.err(e))?;
            let Some(cvs) = outboard::decode(&bytes) else { return Ok(None) };
            if piece != expect || log != outboard::BLOCK_LOG as i64 || last_short || cvs.is_empty() || cvs.len() > PIECE_CVS {
                return Ok(None);
            }
            last_short = cvs.len() < PIECE_CVS;
            out.extend(cvs);
            expect += 1;
        }
        Ok(if expect == p0 { None } else { Some(out) })
    }

    /// Record a file's block CVs (nothing for a single-block file).
    pub fn put_blob_outboard(&self, blob: &Hash, cvs: &[Cv]) -> Result<()> {
        if cvs.is_empty() {
            return Ok(());
        }
        self.replace_blob_outboard(blob, |put| cvs.chunks(PIECE_CVS).enumerate().try_for_each(|(i, p)| put(i, p)))
    }

    /// Record a file's block CVs as ingest spooled them, a piece at a time.
    pub fn put_blob_outboard_spooled(&self, blob: &Hash, cvs: &mut SpooledCvs) -> Result<()> {
        if cvs.is_empty() {
            return Ok(());
        }
        let spill = self.path.clone();
        self.replace_blob_outboard(blob, |put| {
            cvs.for_each_piece(|i, p| put(i, p).map_err(PieceError::Catalog)).map_err(|e| match e {
                PieceError::Catalog(e) => e,
                PieceError::Io(source) => crate::archive::error::ArchiveError::Io { path: spill.clone(), source },
            })
        })
    }

    fn replace_blob_outboard(
        &self,
        blob: &Hash,
        write: impl FnOnce(&mut dyn FnMut(usize, &[Cv]) -> Result<()>) -> Result<()>,
    ) -> Result<()> {
        // Replacing: no piece or old-style row of an earlier outboard may outlive it.
        self.delete_outboards(&[(false, *blob)])?;
        let mut st = self
            .conn
            .prepare_cached("INSERT INTO blob_outboard_pieces (blob, piece, block_log, cvs) VALUES (?1, ?2, ?3, ?4)")
            .map_err(|e| self.err(e))?;
        let mut put = |i: usize, piece: &[Cv]| -> Result<()> {
            st.execute(params![&blob.0[..], i as i64, outboard::BLOCK_LOG as i64, outboard::encode(piece)])
                .map(|_| ())
                .map_err(|e| self.err(e))
        };
        write(&mut put)
    }

    /// Where ingest spills a big file's outboard while it hashes the file:
    /// the archive's own disk (its `cache/`, else the archive folder), never
    /// /tmp, which may be a small tmpfs.
    pub fn outboard_spill_dir(&self) -> Option<std::path::PathBuf> {
        let root = self.path.parent()?;
        let cache = root.join("cache");
        Some(if cache.is_dir() { cache } else { root.to_path_buf() })
    }

    /// Every recorded outboard with the length of what it covers, for
    /// `check --deep`: (is_chunk, id, len, block_log, cvs) to `f`.
    pub fn each_outboard(&self, mut f: impl FnMut(bool, Hash, u64, i64, &[u8])) -> Result<()> {
        for (is_chunk, sql) in [
            (true, "SELECT o.chunk, c.raw_len, o.block_log, o.cvs FROM chunk_outboards o JOIN chunks c ON c.hash = o.chunk"),
            (false, "SELECT o.blob, b.size, o.block_log, o.cvs FROM blob_outboards o JOIN blobs b ON b.hash = o.blob"),
        ] {
            let mut st = match self.conn.prepare(sql) {
                Ok(s) => s,
                Err(e) if no_table(&e) => return Ok(()),
                Err(e) => return Err(self.err(e)),
            };
            let mut rows = st.query([]).map_err(|e| self.err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let id: Vec<u8> = r.get(0).map_err(|e| self.err(e))?;
                let len: i64 = r.get(1).map_err(|e| self.err(e))?;
                let log: i64 = r.get(2).map_err(|e| self.err(e))?;
                let cvs: Vec<u8> = r.get(3).map_err(|e| self.err(e))?;
                f(is_chunk, Hash::from_slice(&id).unwrap_or(Hash([0; 32])), len as u64, log, &cvs);
            }
        }
        Ok(())
    }

    /// Every file outboard stored in pieces, piece by piece in order, for
    /// `check --deep` to verify with a merge stack (never a whole outboard in
    /// memory): (blob, file len, piece, block_log, cvs) to `f`.
    pub fn each_outboard_piece(&self, mut f: impl FnMut(Hash, u64, i64, i64, &[u8])) -> Result<()> {
        let sql = "SELECT p.blob, b.size, p.piece, p.block_log, p.cvs FROM blob_outboard_pieces p JOIN blobs b ON b.hash = p.blob ORDER BY p.blob, p.piece";
        let mut st = match self.conn.prepare(sql) {
            Ok(s) => s,
            Err(e) if no_table(&e) => return Ok(()),
            Err(e) => return Err(self.err(e)),
        };
        let mut rows = st.query([]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let id: Vec<u8> = r.get(0).map_err(|e| self.err(e))?;
            let len: i64 = r.get(1).map_err(|e| self.err(e))?;
            let piece: i64 = r.get(2).map_err(|e| self.err(e))?;
            let log: i64 = r.get(3).map_err(|e| self.err(e))?;
            let cvs = r.get_ref(4).map_err(|e| self.err(e))?.as_blob().map_err(|e| self.err(e.into()))?;
            f(Hash::from_slice(&id).unwrap_or(Hash([0; 32])), len as u64, piece, log, cvs);
        }
        Ok(())
    }

    /// Forget outboards found wrong (reads then verify those whole).
    /// Every chunk head proof of the current head size: (chunk, its CVs) to `f`.
    pub fn each_chunk_head(&self, mut f: impl FnMut(Hash, Vec<Cv>)) -> Result<()> {
        let mut st = match self.conn.prepare("SELECT chunk, cvs FROM chunk_heads WHERE block_log = ?1") {
            Ok(s) => s,
            Err(e) if no_table(&e) => return Ok(()),
            Err(e) => return Err(self.err(e)),
        };
        let mut rows = st.query([outboard::HEAD_LOG as i64]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let id: Vec<u8> = r.get(0).map_err(|e| self.err(e))?;
            let cvs: Vec<u8> = r.get(1).map_err(|e| self.err(e))?;
            // A row that is not whole CVs is a wrong proof: an empty list never matches.
            f(Hash::from_slice(&id).unwrap_or(Hash([0; 32])), outboard::decode(&cvs).unwrap_or_default());
        }
        Ok(())
    }

    pub fn delete_chunk_heads(&self, ids: &[Hash]) -> Result<()> {
        for id in ids {
            self.conn.execute("DELETE FROM chunk_heads WHERE chunk = ?1", [&id.0[..]]).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    pub fn delete_outboards(&self, ids: &[(bool, Hash)]) -> Result<()> {
        for (is_chunk, id) in ids {
            if *is_chunk {
                self.conn.execute("DELETE FROM chunk_outboards WHERE chunk = ?1", [&id.0[..]]).map_err(|e| self.err(e))?;
                continue;
            }
            for sql in ["DELETE FROM blob_outboards WHERE blob = ?1", "DELETE FROM blob_outboard_pieces WHERE blob = ?1"] {
                match self.conn.execute(sql, [&id.0[..]]) {
                    Ok(_) => {}
                    Err(e) if no_table(&e) => {}
                    Err(e) => return Err(self.err(e)),
                }
            }
        }
        Ok(())
    }
}

/// A piece's write failed in the catalog, or its read-back from the spill file.
enum PieceError {
    Catalog(crate::archive::error::ArchiveError),
    Io(std::io::Error),
}

impl From<std::io::Error> for PieceError {
    fn from(e: std::io::Error) -> Self {
        PieceError::Io(e)
    }
}

#[cfg(test)]
mod outboard_piece_tests {
    use super::*;

    fn cvs(n: usize) -> Vec<Cv> {
        (0..n as u64).map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes()).collect()
    }

    /// A file's outboard of three pieces, written from a spooled (spilled)
    /// list, reads back whole and by block range, and a replacement or a
    /// delete leaves no piece of it behind.
    #[test]
    fn a_several_piece_outboard_round_trips_whole_and_by_block_range() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("catalog.db"), true).unwrap();
        let all = cvs(2 * PIECE_CVS + 77);
        let blob = Hash([9; 32]);
        let mut sp = SpooledCvs::new(Some(dir.path().into()));
        for cv in &all {
            sp.push(*cv);
        }
        cat.put_blob_outboard_spooled(&blob, &mut sp).unwrap();
        let pieces: i64 =
            cat.conn.query_row("SELECT count(*) FROM blob_outboard_pieces WHERE blob = ?1", [&blob.0[..]], |r| r.get(0)).unwrap();
        assert_eq!(pieces, 3);
        assert_eq!(cat.blob_outboard(&blob).unwrap().unwrap(), all);
        let (first, count) = (PIECE_CVS - 5, PIECE_CVS + 10);
        assert_eq!(cat.blob_outboard_blocks(&blob, first, count).unwrap().unwrap(), all[first..first + count]);
        assert_eq!(cat.blob_outboard_blocks(&blob, 2 * PIECE_CVS + 70, 100).unwrap().unwrap(), all[2 * PIECE_CVS + 70..]);
        assert_eq!(cat.blob_outboard_blocks(&blob, 3 * PIECE_CVS, 1).unwrap(), None);

        // A shorter replacement drops the pieces it no longer has.
        cat.put_blob_outboard(&blob, &all[..PIECE_CVS + 1]).unwrap();
        assert_eq!(cat.blob_outboard(&blob).unwrap().unwrap(), all[..PIECE_CVS + 1]);
        cat.delete_outboards(&[(false, blob)]).unwrap();
        assert_eq!(cat.blob_outboard(&blob).unwrap(), None);
    }

    /// A catalog written by an earlier version (one `blob_outboards` row, no
    /// pieces table) reads unchanged, opened for writing or read-only.
    #[test]
    fn an_old_single_row_outboard_stays_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let all = cvs(300);
        let blob = Hash([5; 32]);
        {
            let cat = Catalog::open(&path, true).unwrap();
            cat.conn.execute_batch("DROP TABLE blob_outboard_pieces").unwrap();
            cat.put_outboard_row("blob_outboards", "blob", &blob, &all).unwrap();
        }
        let ro = Catalog::open_read_only(&path).unwrap();
        assert_eq!(ro.blob_outboard(&blob).unwrap().unwrap(), all);
        assert_eq!(ro.blob_outboard_blocks(&blob, 10, 5).unwrap().unwrap(), all[10..15]);
        drop(ro);
        let cat = Catalog::open(&path, false).unwrap();
        assert_eq!(cat.blob_outboard(&blob).unwrap().unwrap(), all);
        assert_eq!(cat.blob_outboard_blocks(&blob, 295, 50).unwrap().unwrap(), all[295..]);
        // A new outboard for it replaces the old row.
        cat.put_blob_outboard(&blob, &all[..3]).unwrap();
        let old: i64 = cat.conn.query_row("SELECT count(*) FROM blob_outboards", [], |r| r.get(0)).unwrap();
        assert_eq!((old, cat.blob_outboard(&blob).unwrap().unwrap()), (0, all[..3].to_vec()));
    }
}
