//! The tape catalog: named plans, the cartridges they lay out, and one row per
//! file (or part of a file) queued for, written to, or verified on a cartridge.
//! src/tape gives these rows meaning; this file only stores them.
//!
//! Unlike the rest of the catalog these rows cannot be rebuilt from the packs
//! (they describe tapes, not packs); `tape export` is their offline copy, and
//! every cartridge carries the whole set's catalog.

use super::Catalog;
use crate::archive::error::Result;
use crate::archive::objects::Hash;
use rusqlite::{params, OptionalExtension};

pub const TAPE_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tape_plans (
  name TEXT PRIMARY KEY, created_ns INTEGER NOT NULL, pool TEXT NOT NULL, generation TEXT NOT NULL,
  capacity INTEGER NOT NULL, usable INTEGER NOT NULL, copies INTEGER NOT NULL, selection TEXT NOT NULL);
-- state: planned, written (closed), full (closed early: end of medium or write error).
CREATE TABLE IF NOT EXISTS tape_cartridges (
  barcode TEXT PRIMARY KEY, plan TEXT NOT NULL, copy INTEGER NOT NULL, seq INTEGER NOT NULL,
  state TEXT NOT NULL, written_ns INTEGER, note TEXT);
-- One row per file or part on a cartridge, `ord` its write order there. state:
-- queued, written, verified, abandoned (a write error: not on the tape), bad
-- (failed verification). An abandoned or bad row stays as the record of what
-- happened; a fresh queued row for the same bytes goes to another cartridge.
CREATE TABLE IF NOT EXISTS tape_items (
  barcode TEXT NOT NULL, ord INTEGER NOT NULL, plan TEXT NOT NULL,
  tape_path TEXT NOT NULL, source TEXT NOT NULL, blob BLOB NOT NULL, file_size INTEGER NOT NULL,
  offset INTEGER NOT NULL, length INTEGER NOT NULL, part INTEGER NOT NULL, parts INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL, state TEXT NOT NULL,
  partition TEXT, start_block INTEGER, md5 TEXT, sha1 TEXT, xxh64 TEXT, blake3 TEXT,
  written_ns INTEGER, verified_ns INTEGER, note TEXT,
  PRIMARY KEY (barcode, ord)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tape_items_by_source ON tape_items(source);
CREATE INDEX IF NOT EXISTS tape_items_by_plan ON tape_items(plan);
-- `tape write` looks up the hashes an earlier cartridge took of the same content.
CREATE INDEX IF NOT EXISTS tape_items_by_blob ON tape_items(blob);
-- Content whose disk copy `tape release` freed: its chunks are no longer in
-- the packs (gc leaves them unmarked); blob, tree entries, media facts and
-- proxies stay. `barcodes` (comma-separated) is where it is, verified.
CREATE TABLE IF NOT EXISTS tape_released (
  blob BLOB PRIMARY KEY, barcodes TEXT NOT NULL, released_ns INTEGER NOT NULL) WITHOUT ROWID;
"#;

/// A stored plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TapePlanRow {
    pub name: String,
    pub created_ns: i64,
    pub pool: String,
    pub generation: String,
    /// Native capacity of one cartridge, bytes.
    pub capacity: u64,
    /// Capacity less the index reserve: what the plan fills.
    pub usable: u64,
    pub copies: u32,
    /// The BRANCH[/PATH] selections, JSON array.
    pub selection: String,
}

/// A cartridge of a plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CartridgeRow {
    pub barcode: String,
    pub plan: String,
    pub copy: u32,
    pub seq: u32,
    pub state: String,
    pub written_ns: Option<i64>,
    pub note: Option<String>,
}

/// One file or part queued for, or on, a cartridge.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TapeItemRow {
    pub barcode: String,
    pub ord: i64,
    pub plan: String,
    /// Where it sits on the cartridge (relative, `/`-separated).
    pub tape_path: String,
    /// `BRANCH/PATH` in the archive.
    pub source: String,
    #[serde(serialize_with = "hex_hash")]
    pub blob: Hash,
    pub file_size: u64,
    pub offset: u64,
    pub length: u64,
    pub part: u32,
    pub parts: u32,
    pub mtime_ns: i64,
    pub state: String,
    pub partition: Option<String>,
    pub start_block: Option<u64>,
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub xxh64: Option<String>,
    pub blake3: Option<String>,
    pub written_ns: Option<i64>,
    pub verified_ns: Option<i64>,
    pub note: Option<String>,
}

fn hex_hash<S: serde::Serializer>(h: &Hash, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&h.to_hex())
}

/// What a completed write recorded for an item.
#[derive(Debug, Clone, Default)]
pub struct ItemWritten {
    pub partition: String,
    pub start_block: u64,
    pub md5: String,
    pub xxh64: String,
    pub blake3: String,
    pub written_ns: i64,
}

const ITEM_COLUMNS: &str = "barcode, ord, plan, tape_path, source, blob, file_size, offset, length, part, parts, mtime_ns, state,
  partition, start_block, md5, sha1, xxh64, blake3, written_ns, verified_ns, note";

