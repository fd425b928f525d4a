//! `PackWriter`: the one way records reach packs — ingest, metadata writes
//! (`write_objects`), writes through the mount (`stage_write`, commits of
//! staged changes) and gc's compaction all append through it.
//!
//! It numbers and names new packs, encodes records (pack.rs), rotates to a new
//! pack at the configured size, seals each pack durably (the fsync runs on a
//! thread so a long ingest keeps streaming while the previous pack reaches the
//! disk) and, on failure, gives back everything it wrote. The caller indexes
//! the records in its catalog transaction and commits only after `finish`: the
//! rule of the archive (archive/mod.rs).

use super::error::{ArchiveError, Result};
use super::objects::{Hash, RecordKind};
use super::pack::{self, RecordLoc, CODEC_ZSTD};
use super::pack_store::{PackStore, PackUpload};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A pack this writer sealed: durable once `finish` has returned.
#[derive(Debug, Clone)]
pub struct SealedPack {
    pub id: i64,
    pub name: String,
    pub size: u64,
    /// The records its trailer lists, in order.
    pub records: Vec<RecordLoc>,
}

struct OpenPack {
    id: i64,
    name: String,
    upload: Box<dyn PackUpload>,
    entries: Vec<RecordLoc>,
}

/// Where a writer stood when a unit of work (one source file) began; see
/// `PackWriter::mark` and `rollback_to`.
#[derive(Debug, Clone, Copy)]
pub struct WriterMark {
    next_id: i64,
    /// The pack open at the mark, and how many records it held.
    open: Option<(i64, usize)>,
}

pub struct PackWriter {
    store: Arc<dyn PackStore>,
    next_id: i64,
    target: u64,
    open: Option<OpenPack>,
    /// Sealed packs whose fsync may still be running.
    sealing: Vec<(SealedPack, JoinHandle<Result<u64>>)>,
    /// Sealed packs known durable.
    sealed: Vec<SealedPack>,
}

impl PackWriter {
    /// A writer whose first pack is number `first_id`, rotating once a pack
    /// reaches `target` bytes.
    pub fn new(store: Arc<dyn PackStore>, first_id: i64, target: u64) -> PackWriter {
        PackWriter { store, next_id: first_id, target, open: None, sealing: Vec::new(), sealed: Vec::new() }
    }

    fn open(&mut self) -> Result<&mut OpenPack> {
        if self.open.is_none() {
            let name = pack::pack_rel_path(self.next_id);
            let mut upload = self.store.begin(&name)?;
            upload.write(&pack::encode_header())?;
            self.open = Some(OpenPack { id: self.next_id, name, upload, entries: Vec::new() });
            self.next_id += 1;
        }
        self.open.as_mut().ok_or_else(|| ArchiveError::Invalid("internal: no open pack".into()))
    }

    /// Append one record; `stored` is the payload as written (compressed or
    /// not). Returns the pack it went to and where.
    pub fn append(&mut self, kind: RecordKind, codec: u8, id: Hash, raw_len: usize, stored: &[u8]) -> Result<(i64, RecordLoc)> {
        let target = self.target;
        let p = self.open()?;
        let loc = RecordLoc { kind, codec, raw_len: raw_len as u32, stored_len: stored.len() as u32, offset: p.upload.size(), id };
        p.upload.write(&pack::encode_record_header(&loc))?;
        p.upload.write(stored)?;
        p.entries.push(loc);
        let pack = p.id;
        if p.upload.size() >= target {
            self.seal_open()?;
        }
        Ok((pack, loc))
    }

    /// Append a metadata object, always zstd-compressed (JSON compresses well).
    pub fn append_object(&mut self, kind: RecordKind, raw: &[u8]) -> Result<(i64, RecordLoc)> {
        let stored = zstd::bulk::compress(raw, 3).map_err(|e| ArchiveError::Invalid(format!("internal: zstd: {e}")))?;
        self.append(kind, CODEC_ZSTD, Hash::of(raw), raw.len(), &stored)
    }

    /// Seal the open pack (if any): trailer and footer now, the fsync on a
    /// thread that `finish` waits for.
    pub fn seal_open(&mut self) -> Result<()> {
        let Some(mut p) = self.open.take() else { return Ok(()) };
        let tail = pack::encode_tail(&p.entries, p.upload.size());
        p.upload.write(&tail)?;
        let size = p.upload.size();
        let upload = p.upload;
        let handle = std::thread::spawn(move || upload.seal());
        self.sealing.push((SealedPack { id: p.id, name: p.name, size, records: p.entries }, handle));
        Ok(())
    }

