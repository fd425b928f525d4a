//! `LtfsVolumeWriter`: writes files onto a formatted LTFS volume through a
//! tape device (`--device`), the `VolumeWriter` side of `tape::volume`.
//!
//! Files go on the data partition one after another, each starting a new
//! record, in records of the volume's block size (the last one short). A
//! file is in the volume once an index lists it: an index construct
//! (filemark, index, filemark) is written on the data partition every
//! `index_interval` bytes, on `sync_index`, and at `finish`, which also
//! writes the final index on the index partition. Only after an index is
//! on the tape (flushed) does the cartridge memory point at it, so a crash
//! at any moment leaves a volume whose newest reachable index lists every
//! file completed before it and nothing half-written: a file abandoned
//! after a write error is simply never listed (its records stay on tape,
//! unreferenced, as on any append-only medium).

use super::format::write_index_construct;
use super::index::{Extent, Index, IndexDir, IndexFile, Pointer, Times};
use super::reader::{load_volume, to_volume_error};
use super::{format_err, mam, time, volume_serial, LtfsError, Result};
use super::{CREATOR, DATA_PARTITION, FIRST_INDEX_BLOCK, INDEX_PARTITION};
use crate::tape::device::TapeDevice;
use crate::tape::volume::{FilePlacement, VolumeError, VolumeWriter};
use std::time::SystemTime;

/// Default bytes of file data between two indexes on the data partition:
/// a crash loses at most this much work (about a minute of LTO-8 writing).
pub const DEFAULT_INDEX_INTERVAL: u64 = 16 * 1024 * 1024 * 1024;

struct OpenFile {
    path: Vec<String>,
    start_block: u64,
    bytes: u64,
    modified: String,
}

pub struct LtfsVolumeWriter<D: TapeDevice> {
    dev: D,
    barcode: String,
    block_size: usize,
    index: Index,
    /// The index has files the tape's newest index does not list yet.
    dirty: bool,
    /// Newest index on the data partition, and the generation the index
    /// partition's index has.
    last_data_index: Pointer,
    index_partition_generation: u64,
    open: Option<OpenFile>,
    record: Vec<u8>,
    /// After a device error the head may be anywhere: go back to the end of
    /// data before the next write.
    relocate: bool,
    index_interval: u64,
    bytes_since_index: u64,
    /// The device's remaining capacity on the data partition, as of the
    /// last write (`remaining()` cannot ask the device: it takes `&self`).
    device_remaining: u64,
}

impl<D: TapeDevice> LtfsVolumeWriter<D> {
    /// Load the cartridge in `dev` (formatted by `reelfs tape format` or any
    /// LTFS `mkltfs`) and get ready to append files after what it holds.
    pub fn open(mut dev: D, barcode: &str) -> std::result::Result<Self, VolumeError> {
        let want = volume_serial(barcode).map_err(|e| to_volume_error(barcode, e))?;
        let state = load_volume(&mut dev).map_err(|e| to_volume_error(barcode, e))?;
        if state.serial != want {
            return Err(VolumeError::Format {
                barcode: barcode.to_string(),
                message: format!("the cartridge in the drive is volume {}, not {want}: load {barcode}", state.serial),
            });
        }
        let index = state.index;
        let (last_data_index, index_partition_generation) = if index.location.partition == INDEX_PARTITION {
            let back = index.previous.ok_or_else(|| VolumeError::Format {
                barcode: barcode.to_string(),
                message: "the index partition's index has no back pointer to the data partition".into(),
            })?;
            (back, index.generation)
        } else {
            // The index partition holds an older generation (a crash or an
            // interval index since); the cartridge memory says which.
            let ip = mam::read_coherency(&mut dev, 0)
                .ok()
                .flatten()
                .filter(|c| c.volume_uuid == index.volume_uuid && c.generation < index.generation);
            (index.location, ip.map_or(0, |c| c.generation))
        };
        let mut w = LtfsVolumeWriter {
            dev,
            barcode: barcode.to_string(),
            block_size: state.label.block_size,
            index,
            dirty: false,
            last_data_index,
            index_partition_generation,
            open: None,
            record: Vec::with_capacity(state.label.block_size),
            relocate: true,
            index_interval: DEFAULT_INDEX_INTERVAL,
            bytes_since_index: 0,
            device_remaining: 0,
        };
        w.at_end_of_data().map_err(|e| w.err(e))?;
        w.device_remaining = w.dev.remaining_capacity(1).map_err(|e| w.err(e))?;
        Ok(w)
    }

