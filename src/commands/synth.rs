//! `reelfs synth` (hidden): benchmark fixture files without an ingest.

use super::Result;
use crate::archive::synth::{self, SynthOptions, SynthReport};
use crate::archive::Archive;
use std::path::Path;

pub fn synth(archive: &Path, opts: &SynthOptions) -> Result<SynthReport> {
    let mut a = Archive::open_writer(archive)?;
    Ok(synth::synth(&mut a, opts)?)
}
