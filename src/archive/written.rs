//! Bytes written through a mount, made into chunks: the CPU part (content-
//! defined cuts, BLAKE3 ids and outboards, compression) needs no catalog and
//! no lock, so the mount's background flusher runs it while the writer
//! connection serves other requests; `Archive::store_written` then appends
//! the chunks to a pack, fsyncs it and indexes them.

use super::config::Config;
use super::error::{ArchiveError, Result};
use super::objects::{Extent, Hash, RecordKind};
use super::outboard::Cv;
use super::pack::{CODEC_RAW, CODEC_ZSTD};
use super::repo::Archive;
use super::staging::MAX_FILE_SIZE;

/// One new chunk, ready to append: its id, raw length, codec and stored bytes.
pub struct PreparedChunk {
    pub id: Hash,
    pub raw_len: usize,
    pub codec: u8,
    pub stored: Stored,
    pub outboard: Vec<Cv>,
    /// The proof of its head when it begins the file (`outboard::head_proof`).
    pub head: Vec<Cv>,
}

/// Where a prepared chunk's stored bytes are. A raw chunk stays where it was
/// written: camera media rarely compresses, and copying each 64 MiB buffer
/// once more before the pack write cost a memory pass and a page fault per
/// 4 KiB (profiled on the mount's write path). Naming the bytes by position,
/// not by reference, lets a prepared write travel to another thread beside
/// the buffer it came from.
pub enum Stored {
    /// zstd-compressed bytes.
    Compressed(Vec<u8>),
    /// Bytes `at..at + raw_len` of written run number `run`.
    Raw { run: usize, at: usize },
}

/// Written runs cut into chunks: the extents they make (to lay over the
/// file's old extents) and the chunks those extents need.
pub struct PreparedWrite {
    pub pieces: Vec<Extent>,
    pub chunks: Vec<PreparedChunk>,
}

/// Cut, hash and compress written runs (offset, bytes). Big writes are cut
/// content-defined too, so a file written through the mount deduplicates like
/// an ingested one.
pub fn prepare_written(config: &Config, writes: &[(u64, &[u8])]) -> Result<PreparedWrite> {
    if writes.iter().any(|(o, d)| o.checked_add(d.len() as u64).is_none_or(|end| end > MAX_FILE_SIZE)) {
        return Err(ArchiveError::Invalid(format!("a file may not be longer than {MAX_FILE_SIZE} bytes")));
    }
    let cdc = &config.chunker;
    let mut pieces = Vec::new();
    let mut chunks: Vec<PreparedChunk> = Vec::new();
    for (run, (off, data)) in writes.iter().enumerate() {
        for c in fastcdc::v2020::FastCDC::with_level_and_seed(
            data,
            cdc.min_size,
            cdc.avg_size,
            cdc.max_size,
            fastcdc::v2020::Normalization::Level1,
            cdc.seed,
        ) {
            let bytes = &data[c.offset..c.offset + c.length];
            let (id, outboard) = super::outboard::hash_with_outboard(bytes);
            pieces.push(Extent { file_offset: off + c.offset as u64, length: c.length as u64, chunk: id, chunk_offset: 0 });
            let begins_file = off + c.offset as u64 == 0;
            if let Some(p) = chunks.iter_mut().find(|p| p.id == id) {
                if begins_file && p.head.is_empty() {
                    p.head = super::outboard::head_proof(bytes, &p.outboard);
                }
                continue;
            }
            let head = if begins_file { super::outboard::head_proof(bytes, &outboard) } else { Vec::new() };
            let (codec, stored) = match super::ingest::compress_if_it_pays(bytes, config.compression.policy, config.compression.level) {
                Some(z) => (CODEC_ZSTD, Stored::Compressed(z)),
                None => (CODEC_RAW, Stored::Raw { run, at: c.offset }),
            };
            chunks.push(PreparedChunk { id, raw_len: bytes.len(), codec, stored, outboard, head });
        }
    }
    chunks.sort_by_key(|c| c.id);
    Ok(PreparedWrite { pieces, chunks })
}

impl PreparedChunk {
    /// The bytes to append to a pack: `writes` must be the runs this chunk
    /// was prepared from.
    pub fn stored_bytes<'a>(&'a self, writes: &[(u64, &'a [u8])]) -> Result<&'a [u8]> {
        match &self.stored {
            Stored::Compressed(z) => Ok(z),
            Stored::Raw { run, at } => writes
                .get(*run)
                .and_then(|(_, d)| d.get(*at..at + self.raw_len))
                .ok_or_else(|| ArchiveError::Inconsistent("internal: a prepared chunk is not in the runs it was cut from".into())),
        }
    }
}

impl Archive {
    /// Store prepared chunks the catalog does not have yet. The rule of the
    /// archive holds: the pack is fsynced before the rows pointing into it are
    /// committed. Nothing refers to the chunks until a staged extent list does
    /// (`stage_pieces`), which checks they are still there. `writes` are the
    /// runs `p` was prepared from.
    pub fn store_written(&self, p: &PreparedWrite, writes: &[(u64, &[u8])]) -> Result<()> {
        let _lock = super::lock::WriterLock::acquire_wait(self.root(), std::time::Duration::from_secs(60))?;
        let cat = &self.catalog;
        let mut missing = Vec::new();
        for c in &p.chunks {
            if !cat.has_chunk(&c.id)? {
                missing.push(c);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        cat.begin()?;
        let mut w = match self.pack_writer() {
            Ok(w) => w,
            Err(e) => {
                cat.rollback();
                return Err(e);
            }
        };
        let res = (|| {
            for c in &missing {
                w.append(RecordKind::Chunk, c.codec, c.id, c.raw_len, c.stored_bytes(writes)?)?;
            }
            for pk in w.finish()? {
                cat.insert_pack(pk.id, &pk.name, pk.size, pk.records.len())?;
                for l in &pk.records {
                    cat.insert_record(pk.id, l)?;
                }
                self.store().register_packs([(pk.id, pk.name.clone())]);
            }
            for c in &missing {
                cat.put_chunk_outboard(&c.id, &c.outboard)?;
                cat.put_chunk_head(&c.id, &c.head)?;
            }
            cat.commit()
        })();
        if res.is_err() {
            cat.rollback();
            w.abort();
        }
        res
    }
}
