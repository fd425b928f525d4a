//! Reading an index's interior B-tree pages ahead of use.
//!
//! A cold lookup descends the index from its root: at 100 TB the path index
//! (`tree_entries`) is four pages deep where at 1 TB it is three, and the
//! pages above the leaves are scattered over a 6 GB file, so every path
//! component a fresh mount looks up waited for two or three dependent disk
//! reads. The interior pages are a small part of an index (864 of 28,793
//! pages for `tree_entries` at 100 TB, 3.4 MB); read once when a mount
//! starts, they are in the page cache, and a lookup's one cold read is its
//! leaf, at any archive size. Pages are read through SQLite's `sqlite_dbpage`
//! table (the build enables it: `.cargo/config.toml`), never by opening the
//! catalog file another way (closing such a descriptor would drop SQLite's
//! locks: see `fs::mount`).
//!
//! The chunk and extent indexes are far larger (a row per chunk, 24 M at
//! 100 TB: thousands of interior pages), so of those only the levels above
//! the lowest interior one are read (tens of pages): a cold open's extent row
//! and chunk location then cost two reads each, at 1 TB as at 100 TB, where
//! they cost three and four.

use super::Catalog;
use crate::archive::error::Result;
use rusqlite::OptionalExtension;

/// B-tree page types (the first byte of a page's header).
const INTERIOR_INDEX: u8 = 0x02;
const INTERIOR_TABLE: u8 = 0x05;

/// Which of an index's interior levels to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Levels {
    /// Every interior page.
    Interior,
    /// Every interior page but those of the lowest interior level (the
    /// parents of the leaves, nearly all of an index's interior pages).
    AboveLowestInterior,
}

/// Most path-index pages a start reads: 864 (3.4 MB) at 100 TB; this bound
/// (64 MiB) is reached near 1 PB.
const PATH_INDEX_PAGES: usize = 16_384;
/// Most pages read of each chunk and extent index.
const CHUNK_INDEX_PAGES: usize = 1_024;

impl Catalog {
    /// Before a mount or server takes its first request: the indexes a cold
    /// open and first read descend (path, extents, chunk locations), as
    /// described above. Returns the pages read.
    /// Each index is tried whatever became of the others; the first error
    /// is returned after.
    pub fn read_lookup_indexes_ahead(&self) -> Result<usize> {
        let mut n = 0;
        let mut failed = None;
        for (index, levels, max) in [
            ("tree_entries", Levels::Interior, PATH_INDEX_PAGES),
            ("extents", Levels::AboveLowestInterior, CHUNK_INDEX_PAGES),
            ("chunks", Levels::AboveLowestInterior, CHUNK_INDEX_PAGES),
        ] {
            match self.read_interior_pages(index, levels, max) {
                Ok(k) => n += k,
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        failed.map_or(Ok(n), Err)
    }

    /// Before a server's first request, on the connection that looks chunk
    /// heads up: every interior page of their index (a row per file, so a
    /// small index), so a first piece's proof costs one cold read, its leaf.
    pub fn read_head_index_ahead(&self) -> Result<usize> {
        self.read_interior_pages("chunk_heads", Levels::Interior, CHUNK_INDEX_PAGES)
    }

    /// Read the interior pages of `index`'s B-tree (a table or index by
    /// name) that `levels` names, level by level; of its leaves only the
    /// leftmost, which finding the depth reaches. At most `max_pages` (not
    /// counting the depth probe). Returns how many were read.
    pub(crate) fn read_interior_pages(&self, index: &str, levels: Levels, max_pages: usize) -> Result<usize> {
        let err = |e| self.err(e);
        let root: Option<i64> =
            self.conn.query_row("SELECT rootpage FROM sqlite_schema WHERE name = ?1", [index], |r| r.get(0)).optional().map_err(err)?;
        let Some(root) = root.filter(|r| *r > 0) else { return Ok(0) };
        let mut page = self.conn.prepare("SELECT data FROM sqlite_dbpage WHERE pgno = ?1").map_err(err)?;
        let mut read = |pgno: i64| -> Result<Vec<u8>> { page.query_row([pgno], |r| r.get::<_, Vec<u8>>(0)).map_err(err) };
        // The depth, down the leftmost path: the children of the last
        // interior level are leaves, which are not read.
        let mut depth: usize = 0;
        let mut at = root;
        loop {
            let p = read(at)?;
            match children(&p, at == 1).first() {
                Some(c) => {
                    at = *c;
                    depth += 1;
                }
                None => break,
            }
        }
        if levels == Levels::AboveLowestInterior {
            depth = depth.saturating_sub(1);
        }
        let mut level = vec![root];
        let mut done = 0;
        for _ in 0..depth {
            let mut next = Vec::new();
            level.sort_unstable();
            for pgno in level {
                if done >= max_pages {
                    return Ok(done);
                }
                next.extend(children(&read(pgno)?, pgno == 1));
                done += 1;
            }
            level = next;
        }
        Ok(done)
    }
}

/// The child page numbers of an interior B-tree page (none for a leaf or a
/// page that does not parse). Page 1 starts with the 100-byte file header.
fn children(p: &[u8], first_page: bool) -> Vec<i64> {
    let at = if first_page { 100 } else { 0 };
    let Some(&kind) = p.get(at) else { return Vec::new() };
    if kind != INTERIOR_INDEX && kind != INTERIOR_TABLE {
        return Vec::new();
    }
    let u16_at = |i: usize| p.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize);
    let u32_at = |i: usize| p.get(i..i + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64);
    let Some(cells) = u16_at(at + 3) else { return Vec::new() };
    let mut out: Vec<i64> = (0..cells).filter_map(|i| u16_at(at + 12 + 2 * i).and_then(u32_at)).collect();
    out.extend(u32_at(at + 8));
    out.retain(|c| *c > 0);
    out
}

#[cfg(test)]
mod tests {
    use super::Levels;
    use crate::archive::objects::{EntryKind, Hash, TreeEntry};
    use crate::archive::repo::Archive;