    /// Seal the open pack and wait until every pack of this writer is durable.
    /// Returns them all; the caller may now commit catalog rows pointing
    /// into them. On error, call `abort`.
    pub fn finish(&mut self) -> Result<&[SealedPack]> {
        self.seal_open()?;
        // Wait for every seal even after one failed: a seal still running
        // when we returned would finish after `abort` and leave its pack behind.
        let mut first_err = None;
        for (p, h) in std::mem::take(&mut self.sealing) {
            let r = h.join().map_err(|_| ArchiveError::Invalid("internal: pack seal thread panicked".into()));
            if let Err(e) = r.and_then(|r| r) {
                first_err.get_or_insert(e);
            }
            // Sealed or not, still this writer's to remove on `abort`.
            self.sealed.push(p);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(&self.sealed),
        }
    }

    /// The packs `finish` made durable.
    pub fn sealed(&self) -> &[SealedPack] {
        &self.sealed
    }

    /// Give back every pack this writer began: the open one is aborted,
    /// sealed ones deleted. For when the catalog transaction will not commit.
    pub fn abort(&mut self) {
        if let Some(p) = self.open.take() {
            let _ = p.upload.abort();
        }
        for (p, h) in std::mem::take(&mut self.sealing) {
            let _ = h.join();
            let _ = self.store.delete(&p.name);
        }
        for p in std::mem::take(&mut self.sealed) {
            let _ = self.store.delete(&p.name);
        }
    }

    /// Note where a unit of work of about `expected` bytes begins. A large
    /// unit starts in a pack of its own (the open pack is sealed first), so
    /// that if it fails, `rollback_to` aborts whole packs and it costs no
    /// space; a small one shares the open pack and, if it fails, leaves at
    /// most that many dead bytes in it for gc.
    pub fn mark(&mut self, expected: u64) -> Result<WriterMark> {
        if expected > self.target / 8 && self.open.as_ref().is_some_and(|p| !p.entries.is_empty()) {
            self.seal_open()?;
        }
        Ok(WriterMark { next_id: self.next_id, open: self.open.as_ref().map(|p| (p.id, p.entries.len())) })
    }

