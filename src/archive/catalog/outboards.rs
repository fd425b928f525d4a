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
use crate::archive::outboard::{self, Cv};
use rusqlite::{params, OptionalExtension};

pub const OUTBOARD_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS chunk_outboards (chunk BLOB PRIMARY KEY, block_log INTEGER NOT NULL, cvs BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blob_outboards (blob BLOB PRIMARY KEY, block_log INTEGER NOT NULL, cvs BLOB NOT NULL) WITHOUT ROWID;
"#;

/// A catalog from before outboards, opened read-only, has not the tables:
/// that is "no outboard", not an error.
fn no_table(e: &rusqlite::Error) -> bool {
    e.to_string().contains("no such table")
}

impl Catalog {
    fn outboard_row(&self, table: &str, key: &str, id: &Hash) -> Result<Option<Vec<Cv>>> {
        let sql = format!("SELECT block_log, cvs FROM {table} WHERE {key} = ?1");
        let st = self.conn.prepare_cached(&sql);
        let mut st = match st {
            Ok(s) => s,
            Err(e) if no_table(&e) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let row: Option<(i64, Vec<u8>)> = st.query_row([&id.0[..]], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(|e| self.err(e))?;
        // Rows of another block size are ignored (as if absent), never misread.
        Ok(row.filter(|(log, _)| *log == outboard::BLOCK_LOG as i64).and_then(|(_, b)| outboard::decode(&b)))
    }

    fn put_outboard_row(&self, table: &str, key: &str, id: &Hash, cvs: &[Cv]) -> Result<()> {
        if cvs.is_empty() {
            return Ok(());
        }
        let sql = format!("INSERT OR REPLACE INTO {table} ({key}, block_log, cvs) VALUES (?1, ?2, ?3)");
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        st.execute(params![&id.0[..], outboard::BLOCK_LOG as i64, outboard::encode(cvs)]).map(|_| ()).map_err(|e| self.err(e))
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
    pub fn blob_outboard(&self, blob: &Hash) -> Result<Option<Vec<Cv>>> {
        self.outboard_row("blob_outboards", "blob", blob)
    }

    /// Record a file's block CVs (nothing for a single-block file).
    pub fn put_blob_outboard(&self, blob: &Hash, cvs: &[Cv]) -> Result<()> {
        self.put_outboard_row("blob_outboards", "blob", blob, cvs)
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

    /// Forget outboards found wrong (reads then verify those whole).
    pub fn delete_outboards(&self, ids: &[(bool, Hash)]) -> Result<()> {
        for (is_chunk, id) in ids {
            let sql = if *is_chunk { "DELETE FROM chunk_outboards WHERE chunk = ?1" } else { "DELETE FROM blob_outboards WHERE blob = ?1" };
            self.conn.execute(sql, [&id.0[..]]).map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}
