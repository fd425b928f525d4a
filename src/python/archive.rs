//! `reelfs._reelfs.NativeArchive`: one method per CLI command, calling the same
//! library function (src/commands) and returning its result as the JSON the
//! CLI's `--json` prints. The Python class `reelfs.Archive` wraps it.

use super::errors::{py_err, Failure};
use super::reader::NativeReader;
use super::run::Job;
use crate::archive::Archive;
use crate::commands;
use pyo3::prelude::*;
use std::path::{Path, PathBuf};

/// The result as JSON text; encoding a `Serialize` value of ours cannot fail
/// (no maps with non-string keys, no failing serializers).
pub(super) fn json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| super::errors::Error::new_err(format!("internal error encoding a result: {e}")))
}

#[pyclass(module = "reelfs._reelfs", frozen)]
pub struct NativeArchive {
    #[pyo3(get)]
    path: PathBuf,
}

impl NativeArchive {
    fn root(&self) -> &Path {
        &self.path
    }

    fn spec(&self) -> String {
        self.path.display().to_string()
    }

    fn open_read(&self, py: Python<'_>) -> PyResult<Archive> {
        Archive::open(self.root()).map_err(py_err(py, &self.spec()))
    }
}

#[pymethods]
impl NativeArchive {
    /// Open an existing archive (read access is checked now).
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<NativeArchive> {
        let a = NativeArchive { path };
        a.open_read(py)?;
        Ok(a)
    }

    /// Create an archive; returns the init report as JSON.
    #[staticmethod]
    #[pyo3(signature = (path, group=None))]
    fn init(py: Python<'_>, path: PathBuf, group: Option<&str>) -> PyResult<String> {
        let rep = commands::init::init(&path, group).map_err(py_err(py, &path.display().to_string()))?;
        json(&rep)
    }

    #[pyo3(signature = (sources, branch, to, message=None, progress=None))]
    fn ingest(
        &self,
        py: Python<'_>,
        sources: Vec<PathBuf>,
        branch: String,
        to: String,
        message: Option<String>,
        progress: Option<PyObject>,
    ) -> PyResult<String> {
        let job = Job::new(progress);
        let req = commands::ingest::IngestRequest {
            sources,
            branch,
            to,
            message,
            progress: job.progress.clone(),
            interrupt: job.interrupt.clone(),
        };
        let rep = job.run(py, || commands::ingest::ingest(self.root(), &req))?.map_err(py_err(py, &self.spec()))?;
        json(&rep)
    }

    fn ls(&self, py: Python<'_>, path: &str) -> PyResult<String> {
        json(&commands::ls::ls(self.root(), path).map_err(py_err(py, path))?)
    }

    fn info(&self, py: Python<'_>, path: &str) -> PyResult<String> {
        json(&commands::info::info(self.root(), path).map_err(py_err(py, path))?)
    }

    fn open(&self, py: Python<'_>, path: &str) -> PyResult<NativeReader> {
        let root = self.root();
        py.allow_threads(|| {
            let a = Archive::open(root).map_err(|e| Failure::from(&e).at(path))?;
            NativeReader::open(&a, path)
        })
        .map_err(|f| f.into_py(py))
    }

    #[pyo3(signature = (specs, dest, progress=None))]
    fn restore(&self, py: Python<'_>, specs: Vec<String>, dest: PathBuf, progress: Option<PyObject>) -> PyResult<String> {
        let job = Job::new(progress);
        let (p, i) = (job.progress.clone(), job.interrupt.clone());
        let rep = job.run(py, || commands::restore::restore(self.root(), &specs, &dest, p, &i))?;
        json(&rep.map_err(py_err(py, &dest.display().to_string()))?)
    }

    /// The slice's plan (what `reelfs slice --json` prints) and, with `output`,
    /// its bytes written there.
    #[pyo3(signature = (spec, output=None))]
    fn slice(&self, py: Python<'_>, spec: &str, output: Option<PathBuf>) -> PyResult<String> {
        let root = self.root();
        let res = py.allow_threads(|| commands::slice::slice(&Archive::open(root)?, spec, output.as_deref())).map_err(py_err(py, spec))?;
        json(&res)
    }

    fn branches(&self, py: Python<'_>) -> PyResult<String> {
        json(&commands::branch::list(self.root()).map_err(py_err(py, &self.spec()))?)
    }

    fn branch_create(&self, py: Python<'_>, name: &str, source: &str) -> PyResult<()> {
        commands::branch::create(self.root(), name, source).map_err(py_err(py, name))
    }

    fn branch_delete(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        commands::branch::delete(self.root(), name).map_err(py_err(py, name))
    }

    #[pyo3(signature = (a, b, path=None))]
    fn diff(&self, py: Python<'_>, a: &str, b: &str, path: Option<&str>) -> PyResult<String> {
        let d = py.allow_threads(|| commands::diff::diff(self.root(), a, b, path)).map_err(py_err(py, path.unwrap_or(a)))?;
        json(&d)
    }

