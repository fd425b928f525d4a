//! `reelfs tape ...`: plan, write, verify, ls, where, export. The workflow is
//! src/tape; this file opens the archive and the volume a flag names.

use super::{CommandError, Result};
use crate::archive::progress::ProgressHandle;
use crate::archive::Archive;
use crate::tape::ltfs::{LtfsVolumeReader, LtfsVolumeWriter};
use crate::tape::ltfs_mount::{LtfsMountReader, LtfsMountWriter};
use crate::tape::volume::{VolumeReader, VolumeWriter};
use crate::tape::{export, planning, query, verify, write};
use std::path::{Path, PathBuf};

pub use planning::{PlanReport, PlanRequest};

/// Where a cartridge is: `--ltfs-mount DIR` or `--device PATH`.
#[derive(Debug, Clone)]
pub enum VolumeArg {
    LtfsMount(PathBuf),
    Device(PathBuf),
}

impl VolumeArg {
    pub fn from_flags(ltfs_mount: Option<PathBuf>, device: Option<PathBuf>) -> Result<VolumeArg> {
        match (ltfs_mount, device) {
            (Some(m), None) => Ok(VolumeArg::LtfsMount(m)),
            (None, Some(d)) => Ok(VolumeArg::Device(d)),
            (Some(_), Some(_)) => Err(CommandError::invalid("give either --ltfs-mount DIR or --device PATH, not both")),
            (None, None) => Err(CommandError::invalid(
                "say where the cartridge is: --ltfs-mount DIR (a volume mounted by your LTFS driver) or --device PATH",
            )),
        }
    }
}

/// reelfs's own LTFS writer on a tape device, or on a directory that emulates
/// a cartridge (src/tape/device chooses by what PATH is).
fn device(path: &Path) -> Result<Box<dyn crate::tape::device::TapeDevice>> {
    Ok(crate::tape::device::open(path).map_err(crate::tape::ltfs::LtfsError::from)?)
}

fn writer(v: &VolumeArg, barcode: &str) -> Result<Box<dyn VolumeWriter>> {
    match v {
        VolumeArg::LtfsMount(dir) => Ok(Box::new(LtfsMountWriter::open(dir, barcode).map_err(crate::tape::TapeError::from)?)),
        VolumeArg::Device(p) => {
            let w = LtfsVolumeWriter::open(device(p)?, barcode).map_err(crate::tape::TapeError::from)?;
            Ok(Box::new(w))
        }
    }
}

fn reader(v: &VolumeArg, barcode: &str) -> Result<Box<dyn VolumeReader>> {
    match v {
        VolumeArg::LtfsMount(dir) => Ok(Box::new(LtfsMountReader::open(dir, barcode).map_err(crate::tape::TapeError::from)?)),
        VolumeArg::Device(p) => {
            let r = LtfsVolumeReader::open(device(p)?, Some(barcode)).map_err(crate::tape::TapeError::from)?;
            Ok(Box::new(r))
        }
    }
}

pub fn plan(archive: &Path, req: &PlanRequest) -> Result<PlanReport> {
    let a = Archive::open(archive)?;
    Ok(planning::plan(&a, req)?)
}

/// `tape write` (and, with `verify`, the read-back right after).
#[derive(Debug, serde::Serialize)]
pub struct WriteOutcome {
    pub write: write::WriteReport,
    pub verify: Option<verify::VerifyReport>,
}

impl WriteOutcome {
    pub fn ok(&self) -> bool {
        self.write.complete() && self.verify.as_ref().is_none_or(|v| v.ok())
    }
}

pub fn write(
    archive: &Path,
    plan: &str,
    barcode: &str,
    vol: &VolumeArg,
    verify_after: bool,
    progress: ProgressHandle,
) -> Result<WriteOutcome> {
    let a = Archive::open(archive)?;
    // Checked before the volume is touched, so a typo writes nothing.
    write::cartridge_of(&a.catalog, plan, barcode)?;
    let w = writer(vol, barcode)?;
    let opts = write::WriteOptions { progress: progress.clone(), index_every: 100 << 30 };
    let rep = write::write_tape(&a, plan, barcode, w, &opts)?;
    let verify = if verify_after && !rep.written.is_empty() {
        let mut r = reader(vol, barcode)?;
        Some(verify::verify_tape(&a, barcode, r.as_mut(), &progress)?)
    } else {
        None
    };
    Ok(WriteOutcome { write: rep, verify })
}

pub fn verify(archive: &Path, barcode: &str, vol: &VolumeArg, progress: ProgressHandle) -> Result<verify::VerifyReport> {
    let a = Archive::open(archive)?;
    let mut r = reader(vol, barcode)?;
    Ok(verify::verify_tape(&a, barcode, r.as_mut(), &progress)?)
}

pub fn ls(archive: &Path, tape: Option<&str>) -> Result<query::Listing> {
    Ok(query::ls(&Archive::open(archive)?, tape)?)
}

pub fn where_is(archive: &Path, spec: &str) -> Result<query::Whereabouts> {
    Ok(query::where_is(&Archive::open(archive)?, spec)?)
}

pub fn export(archive: &Path, plan: &str, dir: &Path) -> Result<export::ExportReport> {
    Ok(export::export(&Archive::open(archive)?, plan, dir)?)
}
