//! What a path names: the one resolver shared by the mount (`fs/`), the CLI
//! (`reelfs cat/slice/extract`) and, next, the HTTP server.
//!
//! `resolve(ctx, "main/Day01/A001C003.mov@01:00:10:00-01:00:20:00+24")` walks
//! the namespace the mount shows (branches, `branch@commit`, `.history`,
//! `.proxy`, `@` slices, image sequences) and returns a `Target`. It is pure
//! name -> target: inode numbers stay in `fs/`, which calls `lookup` one name
//! at a time and maps targets to inodes. `read_ahead` is not here: it lives in
//! the read layer (`archive::readahead`) so restore can use it too.
//!
//! Depends on archive, media and timecode; never on fs.

pub mod branch;
pub mod history;
pub mod path;
pub mod proxy;
pub mod resolve;
pub mod slice;

pub use path::{components, PathError};
pub use resolve::{lookup, resolve, Resolved};
pub use slice::SliceTarget;

use crate::archive::objects::{EntryExtra, Owner, TreeEntry};
use crate::archive::staging::Content;
use crate::archive::{Archive, ArchiveError, Hash};
use std::collections::HashMap;
use std::sync::Arc;

/// How the resolver reaches the archive. The mount implements it over its own
/// locking and its cached branch heads; the CLI over a plain `Archive`. The
/// resolver never holds the archive across slow work (planning a slice may
/// remux an MXF): it asks for it around each catalog read.
pub trait Access {
    fn read<T>(&self, f: impl FnOnce(&Archive) -> crate::archive::Result<T>) -> std::result::Result<T, ViewError>;
    /// Branch -> head commit (None: a branch with no commit yet).
    fn heads(&self) -> std::result::Result<HashMap<String, Option<Hash>>, ViewError>;
}

impl Access for Archive {
    fn read<T>(&self, f: impl FnOnce(&Archive) -> crate::archive::Result<T>) -> std::result::Result<T, ViewError> {
        f(self).map_err(ViewError::from)
    }
    fn heads(&self) -> std::result::Result<HashMap<String, Option<Hash>>, ViewError> {
        Ok(self.branches()?.into_iter().collect())
    }
}

/// What a path names.
#[derive(Clone)]
pub enum Target {
    /// The mount root: one folder per branch.
    Root,
    /// A branch's folder (its head's tree with the staging overlay).
    Branch { name: String, head: Option<Hash> },
    /// `.history`: one folder per branch.
    History,
    /// `.history/<branch>`: one folder per commit.
    HistoryBranch { branch: String },
    /// An old version, read-only: `branch@prefix` or a folder of `.history/<branch>`.
    Commit { commit: Hash, tree: Hash, time_ns: i64 },
    /// A folder of a tree. `live` is set inside a branch (the staging overlay
    /// applies below it), unset inside an old version. `owner` None: not recorded.
    /// `extra`: the folder's user xattrs (empty for a branch root and derived folders).
    Dir { tree: Option<Hash>, mode: u32, mtime_ns: i64, owner: Option<Owner>, live: Option<Live>, extra: EntryExtra },
    /// A file of a tree: its entry, with its content hash.
    File { entry: TreeEntry, live: Option<Live> },
    /// A file written through the mount and not committed yet.
    Staged { live: Live, content: Content, size: u64, mode: u32, mtime_ns: i64, owner: Option<Owner>, extra: EntryExtra },
    /// `clip@IN-OUT[+H]`: a virtual slice, with its plan.
    Slice(Arc<SliceTarget>),
    /// `.proxy` of the folder whose committed tree is `tree` (profile None), or
    /// one of its `.proxy/<profile>` folders.
    ProxyDir { tree: Hash, profile: Option<String> },
    /// A stored proxy, `.proxy/<profile>/<stem>.<ext>`.
    Proxy(proxy::ProxyTarget),
    /// An image sequence named by its FFmpeg pattern (`A001.%07d.dpx`).
    Sequence(proxy::SequenceTarget),
}

/// Where a folder or file sits in a branch (so the staging overlay applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub branch: String,
    /// Path inside the branch, without a leading '/'; empty for its root.
    pub path: String,
}

impl Target {
    /// True for folders (anything a further name can be looked up in).
    pub fn is_dir(&self) -> bool {
        matches!(
            self,
            Target::Root
                | Target::Branch { .. }
                | Target::History
                | Target::HistoryBranch { .. }
                | Target::Commit { .. }
                | Target::Dir { .. }
                | Target::ProxyDir { .. }
        )
    }

    /// A short word for messages: "folder", "file", "slice", ...
    pub fn kind_word(&self) -> &'static str {
        match self {
            Target::File { .. } | Target::Staged { .. } => "file",
            Target::Slice(_) => "slice",
            Target::Proxy(_) => "proxy",
            Target::Sequence(_) => "image sequence",
            _ => "folder",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("{0}: no such file or folder")]
    NotFound(String),
    #[error("no branch named '{0}'; list branches with `reelfs branch ARCHIVE`")]
    NoBranch(String),
    #[error("{0}: not a folder")]
    NotDir(String),
    /// A `name@...` that cannot be served: the reason says why (bad timecode,
    /// out of range, not media).
    #[error("{0}")]
    Slice(String),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The caller's access to the archive failed (a poisoned lock).
    #[error("{0}")]
    Access(String),
}

impl ViewError {
    /// True when the name does not exist (as opposed to a failure to look).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ViewError::NotFound(_) | ViewError::NoBranch(_) | ViewError::Slice(_) | ViewError::NotDir(_))
            || matches!(self, ViewError::Archive(ArchiveError::NotFound(_) | ArchiveError::NoSuchBranch(_)))
    }
}

pub type Result<T> = std::result::Result<T, ViewError>;