    /// Write an index on the data partition after this many bytes of files.
    pub fn with_index_interval(mut self, bytes: u64) -> Self {
        self.index_interval = bytes.max(1);
        self
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    fn err(&self, e: impl Into<LtfsError>) -> VolumeError {
        to_volume_error(&self.barcode, e.into())
    }

    fn at_end_of_data(&mut self) -> Result<()> {
        if self.relocate {
            self.dev.locate_end_of_data(1)?;
            self.relocate = false;
        }
        Ok(())
    }

    /// Room an index needs, twice (data and index partition) plus filemarks:
    /// kept free so the volume can always be closed.
    fn index_reserve(&self) -> u64 {
        let entries = self.index.highest_file_uid + 16;
        let estimate = 64 * 1024 + entries * 1024;
        let bs = self.block_size as u64;
        (estimate.div_ceil(bs) + 4) * bs * 2
    }

    /// Write one record: `whole` (a full block straight from the caller's
    /// buffer, no copy) or else what `record` gathered.
    fn write_record(&mut self, whole: Option<&[u8]>) -> Result<()> {
        let len = whole.map_or(self.record.len(), <[u8]>::len);
        if self.device_remaining < self.index_reserve() + len as u64 {
            // The drive would take more, but the room left is what closing
            // the volume needs: this is the cartridge's end for file data.
            return Err(crate::tape::device::DeviceError::EndOfMedium { partition: 1 }.into());
        }
        let result = match whole {
            Some(data) => self.dev.write_record(data),
            None => self.dev.write_record(&self.record),
        };
        self.record.clear();
        if result.is_err() {
            self.relocate = true;
        }
        result?;
        self.device_remaining = self.dev.remaining_capacity(1)?;
        Ok(())
    }

    fn check_path(&self, path: &str) -> Result<Vec<String>> {
        let parts: Vec<String> = path.split('/').map(str::to_string).collect();
        let bad = parts.iter().any(|p| p.is_empty() || p == "." || p == ".." || p.contains('\0'));
        if bad || path.starts_with('/') {
            return Err(format_err(format!("{path:?} is not a relative path of plain names (no empty, `.` or `..` parts)")));
        }
        let mut dir = &self.index.root;
        let (name, dirs) = parts.split_last().expect("split always yields one part");
        for d in dirs {
            if dir.files.contains_key(d) {
                return Err(format_err(format!("{d} in {path} is a file on this volume, not a folder")));
            }
            match dir.dirs.get(d) {
                Some(sub) => dir = sub,
                None => return Ok(parts),
            }
        }
        if dir.files.contains_key(name) || dir.dirs.contains_key(name) {
            return Err(format_err(format!("{path} is already on this volume (tape is append-only: write it under another name)")));
        }
        Ok(parts)
    }

    fn add_to_index(&mut self, file: OpenFile, xattrs: &[(String, Vec<u8>)]) {
        let OpenFile { path, start_block, bytes, modified } = file;
        let now = time::format(SystemTime::now());
        let (name, dirs) = path.split_last().expect("paths have a name");
        let mut uid = self.index.highest_file_uid;
        let mut dir = &mut self.index.root;
        for d in dirs {
            dir = dir.dirs.entry(d.clone()).or_insert_with(|| {
                uid += 1;
                IndexDir::new(d, Times::all(&now), uid)
            });
        }
        uid += 1;
        let mut times = Times::all(&modified);
        times.change = now.clone();
        times.backup = now;
        let extents = if bytes > 0 {
            vec![Extent { file_offset: 0, partition: DATA_PARTITION, start_block, byte_offset: 0, byte_count: bytes }]
        } else {
            Vec::new()
        };
        let xattrs = xattrs.iter().map(|(k, v)| (k.strip_prefix("user.").unwrap_or(k).to_string(), v.clone())).collect();
        dir.files.insert(
            name.clone(),
            IndexFile { name: name.clone(), length: bytes, readonly: false, times, uid, xattrs, extents, symlink: None },
        );
        self.index.highest_file_uid = uid;
        self.dirty = true;
    }

    fn coherency(&mut self) -> Result<()> {
        let Some(vcr) = mam::volume_change_reference(&mut self.dev)? else {
            return Ok(());
        };
        let coh =
            |generation, block| mam::Coherency { volume_change_ref: vcr, generation, block, volume_uuid: self.index.volume_uuid.clone() };
        let ip = coh(self.index_partition_generation, FIRST_INDEX_BLOCK);
        let dp = coh(self.index.generation, self.last_data_index.block);
        mam::write_coherency(&mut self.dev, &ip, &dp)?;
        Ok(())
    }

    /// Write the index on the data partition (when files were added since
    /// the last one), then point the cartridge memory at it.
    fn write_data_index(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.at_end_of_data()?;
        let block = self.dev.position()?.block + 1;
        let mut next = self.index.clone();
        next.generation += 1;
        next.creator = format!("{CREATOR} - reelfs tape write");
        next.update_time = time::format(SystemTime::now());
        next.location = Pointer { partition: DATA_PARTITION, block };
        next.previous = Some(self.last_data_index);
        let written = write_index_construct(&mut self.dev, &next.to_xml(), self.block_size).and_then(|at| {
            self.dev.flush()?;
            Ok(at)
        });
        match written {
            Ok(at) => {
                debug_assert_eq!(at, block);
                self.index = next;
                self.last_data_index = self.index.location;
                self.dirty = false;
                self.bytes_since_index = 0;
                self.device_remaining = self.dev.remaining_capacity(1)?;
                self.coherency()
            }
            Err(e) => {
                self.relocate = true;
                // The drive's volume change reference moved with the failed
                // write: restate that the previous indexes are the newest,
                // or a stock LTFS distrusts the cartridge memory and scans,
                // and its scan stops at the data after them. Best effort:
                // the index failure is what the caller must hear about.
                let _ = self.coherency();
                Err(e)
            }
        }
    }

    /// The final index on the index partition: the same generation as the
    /// newest one on the data partition, pointing back at it.
    fn write_index_partition(&mut self) -> Result<()> {
        if self.index_partition_generation == self.index.generation {
            return Ok(());
        }
        let mut copy = self.index.clone();
        copy.location = Pointer { partition: INDEX_PARTITION, block: FIRST_INDEX_BLOCK };
        copy.previous = Some(self.last_data_index);
        // Overwrite the index construct after the label: the filemark
        // before the old index, the index, the closing filemark.
        self.dev.locate(0, FIRST_INDEX_BLOCK - 1)?;
        self.relocate = true;
        write_index_construct(&mut self.dev, &copy.to_xml(), self.block_size)?;
        self.dev.flush()?;
        self.index_partition_generation = self.index.generation;
        self.coherency()
    }
}

impl<D: TapeDevice> VolumeWriter for LtfsVolumeWriter<D> {
    fn barcode(&self) -> &str {
        &self.barcode
    }

