//! `reelfs tape format --device PATH --tape BARCODE [--capacity SIZE] [--block-size SIZE]`:
//! label a new cartridge as an empty LTFS volume (what `mkltfs` does).
//! A directory is a file-emulated cartridge, whose size `--capacity` sets;
//! a character device is a real drive through the st driver.

use super::{CommandError, Result};
use crate::tape::device::{self, FileCartridge, ReadOutcome, TapeDevice};
use crate::tape::ltfs::{format_volume, FormatOptions, FormatReport};
use std::path::Path;

pub struct TapeFormatRequest<'a> {
    pub device: &'a Path,
    pub barcode: &'a str,
    /// Size of an emulated cartridge, in bytes.
    pub capacity: Option<u64>,
    /// Erase a cartridge that already holds an LTFS volume.
    pub force: bool,
    /// LTFS block size (bytes per record); the LTFS default when `None`.
    pub block_size: Option<u64>,
}

/// The largest block size `tape format` writes: the reference LTFS file
/// backend refuses larger records (FILE_DEBUG_MAX_BLOCK_SIZE), and LTO drives
/// take it.
pub const MAX_BLOCK_SIZE: u64 = 4 << 20;

/// The block size asked for, checked: LTFS needs at least 4 KiB; whole 4 KiB
/// pages keep records aligned for direct I/O.
fn block_size(asked: Option<u64>) -> Result<usize> {
    let Some(bs) = asked else { return Ok(crate::tape::ltfs::DEFAULT_BLOCK_SIZE) };
    if !(4096..=MAX_BLOCK_SIZE).contains(&bs) || bs % 4096 != 0 {
        return Err(CommandError::invalid(format!(
            "--block-size {bs} is not usable: give a multiple of 4K from 4K to 4M (e.g. --block-size 1M); \
             the reference LTFS file backend refuses records over 4M"
        )));
    }
    Ok(bs as usize)
}

pub fn tape_format(req: &TapeFormatRequest) -> Result<FormatReport> {
    crate::tape::ltfs::volume_serial(req.barcode)?;
    let block_size = block_size(req.block_size)?;
    let mut dev: Box<dyn TapeDevice> = if req.device.is_dir() {
        let mut cart = FileCartridge::open(req.device).map_err(crate::tape::ltfs::LtfsError::from)?;
        if let Some(bytes) = req.capacity {
            cart.set_capacity_mb(bytes / (1024 * 1024)).map_err(crate::tape::ltfs::LtfsError::from)?;
        }
        Box::new(cart)
    } else {
        if req.capacity.is_some() && !req.device.exists() {
            return Err(CommandError::invalid(format!(
                "{} does not exist: for an emulated cartridge make its folder first (`mkdir -p {}`); \
                 for a drive give its device (/dev/nst0) and leave --capacity out",
                req.device.display(),
                req.device.display()
            )));
        }
        if req.capacity.is_some() {
            return Err(CommandError::invalid(format!(
                "--capacity sets the size of an emulated cartridge (a directory); {} is a drive, \
                 whose cartridge has its own size: leave --capacity out",
                req.device.display()
            )));
        }
        device::open(req.device).map_err(crate::tape::ltfs::LtfsError::from)?
    };
    if !req.force {
        if let Some(serial) = existing_volume(dev.as_mut())? {
            return Err(CommandError::invalid(format!(
                "the cartridge in {} already holds LTFS volume {serial}: formatting erases every \
                 file on it; pass --force if that is what you want",
                req.device.display()
            )));
        }
    }
    let opts = FormatOptions { block_size, ..FormatOptions::new(req.barcode) };
    Ok(format_volume(dev.as_mut(), &opts)?)
}

/// The serial of the LTFS volume already on the cartridge, if any.
fn existing_volume(dev: &mut dyn TapeDevice) -> Result<Option<String>> {
    let io = |e| CommandError::from(crate::tape::ltfs::LtfsError::from(e));
    dev.load().map_err(io)?;
    dev.rewind().map_err(io)?;
    let mut buf = vec![0u8; 16 * 1024 * 1024];
    let found = match dev.read_record(&mut buf) {
        Ok(ReadOutcome::Record(n)) => crate::tape::ltfs::label::parse_vol1(&buf[..n]).ok(),
        // An unreadable or blank cartridge holds nothing to protect.
        _ => None,
    };
    dev.rewind().map_err(io)?;
    Ok(found)
}