    #[pyo3(signature = (src, into, ours, theirs, message, dry_run))]
    #[allow(clippy::too_many_arguments)] // one per `reelfs merge` option
    fn merge(
        &self,
        py: Python<'_>,
        src: &str,
        into: &str,
        ours: Vec<String>,
        theirs: Vec<String>,
        message: Option<String>,
        dry_run: bool,
    ) -> PyResult<String> {
        let opts = crate::archive::merge::MergeOptions { ours, theirs, message, dry_run };
        let rep = py.allow_threads(|| commands::merge::merge(self.root(), src, into, &opts)).map_err(py_err(py, into))?;
        json(&rep)
    }

    #[pyo3(signature = (spec, path, limit))]
    fn log(&self, py: Python<'_>, spec: &str, path: Option<&str>, limit: usize) -> PyResult<String> {
        let entries = py.allow_threads(|| commands::log::log(self.root(), spec, path, limit)).map_err(py_err(py, path.unwrap_or(spec)))?;
        json(&entries)
    }

    #[pyo3(signature = (deep, progress=None))]
    fn check(&self, py: Python<'_>, deep: bool, progress: Option<PyObject>) -> PyResult<String> {
        let job = Job::new(progress);
        let rep = job.run(py, || commands::check::check(self.root(), deep, &job.progress))?;
        json(&rep.map_err(py_err(py, &self.spec()))?)
    }

    fn rebuild_catalog(&self, py: Python<'_>) -> PyResult<String> {
        let rep = py.allow_threads(|| commands::check::rebuild_catalog(self.root())).map_err(py_err(py, &self.spec()))?;
        json(&rep)
    }

    fn stats(&self, py: Python<'_>) -> PyResult<String> {
        json(&py.allow_threads(|| commands::stats::stats(self.root())).map_err(py_err(py, &self.spec()))?)
    }

    #[pyo3(signature = (dry_run, progress=None))]
    fn gc(&self, py: Python<'_>, dry_run: bool, progress: Option<PyObject>) -> PyResult<String> {
        let job = Job::new(progress);
        let p = job.progress.clone();
        let rep = job.run(py, || commands::gc::gc(self.root(), dry_run, p))?;
        json(&rep.map_err(py_err(py, &self.spec()))?)
    }

    /// Pulls from an EDL, an OTIO timeline or one clip; returns
    /// `[report JSON (what extract --json prints), report.json path]`.
    #[pyo3(signature = (out, scope, handles, path=None, edl=None, otio=None, in_tc=None, out_tc=None))]
    #[allow(clippy::too_many_arguments)]
    fn extract(
        &self,
        py: Python<'_>,
        out: PathBuf,
        scope: &str,
        handles: u32,
        path: Option<&str>,
        edl: Option<PathBuf>,
        otio: Option<PathBuf>,
        in_tc: Option<&str>,
        out_tc: Option<&str>,
    ) -> PyResult<(String, PathBuf)> {
        let where_ = edl.as_ref().or(otio.as_ref()).map(|p| p.display().to_string()).or(path.map(String::from)).unwrap_or_default();
        let list =
            commands::extract::PullList::from_options(path, edl.as_deref(), otio.as_deref(), in_tc, out_tc).map_err(py_err(py, &where_))?;
        let root = self.root();
        let job = Job::new(None);
        let done =
            job.run(py, || commands::extract::extract(&Archive::open(root)?, &list, scope, handles, &out))?.map_err(py_err(py, &where_))?;
        Ok((json(&done.report)?, done.report_path))
    }

    #[pyo3(signature = (paths, profiles, jobs, progress=None))]
    fn proxy(&self, py: Python<'_>, paths: Vec<String>, profiles: String, jobs: usize, progress: Option<PyObject>) -> PyResult<String> {
        let job = Job::new(progress);
        let req = commands::proxy::ProxyRequest { paths, profiles, jobs, progress: job.progress.clone(), interrupt: job.interrupt.clone() };
        let rep = job.run(py, || commands::proxy::render(self.root(), &req, None))?.map_err(py_err(py, &self.spec()))?;
        json(&rep)
    }

    fn status(&self, py: Python<'_>, branch: &str) -> PyResult<String> {
        json(&commands::status::status(self.root(), branch).map_err(py_err(py, branch))?)
    }

    #[pyo3(signature = (branch, message=None))]
    fn commit(&self, py: Python<'_>, branch: &str, message: Option<&str>) -> PyResult<Option<String>> {
        py.allow_threads(|| commands::status::commit(self.root(), branch, message)).map_err(py_err(py, branch))
    }

    #[pyo3(signature = (path, tc, reel=None, rate=None))]
    fn tc_set(&self, py: Python<'_>, path: &str, tc: String, reel: Option<String>, rate: Option<String>) -> PyResult<String> {
        let change = commands::tc::TcChange::Set { tc, reel, rate };
        json(&commands::tc::tc(self.root(), path, change).map_err(py_err(py, path))?)
    }

    fn tc_clear(&self, py: Python<'_>, path: &str) -> PyResult<String> {
        json(&commands::tc::tc(self.root(), path, commands::tc::TcChange::Clear).map_err(py_err(py, path))?)
    }
}