    fn remaining(&self) -> u64 {
        self.device_remaining.saturating_sub(self.index_reserve()).saturating_sub(self.record.len() as u64)
    }

    fn begin_file(&mut self, path: &str, modified: SystemTime) -> std::result::Result<(), VolumeError> {
        if let Some(open) = &self.open {
            return Err(self.err(format_err(format!("{} is still open: end or abandon it before beginning {path}", open.path.join("/")))));
        }
        let parts = self.check_path(path).map_err(|e| self.err(e))?;
        self.at_end_of_data().map_err(|e| self.err(e))?;
        let start_block = self.dev.position().map_err(|e| self.err(e))?.block;
        self.record.clear();
        self.open = Some(OpenFile { path: parts, start_block, bytes: 0, modified: time::format(modified) });
        Ok(())
    }

    fn write(&mut self, mut data: &[u8]) -> std::result::Result<(), VolumeError> {
        if self.open.is_none() {
            return Err(self.err(format_err("write without begin_file")));
        }
        while !data.is_empty() {
            if self.record.is_empty() && data.len() >= self.block_size {
                let (whole, rest) = data.split_at(self.block_size);
                if let Some(open) = self.open.as_mut() {
                    open.bytes += whole.len() as u64;
                }
                self.write_record(Some(whole)).map_err(|e| self.err(e))?;
                data = rest;
                continue;
            }
            let take = (self.block_size - self.record.len()).min(data.len());
            self.record.extend_from_slice(&data[..take]);
            data = &data[take..];
            if let Some(open) = self.open.as_mut() {
                open.bytes += take as u64;
            }
            if self.record.len() == self.block_size {
                self.write_record(None).map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }

    fn end_file(&mut self, xattrs: &[(String, Vec<u8>)]) -> std::result::Result<FilePlacement, VolumeError> {
        if self.open.is_none() {
            return Err(self.err(format_err("end_file without begin_file")));
        }
        if !self.record.is_empty() {
            self.write_record(None).map_err(|e| self.err(e))?;
        }
        // Every record of the file is on the medium before an index may list
        // it (a drive, or the emulated cartridge, may report a write error late).
        if let Err(e) = self.dev.settle() {
            self.relocate = true;
            return Err(self.err(e));
        }
        let file = self.open.take().expect("checked above");
        let placement = FilePlacement { partition: DATA_PARTITION, start_block: file.start_block, bytes: file.bytes };
        self.bytes_since_index += file.bytes;
        self.add_to_index(file, xattrs);
        if self.bytes_since_index >= self.index_interval {
            self.write_data_index().map_err(|e| self.err(e))?;
        }
        Ok(placement)
    }

    fn abandon_file(&mut self) -> std::result::Result<(), VolumeError> {
        self.open = None;
        self.record.clear();
        // A record of the abandoned file that failed behind the writer is
        // that file's failure: had it surfaced at the next file or index,
        // they would have failed for it. The data ends before it either way.
        if let Err(e) = self.dev.settle() {
            log::warn!("{}: a record of the abandoned file failed: {e}", self.barcode);
            self.relocate = true;
        }
        Ok(())
    }

    fn lists(&self, path: &str) -> Option<bool> {
        let parts: Vec<&str> = path.split('/').collect();
        let (name, dirs) = parts.split_last()?;
        let mut dir = &self.index.root;
        for d in dirs {
            match dir.dirs.get(*d) {
                Some(sub) => dir = sub,
                None => return Some(false),
            }
        }
        Some(dir.files.contains_key(*name))
    }

    fn remove_leftover(&mut self, path: &str) -> std::result::Result<Option<u64>, VolumeError> {
        // Only an index can list a file here, and only a complete one: what is
        // left is a file indexed before the catalog recorded it. Dropping it
        // from the next index makes room for the name; its blocks stay unused.
        let parts: Vec<&str> = path.split('/').collect();
        let Some((name, dirs)) = parts.split_last() else { return Ok(None) };
        let mut dir = &mut self.index.root;
        for d in dirs {
            match dir.dirs.get_mut(*d) {
                Some(sub) => dir = sub,
                None => return Ok(None),
            }
        }
        let removed = dir.files.remove(*name).map(|f| f.length);
        if removed.is_some() {
            self.dirty = true;
        }
        Ok(removed)
    }

    fn sync_index(&mut self) -> std::result::Result<(), VolumeError> {
        if let Some(open) = &self.open {
            return Err(self.err(format_err(format!("{} is still open: end or abandon it before writing an index", open.path.join("/")))));
        }
        self.write_data_index().map_err(|e| self.err(e))
    }

    fn finish(mut self: Box<Self>) -> std::result::Result<(), VolumeError> {
        // A file still open when the cartridge is closed was not completed.
        self.open = None;
        self.record.clear();
        self.write_data_index().map_err(|e| self.err(e))?;
        self.write_index_partition().map_err(|e| self.err(e))?;
        self.dev.unload().map_err(|e| self.err(e))
    }
}
