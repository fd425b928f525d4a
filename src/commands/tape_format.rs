//! `reelfs tape format --device PATH --tape BARCODE [--capacity SIZE]`:
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
}

pub fn tape_format(req: &TapeFormatRequest) -> Result<FormatReport> {
    crate::tape::ltfs::volume_serial(req.barcode)?;
    let mut dev: Box<dyn TapeDevice> = if req.device.is_dir() {
        let mut cart = FileCartridge::open(req.device).map_err(crate::tape::ltfs::LtfsError::from)?;
        if let Some(bytes) = req.capacity {
            cart.set_capacity_mb(bytes / (1024 * 1024)).map_err(crate::tape::ltfs::LtfsError::from)?;
        }
        Box::new(cart)
    } else {
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
    Ok(format_volume(dev.as_mut(), &FormatOptions::new(req.barcode))?)
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
