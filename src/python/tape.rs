//! The tape calls (`Archive.tape_plan`, `tape_write`, `tape_verify`, `tape_ls`,
//! `tape_where`, `tape_export`): each calls `commands::tape` as `reelfs tape …`
//! does and returns what its `--json` prints. Writing and verifying are long:
//! they run as a `Job` (GIL released, progress, Ctrl-C at the safe point).

use super::archive::json;
use super::errors::py_err;
use super::run::Job;
use crate::commands::tape::{self as t, PlanRequest, VolumeArg};
use pyo3::prelude::*;
use std::path::PathBuf;

/// The volume flags as the CLI checks them (reelfs.Archive checks the keywords
/// first, so its message names them; this keeps a direct native call safe).
fn volume(py: Python<'_>, ltfs_mount: Option<PathBuf>, device: Option<PathBuf>, barcode: &str) -> PyResult<VolumeArg> {
    VolumeArg::from_flags(ltfs_mount, device).map_err(py_err(py, barcode))
}

#[pyfunction]
#[pyo3(signature = (archive, selections, copies, generation=None, capacity=None, pool=None, name=None))]
#[allow(clippy::too_many_arguments)] // one per `reelfs tape plan` option
pub fn tape_plan(
    py: Python<'_>,
    archive: PathBuf,
    selections: Vec<String>,
    copies: u32,
    generation: Option<String>,
    capacity: Option<u64>,
    pool: Option<String>,
    name: Option<String>,
) -> PyResult<String> {
    let where_ = selections.first().cloned().unwrap_or_default();
    let req = PlanRequest { selections, generation, capacity, copies, pool, name };
    json(&py.allow_threads(|| t::plan(&archive, &req)).map_err(py_err(py, &where_))?)
}

/// What `tape write --json` prints (the Python side reads `ok` from it).
#[pyfunction]
#[pyo3(signature = (archive, plan, barcode, ltfs_mount=None, device=None, verify=false, progress=None))]
#[allow(clippy::too_many_arguments)] // one per `reelfs tape write` option
pub fn tape_write(
    py: Python<'_>,
    archive: PathBuf,
    plan: &str,
    barcode: &str,
    ltfs_mount: Option<PathBuf>,
    device: Option<PathBuf>,
    verify: bool,
    progress: Option<PyObject>,
) -> PyResult<String> {
    let vol = volume(py, ltfs_mount, device, barcode)?;
    let job = Job::new(progress);
    let p = job.progress.clone();
    let out = job.run(py, || t::write(&archive, plan, barcode, &vol, verify, p))?.map_err(py_err(py, barcode))?;
    json(&out)
}

#[pyfunction]
#[pyo3(signature = (archive, barcode, ltfs_mount=None, device=None, progress=None))]
pub fn tape_verify(
    py: Python<'_>,
    archive: PathBuf,
    barcode: &str,
    ltfs_mount: Option<PathBuf>,
    device: Option<PathBuf>,
    progress: Option<PyObject>,
) -> PyResult<String> {
    let vol = volume(py, ltfs_mount, device, barcode)?;
    let job = Job::new(progress);
    let p = job.progress.clone();
    let rep = job.run(py, || t::verify(&archive, barcode, &vol, p))?.map_err(py_err(py, barcode))?;
    json(&rep)
}

#[pyfunction]
#[pyo3(signature = (archive, barcode=None))]
pub fn tape_ls(py: Python<'_>, archive: PathBuf, barcode: Option<&str>) -> PyResult<String> {
    let at = barcode.map(String::from).unwrap_or_else(|| archive.display().to_string());
    json(&py.allow_threads(|| t::ls(&archive, barcode)).map_err(py_err(py, &at))?)
}

#[pyfunction]
pub fn tape_where(py: Python<'_>, archive: PathBuf, path: &str) -> PyResult<String> {
    json(&py.allow_threads(|| t::where_is(&archive, path)).map_err(py_err(py, path))?)
}

#[pyfunction]
pub fn tape_export(py: Python<'_>, archive: PathBuf, plan: &str, dir: PathBuf) -> PyResult<String> {
    json(&py.allow_threads(|| t::export(&archive, plan, &dir)).map_err(py_err(py, plan))?)
}
