//! The exception hierarchy: `reelfs.Error` and one subclass per thing a caller
//! may want to catch apart. Every error of the lower layers is sorted into one
//! of them here, keeping its message (which says what to do next) and the
//! path it concerns as `.path`.

use crate::archive::ArchiveError;
use crate::commands::extract::ExtractError;
use crate::commands::slice::SliceCmdError;
use crate::commands::CommandError;
use crate::timecode::TimecodeError;
use crate::view::ViewError;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyboardInterrupt};
use pyo3::prelude::*;

create_exception!(
    reelfs,
    Error,
    PyException,
    "Any reelfs failure; `str(e)` says what happened and what to do, `e.path` names the path (or None)."
);
create_exception!(reelfs, NotFound, Error, "No such branch, commit, file or folder in the archive.");
create_exception!(reelfs, NotAnArchive, Error, "The folder is not a reelfs archive (create one with Archive.init).");
create_exception!(reelfs, AlreadyExists, Error, "A branch of that name, or a non-empty folder where an archive was to be made.");
create_exception!(reelfs, Damaged, Error, "Stored data or the catalog failed verification; run Archive.check(deep=True).");
create_exception!(reelfs, Locked, Error, "Another process is writing the archive; wait for it to finish.");
create_exception!(reelfs, InvalidTimecode, Error, "A timecode, frame rate or slice range that does not exist.");
create_exception!(reelfs, Conflict, Error, "A merge met conflicts; nothing was written (see `.report`).");
create_exception!(reelfs, InvalidRequest, Error, "The request cannot be carried out as given (the message says why).");

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("NotFound", py.get_type::<NotFound>())?;
    m.add("NotAnArchive", py.get_type::<NotAnArchive>())?;
    m.add("AlreadyExists", py.get_type::<AlreadyExists>())?;
    m.add("Damaged", py.get_type::<Damaged>())?;
    m.add("Locked", py.get_type::<Locked>())?;
    m.add("InvalidTimecode", py.get_type::<InvalidTimecode>())?;
    m.add("Conflict", py.get_type::<Conflict>())?;
    m.add("InvalidRequest", py.get_type::<InvalidRequest>())?;
    Ok(())
}

/// Which exception an error becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NotFound,
    NotAnArchive,
    AlreadyExists,
    Damaged,
    Locked,
    InvalidTimecode,
    Invalid,
    /// Ctrl-C reached the command's safe point: KeyboardInterrupt.
    Interrupted,
    Other,
}

/// An error sorted for Python: its kind, its message, the path it names.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    pub path: Option<String>,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Failure {
        Failure { kind, message: message.into(), path: None }
    }

    /// The path of the call, where the error did not name one itself.
    pub fn at(mut self, path: &str) -> Failure {
        if self.path.is_none() {
            self.path = Some(path.to_string());
        }
        self
    }

    pub fn into_py(self, py: Python<'_>) -> PyErr {
        let err = match self.kind {
            Kind::NotFound => NotFound::new_err(self.message),
            Kind::NotAnArchive => NotAnArchive::new_err(self.message),
            Kind::AlreadyExists => AlreadyExists::new_err(self.message),
            Kind::Damaged => Damaged::new_err(self.message),
            Kind::Locked => Locked::new_err(self.message),
            Kind::InvalidTimecode => InvalidTimecode::new_err(self.message),
            Kind::Invalid => InvalidRequest::new_err(self.message),
            Kind::Interrupted => return PyKeyboardInterrupt::new_err(self.message),
            Kind::Other => Error::new_err(self.message),
        };
        // Setting an attribute on a fresh exception instance cannot fail in
        // practice; if it did, the exception without `.path` is still right.
        let _ = err.value(py).setattr("path", self.path);
        err
    }
}

fn path_of(p: &std::path::Path) -> Option<String> {
    Some(p.display().to_string())
}

impl From<&ArchiveError> for Failure {
    fn from(e: &ArchiveError) -> Failure {
        use ArchiveError as A;
        let (kind, path) = match e {
            A::NotAnArchive { path } | A::NewerFormat { path, .. } => (Kind::NotAnArchive, path_of(path)),
            A::AlreadyExists { path } => (Kind::AlreadyExists, path_of(path)),
            A::BranchExists(name) => (Kind::AlreadyExists, Some(name.clone())),
            A::Locked { path, .. } => (Kind::Locked, path_of(path)),
            A::NoSuchBranch(name) | A::NotFound(name) => (Kind::NotFound, Some(name.clone())),
            A::Damaged { pack, .. } => (Kind::Damaged, Some(pack.clone())),
            A::BadPack { path, .. } | A::CatalogDamaged { path, .. } => (Kind::Damaged, path_of(path)),
            A::Inconsistent(_) | A::Lost { .. } => (Kind::Damaged, None),
            A::Interrupted => (Kind::Interrupted, None),
            A::BadBranchName(name) => (Kind::Invalid, Some(name.clone())),
            A::Invalid(_) => (Kind::Invalid, None),
            A::SourceChanged { path, .. } | A::Io { path, .. } | A::Catalog { path, .. } | A::Config { path, .. } => {
                (Kind::Other, path_of(path))
            }
        };
        Failure { kind, message: e.to_string(), path }
    }
}

