//! A tape drive as the LTFS writer and reader see it: records and filemarks
//! on two partitions, positioned by (partition, block), plus the cartridge
//! memory (MAM) attributes LTFS keeps its coherency information in.
//!
//! Two drives: `FileCartridge` emulates a cartridge as a directory in the
//! layout of the reference LTFS implementation's file backend
//! (`ltfs -o tape_backend=file -o devname=DIR` mounts it), and `StDrive` talks
//! to the Linux SCSI tape driver (`/dev/nst*`). `FaultyDevice` wraps either to
//! inject the failures the tests need.
//!
//! Block numbers count records and filemarks alike from the start of a
//! partition, as SCSI logical object identifiers and LTFS start blocks do.

pub mod faulty;
pub mod file;
#[cfg(target_os = "linux")]
pub mod st;
mod write_behind;

use std::io;
use std::path::Path;

pub use faulty::{FaultPlan, FaultyDevice};
pub use file::FileCartridge;
#[cfg(target_os = "linux")]
pub use st::StDrive;

/// Errors a tape device reports. End of medium is its own case: the volume
/// writer answers it by closing the cartridge, not by failing the job.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("end of medium on partition {partition}: the cartridge is full")]
    EndOfMedium { partition: u8 },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("the device does not support {0}")]
    Unsupported(&'static str),
    #[error("injected fault: {0}")]
    Injected(String),
}

impl DeviceError {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        DeviceError::Io { context: context.into(), source }
    }
}

pub type Result<T> = std::result::Result<T, DeviceError>;

/// Where the head is: the next record read or written is `block` of
/// `partition` (0 = LTFS index partition `a`, 1 = data partition `b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: u8,
    pub block: u64,
}

/// What one read found at the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// A record of this many bytes (the head moved past it).
    Record(usize),
    /// A filemark (the head moved past it).
    Filemark,
    /// End of data: nothing was ever written here (the head did not move).
    EndOfData,
}

/// A tape drive with a cartridge of two partitions.
pub trait TapeDevice {
    /// Make the cartridge ready and put the head at partition 0, block 0.
    fn load(&mut self) -> Result<()>;
    /// Rewind and release the cartridge.
    fn unload(&mut self) -> Result<()>;
    /// Erase the cartridge and lay out two partitions (index, data).
    fn format(&mut self) -> Result<()>;
    fn rewind(&mut self) -> Result<()>;
    fn locate(&mut self, partition: u8, block: u64) -> Result<()>;
    /// Move the head to the end of data of a partition (where an append goes).
    fn locate_end_of_data(&mut self, partition: u8) -> Result<()>;
    fn position(&mut self) -> Result<Position>;
    /// Write one record at the head; everything after it on the partition is
    /// gone (tape is append-only: a write ends the data there).
    fn write_record(&mut self, data: &[u8]) -> Result<()>;
    fn write_filemarks(&mut self, count: u32) -> Result<()>;
    /// Read the record at the head into `buf` (a record larger than `buf` is
    /// an error: LTFS records are at most the volume's block size).
    fn read_record(&mut self, buf: &mut [u8]) -> Result<ReadOutcome>;
    /// Space over filemarks: forward (`count` > 0) to just after the
    /// `count`-th filemark, backward (< 0) to just before it.
    fn space_filemarks(&mut self, count: i64) -> Result<()>;
    /// Bytes that can still be written on a partition from its end of data.
    fn remaining_capacity(&mut self, partition: u8) -> Result<u64>;
    /// Make everything written so far durable (a drive's write buffer).
    fn flush(&mut self) -> Result<()>;
    /// Wait until every record written so far has reached the medium, and
    /// report a write that failed after its `write_record` returned (a
    /// drive's deferred error). Not a sync to stable storage (`flush` is).
    fn settle(&mut self) -> Result<()> {
        Ok(())
    }
    /// Read a cartridge memory attribute (the whole SCSI attribute: id,
    /// format, length, value). `Ok(None)` when the cartridge has none.
    fn read_attribute(&mut self, _partition: u8, _id: u16) -> Result<Option<Vec<u8>>> {
        Err(DeviceError::Unsupported("cartridge memory attributes"))
    }
    /// Write a cartridge memory attribute (`data` as `read_attribute` gives it).
    fn write_attribute(&mut self, _partition: u8, _id: u16, _data: &[u8]) -> Result<()> {
        Err(DeviceError::Unsupported("cartridge memory attributes"))
    }
    /// How the head has been positioned since the device was opened, when
    /// the device keeps count (the emulated cartridge does).
    fn seeks(&self) -> Option<SeekCounts> {
        None
    }
}

/// Locates a drive made. A backward one is what makes a recall slow on a
/// real drive (LTO rewinds and searches: tens of seconds each), which is why
/// recalls read in tape order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SeekCounts {
    /// Locates that moved the head (to another block or partition).
    pub locates: u64,
    /// Of those, the ones to an earlier block of the same partition.
    pub backward: u64,
    /// Blocks travelled back by them, in all.
    pub blocks_back: u64,
}

impl<T: TapeDevice + ?Sized> TapeDevice for Box<T> {
    fn load(&mut self) -> Result<()> {
        (**self).load()
    }
    fn unload(&mut self) -> Result<()> {
        (**self).unload()
    }
    fn format(&mut self) -> Result<()> {
        (**self).format()
    }
    fn rewind(&mut self) -> Result<()> {
        (**self).rewind()
    }
    fn locate(&mut self, partition: u8, block: u64) -> Result<()> {
        (**self).locate(partition, block)
    }
    fn locate_end_of_data(&mut self, partition: u8) -> Result<()> {
        (**self).locate_end_of_data(partition)
    }
    fn position(&mut self) -> Result<Position> {
        (**self).position()
    }
    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        (**self).write_record(data)
    }
    fn write_filemarks(&mut self, count: u32) -> Result<()> {
        (**self).write_filemarks(count)
    }
    fn read_record(&mut self, buf: &mut [u8]) -> Result<ReadOutcome> {
        (**self).read_record(buf)
    }
    fn space_filemarks(&mut self, count: i64) -> Result<()> {
        (**self).space_filemarks(count)
    }
    fn remaining_capacity(&mut self, partition: u8) -> Result<u64> {
        (**self).remaining_capacity(partition)
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
    fn settle(&mut self) -> Result<()> {
        (**self).settle()
    }
    fn read_attribute(&mut self, partition: u8, id: u16) -> Result<Option<Vec<u8>>> {
        (**self).read_attribute(partition, id)
    }
    fn write_attribute(&mut self, partition: u8, id: u16, data: &[u8]) -> Result<()> {
        (**self).write_attribute(partition, id, data)
    }
    fn seeks(&self) -> Option<SeekCounts> {
        (**self).seeks()
    }
}

/// Open what `--device PATH` names: a directory is a file-emulated
/// cartridge, a character device the Linux st driver.
pub fn open(path: &Path) -> Result<Box<dyn TapeDevice>> {
    let meta = std::fs::metadata(path).map_err(|e| {
        let hint = "give a tape drive (/dev/nst0) or a directory made a cartridge by `reelfs tape format --device DIR`";
        DeviceError::io(format!("cannot open device {} ({hint})", path.display()), e)
    })?;
    if meta.is_dir() {
        return Ok(Box::new(FileCartridge::open(path)?));
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_char_device() {
            return Ok(Box::new(StDrive::open(path)?));
        }
    }
    Err(DeviceError::Invalid(format!(
        "{} is neither a directory (a file-emulated cartridge) nor a tape device (/dev/nst0): \
         pass a directory or a non-rewinding st device",
        path.display()
    )))
}
