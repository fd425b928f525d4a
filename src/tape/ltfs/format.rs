//! Make a new, empty LTFS volume on a cartridge (what the reference
//! `mkltfs` does): both partitions get VOL1, the LTFS label and a first,
//! empty index (generation 1), and the cartridge memory points at them.

use super::index::{Index, IndexDir, Pointer, Times};
use super::label::{make_vol1, Label};
use super::{format_err, FIRST_INDEX_BLOCK, INDEX_PARTITION};
use super::{mam, time, volume_serial, Result, CREATOR, DATA_PARTITION, DEFAULT_BLOCK_SIZE};
use crate::tape::device::TapeDevice;
use serde::Serialize;
use std::time::SystemTime;

#[derive(Debug, Clone)]
pub struct FormatOptions {
    pub barcode: String,
    pub block_size: usize,
}

impl FormatOptions {
    pub fn new(barcode: &str) -> Self {
        FormatOptions { barcode: barcode.to_string(), block_size: DEFAULT_BLOCK_SIZE }
    }
}

/// What `reelfs tape format` reports.
#[derive(Debug, Clone, Serialize)]
pub struct FormatReport {
    pub barcode: String,
    pub volume_serial: String,
    pub volume_uuid: String,
    pub block_size: usize,
    /// Bytes the data partition can hold (unknown on a real drive: `None`).
    pub data_capacity: Option<u64>,
}

/// A random (version 4) UUID, as LTFS volume UUIDs are.
pub fn new_uuid() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| format_err(format!("no randomness for a volume UUID: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

/// An empty index of generation 1 at `location`.
pub(crate) fn empty_index(uuid: &str, now: &str, location: Pointer, previous: Option<Pointer>) -> Index {
    Index {
        creator: format!("{CREATOR} - Format"),
        volume_uuid: uuid.to_string(),
        generation: 1,
        update_time: now.to_string(),
        location,
        previous,
        highest_file_uid: 1,
        root: IndexDir::new("", Times::all(now), 1),
    }
}

/// Write an index construct at the head: filemark, the index (in records of
/// the block size), filemark. Returns the block the index starts at.
pub(crate) fn write_index_construct(dev: &mut dyn TapeDevice, xml: &[u8], block_size: usize) -> Result<u64> {
    dev.write_filemarks(1)?;
    let at = dev.position()?.block;
    for chunk in xml.chunks(block_size) {
        dev.write_record(chunk)?;
    }
    dev.write_filemarks(1)?;
    Ok(at)
}

/// Erase the cartridge in `dev` and make it an empty LTFS volume.
pub fn format_volume(dev: &mut dyn TapeDevice, opts: &FormatOptions) -> Result<FormatReport> {
    let serial = volume_serial(&opts.barcode)?;
    dev.load()?;
    dev.format()?;
    let uuid = new_uuid()?;
    let now = time::format(SystemTime::now());
    let data_index = Pointer { partition: DATA_PARTITION, block: FIRST_INDEX_BLOCK };
    // Data partition first: the index partition's index points back at it.
    for (number, letter) in [(1u8, DATA_PARTITION), (0u8, INDEX_PARTITION)] {
        dev.locate(number, 0)?;
        dev.write_record(&make_vol1(&serial))?;
        dev.write_filemarks(1)?;
        let label = Label {
            creator: format!("{CREATOR} - reelfs tape format"),
            format_time: now.clone(),
            volume_uuid: uuid.clone(),
            location: letter,
            index_partition: INDEX_PARTITION,
            data_partition: DATA_PARTITION,
            block_size: opts.block_size,
            compression: false,
        };
        dev.write_record(&label.to_xml())?;
        dev.write_filemarks(1)?;
        let location = Pointer { partition: letter, block: FIRST_INDEX_BLOCK };
        let previous = (letter == INDEX_PARTITION).then_some(data_index);
        let index = empty_index(&uuid, &now, location, previous);
        let at = write_index_construct(dev, &index.to_xml(), opts.block_size)?;
        debug_assert_eq!(at, FIRST_INDEX_BLOCK);
    }
    dev.flush()?;
    if let Some(vcr) = mam::volume_change_reference(dev)? {
        let coh = |block| mam::Coherency { volume_change_ref: vcr, generation: 1, block, volume_uuid: uuid.clone() };
        mam::write_coherency(dev, &coh(FIRST_INDEX_BLOCK), &coh(FIRST_INDEX_BLOCK))?;
    }
    mam::write_identification(dev, &opts.barcode)?;
    let capacity = dev.remaining_capacity(1)?;
    dev.unload()?;
    Ok(FormatReport {
        barcode: opts.barcode.clone(),
        volume_serial: serial,
        volume_uuid: uuid,
        block_size: opts.block_size,
        data_capacity: (capacity != u64::MAX).then_some(capacity),
    })
}
