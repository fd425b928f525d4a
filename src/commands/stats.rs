//! `reelfs stats`: logical vs stored bytes, dedup and compression.

use super::Result;
use crate::archive::check::{self, Stats};
use crate::archive::Archive;
use std::path::Path;

pub fn stats(archive: &Path) -> Result<Stats> {
    let a = Archive::open(archive)?;
    Ok(check::stats(&a)?)
}
