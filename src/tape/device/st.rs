//! The Linux SCSI tape driver (`st`): `/dev/nst0` and friends, driven with
//! the `MTIOCTOP`/`MTIOCPOS`/`MTIOCGET` ioctls of `<sys/mtio.h>`.
//!
//! Compiled and documented, not tested here (there is no drive on a build
//! machine). Use the non-rewinding node (`nst`), so the head stays where the
//! writer left it between calls. The drive runs in variable-block mode (one
//! `write` = one record, as LTFS needs) with hardware compression off
//! (camera codecs do not compress; it only costs throughput).
//!
//! What st cannot do without SCSI pass-through (`/dev/sg*`): report the
//! remaining capacity (this reports "unknown" as `u64::MAX`; the writer then
//! relies on the drive's end-of-medium, `ENOSPC`) and read or write
//! cartridge-memory attributes (unsupported: a stock LTFS then finds the
//! latest index by its full consistency check at mount, which it does by
//! itself).

use super::{DeviceError, Position, ReadOutcome, Result, TapeDevice};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

// <linux/mtio.h>
#[repr(C)]
struct MtOp {
    mt_op: libc::c_short,
    mt_count: libc::c_int,
}
#[repr(C)]
struct MtPos {
    mt_blkno: libc::c_long,
}
#[repr(C)]
struct MtGet {
    mt_type: libc::c_long,
    mt_resid: libc::c_long,
    mt_dsreg: libc::c_long,
    mt_gstat: libc::c_long,
    mt_erreg: libc::c_long,
    mt_fileno: libc::c_int,
    mt_blkno: libc::c_int,
}

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((b'm' as u64) << 8) | nr
}
const MTIOCTOP: u64 = ioc(1, 1, std::mem::size_of::<MtOp>());
const MTIOCGET: u64 = ioc(2, 2, std::mem::size_of::<MtGet>());
const MTIOCPOS: u64 = ioc(2, 3, std::mem::size_of::<MtPos>());

const MTFSF: libc::c_short = 1;
const MTBSF: libc::c_short = 2;
const MTWEOF: libc::c_short = 5;
const MTREW: libc::c_short = 6;
const MTEOM: libc::c_short = 12;
const MTSETBLK: libc::c_short = 20;
const MTSEEK: libc::c_short = 22;
const MTLOAD: libc::c_short = 30;
const MTUNLOAD: libc::c_short = 31;
const MTCOMPRESSION: libc::c_short = 32;
const MTSETPART: libc::c_short = 33;
const MTMKPART: libc::c_short = 34;
const GMT_EOD: libc::c_long = 0x0800_0000;

/// Size of the index partition a format makes, in MB (what LTFS tools make
/// on LTO-5 and later: a few tens of GB hold indexes for years of appends).
const INDEX_PARTITION_MB: libc::c_int = 37_952;

pub struct StDrive {
    file: File,
    path: String,
    /// st reports the block but not the partition: the last one set.
    partition: u8,
}

impl StDrive {
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| DeviceError::io(format!("opening tape device {}", path.display()), e))?;
        let mut drive = StDrive { file, path: path.display().to_string(), partition: 0 };
        drive.op(MTSETBLK, 0, "setting variable block mode")?;
        drive.op(MTCOMPRESSION, 0, "turning hardware compression off")?;
        Ok(drive)
    }

    fn op(&mut self, op: libc::c_short, count: libc::c_int, what: &str) -> Result<()> {
        let arg = MtOp { mt_op: op, mt_count: count };
        // SAFETY: MTIOCTOP takes a pointer to a `struct mtop`, which MtOp
        // mirrors; the fd is open for the duration of the call.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), MTIOCTOP as _, &arg) };
        if rc < 0 {
            return Err(self.os_error(what));
        }
        Ok(())
    }

    fn os_error(&self, what: &str) -> DeviceError {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOSPC) {
            return DeviceError::EndOfMedium { partition: self.partition };
        }
        DeviceError::io(format!("{} on {}", what, self.path), e)
    }

    fn status(&mut self) -> Result<MtGet> {
        let mut get = MtGet { mt_type: 0, mt_resid: 0, mt_dsreg: 0, mt_gstat: 0, mt_erreg: 0, mt_fileno: 0, mt_blkno: 0 };
        // SAFETY: MTIOCGET fills a `struct mtget`, which MtGet mirrors.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), MTIOCGET as _, &mut get) };
        if rc < 0 {
            return Err(self.os_error("reading drive status"));
        }
        Ok(get)
    }

    fn set_partition(&mut self, partition: u8) -> Result<()> {
        if partition != self.partition {
            self.op(MTSETPART, partition as libc::c_int, "changing partition")?;
            self.partition = partition;
        }
        Ok(())
    }
}

