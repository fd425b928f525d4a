use std::path::PathBuf;

/// Errors of the archive layer. Each names the path involved and, where the
/// user can do something about it, what to do.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: not a reelfs archive (no reelfs.toml); create one with `reelfs init {path}`")]
    NotAnArchive { path: PathBuf },
    #[error("{path}: archive format version {found} is newer than this reelfs understands (up to {supported}); upgrade reelfs")]
    NewerFormat { path: PathBuf, found: u32, supported: u32 },
    #[error("{path}: already exists and is not empty; choose a new directory for the archive")]
    AlreadyExists { path: PathBuf },
    #[error("archive {path} is locked by PID {pid} (another reelfs process is writing it); wait for it to finish")]
    Locked { path: PathBuf, pid: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog {path}: {source}")]
    Catalog {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: invalid config: {msg}")]
    Config { path: PathBuf, msg: String },
    #[error("no branch named '{0}'; list branches with `reelfs branch ARCHIVE`")]
    NoSuchBranch(String),
    #[error("branch '{0}' already exists")]
    BranchExists(String),
    #[error("invalid branch name '{0}': use letters, digits, '-', '_' and '.'; no '/', '@' or leading '.'")]
    BadBranchName(String),
    #[error("{0}: no such file or directory in the archive")]
    NotFound(String),
    #[error("damaged data: chunk {chunk} in {pack} at offset {offset}: {what}; run `reelfs check --deep` to list affected files")]
    Damaged { chunk: String, pack: String, offset: u64, what: String },
    #[error("pack {path}: {msg}")]
    BadPack { path: PathBuf, msg: String },
    #[error("{path}: changed while it was being ingested ({what}); nothing of it was stored, re-run the ingest when the file is stable")]
    SourceChanged { path: PathBuf, what: String },
    #[error("catalog is inconsistent: {0}; run `reelfs check --rebuild-catalog`")]
    Inconsistent(String),
    #[error("interrupted; nothing of the current operation was committed")]
    Interrupted,
    #[error("{0}")]
    Invalid(String),
    /// SQLite says catalog.db itself is damaged (bad header, malformed pages). The
    /// packs are the source of truth, so the way out is always the rebuild.
    #[error("catalog {} is damaged ({detail}); the packs hold everything it indexes: rebuild it from them with `reelfs check {} --rebuild-catalog` (the damaged file is kept beside the new one)", .path.display(), .archive.display())]
    CatalogDamaged { path: PathBuf, archive: PathBuf, detail: String },
    /// An object a rebuilt catalog cannot have: its pack was gone when the catalog
    /// was rebuilt, so a second rebuild would not bring it back.
    #[error("{what} is lost: it was in a missing pack (the catalog was rebuilt from the packs that remain); `reelfs check {archive} --deep` lists everything lost; put the missing pack back (from a copy or tape) and rebuild, or re-ingest the originals", archive = .archive.display())]
    Lost { what: String, archive: PathBuf },
}

pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// Attach a path to an io::Error.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| ArchiveError::Io { path: path.into(), source })
    }
}

impl ArchiveError {
    /// True when the underlying cause is a full disk, so callers can say so plainly.
    pub fn is_disk_full(&self) -> bool {
        match self {
            ArchiveError::Io { source, .. } => source.raw_os_error() == Some(libc::ENOSPC),
            ArchiveError::Catalog { source, .. } => matches!(
                source,
                rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::DiskFull
            ),
            _ => false,
        }
    }
}

impl ArchiveError {
    /// Content whose disk copy `reelfs tape release` freed. An `Invalid` with
    /// the one wording, not a variant of its own: callers that match every
    /// variant (the Python error mapping) need no change.
    pub fn released(barcodes: &str) -> ArchiveError {
        let first = barcodes.split(',').next().unwrap_or_default();
        ArchiveError::Invalid(format!(
            "released to tape: its bytes are only on cartridge(s) {barcodes}; bring it back with \
             `reelfs tape recall ARCHIVE BRANCH/PATH --from {first} (--ltfs-mount DIR | --device PATH)`"
        ))
    }
}
