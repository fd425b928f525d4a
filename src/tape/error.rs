//! Errors of the tape workflow: the archive's and the volume's as they are, and
//! the refusals the workflow makes itself, each saying what to do instead.

use super::volume::VolumeError;
use crate::archive::ArchiveError;

#[derive(Debug, thiserror::Error)]
pub enum TapeError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error("no tape plan named '{0}'; list plans with `reelfs tape ls ARCHIVE`, make one with `reelfs tape plan`")]
    NoSuchPlan(String),
    #[error("no cartridge {0} in the tape catalog; `reelfs tape ls ARCHIVE` lists the barcodes of every plan")]
    NoSuchTape(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = TapeError> = std::result::Result<T, E>;

impl TapeError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        TapeError::Invalid(msg.into())
    }
}