impl From<&TimecodeError> for Failure {
    fn from(e: &TimecodeError) -> Failure {
        Failure::new(Kind::InvalidTimecode, e.to_string())
    }
}

impl From<&ViewError> for Failure {
    fn from(e: &ViewError) -> Failure {
        match e {
            ViewError::Archive(a) => a.into(),
            ViewError::NotFound(p) | ViewError::NotDir(p) => {
                Failure { kind: Kind::NotFound, message: e.to_string(), path: Some(p.clone()) }
            }
            ViewError::NoBranch(b) => Failure { kind: Kind::NotFound, message: e.to_string(), path: Some(b.clone()) },
            // A `name@…` the resolver cannot serve: a bad label or a range outside the clip.
            ViewError::Slice(_) => Failure::new(Kind::InvalidTimecode, e.to_string()),
            ViewError::Path(_) => Failure::new(Kind::Invalid, e.to_string()),
            ViewError::Access(_) => Failure::new(Kind::Other, e.to_string()),
        }
    }
}

impl From<&CommandError> for Failure {
    fn from(e: &CommandError) -> Failure {
        match e {
            CommandError::Archive(a) => a.into(),
            CommandError::Timecode(t) => t.into(),
            CommandError::Slice(_) => Failure::new(Kind::InvalidTimecode, e.to_string()),
            CommandError::Mount(_) => Failure::new(Kind::Other, e.to_string()),
            CommandError::WithHint { source, .. } => Failure { message: e.to_string(), ..source.into() },
            CommandError::Invalid(_) => Failure::new(Kind::Invalid, e.to_string()),
            CommandError::View(v) => v.into(),
            CommandError::Ltfs(_) => Failure::new(Kind::Other, e.to_string()),
            CommandError::Tape(t) => match t {
                crate::tape::TapeError::Archive(a) => a.into(),
                crate::tape::TapeError::NoSuchPlan(_) | crate::tape::TapeError::NoSuchTape(_) => {
                    Failure::new(Kind::NotFound, e.to_string())
                }
                crate::tape::TapeError::Invalid(_) => Failure::new(Kind::Invalid, e.to_string()),
                crate::tape::TapeError::Volume(_) | crate::tape::TapeError::Io { .. } => Failure::new(Kind::Other, e.to_string()),
            },
        }
    }
}

impl From<&SliceCmdError> for Failure {
    fn from(e: &SliceCmdError) -> Failure {
        match e {
            SliceCmdError::View(v) => v.into(),
            SliceCmdError::Archive(a) => a.into(),
            SliceCmdError::Timecode(t) => t.into(),
            SliceCmdError::NoFolder | SliceCmdError::NotASliceName(_) => Failure::new(Kind::InvalidTimecode, e.to_string()),
            SliceCmdError::NoFileName(p) => Failure { kind: Kind::Invalid, message: e.to_string(), path: path_of(p) },
        }
    }
}

impl From<&ExtractError> for Failure {
    fn from(e: &ExtractError) -> Failure {
        match e {
            ExtractError::Archive(a) => a.into(),
            ExtractError::Read { file, .. } => Failure { kind: Kind::NotFound, message: e.to_string(), path: path_of(file) },
            ExtractError::NoEvents { file, .. } | ExtractError::Otio { file, .. } => {
                Failure { kind: Kind::Invalid, message: e.to_string(), path: Some(file.clone()) }
            }
            ExtractError::NoRange | ExtractError::NoSource => Failure::new(Kind::Invalid, e.to_string()),
        }
    }
}

/// `result.map_err(py_err(py, path))`: any error above as the Python exception.
pub fn py_err<'a, E>(py: Python<'a>, path: &'a str) -> impl Fn(E) -> PyErr + 'a
where
    for<'e> Failure: From<&'e E>,
{
    move |e: E| Failure::from(&e).at(path).into_py(py)
}