fn item_row(r: &rusqlite::Row) -> rusqlite::Result<TapeItemRow> {
    Ok(TapeItemRow {
        barcode: r.get(0)?,
        ord: r.get(1)?,
        plan: r.get(2)?,
        tape_path: r.get(3)?,
        source: r.get(4)?,
        blob: super::h(r.get(5)?),
        file_size: r.get::<_, i64>(6)? as u64,
        offset: r.get::<_, i64>(7)? as u64,
        length: r.get::<_, i64>(8)? as u64,
        part: r.get(9)?,
        parts: r.get(10)?,
        mtime_ns: r.get(11)?,
        state: r.get(12)?,
        partition: r.get(13)?,
        start_block: r.get::<_, Option<i64>>(14)?.map(|v| v as u64),
        md5: r.get(15)?,
        sha1: r.get(16)?,
        xxh64: r.get(17)?,
        blake3: r.get(18)?,
        written_ns: r.get(19)?,
        verified_ns: r.get(20)?,
        note: r.get(21)?,
    })
}

fn cartridge_row(r: &rusqlite::Row) -> rusqlite::Result<CartridgeRow> {
    Ok(CartridgeRow {
        barcode: r.get(0)?,
        plan: r.get(1)?,
        copy: r.get(2)?,
        seq: r.get(3)?,
        state: r.get(4)?,
        written_ns: r.get(5)?,
        note: r.get(6)?,
    })
}

const CARTRIDGE_COLUMNS: &str = "barcode, plan, copy, seq, state, written_ns, note";

impl Catalog {
    /// Create the tape tables (archives made before them get them on first use).
    pub fn ensure_tape_schema(&self) -> Result<()> {
        self.conn.execute_batch(TAPE_SCHEMA).map_err(|e| self.err(e))
    }