    #[test]
    fn the_interior_pages_of_a_deep_index_are_read_and_its_leaves_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::init(&dir.path().join("arch")).unwrap();
        // Enough folders for a three-level tree_entries (4 KiB pages).
        for t in 0..400u32 {
            let entries: Vec<TreeEntry> = (0..40u32)
                .map(|i| TreeEntry {
                    name: format!("C{i:04}.mov"),
                    kind: EntryKind::File,
                    hash: Hash::of(format!("{t}/{i}").as_bytes()),
                    size: 1,
                    mode: 0o644,
                    mtime_ns: 0,
                    owner: None,
                    extra: Default::default(),
                })
                .collect();
            a.catalog.insert_tree(&Hash::of(&t.to_le_bytes()), &entries).unwrap();
        }
        let (leaves, interior): (i64, i64) = a
            .catalog
            .conn
            .query_row("SELECT SUM(pagetype = 'leaf'), SUM(pagetype = 'internal') FROM dbstat WHERE name = 'tree_entries'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert!(interior > 1 && leaves > interior * 10, "{interior} interior, {leaves} leaves");
        assert_eq!(a.catalog.read_interior_pages("tree_entries", Levels::Interior, usize::MAX).unwrap() as i64, interior);
        assert_eq!(a.catalog.read_interior_pages("tree_entries", Levels::Interior, 1).unwrap(), 1);
        assert_eq!(a.catalog.read_interior_pages("no_such_table", Levels::Interior, 10).unwrap(), 0);
        // Above the lowest interior level: the interior pages whose children
        // are not leaves (dbstat's path has one '/' more a level down).
        let above: i64 = a
            .catalog
            .conn
            .query_row(
                "WITH p AS (SELECT length(path) - length(replace(path, '/', '')) AS d, pagetype FROM dbstat WHERE name = 'tree_entries')
                 SELECT COUNT(*) FROM p WHERE pagetype = 'internal' AND d < (SELECT MAX(d) FROM p WHERE pagetype = 'internal')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(above >= 1 && above < interior, "{above} of {interior}");
        assert_eq!(a.catalog.read_interior_pages("tree_entries", Levels::AboveLowestInterior, usize::MAX).unwrap() as i64, above);
        // The start's reading: at least the path index's interior pages.
        assert!(a.catalog.read_lookup_indexes_ahead().unwrap() as i64 >= interior);
    }
}
