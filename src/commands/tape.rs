//! `reelfs tape ...`: plan, write, verify, ls, where, export. The workflow is
//! src/tape; this file opens the archive and the volume a flag names.

use super::{CommandError, Result};
use crate::archive::progress::ProgressHandle;
use crate::archive::Archive;
use crate::tape::ltfs::{LtfsVolumeReader, LtfsVolumeWriter};
use crate::tape::ltfs_mount::{LtfsMountReader, LtfsMountWriter};
use crate::tape::volume::{VolumeReader, VolumeWriter};
use crate::tape::{export, planning, query, recall, release, verify, write};
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
    write_stoppable(archive, plan, barcode, vol, verify_after, progress, Default::default())
}

/// `write`, stopping at a safe point when `interrupt` is set (Ctrl-C).
pub fn write_stoppable(
    archive: &Path,
    plan: &str,
    barcode: &str,
    vol: &VolumeArg,
    verify_after: bool,
    progress: ProgressHandle,
    interrupt: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<WriteOutcome> {
    let a = Archive::open(archive)?;
    // Checked before the volume is touched, so a typo writes nothing.
    write::cartridge_of(&a.catalog, plan, barcode)?;
    let w = writer(vol, barcode)?;
    let opts = write::WriteOptions { progress: progress.clone(), index_every: 100 << 30, interrupt, ..Default::default() };
    let rep = write::write_tape(&a, plan, barcode, w, &opts)?;
    let verify = if verify_after && !rep.written.is_empty() && !rep.interrupted {
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

/// `tape release`: free the disk copy of what is verified on enough copies.
pub fn release(archive: &Path, plan: &str, copies: Option<u32>) -> Result<release::ReleaseReport> {
    let mut a = Archive::open_writer(archive)?;
    Ok(release::release(&mut a, plan, copies)?)
}

/// `tape recall`: bring released files back from one cartridge.
pub fn recall(archive: &Path, paths: &[String], from: &str, vol: &VolumeArg) -> Result<recall::RecallReport> {
    let mut a = Archive::open_writer(archive)?;
    let mut r = reader(vol, from)?;
    Ok(recall::recall(&mut a, paths, from, r.as_mut())?)
}

/// `tape recall --order given`: as `recall`, reading the files in the order given.
pub fn recall_in_order(
    archive: &Path,
    paths: &[String],
    from: &str,
    vol: &VolumeArg,
    order: recall::Order,
) -> Result<recall::RecallReport> {
    let mut a = Archive::open_writer(archive)?;
    let mut r = reader(vol, from)?;
    Ok(recall::recall_in_order(&mut a, paths, from, r.as_mut(), order)?)
}

/// `tape write --changer`: each cartridge written, in order, and the barcode
/// the library lacks when the plan needs another cartridge it does not hold.
#[derive(Debug, serde::Serialize)]
pub struct ChangerWriteOutcome {
    pub cartridges: Vec<WriteOutcome>,
    pub waiting_for: Option<String>,
}

impl ChangerWriteOutcome {
    /// A cartridge that filled up and handed the rest to the next one is the
    /// changer doing its job: what counts is that the last one completed and
    /// nothing failed or mismatched on any.
    pub fn ok(&self) -> bool {
        self.waiting_for.is_none()
            && self.cartridges.last().is_some_and(|c| c.write.complete())
            && self.cartridges.iter().all(|c| c.write.failed.is_empty() && c.verify.as_ref().is_none_or(|v| v.ok()))
    }
    pub fn interrupted(&self) -> bool {
        self.cartridges.iter().any(|c| c.write.interrupted)
    }
}

fn changer_err(e: crate::tape::changer::ChangerError) -> CommandError {
    CommandError::invalid(e.to_string())
}

/// The volume a changer loads `barcode` into (a folder library's drive, or `--device`).
fn load(changer: &mut dyn crate::tape::changer::MediaChanger, barcode: &str) -> Result<VolumeArg> {
    Ok(VolumeArg::Device(changer.load(barcode).map_err(changer_err)?))
}

/// `tape write --changer DEV`: load the cartridge, write it, and when it is
/// closed full with files moved to the next cartridge, load that one and go on.
#[allow(clippy::too_many_arguments)]
pub fn write_with_changer(
    archive: &Path,
    plan: &str,
    barcode: &str,
    changer: &Path,
    device: Option<&Path>,
    verify_after: bool,
    progress: ProgressHandle,
    interrupt: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<ChangerWriteOutcome> {
    write::cartridge_of(&Archive::open(archive)?.catalog, plan, barcode)?;
    let mut ch = crate::tape::changer::open(changer, device).map_err(changer_err)?;
    let mut out = ChangerWriteOutcome { cartridges: Vec::new(), waiting_for: None };
    let mut barcode = barcode.to_string();
    loop {
        let vol = load(ch.as_mut(), &barcode)?;
        let one = write_stoppable(archive, plan, &barcode, &vol, verify_after, progress.clone(), interrupt.clone())?;
        let next = match (&one.write.closed_early, one.write.interrupted) {
            (Some(_), false) => one.write.moved_to.clone(),
            _ => None,
        };
        out.cartridges.push(one);
        ch.unload().map_err(changer_err)?;
        let Some(next) = next else { break };
        let inv = ch.inventory().map_err(changer_err)?;
        if !inv.slots.iter().any(|(_, b)| b.as_deref() == Some(next.as_str())) {
            out.waiting_for = Some(next);
            break;
        }
        barcode = next;
    }
    Ok(out)
}

pub fn verify_with_changer(
    archive: &Path,
    barcode: &str,
    changer: &Path,
    device: Option<&Path>,
    progress: ProgressHandle,
) -> Result<verify::VerifyReport> {
    let mut ch = crate::tape::changer::open(changer, device).map_err(changer_err)?;
    let vol = load(ch.as_mut(), barcode)?;
    let rep = verify(archive, barcode, &vol, progress)?;
    ch.unload().map_err(changer_err)?;
    Ok(rep)
}

pub fn recall_with_changer(
    archive: &Path,
    paths: &[String],
    from: &str,
    changer: &Path,
    device: Option<&Path>,
) -> Result<recall::RecallReport> {
    let mut ch = crate::tape::changer::open(changer, device).map_err(changer_err)?;
    let vol = load(ch.as_mut(), from)?;
    let mut a = Archive::open_writer(archive)?;
    let mut first = reader(&vol, from)?;
    // The parts of a split file on other cartridges: each loaded in turn; one
    // the library does not hold is named in the report, not an error.
    let mut next = |barcode: &str| -> crate::tape::Result<Option<Box<dyn VolumeReader>>> {
        let path = match ch.load(barcode) {
            Ok(p) => p,
            Err(crate::tape::changer::ChangerError::NotInLibrary { .. }) => return Ok(None),
            Err(e) => return Err(crate::tape::TapeError::invalid(e.to_string())),
        };
        reader(&VolumeArg::Device(path), barcode).map(Some).map_err(|e| crate::tape::TapeError::invalid(e.to_string()))
    };
    let rep = recall::recall_across(&mut a, paths, from, first.as_mut(), Some(&mut next));
    drop(first);
    ch.unload().map_err(changer_err)?;
    Ok(rep?)
}
