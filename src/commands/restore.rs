//! `reelfs restore`: files and folders back out, byte-identical.

use super::{CommandError, Result};
use crate::archive::progress::ProgressHandle;
use crate::archive::restore::{self, RestoreOptions, RestoreReport};
use crate::archive::Archive;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Restore `specs` (`BRANCH[@COMMIT]/PATH`) to `dest` (see `archive::restore::restore`).
pub fn restore(archive: &Path, specs: &[String], dest: &Path, progress: ProgressHandle, interrupt: &AtomicBool) -> Result<RestoreReport> {
    if specs.is_empty() {
        return Err(CommandError::invalid("give what to restore (BRANCH[@COMMIT]/PATH) and then the destination"));
    }
    let a = Archive::open(archive)?;
    Ok(restore::restore(&a, specs, dest, &RestoreOptions { progress, interrupt })?)
}
