//! `reelfs cat ARCHIVE PATH`: a file's bytes, as the mount shows them at PATH
//! (a committed file, an old version's, or one written through the mount and
//! not committed yet).

use crate::archive::{Archive, ArchiveError, Hash};
use crate::view::{self, Target, ViewError};
use serde::Serialize;
use std::io::Write;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum CatError {
    #[error(transparent)]
    View(#[from] ViewError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{path} is a {kind}, not a file; `reelfs ls` lists a folder")]
    NotAFile { path: String, kind: &'static str },
}

/// What was written.
#[derive(Debug, Serialize)]
pub struct CatResult {
    pub path: String,
    pub bytes: u64,
    /// Content hash, for a committed file (None: uncommitted).
    pub hash: Option<String>,
}

/// Write the file at `path` to `out`.
pub fn cat(a: &Archive, path: &str, out: &mut dyn Write) -> Result<CatResult, CatError> {
    // A trailing '/' is what shell completion leaves on a folder; the
    // resolver's error then says it is a folder.
    let r = view::resolve(a, path.trim_end_matches('/'))?;
    let (reader, hash) = match &r.target {
        Target::File { entry, .. } if entry.kind.is_special() => {
            return Err(CatError::NotAFile { path: path.to_string(), kind: entry.kind.word() })
        }
        Target::File { entry, .. } => (a.blob_reader(&entry.hash)?, Some(entry.hash)),
        Target::Staged { content, size, .. } => (a.extents_reader(Hash([0; 32]), *size, &a.staging().content_extents(content)?)?, None),
        t => return Err(CatError::NotAFile { path: path.to_string(), kind: t.kind_word() }),
    };
    let bytes = crate::archive::restore::copy_to(Arc::new(reader), out)?;
    Ok(CatResult { path: r.path, bytes, hash: hash.map(|h| format!("blake3:{h}")) })
}