    pub fn insert_tape_plan(&self, p: &TapePlanRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO tape_plans (name, created_ns, pool, generation, capacity, usable, copies, selection)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![p.name, p.created_ns, p.pool, p.generation, p.capacity as i64, p.usable as i64, p.copies, p.selection],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn tape_plan(&self, name: &str) -> Result<Option<TapePlanRow>> {
        self.conn
            .query_row(
                "SELECT name, created_ns, pool, generation, capacity, usable, copies, selection FROM tape_plans WHERE name = ?1",
                [name],
                |r| {
                    Ok(TapePlanRow {
                        name: r.get(0)?,
                        created_ns: r.get(1)?,
                        pool: r.get(2)?,
                        generation: r.get(3)?,
                        capacity: r.get::<_, i64>(4)? as u64,
                        usable: r.get::<_, i64>(5)? as u64,
                        copies: r.get(6)?,
                        selection: r.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn tape_plan_names(&self) -> Result<Vec<String>> {
        let mut st = self.conn.prepare_cached("SELECT name FROM tape_plans ORDER BY created_ns, name").map_err(|e| self.err(e))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    pub fn insert_cartridge(&self, c: &CartridgeRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO tape_cartridges (barcode, plan, copy, seq, state, written_ns, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![c.barcode, c.plan, c.copy, c.seq, c.state, c.written_ns, c.note],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn cartridge(&self, barcode: &str) -> Result<Option<CartridgeRow>> {
        self.conn
            .query_row(&format!("SELECT {CARTRIDGE_COLUMNS} FROM tape_cartridges WHERE barcode = ?1"), [barcode], cartridge_row)
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Cartridges of one plan (or all, with `None`), by plan, copy, then sequence.
    pub fn cartridges(&self, plan: Option<&str>) -> Result<Vec<CartridgeRow>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {CARTRIDGE_COLUMNS} FROM tape_cartridges WHERE ?1 IS NULL OR plan = ?1 ORDER BY plan, copy, seq"
            ))
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([plan], cartridge_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Every barcode ever given (to number new ones after them).
    pub fn barcodes(&self) -> Result<Vec<String>> {
        let mut st = self.conn.prepare_cached("SELECT barcode FROM tape_cartridges").map_err(|e| self.err(e))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    pub fn set_cartridge_state(&self, barcode: &str, state: &str, written_ns: Option<i64>, note: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE tape_cartridges SET state = ?2, written_ns = COALESCE(?3, written_ns), note = COALESCE(?4, note) WHERE barcode = ?1",
                params![barcode, state, written_ns, note],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn insert_tape_item(&self, i: &TapeItemRow) -> Result<()> {
        self.conn
            .execute(
                &format!("INSERT INTO tape_items ({ITEM_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"),
                params![
                    i.barcode,
                    i.ord,
                    i.plan,
                    i.tape_path,
                    i.source,
                    &i.blob.0[..],
                    i.file_size as i64,
                    i.offset as i64,
                    i.length as i64,
                    i.part,
                    i.parts,
                    i.mtime_ns,
                    i.state,
                    i.partition,
                    i.start_block.map(|v| v as i64),
                    i.md5,
                    i.sha1,
                    i.xxh64,
                    i.blake3,
                    i.written_ns,
                    i.verified_ns,
                    i.note
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The items of one cartridge in write order.
    pub fn tape_items_on(&self, barcode: &str) -> Result<Vec<TapeItemRow>> {
        self.items_where("barcode = ?1 ORDER BY ord", barcode)
    }

    /// The items of one plan, by cartridge and write order.
    pub fn tape_items_of_plan(&self, plan: &str) -> Result<Vec<TapeItemRow>> {
        self.items_where("plan = ?1 ORDER BY barcode, ord", plan)
    }

    /// Every item whose source is `source` (`BRANCH/PATH`), any cartridge.
    pub fn tape_items_of_source(&self, source: &str) -> Result<Vec<TapeItemRow>> {
        self.items_where("source = ?1 ORDER BY barcode, part, ord", source)
    }

    /// Items whose content is `blob`, any cartridge.
    pub fn tape_items_of_blob(&self, blob: &Hash) -> Result<Vec<TapeItemRow>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT {ITEM_COLUMNS} FROM tape_items WHERE blob = ?1 ORDER BY barcode, ord"))
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([&blob.0[..]], item_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    fn items_where(&self, clause: &str, arg: &str) -> Result<Vec<TapeItemRow>> {
        // `clause` is one of this module's constants, never input.
        let mut st = self.conn.prepare_cached(&format!("SELECT {ITEM_COLUMNS} FROM tape_items WHERE {clause}")).map_err(|e| self.err(e))?;
        let rows = st.query_map([arg], item_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Lowest and highest write order on a cartridge (None when it has no items).
    pub fn tape_item_ord_range(&self, barcode: &str) -> Result<Option<(i64, i64)>> {
        self.conn
            .query_row("SELECT MIN(ord), MAX(ord) FROM tape_items WHERE barcode = ?1", [barcode], |r| {
                Ok(match (r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?) {
                    (Some(a), Some(b)) => Some((a, b)),
                    _ => None,
                })
            })
            .map_err(|e| self.err(e))
    }

    /// Record a completed write of an item.
    pub fn set_tape_item_written(&self, barcode: &str, ord: i64, w: &ItemWritten) -> Result<()> {
        self.conn
            .execute(
                "UPDATE tape_items SET state = 'written', partition = ?3, start_block = ?4, md5 = ?5, sha1 = NULL, xxh64 = ?6,
                   blake3 = ?7, written_ns = ?8, note = NULL WHERE barcode = ?1 AND ord = ?2",
                params![barcode, ord, w.partition, w.start_block as i64, w.md5, w.xxh64, w.blake3, w.written_ns],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Set an item's state, with a note saying why (None keeps the old note).
    pub fn set_tape_item_state(&self, barcode: &str, ord: i64, state: &str, note: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE tape_items SET state = ?3, note = COALESCE(?4, note) WHERE barcode = ?1 AND ord = ?2",
                params![barcode, ord, state, note],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn set_tape_item_verified(&self, barcode: &str, ord: i64, verified_ns: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE tape_items SET state = 'verified', verified_ns = ?3, note = NULL WHERE barcode = ?1 AND ord = ?2",
                params![barcode, ord, verified_ns],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

impl Catalog {
    /// Record `blob` as released to tape (its chunks leave the packs at the next gc).
    pub fn set_released(&self, blob: &Hash, barcodes: &str, released_ns: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO tape_released (blob, barcodes, released_ns) VALUES (?1, ?2, ?3)",
                params![&blob.0[..], barcodes, released_ns],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Content back on disk (recalled): no longer released.
    pub fn clear_released(&self, blob: &Hash) -> Result<()> {
        self.conn.execute("DELETE FROM tape_released WHERE blob = ?1", [&blob.0[..]]).map(|_| ()).map_err(|e| self.err(e))
    }

    /// The cartridges holding `blob` when its disk copy was released; None when
    /// it was not (or the archive has never had tape tables).
    pub fn released(&self, blob: &Hash) -> Result<Option<String>> {
        if !self.has_released_table()? {
            return Ok(None);
        }
        self.conn
            .query_row("SELECT barcodes FROM tape_released WHERE blob = ?1", [&blob.0[..]], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every released blob.
    pub fn released_blobs(&self) -> Result<std::collections::HashSet<Hash>> {
        if !self.has_released_table()? {
            return Ok(Default::default());
        }
        let mut st = self.conn.prepare("SELECT blob FROM tape_released").map_err(|e| self.err(e))?;
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0)).map_err(|e| self.err(e))?;
        let mut out = std::collections::HashSet::new();
        for r in rows {
            let v = r.map_err(|e| self.err(e))?;
            if let Ok(a) = <[u8; 32]>::try_from(v.as_slice()) {
                out.insert(Hash(a));
            }
        }
        Ok(out)
    }

    pub fn has_released_table(&self) -> Result<bool> {
        self.conn
            .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tape_released'", [], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(|e| self.err(e))
    }
}
