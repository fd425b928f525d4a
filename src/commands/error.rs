//! The errors of the command layer: the lower layers' errors as they are, plus
//! the refusals a command makes itself, each saying what to do instead.

use crate::archive::ArchiveError;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Timecode(#[from] crate::timecode::TimecodeError),
    #[error(transparent)]
    Slice(#[from] crate::media::slice::SliceError),
    #[error(transparent)]
    Mount(#[from] crate::fs::mount::MountError),
    /// An archive error and what the user can do about it in this command.
    #[error("{source}\n{hint}")]
    WithHint {
        #[source]
        source: ArchiveError,
        hint: String,
    },
    /// The request itself cannot be carried out as given.
    #[error("{0}")]
    Invalid(String),
    /// A path the resolver refused or could not find (its message says why).
    #[error(transparent)]
    View(#[from] crate::view::ViewError),
}

pub type Result<T, E = CommandError> = std::result::Result<T, E>;

impl CommandError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        CommandError::Invalid(msg.into())
    }
}
