//! `LtfsVolumeReader`: reads an LTFS volume back through a tape device with
//! reelfs's own label and index parsers (no LTFS driver needed), for verify
//! and recall. Files are read extent by extent, each extent from its start
//! block; `files()` lists them in tape order so a caller reading them in
//! that order never seeks backwards.

use super::index::{Extent, Index};
use super::label::{parse_vol1, Label, VOL1_LEN};
use super::{format_err, mam, partition_number, volume_serial, LtfsError, Result};
use super::{DATA_PARTITION, INDEX_PARTITION};
use crate::tape::device::{DeviceError, ReadOutcome, TapeDevice};
use crate::tape::volume::{FilePlacement, VolumeError, VolumeFile, VolumeReader};
use std::collections::VecDeque;
use std::io;

/// An index larger than this is not one reelfs could have written (about a
/// million files take 500 MB): refuse rather than exhaust memory.
const MAX_INDEX_BYTES: usize = 1 << 30;
/// Records are at most this large whatever a label claims.
const MAX_RECORD: usize = 16 * 1024 * 1024;

/// What a loaded volume says about itself.
pub(crate) struct VolumeState {
    pub serial: String,
    pub label: Label,
    pub index: Index,
}

pub(crate) fn to_volume_error(barcode: &str, e: LtfsError) -> VolumeError {
    match e {
        LtfsError::Device(DeviceError::EndOfMedium { .. }) => VolumeError::EndOfMedium { barcode: barcode.to_string() },
        LtfsError::Device(DeviceError::Io { context, source }) => VolumeError::Io { barcode: barcode.to_string(), context, source },
        other => VolumeError::Format { barcode: barcode.to_string(), message: other.to_string() },
    }
}

/// Load the cartridge and read its labels and newest index.
pub(crate) fn load_volume(dev: &mut dyn TapeDevice) -> Result<VolumeState> {
    dev.load()?;
    dev.locate(0, 0)?;
    let mut buf = vec![0u8; MAX_RECORD];
    let serial = match dev.read_record(&mut buf)? {
        ReadOutcome::Record(n) if n == VOL1_LEN => parse_vol1(&buf[..n])?,
        ReadOutcome::Record(_) => parse_vol1(b"")?,
        _ => return Err(format_err("the cartridge is blank: format it with `reelfs tape format` first")),
    };
    if dev.read_record(&mut buf)? != ReadOutcome::Filemark {
        return Err(format_err("no filemark after the VOL1 label"));
    }
    let label = match dev.read_record(&mut buf)? {
        ReadOutcome::Record(n) => Label::parse(&buf[..n])?,
        _ => return Err(format_err("no LTFS label after the VOL1 label")),
    };
    if label.index_partition != INDEX_PARTITION || label.data_partition != DATA_PARTITION {
        return Err(format_err(format!(
            "the label maps index to {:?} and data to {:?}; reelfs reads volumes with index a, data b",
            label.index_partition, label.data_partition
        )));
    }
    let index = newest_index(dev, &label)?;
    if index.volume_uuid != label.volume_uuid {
        return Err(format_err(format!(
            "the index belongs to volume {} but the label says {}: the cartridge is damaged",
            index.volume_uuid, label.volume_uuid
        )));
    }
    Ok(VolumeState { serial, label, index })
}

/// The newest index: where the cartridge memory says it is when that is
/// trustworthy (the drive's volume change reference matches the one LTFS
/// stored), otherwise the last index on each partition, newest generation
/// winning, as the reference implementation's consistency check does.
fn newest_index(dev: &mut dyn TapeDevice, label: &Label) -> Result<Index> {
    let vcr = mam::volume_change_reference(dev)?;
    let ip = mam::read_coherency(dev, 0)?;
    let dp = mam::read_coherency(dev, 1)?;
    if let (Some(vcr), Some(ip), Some(dp)) = (vcr, ip, dp) {
        let trusted = |c: &mam::Coherency| c.volume_change_ref == vcr && c.volume_uuid == label.volume_uuid;
        if trusted(&ip) && trusted(&dp) {
            let (partition, block) = if dp.generation > ip.generation { (1, dp.block) } else { (0, ip.block) };
            if let Ok(index) = read_index_at(dev, partition, block, label.block_size) {
                return Ok(index);
            }
        }
    }
    let mut best: Option<Index> = None;
    let mut last_error = None;
    for partition in [0u8, 1] {
        match last_index_on(dev, partition, label.block_size) {
            Ok(index) => {
                if best.as_ref().is_none_or(|b| index.generation > b.generation) {
                    best = Some(index);
                }
            }
            Err(e) => last_error = Some(e),
        }
    }
    best.ok_or_else(|| {
        format_err(format!(
            "no readable LTFS index on either partition ({}); the volume may be damaged: \
             check it with the reference ltfsck",
            last_error.map(|e| e.to_string()).unwrap_or_default()
        ))
    })
}