impl TapeDevice for StDrive {
    fn load(&mut self) -> Result<()> {
        self.op(MTLOAD, 0, "loading the cartridge")?;
        self.rewind()
    }

    fn unload(&mut self) -> Result<()> {
        self.op(MTUNLOAD, 0, "unloading the cartridge")
    }

    fn format(&mut self) -> Result<()> {
        self.rewind()?;
        // A negative count sizes partition 0 (the LTFS index partition).
        self.op(MTMKPART, -INDEX_PARTITION_MB, "partitioning the cartridge")?;
        self.rewind()
    }

    fn rewind(&mut self) -> Result<()> {
        self.set_partition(0)?;
        self.op(MTREW, 0, "rewinding")
    }

    fn locate(&mut self, partition: u8, block: u64) -> Result<()> {
        self.set_partition(partition)?;
        let block = libc::c_int::try_from(block).map_err(|_| DeviceError::Invalid(format!("block {block} is out of st's range")))?;
        self.op(MTSEEK, block, "locating")
    }

    fn locate_end_of_data(&mut self, partition: u8) -> Result<()> {
        self.set_partition(partition)?;
        self.op(MTEOM, 0, "spacing to end of data")
    }

    fn position(&mut self) -> Result<Position> {
        let mut pos = MtPos { mt_blkno: 0 };
        // SAFETY: MTIOCPOS fills a `struct mtpos`, which MtPos mirrors.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), MTIOCPOS as _, &mut pos) };
        if rc < 0 {
            return Err(self.os_error("reading the position"));
        }
        Ok(Position { partition: self.partition, block: pos.mt_blkno as u64 })
    }

    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        match self.file.write(data) {
            Ok(n) if n == data.len() => Ok(()),
            Ok(n) => Err(DeviceError::Invalid(format!("short write on {}: {n} of {} bytes", self.path, data.len()))),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => Err(DeviceError::EndOfMedium { partition: self.partition }),
            Err(e) => Err(DeviceError::io(format!("writing to {}", self.path), e)),
        }
    }

    fn write_filemarks(&mut self, count: u32) -> Result<()> {
        let count = libc::c_int::try_from(count).map_err(|_| DeviceError::Invalid("too many filemarks".into()))?;
        self.op(MTWEOF, count, "writing filemarks")
    }

    fn read_record(&mut self, buf: &mut [u8]) -> Result<ReadOutcome> {
        match self.file.read(buf) {
            Ok(0) => {
                if self.status()?.mt_gstat & GMT_EOD != 0 {
                    Ok(ReadOutcome::EndOfData)
                } else {
                    Ok(ReadOutcome::Filemark)
                }
            }
            Ok(n) => Ok(ReadOutcome::Record(n)),
            Err(e) => Err(DeviceError::io(format!("reading from {}", self.path), e)),
        }
    }

    fn space_filemarks(&mut self, count: i64) -> Result<()> {
        let n = libc::c_int::try_from(count.unsigned_abs()).map_err(|_| DeviceError::Invalid("too many filemarks to space".into()))?;
        if count >= 0 {
            self.op(MTFSF, n, "spacing forward over filemarks")
        } else {
            self.op(MTBSF, n, "spacing back over filemarks")
        }
    }

    fn remaining_capacity(&mut self, _partition: u8) -> Result<u64> {
        Ok(u64::MAX)
    }

    fn flush(&mut self) -> Result<()> {
        // Writing zero filemarks flushes the drive's buffer to the medium.
        self.op(MTWEOF, 0, "flushing the drive's buffer")
    }
}