    /// Forget what was written since `m`: packs begun since then hold nothing
    /// else and are aborted (or deleted if already sealed); records appended
    /// to the pack open at the mark are left out of its trailer, dead bytes
    /// for gc. (If that pack was sealed meanwhile its trailer lists them:
    /// unreferenced, harmless.) Nothing is truncated: a pack only grows
    /// until it is sealed, as an object store or a tape requires.
    pub fn rollback_to(&mut self, m: WriterMark) -> Result<()> {
        if self.open.as_ref().is_some_and(|p| p.id >= m.next_id) {
            if let Some(p) = self.open.take() {
                p.upload.abort()?;
            }
        }
        let (drop_now, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sealing).into_iter().partition(|(p, _)| p.id >= m.next_id);
        self.sealing = keep;
        for (p, h) in drop_now {
            let _ = h.join();
            self.store.delete(&p.name)?;
        }
        let (drop_now, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sealed).into_iter().partition(|p| p.id >= m.next_id);
        self.sealed = keep;
        for p in drop_now {
            self.store.delete(&p.name)?;
        }
        self.next_id = m.next_id;
        if let (Some((id, n)), Some(p)) = (m.open, self.open.as_mut()) {
            if p.id == id {
                p.entries.truncate(n);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::pack::{read_record, read_trailer, scan_records, CODEC_RAW, HEADER_LEN, RECORD_HEADER_LEN};
    use crate::archive::pack_store::LocalPackStore;
    use crate::archive::pack_store_mem::MemPackStore;

    fn local() -> (tempfile::TempDir, Arc<dyn PackStore>) {
        let dir = tempfile::tempdir().unwrap();
        let s: Arc<dyn PackStore> = Arc::new(LocalPackStore::new(dir.path().join("packs")));
        (dir, s)
    }

    #[test]
    fn seal_then_read_trailer_and_scan_agree() {
        let (_d, store) = local();
        let mut w = PackWriter::new(store.clone(), 1, 1 << 30);
        let data = b"hello world".repeat(100);
        let id = Hash::of(&data);
        w.append(RecordKind::Chunk, CODEC_RAW, id, data.len(), &data).unwrap();
        w.append_object(RecordKind::Tree, b"{\"entries\":[]}").unwrap();
        let sealed = w.finish().unwrap().to_vec();
        assert_eq!(sealed.len(), 1);
        let (name, entries) = (&sealed[0].name, &sealed[0].records);
        assert_eq!(name, "01/00000001.pack");
        let f = store.open(name).unwrap();
        assert_eq!(f.len(), sealed[0].size);
        let t = read_trailer(&*f, name).unwrap();
        assert_eq!(&t, entries);
        assert_eq!(&scan_records(&*f, name).unwrap(), entries);
        assert_eq!(read_record(&*f, name, &t[0]).unwrap(), data);
        assert_eq!(read_record(&*f, name, &t[1]).unwrap(), b"{\"entries\":[]}");
    }

    #[test]
    fn flipped_byte_is_detected() {
        let store = MemPackStore::new();
        let mut w = PackWriter::new(Arc::new(store.clone()), 1, 1 << 30);
        let data = vec![7u8; 5000];
        w.append(RecordKind::Chunk, CODEC_RAW, Hash::of(&data), data.len(), &data).unwrap();
        let p = w.finish().unwrap()[0].clone();
        let mut bytes = store.bytes(&p.name).unwrap();
        bytes[(HEADER_LEN + RECORD_HEADER_LEN + 100) as usize] ^= 1;
        store.put(&p.name, bytes);
        let f = store.open(&p.name).unwrap();
        assert!(matches!(read_record(&*f, &p.name, &p.records[0]), Err(ArchiveError::Damaged { .. })));
    }

    #[test]
    fn unsealed_pack_scans_but_has_no_trailer() {
        // A writer killed before sealing leaves a local pack with records and no trailer.
        let (dir, store) = local();
        let data = vec![1u8; 100];
        let loc =
            RecordLoc { kind: RecordKind::Chunk, codec: CODEC_RAW, raw_len: 100, stored_len: 100, offset: HEADER_LEN, id: Hash::of(&data) };
        let mut bytes = pack::encode_header().to_vec();
        bytes.extend_from_slice(&pack::encode_record_header(&loc));
        bytes.extend_from_slice(&data);
        std::fs::create_dir_all(dir.path().join("packs/01")).unwrap();
        std::fs::write(dir.path().join("packs/01/00000001.pack"), &bytes).unwrap();
        let f = store.open("01/00000001.pack").unwrap();
        assert!(read_trailer(&*f, "p").is_err());
        assert_eq!(scan_records(&*f, "p").unwrap().len(), 1);
    }

    #[test]
    fn packs_rotate_at_the_target_size_and_abort_removes_them_all() {
        let store = MemPackStore::new();
        let mut w = PackWriter::new(Arc::new(store.clone()), 5, 1000);
        for i in 0..5u8 {
            let data = vec![i; 1000];
            let (pack, _) = w.append(RecordKind::Chunk, CODEC_RAW, Hash::of(&data), 1000, &data).unwrap();
            assert_eq!(pack, 5 + i as i64, "each 1000-byte record fills a 1000-byte pack");
        }
        let names: Vec<String> = w.finish().unwrap().iter().map(|p| p.name.clone()).collect();
        assert_eq!(names.len(), 5);
        assert_eq!(store.list().unwrap(), names);
        w.abort();
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn rollback_aborts_the_packs_a_failed_unit_began_and_keeps_the_rest() {
        let store = MemPackStore::new();
        let mut w = PackWriter::new(Arc::new(store.clone()), 1, 1000);
        let small = vec![1u8; 50];
        w.append(RecordKind::Chunk, CODEC_RAW, Hash::of(&small), 50, &small).unwrap();
        // A large unit starts its own pack, so pack 1 (the small record) is sealed first.
        let m = w.mark(900).unwrap();
        for i in 0..3u8 {
            let d = vec![i + 2; 700];
            w.append(RecordKind::Chunk, CODEC_RAW, Hash::of(&d), 700, &d).unwrap();
        }
        w.rollback_to(m).unwrap();
        // A small unit shares the open pack; rolled back, it is not in the trailer.
        let after = vec![9u8; 40];
        w.append(RecordKind::Chunk, CODEC_RAW, Hash::of(&after), 40, &after).unwrap();
        let m = w.mark(10).unwrap();
        let dead = vec![8u8; 30];
        w.append(RecordKind::Chunk, CODEC_RAW, Hash::of(&dead), 30, &dead).unwrap();
        w.rollback_to(m).unwrap();
        let sealed = w.finish().unwrap().to_vec();
        let ids: Vec<i64> = sealed.iter().map(|p| p.id).collect();
        assert_eq!(ids, vec![1, 2], "the failed unit's pack numbers are given back");
        assert_eq!(store.list().unwrap(), vec!["01/00000001.pack".to_string(), "02/00000002.pack".to_string()]);
        let f = store.open("02/00000002.pack").unwrap();
        let t = read_trailer(&*f, "p").unwrap();
        assert_eq!(t.iter().map(|l| l.id).collect::<Vec<_>>(), vec![Hash::of(&after)]);
        assert_eq!(store.uploads(), (4, 1), "pack 3 was aborted while open; pack 2, sealed, was deleted and its number reused");
        // The small unit's record is still in the pack's bytes, dead: nothing was cut.
        let bytes = store.bytes("02/00000002.pack").unwrap();
        assert!(bytes.windows(30).any(|w| w == &dead[..]));
    }

    #[test]
    fn a_failed_seal_is_an_error_and_abort_leaves_nothing() {
        let store = MemPackStore::new();
        store.fail_seals_after(0);
        let mut w = PackWriter::new(Arc::new(store.clone()), 1, 1 << 20);
        let d = vec![3u8; 10];
        w.append(RecordKind::Chunk, CODEC_RAW, Hash::of(&d), 10, &d).unwrap();
        let err = w.finish().unwrap_err();
        assert!(err.to_string().contains("could not be sealed"), "{err}");
        w.abort();
        assert!(store.list().unwrap().is_empty());
    }
}
