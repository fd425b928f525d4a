//! `reelfs gc`: remove what nothing reaches.

use super::Result;
use crate::archive::gc::{self, GcOptions, GcReport};
use crate::archive::progress::ProgressHandle;
use crate::archive::Archive;
use std::path::Path;

pub fn gc(archive: &Path, dry_run: bool, progress: ProgressHandle) -> Result<GcReport> {
    let mut a = Archive::open_writer(archive)?;
    Ok(gc::gc(&mut a, &GcOptions { dry_run, progress, ..Default::default() })?)
}
