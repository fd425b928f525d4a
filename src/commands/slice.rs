//! `reelfs slice ARCHIVE BRANCH/PATH@IN-OUT[+H] [-o FILE]`: what a slice name
//! resolves to (or why it does not), and, with an output file, its bytes:
//! the same name, the same resolver and the same bytes as the mount's.

use crate::archive::dest::OutDir;
use crate::archive::{Archive, ArchiveError};
use crate::media::slice::SlicePlan;
use crate::timecode::{SliceSpec, TimecodeError};
use crate::view::{self, Target, ViewError};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SliceCmdError {
    #[error("give BRANCH/PATH@IN-OUT, e.g. main/Day01/A001C003.mov@01:00:10:00-01:00:20:00")]
    NoFolder,
    #[error("{0}: not a slice name; the form is CLIP@HH:MM:SS:FF-HH:MM:SS:FF[+HANDLES] (or CLIP@fIN-fOUT for frames, CLIP@IN.Ns-OUT.Ns for seconds)")]
    NotASliceName(String),
    #[error("{0}")]
    Timecode(#[from] TimecodeError),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{0}: give a file name to write the slice to")]
    NoFileName(PathBuf),
}

/// A resolved slice: where it comes from, its plan, and where it was written.
#[derive(Debug, Serialize)]
pub struct SliceResult {
    pub spec: String,
    /// Mount path of the clip it cuts.
    pub source: String,
    pub plan: SlicePlan,
    pub written: Option<PathBuf>,
}

/// Resolve `spec`; with `output`, write the slice's bytes there (through a
/// temporary, never into the archive's own folders).
pub fn slice(a: &Archive, spec: &str, output: Option<&Path>) -> Result<SliceResult, SliceCmdError> {
    let Some((_, name)) = spec.rsplit_once('/') else { return Err(SliceCmdError::NoFolder) };
    // Checked here for the CLI's sake: a name without `@` is an ordinary name
    // to the resolver, but here it is a mistake worth explaining.
    SliceSpec::parse_name(name).ok_or_else(|| SliceCmdError::NotASliceName(name.to_string()))??;
    let r = view::resolve(a, spec)?;
    let Target::Slice(s) = r.target else { return Err(SliceCmdError::NotASliceName(name.to_string())) };
    let mut written = None;
    if let Some(out) = output {
        let dir = OutDir::create(a.root(), out.parent().unwrap_or(Path::new("")))?;
        let file_name = out.file_name().ok_or_else(|| SliceCmdError::NoFileName(out.to_path_buf()))?.to_string_lossy().to_string();
        dir.write_file(&file_name, |f| {
            let mut f = std::io::BufWriter::new(f);
            let mut buf = vec![0u8; 8 << 20];
            let mut off = 0u64;
            while off < s.plan.size {
                let n = s.plan.read_at(&s.reader, off, &mut buf)?;
                if n == 0 {
                    break;
                }
                std::io::Write::write_all(&mut f, &buf[..n])?;
                off += n as u64;
            }
            std::io::Write::flush(&mut f)
        })?;
        written = Some(out.to_path_buf());
    }
    Ok(SliceResult { spec: spec.to_string(), source: s.source_path.clone(), plan: (*s.plan).clone(), written })
}