fn read_index_at(dev: &mut dyn TapeDevice, partition: u8, block: u64, block_size: usize) -> Result<Index> {
    dev.locate(partition, block)?;
    read_index_here(dev, block_size)
}

/// The last index construct before the end of data: back over the trailing
/// filemark and the one before the index, then forward over that one.
fn last_index_on(dev: &mut dyn TapeDevice, partition: u8, block_size: usize) -> Result<Index> {
    dev.locate_end_of_data(partition)?;
    dev.space_filemarks(-2)?;
    dev.space_filemarks(1)?;
    read_index_here(dev, block_size)
}

fn read_index_here(dev: &mut dyn TapeDevice, block_size: usize) -> Result<Index> {
    let at = dev.position()?;
    let mut buf = vec![0u8; block_size.min(MAX_RECORD)];
    let mut xml = Vec::new();
    loop {
        match dev.read_record(&mut buf)? {
            ReadOutcome::Record(n) => {
                if xml.len() + n > MAX_INDEX_BYTES {
                    return Err(format_err("the index is larger than 1 GiB: not an LTFS index"));
                }
                xml.extend_from_slice(&buf[..n]);
            }
            ReadOutcome::Filemark => break,
            ReadOutcome::EndOfData => {
                return Err(format_err(format!(
                    "the index at partition {} block {} is truncated (no filemark after it)",
                    at.partition, at.block
                )))
            }
        }
    }
    let index = Index::parse(&xml)?;
    let expected = if at.partition == 0 { INDEX_PARTITION } else { DATA_PARTITION };
    if index.location.partition != expected || index.location.block != at.block {
        return Err(format_err(format!(
            "the index at {expected}/{} says it is at {}/{}",
            at.block, index.location.partition, index.location.block
        )));
    }
    Ok(index)
}

pub struct LtfsVolumeReader<D: TapeDevice> {
    dev: D,
    barcode: String,
    label: Label,
    index: Index,
}

impl<D: TapeDevice> LtfsVolumeReader<D> {
    /// Load the cartridge in `dev` and read its newest index. `barcode`, when
    /// given, must match the volume serial (a wrong cartridge is an error).
    pub fn open(mut dev: D, barcode: Option<&str>) -> std::result::Result<Self, VolumeError> {
        let name = barcode.unwrap_or("(unknown)").to_string();
        let state = load_volume(&mut dev).map_err(|e| to_volume_error(&name, e))?;
        let barcode = match barcode {
            Some(b) => {
                let want = volume_serial(b).map_err(|e| to_volume_error(b, e))?;
                if want != state.serial {
                    return Err(VolumeError::Format {
                        barcode: b.to_string(),
                        message: format!("the cartridge in the drive is volume {}, not {want}: load {b}", state.serial),
                    });
                }
                b.to_string()
            }
            None => state.serial.clone(),
        };
        Ok(LtfsVolumeReader { dev, barcode, label: state.label, index: state.index })
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn label(&self) -> &Label {
        &self.label
    }

    pub fn into_device(self) -> D {
        self.dev
    }
}

impl<D: TapeDevice> VolumeReader for LtfsVolumeReader<D> {
    fn barcode(&self) -> &str {
        &self.barcode
    }

    fn seeks(&self) -> Option<crate::tape::device::SeekCounts> {
        self.dev.seeks()
    }

