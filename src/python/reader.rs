//! Reading a file of the archive from Python: what the mount shows at a path
//! (a committed file, an old version's, a staged write, a slice, a proxy), as
//! positioned reads with the GIL released. `reelfs.ArchiveFile` (Python) puts
//! `io.RawIOBase` on top. Bytes are verified as they are read: every chunk is
//! checked against its BLAKE3 the first time it is read (archive/read.rs).

use super::errors::{Failure, Kind};
use crate::archive::{Archive, BlobReader, Hash};
use crate::media::slice::SlicePlan;
use crate::view::{self, Target};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::Arc;

enum Source {
    Blob(Arc<BlobReader>),
    Slice { plan: Arc<SlicePlan>, reader: Arc<BlobReader> },
}

/// An open file of the archive; positioned reads only (no state to share).
#[pyclass(module = "reelfs._reelfs", frozen)]
pub struct NativeReader {
    source: Source,
    #[pyo3(get)]
    size: u64,
    #[pyo3(get)]
    path: String,
    /// `blake3:…` of a committed file's content; None for staged files and slices.
    #[pyo3(get)]
    content_hash: Option<String>,
}

impl NativeReader {
    /// Open what the mount shows at `path` (`BRANCH[@COMMIT]/PATH`).
    pub fn open(a: &Archive, path: &str) -> Result<NativeReader, Failure> {
        let r = view::resolve(a, path.trim_end_matches('/')).map_err(|e| Failure::from(&e).at(path))?;
        let arch = |e: crate::archive::ArchiveError| Failure::from(&e).at(path);
        let (source, size, hash) = match &r.target {
            Target::File { entry, .. } => (Source::Blob(Arc::new(a.blob_reader(&entry.hash).map_err(arch)?)), entry.size, Some(entry.hash)),
            Target::Staged { content, size, .. } => {
                let extents = a.staging().content_extents(content).map_err(arch)?;
                (Source::Blob(Arc::new(a.extents_reader(Hash([0; 32]), *size, &extents).map_err(arch)?)), *size, None)
            }
            Target::Proxy(p) => (Source::Blob(Arc::new(a.blob_reader(&p.rec.blob).map_err(arch)?)), p.size, Some(p.rec.blob)),
            Target::Slice(s) => (Source::Slice { plan: s.plan.clone(), reader: s.reader.clone() }, s.plan.size, None),
            t => {
                let msg = format!("{path} is a {}, not a file; Archive.ls lists a folder", t.kind_word());
                return Err(Failure { kind: Kind::Invalid, message: msg, path: Some(path.to_string()) });
            }
        };
        Ok(NativeReader { source, size, path: r.path, content_hash: hash.map(|h| format!("blake3:{h}")) })
    }

    /// Fill `buf` from `offset` as far as the file goes.
    fn fill(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Failure> {
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done as u64;
            let n = match &self.source {
                Source::Blob(r) => r.read_at(pos, &mut buf[done..]).map_err(|e| Failure::from(&e).at(&self.path))?,
                Source::Slice { plan, reader } => plan.read_at(reader, pos, &mut buf[done..]).map_err(|e| Failure {
                    kind: Kind::Other,
                    message: format!("{}: {e}", self.path),
                    path: Some(self.path.clone()),
                })?,
            };
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }
}

#[pymethods]
impl NativeReader {
    /// Up to `n` bytes from `offset` (fewer only at the end of the file).
    fn read_at<'py>(&self, py: Python<'py>, offset: u64, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        let want = n.min(self.size.saturating_sub(offset) as usize);
        let mut buf = vec![0u8; want];
        let got = py.allow_threads(|| self.fill(offset, &mut buf)).map_err(|f| f.into_py(py))?;
        Ok(PyBytes::new(py, &buf[..got]))
    }
}
