//! What a filesystem operation can fail with, as kinds the FUSE adapter maps
//! to errno values. Shared by the core and the write path (a leaf module, so
//! neither has to import the other for it).

use crate::view::ViewError;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("read-only")]
    ReadOnly,
    #[error("no such attribute")]
    NoAttr,
    #[error("bad file handle")]
    BadHandle,
    #[error("I/O error: {0}")]
    Io(String),
    /// The disk holding the archive is full (ENOSPC to the caller).
    #[error("no space left: {0}")]
    NoSpace(String),
    #[error("already exists")]
    Exists,
    #[error("directory not empty")]
    NotEmpty,
    #[error("cross-branch rename")]
    CrossDevice,
    #[error("invalid name or argument")]
    Invalid,
    /// A size or offset past the largest file the mount declares (EFBIG).
    #[error("file too large")]
    TooBig,
    /// A name longer than NAME_MAX (255 bytes), ENAMETOOLONG as POSIX asks.
    #[error("file name too long")]
    NameTooLong,
    /// An fallocate mode the branch cannot honour (EOPNOTSUPP).
    #[error("operation not supported")]
    NotSupported,
    /// The caller may not do this to this file (EPERM): a chown by someone
    /// other than root or the owner, or giving a file away without being root.
    #[error("operation not permitted")]
    NotPermitted,
    /// An extended attribute name longer than XATTR_NAME_MAX (ERANGE, as xattr(7) says).
    #[error("extended attribute name too long")]
    XattrRange,
    /// An extended attribute value longer than XATTR_SIZE_MAX (E2BIG).
    #[error("extended attribute value too large")]
    XattrTooBig,
}

/// The longest name a directory entry may have, in bytes (Linux NAME_MAX).
pub const NAME_MAX: usize = 255;

pub type FsResult<T> = Result<T, FsError>;

impl From<crate::archive::ArchiveError> for FsError {
    /// The kind is decided here, from the error itself (errno, SQLite code),
    /// so the FUSE adapter maps kinds and never reads messages.
    fn from(e: crate::archive::ArchiveError) -> FsError {
        if e.is_disk_full() {
            FsError::NoSpace(e.to_string())
        } else {
            FsError::Io(e.to_string())
        }
    }
}

impl From<ViewError> for FsError {
    fn from(e: ViewError) -> FsError {
        match e {
            ViewError::Slice(_) | ViewError::Path(_) | ViewError::NotFound(_) | ViewError::NoBranch(_) => FsError::NotFound,
            ViewError::NotDir(_) => FsError::NotDir,
            ViewError::Archive(e) => FsError::from(e),
            ViewError::Access(m) => FsError::Io(m),
        }
    }
}