    fn files(&mut self) -> std::result::Result<Vec<VolumeFile>, VolumeError> {
        let mut files: Vec<VolumeFile> = self
            .index
            .files()
            .into_iter()
            .map(|(path, f)| {
                let first = f.extents.first();
                VolumeFile {
                    path,
                    bytes: f.length,
                    placement: FilePlacement {
                        partition: first.map(|e| e.partition).unwrap_or(DATA_PARTITION),
                        start_block: first.map(|e| e.start_block).unwrap_or(0),
                        bytes: f.length,
                    },
                    xattrs: f.xattrs.clone(),
                }
            })
            .collect();
        files.sort_by(|a, b| {
            (a.placement.partition, a.placement.start_block, &a.path).cmp(&(b.placement.partition, b.placement.start_block, &b.path))
        });
        Ok(files)
    }

    fn open(&mut self, path: &str) -> std::result::Result<Box<dyn io::Read + '_>, VolumeError> {
        let file = self.index.find(path).ok_or_else(|| VolumeError::Format {
            barcode: self.barcode.clone(),
            message: format!("{path} is not on this volume (`reelfs tape ls` lists what is)"),
        })?;
        for e in &file.extents {
            partition_number(e.partition).map_err(|err| to_volume_error(&self.barcode, err))?;
        }
        Ok(Box::new(ExtentReader {
            dev: &mut self.dev,
            extents: file.extents.iter().cloned().collect(),
            length: file.length,
            produced: 0,
            record: vec![0u8; self.label.block_size],
            record_pos: 0,
            record_len: 0,
            current: None,
        }))
    }
}

/// Reads a file's extents in order; gaps between extents (sparse files)
/// read as zeros, as the spec defines.
struct ExtentReader<'a, D: TapeDevice> {
    dev: &'a mut D,
    extents: VecDeque<Extent>,
    length: u64,
    produced: u64,
    record: Vec<u8>,
    record_pos: usize,
    record_len: usize,
    /// Bytes of the current extent still to deliver, and bytes to skip at
    /// the start of the next record read (the extent's byte offset).
    current: Option<(u64, usize)>,
}

impl<D: TapeDevice> ExtentReader<'_, D> {
    fn next_record(&mut self) -> io::Result<()> {
        match self.dev.read_record(&mut self.record).map_err(io::Error::other)? {
            ReadOutcome::Record(n) => {
                self.record_len = n;
                self.record_pos = 0;
                if let Some((_, skip)) = self.current.as_mut() {
                    if *skip > n {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "an extent's byte offset is past the end of its block"));
                    }
                    self.record_pos = *skip;
                    *skip = 0;
                }
                Ok(())
            }
            _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the tape ends inside a file's extent: the volume is damaged")),
        }
    }
}

impl<D: TapeDevice> io::Read for ExtentReader<'_, D> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.produced >= self.length {
            return Ok(0);
        }
        loop {
            match self.current {
                Some((0, _)) => self.current = None,
                Some((left, _)) => {
                    if self.record_pos >= self.record_len {
                        self.next_record()?;
                        continue;
                    }
                    let n = (self.record_len - self.record_pos).min(out.len()).min(left.min(usize::MAX as u64) as usize);
                    out[..n].copy_from_slice(&self.record[self.record_pos..self.record_pos + n]);
                    self.record_pos += n;
                    self.current = Some((left - n as u64, 0));
                    self.produced += n as u64;
                    return Ok(n);
                }
                None => {
                    let next_offset = self.extents.front().map(|e| e.file_offset);
                    let hole_end = next_offset.unwrap_or(self.length).min(self.length);
                    if hole_end > self.produced {
                        let n = ((hole_end - self.produced).min(out.len() as u64)) as usize;
                        out[..n].fill(0);
                        self.produced += n as u64;
                        return Ok(n);
                    }
                    let Some(e) = self.extents.pop_front() else {
                        return Ok(0);
                    };
                    if e.file_offset < self.produced {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "extents of a file overlap: the index is damaged"));
                    }
                    let partition = partition_number(e.partition).map_err(io::Error::other)?;
                    self.dev.locate(partition, e.start_block).map_err(io::Error::other)?;
                    self.record_len = 0;
                    self.record_pos = 0;
                    let skip = usize::try_from(e.byte_offset)
                        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "byte offset out of range"))?;
                    self.current = Some((e.byte_count, skip));
                }
            }
        }
    }
}
